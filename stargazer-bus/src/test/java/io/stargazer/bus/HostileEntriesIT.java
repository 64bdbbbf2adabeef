package io.stargazer.bus;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.lettuce.core.StreamMessage;
import io.stargazer.bus.testing.RawRedis;
import io.stargazer.bus.testing.TestRedis;
import io.stargazer.bus.wire.WireFormat;
import java.io.ByteArrayOutputStream;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import org.junit.jupiter.api.Test;

// Entries crafted to hurt a consumer (nesting bombs, lying length prefixes, truncation, huge or non-UTF-8 field
// names, thousands of fields, a payload field given twice) are each dead-lettered with their fields byte for byte;
// the subscription keeps RUNNING and handles the normal entry that follows them.
class HostileEntriesIT {

    static byte[] concat(byte[]... parts) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        for (byte[] p : parts) out.writeBytes(p);
        return out.toByteArray();
    }

    static byte[] repeat(int b, int n) {
        byte[] out = new byte[n];
        Arrays.fill(out, (byte) b);
        return out;
    }

    private static final byte[] MAP_K = {(byte) 0x81, (byte) 0xa1, 'k'};

    @Test
    void everyHostileEntryIsDeadLetteredByteForByteAndTheConsumerGoesOn() {
        Topology t = TestRedis.topology();
        String stream = t.inboundStream();
        String dead = t.deadLetterStream(stream);
        byte[] good = WireFormat.encode(Envelope.of("channel_id", "c", "content", "still here"));
        Map<String, List<byte[]>> hostile = new LinkedHashMap<>();
        hostile.put("nesting 100 000 levels", List.of(RawRedis.b("payload"), concat(MAP_K, repeat(0x91, 100_000), new byte[] {(byte) 0xc0})));
        hostile.put("str32 claiming 4 GiB", List.of(RawRedis.b("payload"),
                concat(MAP_K, new byte[] {(byte) 0xdb, (byte) 0xff, (byte) 0xff, (byte) 0xff, (byte) 0xff}, repeat('x', 16))));
        hostile.put("bin32 claiming 2 GiB", List.of(RawRedis.b("payload"),
                concat(MAP_K, new byte[] {(byte) 0xc6, 0x7f, (byte) 0xff, (byte) 0xff, (byte) 0xff}, repeat('x', 16))));
        hostile.put("map32 claiming 4 billion entries", List.of(RawRedis.b("payload"),
                new byte[] {(byte) 0xdf, (byte) 0xff, (byte) 0xff, (byte) 0xff, (byte) 0xff, (byte) 0xa1, 'k'}));
        hostile.put("truncated map", List.of(RawRedis.b("payload"), new byte[] {(byte) 0x83, (byte) 0xa1, 'k', (byte) 0xc0, (byte) 0xa1}));
        hostile.put("512 KiB field name", List.of(repeat('f', 512 * 1024), RawRedis.b("v")));
        hostile.put("non-UTF-8 field names", List.of(new byte[] {(byte) 0xff, (byte) 0xfe}, RawRedis.b("x"),
                new byte[] {(byte) 0xc3, 0x28}, new byte[] {0, 1, 2}));
        List<byte[]> many = new ArrayList<>();
        for (int i = 0; i < 5000; i++) {
            many.add(RawRedis.b("f" + i));
            many.add(RawRedis.b("v" + i));
        }
        hostile.put("5000 fields, no payload", many);
        byte[] dupA = WireFormat.encode(Envelope.of("channel_id", "c", "content", "dup-a"));
        byte[] dupB = WireFormat.encode(Envelope.of("channel_id", "c", "content", "dup-b"));
        hostile.put("payload field twice", List.of(RawRedis.b("payload"), new byte[] {(byte) 0xc1}, RawRedis.b("payload"), dupA));
        // Readers disagree on which of two fields counts (a dict in Python keeps the last): neither may be trusted.
        hostile.put("payload field twice, both valid", List.of(RawRedis.b("payload"), dupA, RawRedis.b("payload"), dupB));

        Set<String> handled = ConcurrentHashMap.newKeySet();
        try (EventBus bus = TestRedis.bus(BusConfig.builder().topology(t).role(NodeRole.WORKER).nodeId("h").build());
             RawRedis raw = new RawRedis(TestRedis.url())) {
            Subscription sub = bus.subscribe(bus.consumer(stream, t.workerGroup()).blockTimeout(Duration.ofMillis(100)).build(),
                    d -> handled.add(d.envelope().content()));
            Map<String, String> ids = new LinkedHashMap<>();
            for (Map.Entry<String, List<byte[]>> e : hostile.entrySet()) {
                ids.put(raw.sync().xadd(RawRedis.b(stream), new io.lettuce.core.XAddArgs(), e.getValue().toArray()), e.getKey());
            }
            raw.xadd(stream, "payload", good, "trace_id", "t");

            await().atMost(Duration.ofSeconds(20)).until(() -> handled.contains("still here"));
            await().atMost(Duration.ofSeconds(20)).until(() -> raw.xlen(dead) == hostile.size());
            assertThat(sub.state()).isEqualTo(Subscription.State.RUNNING);
            assertThat(handled).containsExactly("still here");
            assertThat(sub.stats().deadLettered()).isEqualTo(hostile.size());
            for (StreamMessage<byte[], byte[]> m : raw.xrange(dead)) {
                Map<String, byte[]> f = RawRedis.fields(m);
                String what = ids.get(RawRedis.s(f.get("source_id")));
                assertThat(what).isNotNull();
                assertThat(RawRedis.s(f.get("error"))).as(what).startsWith("malformed: ");
                List<String> copied = new ArrayList<>();
                m.getBody().forEach((k, v) -> copied.add(hex(k) + "=" + hex(v)));
                List<byte[]> original = hostile.get(what);
                List<String> expected = new ArrayList<>();
                for (int i = 0; i < original.size(); i += 2) expected.add(hex(original.get(i)) + "=" + hex(original.get(i + 1)));
                assertThat(copied.subList(0, expected.size())).as(what).isEqualTo(expected);
            }
            assertThat(bus.pendingCount(stream, t.workerGroup())).isZero();
        }
    }

    private static String hex(byte[] b) {
        return HexFormat.of().formatHex(b);
    }
}
