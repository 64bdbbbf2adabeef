// Promise (never stall, clear errors): a gateway sent SIGTERM closes its open chat tabs with a status and a reason.
package io.stargazer.node;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.stargazer.bus.Topology;
import io.stargazer.embedded.RedisServerProcess;
import io.stargazer.testing.TestServers;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * A gateway process stopped gracefully tells its tabs why with a close frame, 1001 ("going away") and the reason, so the
 * page can say so and reconnect. Before, Jetty's stop cut their connections without one: the browser saw 1006, an
 * abnormal closure, with no reason, as for a crash.
 */
@Timeout(180)
class GatewayStopClosesTabsIT {
    @Test
    void aGatewayStoppedWithTabsOpenClosesThemWithAStatus() throws Exception {
        Topology t = TestRedis.topology();
        Map<String, String> env = TestEnv.of(t);
        List<NodeProcess> procs = new ArrayList<>();
        try {
            NodeProcess g = NodeProcess.start(procs, "stop-gateway", env, "gateway", "--http-port", "0", "--node-id", "gw-stop")
                    .awaitRunning();
            NodeProcess w = NodeProcess.start(procs, "stop-gateway-worker", env, "worker", "--node-id", "worker-g").awaitRunning();
            try (ChatSocket tab = new ChatSocket(g.httpPort())) {
                tab.say("hello");
                await().atMost(Duration.ofSeconds(30)).until(() -> tab.answers().contains("hello"));

                assertThat(g.stop()).as(g.log()).isZero();

                await().atMost(Duration.ofSeconds(10)).alias("the tab told the gateway closed it").until(() -> tab.closedWith() != null);
                assertThat(tab.closedWith()).as(g.log()).isEqualTo("1001 the gateway is shutting down");
            }
            assertThat(w.stop()).as(w.log()).isZero();
        } finally {
            procs.forEach(NodeProcess::close);
        }
    }

    @Test
    void aStandaloneNodeStoppedDuringARedisOutageClosesItsTabsAndEnds() throws Exception {
        Topology t = TestRedis.topology();
        List<NodeProcess> procs = new ArrayList<>();
        try (RedisServerProcess server = TestServers.server().start()) {
            Map<String, String> env = new HashMap<>(TestEnv.of(t));
            env.put("REDIS_URL", server.url());
            NodeProcess n = NodeProcess.start(procs, "stop-standalone-outage", env, "standalone", "--http-port", "0",
                    "--handler", "tools").awaitRunning();
            try (ChatSocket tab = new ChatSocket(n.httpPort())) {
                tab.say("/calc 1+1");
                await().atMost(Duration.ofSeconds(30)).until(() -> tab.answers().contains("2"));
                server.kill();
                tab.say("/calc 2+2"); // in flight as the node stops

                assertThat(n.stop()).as(n.log()).isZero();

                await().atMost(Duration.ofSeconds(10)).alias("the tab told the node closed it").until(() -> tab.closedWith() != null);
                assertThat(tab.closedWith()).as(n.log()).isEqualTo("1001 the gateway is shutting down");
            }
        } finally {
            procs.forEach(NodeProcess::close);
        }
    }
}
