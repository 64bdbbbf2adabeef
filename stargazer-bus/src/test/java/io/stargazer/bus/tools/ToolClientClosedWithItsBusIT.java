// Promise (tools, bounded memory): a tool client ends with its bus; the worker connecting again under its node id gets a new one.
package io.stargazer.bus.tools;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.stargazer.bus.EventBus;
import io.stargazer.bus.NodeRole;
import io.stargazer.bus.StargazerException;
import io.stargazer.bus.Topology;
import io.stargazer.bus.testing.TestRedis;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * A worker whose bus is closed before its tool client (a reconnect after trouble, a shutdown in the wrong order) keeps
 * no reader thread trying a closed connection for good, and a new bus under the same node id makes a tool client
 * again and is answered.
 */
class ToolClientClosedWithItsBusIT {
    /**
     * Before, the client outlived its bus: its reader retried the closed connection every second for good, and it held
     * the reply stream's name in the process, so every later ToolClient.create under that node id was refused ("a
     * ToolClient already reads reply stream ...").
     */
    @Test
    void aToolClientEndsWithItsBusAndTheNodeIdCanMakeANewOne() throws Exception {
        String ns = TestRedis.namespace();
        Topology t = Topology.builder().namespace(ns).build();
        String nodeId = "worker-again-" + ns;
        try (EventBus toolsBus = TestRedis.bus(TestRedis.config(NodeRole.TOOLS).topology(t).build());
             ToolService tools = ToolService.start(toolsBus, TestTools.register(ToolRegistry.builder()).build())) {
            EventBus first = TestRedis.bus(TestRedis.config(NodeRole.WORKER).topology(t).nodeId(nodeId).build());
            ToolClient old = ToolClient.create(first);
            assertThat(old.callBlocking("add", Map.of("a", 1, "b", 2), Duration.ofSeconds(10))).isEqualTo(3L);
            first.close();

            ExecutionException refused = org.junit.jupiter.api.Assertions.assertThrows(ExecutionException.class,
                    () -> old.call("add", Map.of("a", 1, "b", 2), Duration.ofSeconds(10)).get(20, TimeUnit.SECONDS));
            assertThat(refused.getCause()).isInstanceOf(StargazerException.class);
            await("the old client's reader thread ends").atMost(Duration.ofSeconds(20))
                    .until(() -> Thread.getAllStackTraces().keySet().stream()
                            .noneMatch(th -> th.isAlive() && th.getName().equals("stargazer-tools-reader-" + nodeId)));

            try (EventBus second = TestRedis.bus(TestRedis.config(NodeRole.WORKER).topology(t).nodeId(nodeId).build());
                 ToolClient again = ToolClient.create(second)) {
                assertThat(again.callBlocking("add", Map.of("a", 2, "b", 3), Duration.ofSeconds(10))).isEqualTo(5L);
            }
        }
    }
}
