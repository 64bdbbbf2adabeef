package io.stargazer.node;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.stargazer.bus.Backpressure;
import io.stargazer.bus.BusConfig;
import io.stargazer.bus.Envelope;
import io.stargazer.bus.EventBus;
import io.stargazer.bus.GroupInfo;
import io.stargazer.bus.NodeRole;
import io.stargazer.bus.RedisUrl;
import io.stargazer.bus.StreamInfo;
import io.stargazer.bus.Topology;
import io.stargazer.embedded.RedisServerProcess;
import io.stargazer.node.web.WebChatGateway;
import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.function.LongSupplier;
import org.junit.jupiter.api.Test;

// A crashed gateway's group would keep the webchat outbound stream from being trimmed (SAFE) until answers are held:
// live gateways delete the groups of gateways that are gone, and never a live one's.
class GatewayGroupSweepIT {
    private static EventBus bus(Topology t, String id) {
        return TestRedis.bus(BusConfig.builder().topology(t).role(NodeRole.GATEWAY).nodeId(id).build());
    }

    @Test
    void aLiveGatewayDeletesTheGroupsOfDeadGatewaysButNotOfLiveOnes() {
        Topology t = TestRedis.topology();
        try (EventBus busA = bus(t, "gw-a"); EventBus busB = bus(t, "gw-b");
                WebChatGateway a = WebChatGateway.start(busA, new NodeMetrics());
                WebChatGateway b = WebChatGateway.start(busB, new NodeMetrics())) {
            String stream = t.outboundStream("webchat");
            String dead = WebChatGateway.groupOf(busA, "gw-dead");
            busA.ensureGroup(stream, dead); // a crashed gateway's group: no presence key refreshes it

            // First sweep: the presence key is missing once, which a gateway between start and refresh never shows,
            // but a sweep does not delete on one look.
            assertThat(a.removeDeadGatewayGroups()).isEmpty();
            assertThat(b.removeDeadGatewayGroups()).isEmpty();
            // Second sweep: still missing, so it is gone. The live gateways' groups stay, however quiet they are.
            assertThat(a.removeDeadGatewayGroups()).containsExactly(dead);
            List<String> left = busA.groups(stream).stream().map(GroupInfo::name).toList();
            assertThat(left).containsExactlyInAnyOrder(WebChatGateway.groupOf(busA, "gw-a"), WebChatGateway.groupOf(busA, "gw-b"));
            assertThat(b.removeDeadGatewayGroups()).isEmpty();
            assertThat(busA.isAlive(WebChatGateway.groupOf(busA, "gw-b") + ":alive")).isTrue();
        }
    }

    /**
     * The shared group sg:gateway:webchat, which older provisioning made and no web chat gateway reads, is deleted by
     * a gateway's sweep while it has no consumer (under SAFE it kept the stream from being trimmed for ever).
     */
    @Test
    void aGatewayDeletesTheSharedWebChatGroupThatNobodyReads() {
        Topology t = TestRedis.topology();
        try (EventBus bus = bus(t, "gw-a"); WebChatGateway a = WebChatGateway.start(bus, new NodeMetrics())) {
            String stream = t.outboundStream("webchat");
            bus.ensureGroup(stream, t.gatewayGroup("webchat"));
            assertThat(a.removeDeadGatewayGroups()).containsExactly(t.gatewayGroup("webchat"));
            assertThat(bus.groups(stream).stream().map(GroupInfo::name).toList()).containsExactly(WebChatGateway.groupOf(bus, "gw-a"));
        }
    }

    /**
     * `stargazer provision`, then a standalone node: the web chat answers keep flowing past the outbound stream's cap
     * under SAFE (provisioning made the shared group sg:gateway:webchat, which nobody reads, so the stream could not be
     * trimmed and, at the cap, every answer was refused, retried and dead-lettered). The smallest cap (1000) and
     * SG_BACKPRESSURE=reject make it show in seconds.
     */
    @Test
    void afterStargazerProvisionWebChatAnswersKeepFlowingPastTheStreamCap() throws InterruptedException {
        try (RedisServerProcess server = RedisServerProcess.builder().start()) {
            Map<String, String> env = new HashMap<>();
            env.put("REDIS_URL", server.url());
            env.put("SG_PLATFORMS", "webchat");
            env.put("SG_STREAM_MAXLEN", "1000");
            env.put("SG_BACKLOG_CHECK_MS", "100");
            env.put("SG_BACKPRESSURE", "reject");
            env.put("SG_RETRY_BACKOFF_MS", "100");
            env.put("SG_MAX_RETRY_BACKOFF_MS", "200");
            env.put("SG_MAX_DELIVERIES", "3");
            MainCliTest.Result p = MainCliTest.run(env, "provision");
            assertThat(p.code()).as(p.err()).isZero();
            Topology t = Topology.defaults();
            int n = 3000;
            try (NodeProcess node = NodeProcess.start("provision-then-standalone", env, "standalone", "--http-port", "0");
                 EventBus bus = EventBus.connect(RedisUrl.parse(server.url()), BusConfig.fromEnvironment(env).toBuilder()
                         .role(NodeRole.GATEWAY).backpressure(Backpressure.BLOCK).backpressureTimeout(Duration.ofSeconds(30)).build())) {
                node.awaitRunning();
                for (int i = 0; i < n; i++) {
                    bus.publishInbound(Envelope.of("platform", "webchat", "channel_id", "c-" + (i % 50), "content", "m" + i));
                }
                String out = t.outboundStream("webchat");
                String dead = t.deadLetterStream(t.inboundStream());
                LongSupplier added = () -> bus.streamInfo(out).map(StreamInfo::entriesAdded).orElse(0L);
                LongSupplier deadLetters = () -> bus.streamInfo(dead).map(StreamInfo::length).orElse(0L);
                await().atMost(Duration.ofSeconds(90)).until(() -> added.getAsLong() >= n || deadLetters.getAsLong() > 0);
                assertThat(deadLetters.getAsLong()).as("inbound dead letters; outbound groups " + bus.groups(out)).isZero();
                assertThat(added.getAsLong()).isGreaterThanOrEqualTo(n);
                node.stop();
            }
        }
    }
}
