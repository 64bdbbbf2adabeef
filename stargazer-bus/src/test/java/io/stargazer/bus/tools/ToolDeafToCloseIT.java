// Promise (tools, once per call): a tool that keeps running through close() keeps its lease; no other instance runs it too.
package io.stargazer.bus.tools;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.stargazer.bus.EventBus;
import io.stargazer.bus.NodeRole;
import io.stargazer.bus.Topology;
import io.stargazer.bus.testing.TestRedis;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

/**
 * close() interrupts the tools still running after its close timeout and gives their requests back for another
 * instance. A tool deaf to the interrupt goes on running: its request must not be run a second time by the instance
 * that takes it over while it runs, and its answer, when it returns, is the call's one answer.
 */
@org.junit.jupiter.api.Timeout(value = 2, unit = TimeUnit.MINUTES)
class ToolDeafToCloseIT {
    /**
     * Before, close() stopped renewing every lease it held, the running tool's too: its lease lapsed (10 s here) and the
     * instance that took the request over ran the tool a second time beside the first, still running.
     */
    @Test
    void aToolDeafToClosesInterruptKeepsItsLeaseAndIsNotRunAgainElsewhere() throws Exception {
        String ns = TestRedis.namespace();
        Topology t = Topology.builder().namespace(ns).build();
        CountDownLatch running = new CountDownLatch(1);
        CountDownLatch release = new CountDownLatch(1);
        ToolRegistry deaf = ToolRegistry.builder()
                .register("slow", TestTools.deafToInterrupts(running, release, "run by the closed instance")).build();
        AtomicInteger takerRuns = new AtomicInteger();
        ToolRegistry counting = ToolRegistry.builder().register("slow", a -> "run " + takerRuns.incrementAndGet() + " by the taker").build();
        try (EventBus worker = TestRedis.bus(TestRedis.config(NodeRole.WORKER).topology(t).build());
             EventBus firstBus = TestRedis.bus(TestRedis.config(NodeRole.TOOLS).topology(t).build());
             EventBus secondBus = TestRedis.bus(TestRedis.config(NodeRole.TOOLS).topology(t).build());
             ToolClient client = ToolClient.create(worker)) {
            ToolService first = ToolService.start(firstBus, deaf, ToolServiceConfig.builder().consumerName("tools-first")
                    .claimIdle(Duration.ofMillis(500)).closeTimeout(Duration.ofMillis(300)).build());
            try {
                CompletableFuture<Object> call = client.call("slow", Map.of(), Duration.ofSeconds(90));
                assertThat(running.await(20, TimeUnit.SECONDS)).isTrue();
                first.close();
                try (ToolService second = ToolService.start(secondBus, counting, ToolServiceConfig.builder().consumerName("tools-second")
                        .claimIdle(Duration.ofMillis(500)).build())) {
                    // Past the first instance's 10 s lease, and the taker's retries after it.
                    await("no run on the taker while the first instance still runs the tool").during(Duration.ofSeconds(20))
                            .atMost(Duration.ofSeconds(25)).until(() -> takerRuns.get() == 0);
                    release.countDown();
                    assertThat(call.get(30, TimeUnit.SECONDS)).isEqualTo("run by the closed instance");
                    await().atMost(Duration.ofSeconds(30)).until(() -> worker.pendingCount(t.toolsStream(), t.toolsGroup()) == 0);
                    assertThat(takerRuns.get()).isZero();
                }
            } finally {
                release.countDown();
            }
        }
    }
}
