// Promise (bad input changes nothing): an empty error text or stream given to dead replay|purge is refused, not "all".
package io.stargazer.node;

import static org.assertj.core.api.Assertions.assertThat;

import io.lettuce.core.RedisURI;
import io.stargazer.bus.Envelope;
import io.stargazer.bus.NodeRole;
import io.stargazer.bus.Topology;
import io.stargazer.bus.wire.WireFormat;
import io.stargazer.node.MainCliTest.Result;
import io.stargazer.testing.RawRedis;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Bad input gets a clear error and changes nothing: an empty error text or stream given to {@code stargazer dead
 * replay|purge} or the dashboard's replay/purge API (a script's unset variable) is refused, never taken as "every dead
 * letter".
 */
@Timeout(120)
class DeadEmptyFilterIT {
    private static final Map<String, String> ACTION = Map.of("X-Stargazer-Action", "1");

    private static void seed(RawRedis raw, Topology t) {
        for (String source : List.of(t.inboundStream(), t.toolsStream())) {
            raw.xadd(t.deadLetterStream(source), "payload", WireFormat.encode(Envelope.of("channel_id", "c-1", "content", "from " + source)),
                    "error", "provider timed out", "source_stream", source, "source_id", "1-1", "group", "g", "deliveries", "5");
        }
    }

    private static void assertUntouched(RawRedis raw, Topology t) {
        assertThat(raw.xlen(t.deadLetterStream(t.inboundStream()))).as("inbound dead letters").isEqualTo(1);
        assertThat(raw.xlen(t.deadLetterStream(t.toolsStream()))).as("tools dead letters").isEqualTo(1);
        assertThat(raw.xlen(t.inboundStream())).as("replayed to inbound").isZero();
        assertThat(raw.xlen(t.toolsStream())).as("replayed to tools").isZero();
    }

    @Test
    void anEmptyErrorTextOnTheCommandLineIsRefusedNotTakenAsEveryDeadLetter() {
        Topology t = TestRedis.topology();
        Map<String, String> env = TestEnv.of(t);
        try (RawRedis raw = new RawRedis(RedisURI.create(TestRedis.url().toString()))) {
            seed(raw, t);
            for (String kind : List.of("purge", "replay")) {
                for (String error : List.of("", "  ")) {
                    Result r = MainCliTest.run(env, "dead", kind, "--all", "--error", error);
                    assertThat(r.code()).as(kind + " --error '" + error + "': " + r.out() + r.err()).isEqualTo(2);
                    assertThat(r.err()).contains("--error");
                    assertUntouched(raw, t);
                }
            }
            // A real text still selects.
            Result r = MainCliTest.run(env, "dead", "purge", "--all", "--error", "timed out", "--stream", "tools");
            assertThat(r.code()).as(r.out() + r.err()).isZero();
            assertThat(r.out().strip()).isEqualTo("purged 1");
        }
    }

    @Test
    void anEmptyErrorTextOrStreamToTheApiIsRefusedNotTakenAsEveryDeadLetter() throws Exception {
        Topology t = TestRedis.topology();
        try (Node node = Node.start(new Node.Settings(NodeRole.WORKER, new Node.Parts(false, true, false), TestRedis.url(), "node-empty-filter",
                null, -1, "127.0.0.1", 0, "echo", Duration.ofSeconds(10), TestEnv.of(t), Node.Dashboard.ON_MAIN_SERVER));
                RawRedis raw = new RawRedis(RedisURI.create(TestRedis.url().toString()))) {
            seed(raw, t);
            for (String body : List.of("{\"all\":true,\"error\":\"\"}", "{\"all\":true,\"error\":\"   \"}", "{\"all\":true,\"stream\":\"\"}",
                    "{\"all\":true,\"stream\":\" \",\"error\":\"timed out\"}")) {
                for (String kind : List.of("purge", "replay")) {
                    String r = RawHttp.request(node.httpPort(), "POST", "/api/dead/" + kind, ACTION, body);
                    assertThat(RawHttp.status(r)).as(kind + " " + body + ": " + r.substring(r.indexOf("\r\n\r\n") + 4)).isEqualTo(400);
                    assertUntouched(raw, t);
                }
            }
            // Null or left out is "any", as documented.
            String r = RawHttp.request(node.httpPort(), "POST", "/api/dead/purge", ACTION, "{\"all\":true,\"stream\":null,\"error\":\"timed out\"}");
            assertThat(r).contains("\"purged\":2");
        }
    }
}
