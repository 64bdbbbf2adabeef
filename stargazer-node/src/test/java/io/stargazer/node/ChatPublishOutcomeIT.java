// What the tab is told about its message is true. A publish whose answer does not come back in time (a stalled
// connection) has an unknown outcome: the entry may be stored. The gateway publishes each message with a dedupe key
// of its own and tries again, so it is stored once; if the outcome is still unknown the tab is told so, never that
// Redis did not take a message that is in the stream (the person, told it failed, would send it again: a double).
package io.stargazer.node;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.lettuce.core.RedisURI;
import io.stargazer.bus.NodeRole;
import io.stargazer.bus.RedisUrl;
import io.stargazer.bus.Topology;
import io.stargazer.bus.wire.WireFormat;
import io.stargazer.testing.RawRedis;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

@Timeout(180)
class ChatPublishOutcomeIT {

    private static List<String> inboundContents(RawRedis raw, Topology t) {
        List<String> stored = new ArrayList<>();
        for (var m : raw.xrange(t.inboundStream())) {
            byte[] payload = m.getBody().entrySet().stream().filter(e -> new String(e.getKey(), StandardCharsets.UTF_8).equals("payload"))
                    .findFirst().orElseThrow().getValue();
            stored.add(String.valueOf(WireFormat.decode(payload).content()));
        }
        return stored;
    }

    @Test
    void aMessageTheTabIsToldRedisDidNotTakeIsNotInTheStream() throws Exception {
        Topology t = TestRedis.topology();
        Map<String, String> env = new HashMap<>(TestEnv.of(t));
        env.put("SG_PUBLISH_TIMEOUT_MS", "1500");
        int redisPort = URI.create(TestRedis.url().toString()).getPort();
        try (FreezingProxy proxy = new FreezingProxy(redisPort); RawRedis raw = new RawRedis(RedisURI.create(TestRedis.url().toString()))) {
            Node node = Node.start(new Node.Settings(NodeRole.GATEWAY, new Node.Parts(true, false, false),
                    RedisUrl.parse("redis://127.0.0.1:" + proxy.port()), "node-publish-outcome", null, 0, "127.0.0.1", 0,
                    "echo", Duration.ofSeconds(10), env, Node.Dashboard.ON_MAIN_SERVER));
            try (ChatSocket tab = new ChatSocket(node.httpPort())) {
                tab.say("warm up");
                await().atMost(Duration.ofSeconds(20)).until(() -> tab.frames().stream().anyMatch(f -> "sent".equals(f.get("kind"))));
                proxy.freeze(true);
                tab.say("important question");
                // The command reaches Redis (only its answer is held back): the entry is stored.
                await().atMost(Duration.ofSeconds(20)).until(() -> inboundContents(raw, t).contains("important question"));
                await().atMost(Duration.ofSeconds(60)).until(() -> !tab.errors().isEmpty());
                proxy.freeze(false);
                assertThat(tab.errors()).as("what the tab was told about a message that is in the stream")
                        .noneMatch(e -> e.contains("did not take"))
                        .allMatch(e -> e.contains("may have"));
                // Every later attempt carried the same dedupe key: stored once.
                assertThat(inboundContents(raw, t)).containsOnlyOnce("important question");
            } finally {
                node.close();
            }
        }
    }
}
