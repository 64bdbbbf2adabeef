// The node takes its consumer settings from the environment map it is given (Node.Settings.env), as an embedder or a
// test passes it, never from the process's own variables: each of its subscriptions (worker, web chat gateway, tools
// service, relay) read SG_MAX_DELIVERIES and the others from System.getenv() before.
package io.stargazer.node;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;

import io.lettuce.core.RedisURI;
import io.stargazer.bus.ConfigException;
import io.stargazer.bus.ConsumerConfig;
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
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

@Timeout(120)
class NodeEnvironmentIT {

    private static Node.Settings settings(String id, Node.Parts parts, String handler, Map<String, String> env) {
        return new Node.Settings(NodeRole.STANDALONE, parts, TestRedis.url(), id, null, -1, "127.0.0.1", -1, handler,
                Duration.ofSeconds(10), env, Node.Dashboard.ON_MAIN_SERVER);
    }

    /**
     * SG_MAX_DELIVERIES=1 in the map: the worker's first failure dead-letters the message. With the default (5), as
     * when the worker read the process's variables, FailOnceHandler's second attempt answers it instead.
     */
    @Test
    void theWorkerTakesItsConsumerSettingsFromTheNodesMap() throws Exception {
        Topology t = TestRedis.topology();
        Map<String, String> env = new HashMap<>(TestEnv.of(t));
        env.put(ConsumerConfig.ENV_MAX_DELIVERIES, "1");
        env.put(ConsumerConfig.ENV_RETRY_BACKOFF_MS, "10");
        try (Node node = Node.start(settings("node-env-worker", new Node.Parts(false, true, false), FailOnceHandler.class.getName(), env));
                RawRedis raw = new RawRedis(RedisURI.create(TestRedis.url().toString()))) {
            raw.xadd(t.inboundStream(), "payload", WireFormat.encode(Envelope.of("platform", "webchat", "channel_id", "c-env",
                    "type", "message", "content", "hello")), "trace_id", "tr-env");
            String dead = t.deadLetterStream(t.inboundStream());
            await().atMost(Duration.ofSeconds(30)).until(() -> raw.sync().xlen(dead.getBytes(StandardCharsets.UTF_8)) == 1);
            assertThat(RawRedis.fields(raw.xrange(dead).get(0)).get("deliveries")).asString(StandardCharsets.UTF_8).isEqualTo("1");
            assertThat(raw.sync().xlen(t.outboundStream("webchat").getBytes(StandardCharsets.UTF_8))).as("answers").isZero();
        }
    }

    /** Every part's subscription reads the map: a bad value there ends the start, naming the variable. */
    @ParameterizedTest
    @ValueSource(strings = {"gateway", "worker", "tools", "relay"})
    void aBadConsumerSettingInTheMapStopsEachPartsStart(String part) {
        Topology t = TestRedis.topology();
        Map<String, String> env = new HashMap<>(TestEnv.of(t));
        env.put(ConsumerConfig.ENV_BATCH_SIZE, "0");
        Node.Parts parts = new Node.Parts(part.equals("gateway"), part.equals("worker"), part.equals("tools"), part.equals("relay"));
        assertThatThrownBy(() -> Node.start(settings("node-env-" + part, parts, "echo", env)).close())
                .isInstanceOf(ConfigException.class).hasMessageStartingWith(ConsumerConfig.ENV_BATCH_SIZE + ": '0'");
    }

    /**
     * A refused start starts nothing: every setting is read before the bus creates a stream or a part runs. Before, a bad
     * SG_WORKER_HANDLER or consumer setting was found only when its part started: the streams and groups were created
     * and, in a standalone node, the tools service had started reading (found by the configuration review).
     */
    @ParameterizedTest
    @ValueSource(strings = {"handler", "consumer"})
    void aBadSettingOfAnyPartLeavesNothingInRedis(String which) {
        Topology t = TestRedis.topology();
        Map<String, String> env = new HashMap<>(TestEnv.of(t));
        if (which.equals("consumer")) env.put(ConsumerConfig.ENV_BATCH_SIZE, "0");
        String handler = which.equals("handler") ? "no.such.Handler" : "echo";
        assertThatThrownBy(() -> Node.start(settings("node-env-nothing", new Node.Parts(true, true, true), handler, env)).close())
                .isInstanceOf(ConfigException.class).hasMessageContaining(which.equals("handler") ? "'no.such.Handler'" : "'0'");
        try (RawRedis raw = new RawRedis(RedisURI.create(TestRedis.url().toString()))) {
            for (String key : new String[] {t.inboundStream(), t.toolsStream(), t.outboundStream("webchat")}) {
                assertThat(raw.sync().exists(key.getBytes(StandardCharsets.UTF_8))).as(key).isZero();
            }
        }
    }
}
