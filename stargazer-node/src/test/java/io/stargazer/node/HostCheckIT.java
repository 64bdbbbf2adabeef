// DNS rebinding: a page of another site whose name is made to resolve to 127.0.0.1 is same-origin with itself, so its
// requests carry Host and Origin of its own name, and it may add X-Stargazer-Action without a preflight. The node
// answers only requests addressed to it by a name it knows: the bind address, localhost and loopback addresses, an
// IP address, or a name in SG_HTTP_ALLOWED_HOSTS.
package io.stargazer.node;

import static org.assertj.core.api.Assertions.assertThat;

import io.lettuce.core.RedisURI;
import io.stargazer.bus.Envelope;
import io.stargazer.bus.NodeRole;
import io.stargazer.bus.Topology;
import io.stargazer.bus.wire.WireFormat;
import io.stargazer.testing.RawRedis;
import java.time.Duration;
import java.util.HashMap;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

@Timeout(120)
class HostCheckIT {

    private static void seedDead(RawRedis raw, Topology t, String content) {
        String inbound = t.inboundStream();
        raw.xadd(t.deadLetterStream(inbound), "payload", WireFormat.encode(Envelope.of("channel_id", "c-1", "content", content)),
                "trace_id", "t1", "error", "boom", "source_stream", inbound, "source_id", "1-1", "group", "g", "deliveries", "5",
                "dead_at_ms", Long.toString(System.currentTimeMillis()));
    }

    private static Node start(Topology t, Map<String, String> env, boolean chat) {
        return Node.start(new Node.Settings(NodeRole.GATEWAY, new Node.Parts(chat, false, false), TestRedis.url(), "node-host-check",
                null, 0, "127.0.0.1", 0, "echo", Duration.ofSeconds(10), env, Node.Dashboard.ON_MAIN_SERVER));
    }

    private static Map<String, String> action(String host) {
        return Map.of("Host", host, "Origin", "http://" + host, "X-Stargazer-Action", "1");
    }

    @Test
    void aPurgeWithAForeignHostIsRefused() throws Exception {
        Topology t = TestRedis.topology();
        try (Node node = start(t, TestEnv.of(t), false); RawRedis raw = new RawRedis(RedisURI.create(TestRedis.url().toString()))) {
            int port = node.httpPort();
            seedDead(raw, t, "precious");
            String foreign = "attacker.example:" + port;
            String purge = RawHttp.request(port, "POST", "/api/dead/purge", action(foreign), "{\"all\": true}");
            assertThat(raw.xlen(t.deadLetterStream(t.inboundStream()))).as("dead letters left after a purge from a rebound name; "
                    + "response: %s", purge.lines().findFirst().orElse("")).isEqualTo(1);
            assertThat(RawHttp.status(purge)).isEqualTo(421);
            // Reading is refused too: the page could otherwise read the streams, the dead letters and the metrics.
            for (String path : new String[] {"/api/streams", "/api/dead", "/dashboard", "/metrics", "/"}) {
                assertThat(RawHttp.status(RawHttp.request(port, "GET", path, Map.of("Host", foreign), null))).as(path).isEqualTo(421);
            }
            // Addressed by the names it knows, the same requests work.
            for (String host : new String[] {"127.0.0.1:" + port, "localhost:" + port, "LOCALHOST.:" + port, "[::1]:" + port}) {
                assertThat(RawHttp.status(RawHttp.request(port, "GET", "/api/streams", Map.of("Host", host), null))).as(host).isEqualTo(200);
            }
            String ok = RawHttp.request(port, "POST", "/api/dead/purge", action("localhost:" + port), "{\"all\": true}");
            assertThat(RawHttp.status(ok)).as(ok).isEqualTo(200);
            assertThat(raw.xlen(t.deadLetterStream(t.inboundStream()))).isZero();
            // /health answers whatever the name (a load balancer's probe), and says nothing but states.
            assertThat(RawHttp.status(RawHttp.request(port, "GET", "/health", Map.of("Host", foreign), null))).isEqualTo(200);
        }
    }

    @Test
    void theChatSocketRefusesAForeignHostAndAcceptsAnAllowedName() throws Exception {
        Topology t = TestRedis.topology();
        Map<String, String> env = new HashMap<>(TestEnv.of(t));
        env.put("SG_HTTP_ALLOWED_HOSTS", "chat.example.com, Ops.Example.com");
        try (Node node = start(t, env, true)) {
            int port = node.httpPort();
            String foreign = "attacker.example:" + port;
            assertThat(RawHttp.upgradeStatus(port, "/ws/chat", Map.of("Host", foreign, "Origin", "http://" + foreign))).isEqualTo(421);
            for (String name : new String[] {"chat.example.com", "ops.example.com:" + port}) {
                assertThat(RawHttp.upgradeStatus(port, "/ws/chat", Map.of("Host", name, "Origin", "http://" + name))).as(name).isEqualTo(101);
                assertThat(RawHttp.status(RawHttp.request(port, "GET", "/", Map.of("Host", name), null))).as(name).isEqualTo(200);
            }
            try (ChatSocket tab = new ChatSocket(port)) {
                assertThat(tab.channelId()).startsWith("wc-");
            }
        }
    }
}
