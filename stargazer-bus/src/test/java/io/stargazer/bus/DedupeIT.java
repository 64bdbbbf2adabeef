package io.stargazer.bus;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.stargazer.testing.ChildJvm;
import io.stargazer.bus.testing.RawRedis;
import io.stargazer.bus.testing.TestRedis;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.awaitility.Awaitility;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** Idempotent publishing: a dedupe key stores one entry within the window, however often and from wherever it is published. */
@Timeout(120)
class DedupeIT {

    @Test
    void theSameKeyPublishedTwiceStoresOneEntryAndReturnsTheFirstId() {
        try (EventBus bus = TestRedis.bus(NodeRole.GATEWAY)) {
            String stream = bus.topology().inboundStream();
            String first = bus.publish(stream, Envelope.of("channel_id", "c", "content", "hi"), PublishOptions.dedupeKey("discord:1234567"));
            String second = bus.publish(stream, Envelope.of("channel_id", "c", "content", "hi again"), PublishOptions.dedupeKey("discord:1234567"));
            String other = bus.publish(stream, Envelope.of("channel_id", "c", "content", "new"), PublishOptions.dedupeKey("discord:1234568"));
            assertThat(second).isEqualTo(first);
            assertThat(other).isNotEqualTo(first);
            List<StreamEntry> entries = TestRedis.readAll(bus, stream);
            assertThat(entries).extracting(StreamEntry::id).containsExactly(first, other);
            assertThat(entries.get(0).envelope().content()).isEqualTo("hi");
        }
    }

    @Test
    void theKeyTravelsInTheEntryAsTheDedupeKeyFieldAndAnswersForOneWindowAtLeastAndTwoAtMost() throws Exception {
        long window = 1500;
        try (EventBus bus = TestRedis.bus(TestRedis.config(NodeRole.GATEWAY).dedupeWindow(Duration.ofMillis(window)).build());
                RawRedis raw = new RawRedis(TestRedis.url())) {
            String stream = bus.topology().inboundStream();
            long period = serverMillis(raw) / window;
            String first = bus.publish(stream, Envelope.of("channel_id", "c"), PublishOptions.dedupeKey("m-1"));
            long periodAfter = serverMillis(raw) / window;
            Map<String, byte[]> f = RawRedis.fields(raw.xrange(stream).get(0));
            assertThat(RawRedis.s(f.get("dedupe_key"))).isEqualTo("m-1");
            assertThat(f).containsKeys("payload", "trace_id");
            // The documented layout: hash {stream}:dedupe:<period mod 2> holds the key's first id, and its period in
            // the field "", and expires at the end of the next period.
            byte[] h0 = RawRedis.b("{" + stream + "}:dedupe:0");
            byte[] h1 = RawRedis.b("{" + stream + "}:dedupe:1");
            byte[] hash = raw.sync().hexists(h0, RawRedis.b("m-1")) ? h0 : h1;
            assertThat(RawRedis.s(raw.sync().hget(hash, RawRedis.b("m-1")))).isEqualTo(first);
            long stored = Long.parseLong(RawRedis.s(raw.sync().hget(hash, RawRedis.b(""))));
            assertThat(stored).isBetween(period, periodAfter);
            assertThat(hash).isEqualTo(stored % 2 == 0 ? h0 : h1);
            assertThat(raw.sync().pttl(hash)).isBetween(1L, 2 * window);
            // The next period still knows the key; the one after does not.
            Awaitility.await().atMost(10, TimeUnit.SECONDS).until(() -> serverMillis(raw) / window == stored + 1);
            assertThat(bus.publish(stream, Envelope.of("channel_id", "c"), PublishOptions.dedupeKey("m-1"))).isEqualTo(first);
            Awaitility.await().atMost(10, TimeUnit.SECONDS).until(() -> serverMillis(raw) / window >= stored + 2);
            String later = bus.publish(stream, Envelope.of("channel_id", "c"), PublishOptions.dedupeKey("m-1"));
            assertThat(later).isNotEqualTo(first);
            assertThat(TestRedis.readAll(bus, stream)).hasSize(2);
            // Both hashes expire by themselves once the stream goes quiet.
            Awaitility.await().atMost(10, TimeUnit.SECONDS).until(() -> raw.sync().exists(
                    RawRedis.b("{" + stream + "}:dedupe:0"), RawRedis.b("{" + stream + "}:dedupe:1")) == 0);
        }
    }

    private static long serverMillis(RawRedis raw) {
        List<byte[]> t = raw.sync().time();
        return Long.parseLong(RawRedis.s(t.get(0))) * 1000 + Long.parseLong(RawRedis.s(t.get(1))) / 1000;
    }

    @Test
    void keysRepeatedInsideOneCoalescedBatchStoreOneEntryEach() {
        try (EventBus bus = TestRedis.bus(NodeRole.GATEWAY)) {
            String stream = bus.topology().inboundStream();
            List<CompletableFuture<String>> ids = new ArrayList<>();
            for (int i = 0; i < 2000; i++) {
                ids.add(bus.publishAsync(stream, Envelope.of("channel_id", "c", "n", i), PublishOptions.dedupeKey("k" + (i % 100))));
            }
            CompletableFuture.allOf(ids.toArray(CompletableFuture[]::new)).join();
            for (int i = 100; i < 2000; i++) {
                assertThat(ids.get(i).join()).as("publish %s", i).isEqualTo(ids.get(i % 100).join());
            }
            List<StreamEntry> entries = TestRedis.readAll(bus, stream);
            assertThat(entries).hasSize(100);
            assertThat(entries).extracting(e -> e.envelope().longValue("n", -1)).containsExactlyElementsOf(
                    java.util.stream.LongStream.range(0, 100).boxed().toList());
        }
    }

    @Test
    void publishesWithAndWithoutKeysInOneBatchAreEachStoredOnce() {
        // The keyed script gets '' for a publish without a key; '' is also the field where each dedupe hash keeps its
        // period, so a lookup of it finds something: a publish without a key must be stored whatever that lookup says.
        try (EventBus bus = TestRedis.bus(NodeRole.GATEWAY)) {
            String stream = bus.topology().inboundStream();
            List<CompletableFuture<String>> ids = new ArrayList<>();
            for (int round = 0; round < 2; round++) {
                for (int i = 0; i < 1000; i++) {
                    Envelope e = Envelope.of("channel_id", "c", "n", round * 1000 + i);
                    ids.add(i % 2 == 0 ? bus.publishAsync(stream, e, PublishOptions.dedupeKey("k" + i)) : bus.publishAsync(stream, e));
                }
            }
            CompletableFuture.allOf(ids.toArray(CompletableFuture[]::new)).join();
            List<StreamEntry> entries = TestRedis.readAll(bus, stream);
            // Round one: 500 keyed and 500 without; round two: the 500 keys again (nothing) and 500 more without.
            assertThat(entries).hasSize(1500);
            for (int i = 0; i < 1000; i += 2) {
                assertThat(ids.get(1000 + i).join()).isEqualTo(ids.get(i).join());
            }
            assertThat(ids.stream().map(CompletableFuture::join).distinct()).hasSize(1500);
        }
    }

    @Test
    void aPublisherRestartedWithTheSameKeysAddsNothing() {
        BusConfig config = TestRedis.config(NodeRole.GATEWAY).build();
        String stream = config.topology().inboundStream();
        List<String> first = new ArrayList<>();
        try (EventBus bus = EventBus.connect(TestRedis.url(), config)) {
            for (int i = 0; i < 50; i++) first.add(bus.publish(stream, Envelope.of("n", i), PublishOptions.dedupeKey("r" + i)));
        }
        try (EventBus bus = EventBus.connect(TestRedis.url(), config)) {
            for (int i = 0; i < 50; i++) {
                assertThat(bus.publish(stream, Envelope.of("n", i), PublishOptions.dedupeKey("r" + i))).isEqualTo(first.get(i));
            }
            assertThat(TestRedis.readAll(bus, stream)).hasSize(50);
        }
    }

    @Test
    void twoProcessesPublishingTheSameKeysAtOnceStoreOneEntryPerKey() throws Exception {
        String stream = TestRedis.topology().inboundStream();
        int n = 3000;
        try (ChildJvm a = ChildJvm.start(DedupePublishChild.class, TestRedis.url().toString(), stream, Integer.toString(n));
                ChildJvm b = ChildJvm.start(DedupePublishChild.class, TestRedis.url().toString(), stream, Integer.toString(n));
                EventBus bus = TestRedis.bus(NodeRole.GATEWAY)) {
            Awaitility.await().atMost(90, TimeUnit.SECONDS).until(() -> a.printed("done") && b.printed("done"));
            Map<String, String> idsA = ids(a.lines());
            Map<String, String> idsB = ids(b.lines());
            assertThat(idsA).hasSize(n).isEqualTo(idsB);
            List<StreamEntry> entries = TestRedis.readAll(bus, stream);
            assertThat(entries).hasSize(n);
            assertThat(new HashSet<>(idsA.values())).hasSize(n);
        }
    }

    private static Map<String, String> ids(List<String> lines) {
        Map<String, String> out = new HashMap<>();
        for (String l : lines) {
            String[] p = l.split(" ");
            if (p.length == 2 && p[0].startsWith("k")) out.put(p[0], p[1]);
        }
        return out;
    }

    @Test
    void aPublishWhoseReplyIsLostTimesOutAndItsRetryWithTheSameKeyStoresNothingNew() throws Exception {
        BusConfig config = TestRedis.config(NodeRole.GATEWAY).publishTimeout(Duration.ofSeconds(1))
                .deadPeerTimeout(Duration.ofSeconds(1)).build();
        String stream = config.topology().inboundStream();
        try (io.stargazer.bus.testing.TcpProxy proxy = io.stargazer.bus.testing.TcpProxy.to(TestRedis.url());
             EventBus bus = EventBus.connect(proxy.url(), config);
             EventBus direct = TestRedis.bus(NodeRole.GATEWAY)) {
            bus.publish(stream, Envelope.of("n", 0), PublishOptions.dedupeKey("before")); // connected, stream made
            int connections = proxy.acceptedCount();
            proxy.dropRepliesOnExisting();
            // Without retries the outcome is unknown, though the entry was stored:
            CompletableFuture<String> once = bus.publishAsync(stream, Envelope.of("n", 1), PublishOptions.dedupeKey("lost-reply-1"));
            Throwable error = org.assertj.core.api.Assertions.catchThrowable(() -> once.get(10, TimeUnit.SECONDS));
            assertThat(error).hasCauseInstanceOf(PublishOutcomeUnknownException.class);
            // With retries and the same key: the reply of the first try is lost, a later try (after the dead connection
            // was replaced) finds the key and gets the first entry's id.
            Awaitility.await().atMost(30, TimeUnit.SECONDS).until(() -> proxy.acceptedCount() > connections); // replaced
            proxy.dropRepliesOnExisting();
            String id = bus.publishAsync(stream, Envelope.of("n", 2), PublishOptions.builder().dedupeKey("lost-reply-2").maxAttempts(10).build())
                    .get(60, TimeUnit.SECONDS);
            List<StreamEntry> entries = TestRedis.readAll(direct, stream);
            assertThat(entries).extracting(e -> e.envelope().longValue("n", -1)).containsExactly(0L, 1L, 2L);
            assertThat(entries.get(2).id()).isEqualTo(id);
        }
    }

    @Test
    void retriesNeedADedupeKeyAndBadKeysAreRefusedNamingTheOption() {
        assertThatThrownBy(() -> PublishOptions.builder().maxAttempts(3).build()).isInstanceOf(ConfigException.class)
                .hasMessageContaining("maxAttempts").hasMessageContaining("dedupe key");
        assertThatThrownBy(() -> PublishOptions.dedupeKey("")).isInstanceOf(ConfigException.class).hasMessageContaining("dedupeKey");
        assertThatThrownBy(() -> PublishOptions.dedupeKey("a\nb")).isInstanceOf(ConfigException.class).hasMessageContaining("dedupeKey");
        assertThatThrownBy(() -> PublishOptions.builder().maxAttempts(0)).isInstanceOf(ConfigException.class).hasMessageContaining("'0'");
    }

    /**
     * A lone UTF-16 surrogate has no UTF-8 form: encoded, it became '?', so "msg-" followed by a lone U+D800, by a lone
     * U+DC00, and "msg-?" were one key, and the second and third publishes were lost (each answered with the first's id).
     * Refused, as Envelope refuses such text; a whole surrogate pair is a character like any other.
     */
    @Test
    void aKeyWithALoneSurrogateIsRefusedRatherThanTakenForAnotherKey() {
        for (String bad : List.of("msg-\uD800", "msg-\uDC00", "msg-\uDE00\uD83D")) {
            assertThatThrownBy(() -> PublishOptions.dedupeKey(bad)).isInstanceOf(ConfigException.class)
                    .hasMessageContaining("dedupeKey").hasMessageContaining("lone UTF-16 surrogate at index 4");
        }
        try (EventBus bus = TestRedis.bus(NodeRole.GATEWAY)) {
            String stream = bus.topology().inboundStream();
            String pair = bus.publish(stream, Envelope.of("channel_id", "c"), PublishOptions.dedupeKey("msg-\uD83D\uDE00"));
            String question = bus.publish(stream, Envelope.of("channel_id", "c"), PublishOptions.dedupeKey("msg-?"));
            assertThat(question).isNotEqualTo(pair);
            assertThat(TestRedis.readAll(bus, stream)).extracting(StreamEntry::id).containsExactly(pair, question);
        }
    }

    /**
     * The window is counted in whole milliseconds, and the scripts compute its periods in Lua numbers: below 1 ms it was
     * 0 (a division by zero in every keyed publish), and a huge one overflowed the hashes' expiry; both were accepted,
     * then every keyed publish failed with a Lua error. Now 1 ms to {@link BusConfig#MAX_DEDUPE_WINDOW}, refused outside
     * naming the value, and both ends dedupe.
     */
    @Test
    void theWindowIsOneMillisecondToItsMaximumAndBothEndsDedupe() {
        for (Duration bad : List.of(Duration.ofNanos(500_000), Duration.ofMillis(Long.MAX_VALUE),
                BusConfig.MAX_DEDUPE_WINDOW.plusMillis(1), Duration.ofSeconds(Long.MAX_VALUE), Duration.ZERO)) {
            assertThatThrownBy(() -> BusConfig.builder().dedupeWindow(bad)).as("%s", bad).isInstanceOf(ConfigException.class)
                    .hasMessageContaining("SG_DEDUPE_WINDOW_MS").hasMessageContaining("between 1 ms and 31536000000 ms");
        }
        assertThatThrownBy(() -> BusConfig.fromEnvironment(Map.of("SG_DEDUPE_WINDOW_MS", Long.toString(Long.MAX_VALUE))))
                .isInstanceOf(ConfigException.class).hasMessageContaining("SG_DEDUPE_WINDOW_MS: '9223372036854775807 ms'");
        assertThat(BusConfig.fromEnvironment(Map.of("SG_DEDUPE_WINDOW_MS", "31536000000")).dedupeWindow())
                .isEqualTo(BusConfig.MAX_DEDUPE_WINDOW);
        for (Duration window : List.of(Duration.ofMillis(1), BusConfig.MAX_DEDUPE_WINDOW)) {
            try (EventBus bus = TestRedis.bus(TestRedis.config(NodeRole.GATEWAY).dedupeWindow(window).build());
                 RawRedis raw = new RawRedis(TestRedis.url())) {
                String stream = bus.topology().inboundStream();
                String first = bus.publish(stream, Envelope.of("channel_id", "c"), PublishOptions.dedupeKey("k1"));
                String again = bus.publish(stream, Envelope.of("channel_id", "c"), PublishOptions.dedupeKey("k1"));
                if (window.equals(BusConfig.MAX_DEDUPE_WINDOW)) {
                    assertThat(again).isEqualTo(first);
                    assertThat(raw.xlen(stream)).isEqualTo(1);
                    long pttl = Math.max(raw.sync().pttl(RawRedis.b("{" + stream + "}:dedupe:0")),
                            raw.sync().pttl(RawRedis.b("{" + stream + "}:dedupe:1")));
                    assertThat(pttl).isBetween(window.toMillis(), 2 * window.toMillis());
                } else {
                    // 1 ms: the second publish may come one or two periods later, so only that both are stored.
                    assertThat(raw.xlen(stream)).isBetween(1L, 2L);
                }
            }
        }
    }

    /**
     * A documented limit (docs/once.md, "Where the guarantee ends"), pinned: a stream without a hash tag keeps its dedupe
     * hashes under its whole name as the tag, {@code {X}:dedupe:N}, which are also the hashes of a stream named
     * {@code {X}} (tag X). So the two share their keys: a key used on one adds nothing on the other. The layout is a
     * contract with publishers in other languages, so it stays; the doc says not to name streams so.
     */
    @Test
    void streamsNamedXAndBracedXShareTheirDedupeHashesAsDocumented() {
        try (EventBus bus = TestRedis.bus(NodeRole.GATEWAY); RawRedis raw = new RawRedis(TestRedis.url())) {
            String x = TestRedis.namespace() + ":orders";
            String braced = "{" + x + "}";
            assertThat(Topology.slotKey(braced, "dedupe:0")).isEqualTo(Topology.slotKey(x, "dedupe:0")).isEqualTo(braced + ":dedupe:0");
            String first = bus.publish(x, Envelope.of("channel_id", "c"), PublishOptions.dedupeKey("order-1"));
            assertThat(bus.publish(braced, Envelope.of("channel_id", "c"), PublishOptions.dedupeKey("order-1"))).isEqualTo(first);
            assertThat(raw.xlen(braced)).isZero();
        }
    }
}
