// The worker answers only on the configured platforms' outbound streams (SG_PLATFORMS): a message from any other
// platform is dead-lettered at once, naming the platform and the setting, before the handler runs. Before, the worker
// answered on outbound:<whatever the gateway sent>: a stream nobody reads and a metrics series per name.
package io.stargazer.node;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.lettuce.core.RedisURI;
import io.stargazer.bus.Envelope;
import io.stargazer.bus.NodeRole;
import io.stargazer.bus.Topology;
import io.stargazer.bus.wire.WireFormat;
import io.stargazer.testing.RawRedis;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.HashMap;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

@Timeout(120)
class WorkerPlatformsIT {

    @Test
    void aMessageFromAnUnconfiguredPlatformIsDeadLetteredNotAnsweredOnAStreamOfItsOwn() throws Exception {
        Topology t = TestRedis.topology();
        Map<String, String> env = new HashMap<>(TestEnv.of(t)); // SG_PLATFORMS=webchat
        Node.Settings settings = new Node.Settings(NodeRole.STANDALONE, new Node.Parts(false, true, false), TestRedis.url(),
                "worker-platforms", null, -1, "127.0.0.1", -1, "echo", Duration.ofSeconds(10), env, Node.Dashboard.ON_MAIN_SERVER);
        try (Node node = Node.start(settings); RawRedis raw = new RawRedis(RedisURI.create(TestRedis.url().toString()))) {
            for (String platform : new String[] {"slack", "webchat"}) {
                raw.xadd(t.inboundStream(), "payload", WireFormat.encode(Envelope.of("platform", platform, "channel_id", "c-" + platform,
                        "type", "message", "content", "hello")), "trace_id", "tr-" + platform);
            }
            byte[] webchat = t.outboundStream("webchat").getBytes(StandardCharsets.UTF_8);
            byte[] dead = t.deadLetterStream(t.inboundStream()).getBytes(StandardCharsets.UTF_8);
            await().atMost(Duration.ofSeconds(30)).until(() -> raw.sync().xlen(webchat) == 1 && raw.sync().xlen(dead) == 1);
            Map<String, byte[]> letter = RawRedis.fields(raw.xrange(t.deadLetterStream(t.inboundStream())).get(0));
            assertThat(letter.get("deliveries")).asString(StandardCharsets.UTF_8).isEqualTo("1");
            assertThat(letter.get("error")).asString(StandardCharsets.UTF_8).contains("'slack'").contains("SG_PLATFORMS");
            assertThat(raw.sync().exists(t.outboundStream("slack").getBytes(StandardCharsets.UTF_8))).as("no outbound:slack").isZero();
        }
    }
}
