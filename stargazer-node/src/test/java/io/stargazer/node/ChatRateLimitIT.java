// docs/security.md: the node bounds the rate at which one tab may publish. A tab sending as fast as it can is held to
// its token bucket (SG_WEBCHAT_RATE messages a second, bursts of SG_WEBCHAT_BURST): each message over it is answered
// with an error frame and publishes nothing; the tab stays open.
package io.stargazer.node;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.lettuce.core.RedisURI;
import io.stargazer.bus.NodeRole;
import io.stargazer.bus.Topology;
import io.stargazer.testing.RawRedis;
import java.time.Duration;
import java.util.HashMap;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

@Timeout(120)
class ChatRateLimitIT {

    private static Node gateway(Map<String, String> env) {
        return Node.start(new Node.Settings(NodeRole.GATEWAY, new Node.Parts(true, false, false), TestRedis.url(),
                "node-rate", null, 0, "127.0.0.1", 0, "echo", Duration.ofSeconds(10), env, Node.Dashboard.ON_MAIN_SERVER));
    }

    private static long count(ChatSocket tab, String kind) {
        return tab.frames().stream().filter(f -> kind.equals(f.get("kind"))).count();
    }

    /**
     * 200 messages back to back with a bucket of 1 message a second and bursts of 40: the tab is told about each, at
     * most 40 plus what the bucket refilled meanwhile are published (a bound no run on any machine comes near: 100
     * would take a minute), and every refused one is an error frame naming the limit.
     */
    @Test
    void oneTabCannotPublishAtAnUnboundedRate() throws Exception {
        Topology t = TestRedis.topology();
        Map<String, String> env = new HashMap<>(TestEnv.of(t));
        env.put("SG_WEBCHAT_RATE", "1");
        env.put("SG_WEBCHAT_BURST", "40");
        Node node = gateway(env);
        ch.qos.logback.classic.Logger gatewayLog = (ch.qos.logback.classic.Logger) org.slf4j.LoggerFactory.getLogger(
                io.stargazer.node.web.WebChatGateway.class);
        ch.qos.logback.core.read.ListAppender<ch.qos.logback.classic.spi.ILoggingEvent> warnings = new ch.qos.logback.core.read.ListAppender<>();
        warnings.start();
        gatewayLog.addAppender(warnings);
        try (ChatSocket tab = new ChatSocket(node.httpPort()); RawRedis raw = new RawRedis(RedisURI.create(TestRedis.url().toString()))) {
            int n = 200;
            for (int i = 0; i < n; i++) tab.say("spam " + i);
            await().atMost(Duration.ofSeconds(60)).until(() -> count(tab, "sent") + count(tab, "error") >= n);
            long sent = count(tab, "sent");
            assertThat(sent).as("messages published of %d sent back to back", n).isBetween(40L, 100L);
            assertThat(raw.xlen(t.inboundStream())).isEqualTo(sent);
            assertThat(tab.errors()).hasSize(n - (int) sent).allMatch(e -> e.startsWith("too many messages"));
            // The operator is told too, in a line for many (at most one every 10 s), not one per message.
            assertThat(warnings.list).filteredOn(e -> e.getFormattedMessage().startsWith("Refused "))
                    .isNotEmpty().hasSizeLessThan(10).allMatch(e -> e.getFormattedMessage().contains("over their tab's rate"));
            // The tab stays open and is served again once its bucket has refilled.
            await().atMost(Duration.ofSeconds(30)).until(() -> {
                tab.say("later");
                return count(tab, "sent") > sent;
            });
        } finally {
            gatewayLog.detachAppender(warnings);
            node.close();
        }
    }

    /** The default (20 a second, bursts of 40) lets a person chat: 40 messages at once all go through. */
    @Test
    void theDefaultLetsABurstOfFortyThrough() throws Exception {
        Topology t = TestRedis.topology();
        Node node = gateway(TestEnv.of(t));
        try (ChatSocket tab = new ChatSocket(node.httpPort()); RawRedis raw = new RawRedis(RedisURI.create(TestRedis.url().toString()))) {
            for (int i = 0; i < 40; i++) tab.say("line " + i);
            await().atMost(Duration.ofSeconds(30)).until(() -> count(tab, "sent") + count(tab, "error") >= 40);
            assertThat(tab.errors()).isEmpty();
            assertThat(raw.xlen(t.inboundStream())).isEqualTo(40);
        } finally {
            node.close();
        }
    }
}
