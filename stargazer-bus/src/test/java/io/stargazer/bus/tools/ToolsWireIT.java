package io.stargazer.bus.tools;

import static io.stargazer.bus.testing.RawRedis.b;
import static io.stargazer.bus.testing.RawRedis.s;
import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.lettuce.core.StreamMessage;
import io.lettuce.core.XReadArgs;
import io.stargazer.bus.EventBus;
import io.stargazer.bus.NodeRole;
import io.stargazer.bus.Topology;
import io.stargazer.bus.testing.RawRedis;
import io.stargazer.bus.testing.TestRedis;
import java.io.IOException;
import java.time.Duration;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.msgpack.core.MessageBufferPacker;
import org.msgpack.core.MessageFormat;
import org.msgpack.core.MessagePack;
import org.msgpack.core.MessageUnpacker;

// Interoperability: requests and replies written and read by hand as raw stream entries, exactly per the
// wire-format tables, with msgpack-core and plain XADD/XREAD (what a service in another language does).
class ToolsWireIT {
    private static final Duration WAIT = Duration.ofSeconds(10);

    /** Decodes a payload by hand into a map of member name to MessagePack format and value. */
    private static Map<String, Object[]> decode(byte[] payload) throws IOException {
        Map<String, Object[]> out = new LinkedHashMap<>();
        try (MessageUnpacker u = MessagePack.newDefaultUnpacker(payload)) {
            int n = u.unpackMapHeader();
            for (int i = 0; i < n; i++) {
                String key = u.unpackString();
                MessageFormat f = u.getNextFormat();
                out.put(key, new Object[] {f.getValueType(), u.unpackValue()});
            }
            assertThat(u.hasNext()).isFalse();
        }
        return out;
    }

    private static Map<String, byte[]> fields(StreamMessage<byte[], byte[]> m) {
        Map<String, byte[]> f = new HashMap<>();
        m.getBody().forEach((k, v) -> f.put(s(k), v));
        return f;
    }

    private static StreamMessage<byte[], byte[]> readOne(RawRedis raw, String stream, String after) {
        List<StreamMessage<byte[], byte[]>> got = raw.sync().xread(XReadArgs.Builder.block(5000).count(1),
                XReadArgs.StreamOffset.from(b(stream), after));
        assertThat(got).as("an entry on %s", stream).hasSize(1);
        return got.get(0);
    }

    @Test
    void theToolsServiceAnswersAHandWrittenRequestExactlyPerTheTables() throws Exception {
        Topology t = TestRedis.topology();
        String replyTo = t.toolsReplyStreamPrefix() + ":python-worker-1";
        try (EventBus toolsBus = TestRedis.bus(TestRedis.config(NodeRole.TOOLS).topology(t).build());
             RawRedis raw = new RawRedis(TestRedis.url());
             ToolService service = ToolService.start(toolsBus, TestTools.register(ToolRegistry.builder())
                     .register("echo", a -> a.get("data")).build())) {
            long deadline = System.currentTimeMillis() + 60_000;

            // 1. mul with an int result; deadline_ms as an int; trace_id in the payload and in the field.
            MessageBufferPacker p = MessagePack.newDefaultBufferPacker();
            p.packMapHeader(6);
            p.packString("request_id").packString("0123456789abcdef0123456789abcdef");
            p.packString("tool").packString("mul");
            p.packString("args").packMapHeader(2).packString("a").packLong(2).packString("b").packLong(7);
            p.packString("reply_to").packString(replyTo);
            p.packString("deadline_ms").packLong(deadline);
            p.packString("trace_id").packString("feedfacefeedfacefeedfacefeedface");
            raw.sync().xadd(b(t.toolsStream()), Map.of(b("payload"), p.toByteArray(), b("trace_id"), b("feedfacefeedfacefeedfacefeedface")));

            StreamMessage<byte[], byte[]> reply = readOne(raw, replyTo, "0-0");
            Map<String, byte[]> f = fields(reply);
            // A tool's reply carries the optional dedupe_key field of the wire format: sent once per request (docs/once.md).
            assertThat(f).containsOnlyKeys("payload", "trace_id", "dedupe_key");
            assertThat(s(f.get("dedupe_key"))).isEqualTo("tool-reply:0123456789abcdef0123456789abcdef");
            assertThat(s(f.get("trace_id"))).isEqualTo("feedfacefeedfacefeedfacefeedface");
            Map<String, Object[]> m = decode(f.get("payload"));
            assertThat(m).containsOnlyKeys("request_id", "ok", "result", "error", "trace_id");
            assertThat(m.get("request_id")[0].toString()).isEqualTo("STRING");
            assertThat(m.get("request_id")[1].toString()).isEqualTo("0123456789abcdef0123456789abcdef");
            assertThat(m.get("ok")[0].toString()).isEqualTo("BOOLEAN");
            assertThat(m.get("ok")[1].toString()).isEqualTo("true");
            assertThat(m.get("result")[0].toString()).isEqualTo("INTEGER");
            assertThat(m.get("result")[1].toString()).isEqualTo("14");
            assertThat(m.get("error")[0].toString()).isEqualTo("NIL");
            assertThat(m.get("trace_id")[1].toString()).isEqualTo("feedfacefeedfacefeedfacefeedface");

            // 2. bin in, bin out; no deadline_ms, no trace_id in the payload (the field stands in for it).
            p = MessagePack.newDefaultBufferPacker();
            p.packMapHeader(4);
            p.packString("request_id").packString("11111111-2222-3333-4444-555555555555");
            p.packString("tool").packString("echo");
            p.packString("args").packMapHeader(1).packString("data").packBinaryHeader(3).writePayload(new byte[] {0, (byte) 0xff, 0x10});
            p.packString("reply_to").packString(replyTo);
            raw.sync().xadd(b(t.toolsStream()), Map.of(b("payload"), p.toByteArray(), b("trace_id"), b("0badc0de0badc0de0badc0de0badc0de")));
            reply = readOne(raw, replyTo, reply.getId());
            m = decode(fields(reply).get("payload"));
            assertThat(m.get("request_id")[1].toString()).isEqualTo("11111111-2222-3333-4444-555555555555");
            assertThat(m.get("result")[0].toString()).isEqualTo("BINARY");
            assertThat(m.get("result")[1]).isEqualTo(org.msgpack.value.ValueFactory.newBinary(new byte[] {0, (byte) 0xff, 0x10}));
            assertThat(m.get("trace_id")[1].toString()).isEqualTo("0badc0de0badc0de0badc0de0badc0de");

            // 3. errors: args not a map -> bad_arguments; deadline passed -> timeout; unknown tool.
            String[][] cases = {{"mul", "args-not-a-map", "bad_arguments"}, {"mul", "expired", "timeout"}, {"nope", "ok", "unknown_tool"}};
            for (String[] c : cases) {
                p = MessagePack.newDefaultBufferPacker();
                p.packMapHeader(5);
                p.packString("request_id").packString("req-" + c[1]);
                p.packString("tool").packString(c[0]);
                p.packString("args");
                if (c[1].equals("args-not-a-map")) p.packString("2+2");
                else p.packMapHeader(2).packString("a").packLong(2).packString("b").packLong(2);
                p.packString("reply_to").packString(replyTo);
                p.packString("deadline_ms").packLong(c[1].equals("expired") ? System.currentTimeMillis() - 1000 : deadline);
                raw.sync().xadd(b(t.toolsStream()), Map.of(b("payload"), p.toByteArray(), b("trace_id"), b("abcd")));
                reply = readOne(raw, replyTo, reply.getId());
                m = decode(fields(reply).get("payload"));
                assertThat(m.get("request_id")[1].toString()).isEqualTo("req-" + c[1]);
                assertThat(m.get("ok")[1].toString()).isEqualTo("false");
                assertThat(m.get("error")[0].toString()).isEqualTo("MAP");
                Map<org.msgpack.value.Value, org.msgpack.value.Value> err = ((org.msgpack.value.MapValue) m.get("error")[1]).map();
                assertThat(err).hasSize(2);
                assertThat(err.get(org.msgpack.value.ValueFactory.newString("type")).toString()).isEqualTo(c[2]);
                assertThat(err.get(org.msgpack.value.ValueFactory.newString("message")).isStringValue()).isTrue();
                assertThat(m.get("trace_id")[1].toString()).isEqualTo("abcd");
            }

            // 4. no request_id: cannot be answered; refused as malformed, nothing written to reply_to.
            p = MessagePack.newDefaultBufferPacker();
            p.packMapHeader(2).packString("tool").packString("mul").packString("reply_to").packString(replyTo);
            raw.sync().xadd(b(t.toolsStream()), Map.of(b("payload"), p.toByteArray(), b("trace_id"), b("abcd")));
            await().atMost(WAIT).until(() -> service.stats().malformed() >= 1);
            assertThat(raw.sync().xlen(b(replyTo))).isEqualTo(5);
        }
    }

    @Test
    void theClientWritesRequestsPerTheTablesAndUnderstandsHandWrittenReplies() throws Exception {
        try (EventBus worker = TestRedis.bus(NodeRole.WORKER);
             RawRedis raw = new RawRedis(TestRedis.url());
             ToolClient client = ToolClient.create(worker)) {
            String toolsStream = worker.topology().toolsStream();
            long before = System.currentTimeMillis();
            CompletableFuture<Object> call = client.call("render", Map.of("prompt", "a cat", "n", 2), Duration.ofSeconds(30),
                    "c0ffeec0ffeec0ffeec0ffeec0ffee00");

            StreamMessage<byte[], byte[]> req = readOne(raw, toolsStream, "0-0");
            Map<String, byte[]> f = fields(req);
            assertThat(f).containsOnlyKeys("payload", "trace_id");
            assertThat(s(f.get("trace_id"))).isEqualTo("c0ffeec0ffeec0ffeec0ffeec0ffee00");
            Map<String, Object[]> m = decode(f.get("payload"));
            assertThat(m).containsOnlyKeys("request_id", "tool", "args", "reply_to", "deadline_ms", "trace_id");
            assertThat(m.get("request_id")[0].toString()).isEqualTo("STRING");
            String requestId = m.get("request_id")[1].toString();
            assertThat(requestId).matches("[0-9a-f]{32}");
            assertThat(m.get("tool")[1].toString()).isEqualTo("render");
            assertThat(m.get("args")[0].toString()).isEqualTo("MAP");
            assertThat(((org.msgpack.value.MapValue) m.get("args")[1]).map()).hasSize(2);
            assertThat(m.get("reply_to")[1].toString()).isEqualTo(client.replyStream());
            assertThat(m.get("deadline_ms")[0].toString()).isEqualTo("INTEGER");
            long deadline = Long.parseLong(m.get("deadline_ms")[1].toString());
            assertThat(deadline).isBetween(before + 30_000, System.currentTimeMillis() + 30_000);
            assertThat(m.get("trace_id")[1].toString()).isEqualTo("c0ffeec0ffeec0ffeec0ffeec0ffee00");

            // An ok reply, members in another order, one unknown member, bin and uint64 in the result.
            MessageBufferPacker p = MessagePack.newDefaultBufferPacker();
            p.packMapHeader(6);
            p.packString("trace_id").packString("c0ffeec0ffeec0ffeec0ffeec0ffee00");
            p.packString("error").packNil();
            p.packString("x_future_member").packInt(7);
            p.packString("result").packMapHeader(2)
                    .packString("image").packBinaryHeader(2).writePayload(new byte[] {(byte) 0x89, 0x50})
                    .packString("big").packBigInteger(new java.math.BigInteger("18446744073709551615"));
            p.packString("ok").packBoolean(true);
            p.packString("request_id").packString(requestId);
            raw.sync().xadd(b(client.replyStream()), Map.of(b("payload"), p.toByteArray(), b("trace_id"), b("c0ffee")));
            @SuppressWarnings("unchecked")
            Map<String, Object> result = (Map<String, Object>) call.get(10, TimeUnit.SECONDS);
            assertThat((byte[]) result.get("image")).containsExactly(0x89, 0x50);
            assertThat(result.get("big")).isEqualTo(new java.math.BigInteger("18446744073709551615"));

            // Error replies: overloaded (and a type this version does not know) as ToolException, timeout as ToolTimeoutException.
            for (String type : List.of("overloaded", "some_future_type", "timeout")) {
                String after = req.getId();
                CompletableFuture<Object> c = client.call("render", Map.of(), Duration.ofSeconds(30));
                req = readOne(raw, toolsStream, after);
                String id = decode(fields(req).get("payload")).get("request_id")[1].toString();
                p = MessagePack.newDefaultBufferPacker();
                p.packMapHeader(4);
                p.packString("request_id").packString(id);
                p.packString("ok").packBoolean(false);
                p.packString("error").packMapHeader(2).packString("type").packString(type).packString("message").packString("busy: " + type);
                p.packString("trace_id").packString("t");
                raw.sync().xadd(b(client.replyStream()), Map.of(b("payload"), p.toByteArray(), b("trace_id"), b("t")));
                try {
                    c.get(10, TimeUnit.SECONDS);
                    throw new AssertionError("expected an error");
                } catch (ExecutionException e) {
                    ToolException te = (ToolException) e.getCause();
                    assertThat(te.type()).isEqualTo(type);
                    assertThat(te.requestId()).isEqualTo(id);
                    assertThat(te.tool()).isEqualTo("render");
                    assertThat(te.errorMessage()).isEqualTo("busy: " + type);
                    assertThat(te instanceof ToolTimeoutException).isEqualTo(type.equals("timeout"));
                }
            }

            // Garbage and replies for nobody are dropped and counted, and the reader keeps going.
            raw.sync().xadd(b(client.replyStream()), Map.of(b("payload"), new byte[] {(byte) 0xc1}));
            MessageBufferPacker nobody = MessagePack.newDefaultBufferPacker();
            nobody.packMapHeader(2).packString("request_id").packString("nobody").packString("ok").packBoolean(true);
            raw.sync().xadd(b(client.replyStream()), Map.of(b("payload"), nobody.toByteArray()));
            await().atMost(WAIT).until(() -> client.stats().lateReplies() == 2);
            assertThat(client.stats().completed()).isEqualTo(1);
            assertThat(client.stats().failed()).isEqualTo(2);
            assertThat(client.stats().timedOut()).isEqualTo(1);
        }
    }

    /**
     * Wire format: deadline_ms is an int. A deadline another language writes as a whole float (a JavaScript number,
     * Python's {@code time.time() * 1000} rounded) is honoured; any other deadline_ms (a fraction, text) is answered
     * bad_arguments without running the tool. Before, every deadline_ms that was not an int was taken as "no deadline":
     * a request whose float deadline had passed 5 s before ran and was answered ok.
     */
    @Test
    void aDeadlineThatIsNotAnIntegerIsHonouredWhenWholeAndRefusedOtherwise() {
        String ns = TestRedis.namespace();
        Topology t = Topology.builder().namespace(ns).build();
        String replyTo = ns + ":replies";
        java.util.concurrent.atomic.AtomicInteger runs = new java.util.concurrent.atomic.AtomicInteger();
        io.stargazer.bus.tools.ToolRegistry registry = ToolRegistry.builder().register("count", a -> "run " + runs.incrementAndGet()).build();
        try (EventBus worker = TestRedis.bus(TestRedis.config(NodeRole.WORKER).topology(t).build());
             EventBus toolsBus = TestRedis.bus(TestRedis.config(NodeRole.TOOLS).topology(t).build());
             ToolService tools = ToolService.start(toolsBus, registry)) {
            long now = System.currentTimeMillis();
            send(worker, t, replyTo, "passed", now - 5_000.0);              // whole, five seconds ago
            send(worker, t, replyTo, "fraction", now + 60_000.5);          // not whole
            send(worker, t, replyTo, "text", Long.toString(now + 60_000)); // not a number
            send(worker, t, replyTo, "future", now + 60_000.0);            // whole, a minute ahead
            await().atMost(WAIT).until(() -> TestRedis.readAll(toolsBus, replyTo).size() == 4);
            Map<String, io.stargazer.bus.Envelope> byId = new HashMap<>();
            for (var e : TestRedis.readAll(toolsBus, replyTo)) byId.put(e.envelope().string("request_id"), e.envelope());
            assertThat(errorType(byId.get("passed"))).isEqualTo("timeout");
            assertThat(errorType(byId.get("fraction"))).isEqualTo("bad_arguments");
            assertThat(errorMessage(byId.get("fraction"))).asString().contains("deadline_ms");
            assertThat(errorType(byId.get("text"))).isEqualTo("bad_arguments");
            assertThat(byId.get("future").get("ok")).isEqualTo(true);
            assertThat(runs.get()).as("runs: only the request whose deadline is a minute ahead").isEqualTo(1);
        }
    }

    private static void send(EventBus worker, Topology t, String replyTo, String requestId, Object deadline) {
        worker.publish(t.toolsStream(), io.stargazer.bus.Envelope.of("request_id", requestId, "tool", "count", "args", Map.of(),
                "reply_to", replyTo, "deadline_ms", deadline));
    }

    private static Object errorType(io.stargazer.bus.Envelope reply) {
        return reply.get("error") instanceof Map<?, ?> m ? m.get("type") : null;
    }

    private static Object errorMessage(io.stargazer.bus.Envelope reply) {
        return reply.get("error") instanceof Map<?, ?> m ? m.get("message") : null;
    }
}
