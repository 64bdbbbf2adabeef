// Gateway (two of them), worker and tools as separate processes on one Redis: echoes and tool answers come back to
// the tab that asked, also when the other gateway read the answer and had to forward it.
package io.stargazer.node;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.stargazer.bus.BusConfig;
import io.stargazer.bus.EventBus;
import io.stargazer.bus.GroupInfo;
import io.stargazer.bus.NodeRole;
import io.stargazer.bus.Topology;
import io.stargazer.node.web.WebChatGateway;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

class SeparateProcessesIT {

    @Test
    void gatewaysWorkerAndToolsInSeparateProcessesAnswerEveryTab() throws Exception {
        Topology topology = TestRedis.topology();
        Map<String, String> env = new HashMap<>(TestEnv.of(topology));
        // Each tab below sends 101 messages at once: more than a tab's default burst (ChatRateLimitIT).
        env.put("SG_WEBCHAT_BURST", "1000");
        List<NodeProcess> procs = new ArrayList<>();
        try (EventBus probe = EventBus.connect(TestRedis.url(), BusConfig.builder().topology(topology).role(NodeRole.GATEWAY)
                .nodeId("probe").build())) {
            NodeProcess gwA = start(procs, "gw-a", env, "gateway", "--platform", "webchat", "--http-port", "0", "--node-id", "gw-a");
            NodeProcess gwB = start(procs, "gw-b", env, "gateway", "--http-port", "0", "--node-id", "gw-b");
            Map<String, String> workerEnv = new HashMap<>(env);
            workerEnv.put("SG_WORKER_HANDLER", "tools");
            NodeProcess worker = start(procs, "worker", workerEnv, "worker", "--node-id", "worker-1");
            NodeProcess tools = start(procs, "tools", env, "tools", "--node-id", "tools-1");
            for (NodeProcess p : procs) p.awaitRunning();
            // The log lines carry their key=value pairs (SLF4J addKeyValue), which say which streams and groups a line
            // is about: Logback prints them only when its pattern asks.
            assertThat(worker.lines()).anyMatch(l -> l.contains("Worker started") && l.contains("handler=tools")
                    && l.contains("group=" + topology.workerGroup()));

            try (ChatSocket a = new ChatSocket(gwA.httpPort()); ChatSocket b = new ChatSocket(gwB.httpPort())) {
                a.say("/calc 2*(3+4)");
                b.say("/clock");
                await().atMost(Duration.ofSeconds(20)).until(() -> a.answers().size() == 1 && b.answers().size() == 1);
                assertThat(a.answers()).containsExactly("14");
                assertThat(b.answers().get(0)).matches("\\d{4}-\\d\\d-\\d\\dT.*Z");

                // Both gateways read every answer; each tab gets exactly its own, in the order they were sent.
                List<String> expectA = new ArrayList<>(a.answers());
                List<String> expectB = new ArrayList<>(b.answers());
                for (int i = 0; i < 100; i++) {
                    a.say("a" + i);
                    b.say("b" + i);
                    expectA.add("a" + i);
                    expectB.add("b" + i);
                }
                await().atMost(Duration.ofSeconds(20)).until(() -> a.answers().size() >= expectA.size()
                        && b.answers().size() >= expectB.size());
                assertThat(a.answers()).isEqualTo(expectA);
                assertThat(b.answers()).isEqualTo(expectB);
                assertThat(groupNames(probe, topology)).contains(WebChatGateway.groupOf(probe, "gw-a"),
                        WebChatGateway.groupOf(probe, "gw-b"));
                assertThat(a.channelId()).isNotEqualTo(b.channelId());
            }

            HttpClient http = HttpClient.newHttpClient();
            HttpResponse<String> health = http.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + gwA.httpPort()
                    + "/health")).build(), HttpResponse.BodyHandlers.ofString());
            assertThat(health.statusCode()).isEqualTo(200);
            assertThat(health.body()).contains("\"redis\":\"up\"").contains("RUNNING").doesNotContain("FAILED");
            String metrics = http.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + gwA.httpPort() + "/metrics"))
                    .build(), HttpResponse.BodyHandlers.ofString()).body();
            assertThat(metrics).contains("stargazer_roundtrip_latency_seconds_count").contains("stargazer_published_total")
                    .contains("stargazer_consumed_total");

            // SIGTERM: every part stops gracefully and leaves nothing pending.
            for (NodeProcess p : procs) {
                p.stop();
                assertThat(p.log()).contains("Stopped");
            }
            assertThat(probe.pendingCount(topology.inboundStream(), topology.workerGroup())).isZero();
            assertThat(probe.pendingCount(topology.toolsStream(), topology.toolsGroup())).isZero();
            // The gateways' own groups went with them; nothing read by the tools service is left pending.
            assertThat(groupNames(probe, topology)).isEmpty();
        } finally {
            for (NodeProcess p : procs) p.close();
        }
    }

    private static NodeProcess start(List<NodeProcess> procs, String name, Map<String, String> env, String... args) {
        return NodeProcess.start(procs, name, env, args);
    }

    private static List<String> groupNames(EventBus bus, Topology t) {
        return bus.groups(t.outboundStream("webchat")).stream().map(GroupInfo::name).toList();
    }
}
