// Promise (tools, once per call): an instance started under the consumer name of one still running a tool waits for its lease.
package io.stargazer.bus.tools;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.stargazer.bus.EventBus;
import io.stargazer.bus.NodeRole;
import io.stargazer.bus.RedisUrl;
import io.stargazer.bus.Topology;
import io.stargazer.bus.testing.TestRedis;
import io.stargazer.testing.ChildJvm;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * A second tools instance under the consumer name of one still running a tool (a node restarted with its node id while
 * the old process still runs, a service started again in one process while a tool of its last run ignores the
 * interrupt) reads that consumer's pending requests as its own; it waits for the running one's lease, as any other
 * instance does, and runs the tool only once that lease has lapsed.
 */
class ToolsSameConsumerNameIT {
    /**
     * A tools instance in another JVM (consumer "tools-1") runs a tool that does not return; a second instance starts
     * under the same consumer name and, reading that consumer's pending requests as its own, gets the request. Before,
     * the lease named only the consumer and the entry, so the second instance took the first one's lease for its own
     * and ran the tool a second time beside the first. It runs it only once the first is killed and its lease lapsed.
     */
    @Test
    void aSecondInstanceUnderTheSameConsumerNameDoesNotRunARunningToolAgain() throws Exception {
        String ns = TestRedis.namespace();
        Topology t = Topology.builder().namespace(ns).build();
        RedisUrl url = TestRedis.url();
        try (ChildJvm first = ChildJvm.start(ToolsChildMain.class, "tools", url.host(), Integer.toString(url.port()), ns, "tools-1");
             EventBus worker = TestRedis.bus(TestRedis.config(NodeRole.WORKER).topology(t).build());
             EventBus toolsBus = TestRedis.bus(TestRedis.config(NodeRole.TOOLS).topology(t).build());
             ToolClient client = ToolClient.create(worker)) {
            await().atMost(Duration.ofSeconds(30)).until(() -> first.printed("READY"));
            CompletableFuture<Object> call = client.call("slow", Map.of(), Duration.ofSeconds(90));
            await().atMost(Duration.ofSeconds(30)).until(() -> first.lines().stream().anyMatch(l -> l.startsWith("RUNNING ")));

            // Whether the first instance was still alive when this one ran the tool.
            List<Boolean> firstAliveAtRun = new CopyOnWriteArrayList<>();
            ToolRegistry registry = ToolRegistry.builder().register("slow", a -> {
                firstAliveAtRun.add(first.isAlive());
                return "run by the second instance";
            }).build();
            try (ToolService second = ToolService.start(toolsBus, registry,
                    ToolServiceConfig.builder().consumerName("tools-1").claimIdle(Duration.ofMillis(500)).build())) {
                await().atMost(Duration.ofSeconds(20)).until(() -> second.stats().received() >= 1
                        && (!firstAliveAtRun.isEmpty() || second.subscription().stats().failed() >= 1));
                assertThat(firstAliveAtRun).as("runs on the second instance while the first still runs the tool").isEmpty();

                first.kill();
                assertThat(call.get(60, TimeUnit.SECONDS)).isEqualTo("run by the second instance");
                assertThat(firstAliveAtRun).containsExactly(false);
            }
        }
    }
}
