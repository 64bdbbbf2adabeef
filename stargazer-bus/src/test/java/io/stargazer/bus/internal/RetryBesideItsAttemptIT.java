// Promise (ORDERED retries): one attempt of a channel at a time; a retry waits for the attempt that nacked it to end.
package io.stargazer.bus.internal;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.stargazer.bus.ConsumerConfig;
import io.stargazer.bus.Envelope;
import io.stargazer.bus.EventBus;
import io.stargazer.bus.NodeRole;
import io.stargazer.bus.RetryOrder;
import io.stargazer.bus.Topology;
import io.stargazer.bus.testing.Closer;
import io.stargazer.bus.testing.TestRedis;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * With ORDERED retries, a handler that nacks its entry and goes on working (a synchronous one that nacks and then
 * cleans up, or an asynchronous one whose stage completes after its nack) must not have its retry run beside it: the
 * channel runs one attempt at a time (docs/reliability.md: "keeps its channel until it returns (and its stage
 * completes), on a retry as on a first delivery"). The retry of an entry that holds its lane is started by
 * {@code pool.execute} without waiting for the attempt before it to end.
 */
@Timeout(value = 2, unit = TimeUnit.MINUTES)
class RetryBesideItsAttemptIT {
    private static final Duration WAIT = Duration.ofSeconds(20);
    private final Closer closer = new Closer();

    @AfterEach
    void closeAll() throws Exception {
        closer.close();
    }

    /** Attempt 1 throws; attempt 2 (in the lane a kept) nacks and goes on working; attempt 3 must wait for it. */
    @Test
    void aRetryInItsLaneWaitsForTheAttemptThatNackedItToReturn() throws Exception {
        EventBus bus = closer.add(TestRedis.bus(NodeRole.STANDALONE));
        List<String> events = new CopyOnWriteArrayList<>();
        AtomicInteger attempts = new AtomicInteger();
        CountDownLatch secondNacked = new CountDownLatch(1);
        CountDownLatch finishSecond = new CountDownLatch(1);
        closer.add(finishSecond::countDown);
        Topology t = bus.topology();
        closer.add(bus.subscribe(config(t).build(), d -> {
            int n = attempts.incrementAndGet();
            events.add("start " + n);
            if (n == 1) {
                events.add("end 1");
                throw new IllegalStateException("fails on attempt 1");
            }
            if (n == 2) {
                d.nack(new IllegalStateException("nacked on attempt 2"));
                secondNacked.countDown();
                finishSecond.await(); // work after settling
            }
            events.add("end " + n);
        }));
        bus.publishInbound(Envelope.of("platform", "webchat", "channel_id", "c", "content", "a"));

        await("attempt 2 nacked").atMost(WAIT).until(() -> secondNacked.getCount() == 0);
        // The backoff is 50 ms: a retry running beside attempt 2 starts well within this.
        await("attempt 3 waits while attempt 2 runs").during(Duration.ofMillis(700)).atMost(Duration.ofSeconds(5))
                .until(() -> !events.contains("start 3"));
        finishSecond.countDown();
        await("attempt 3 ran").atMost(WAIT).until(() -> events.contains("end 3"));
        assertThat(events).as("one channel's attempts, one at a time")
                .containsExactly("start 1", "end 1", "start 2", "end 2", "start 3", "end 3");
    }

    /** An asynchronous handler nacks on its first attempt and completes its stage later: the retry waits for the stage. */
    @Test
    void anAsynchronousHandlersRetryWaitsForTheStageOfTheAttemptThatNackedIt() throws Exception {
        EventBus bus = closer.add(TestRedis.bus(NodeRole.STANDALONE));
        List<String> events = new CopyOnWriteArrayList<>();
        AtomicInteger attempts = new AtomicInteger();
        CompletableFuture<Void> firstStage = new CompletableFuture<>();
        closer.add(() -> firstStage.complete(null));
        Topology t = bus.topology();
        closer.add(bus.subscribeAsync(config(t).build(), d -> {
            int n = attempts.incrementAndGet();
            events.add("start " + n);
            if (n == 1) {
                d.nack(new IllegalStateException("nacked on attempt 1"));
                return firstStage.thenRun(() -> events.add("end 1"));
            }
            events.add("end " + n);
            return CompletableFuture.completedFuture(null);
        }));
        bus.publishInbound(Envelope.of("platform", "webchat", "channel_id", "c", "content", "a"));

        await("attempt 1 started").atMost(WAIT).until(() -> events.contains("start 1"));
        await("attempt 2 waits while attempt 1's stage is incomplete").during(Duration.ofMillis(700)).atMost(Duration.ofSeconds(5))
                .until(() -> !events.contains("start 2"));
        firstStage.complete(null);
        await("attempt 2 ran").atMost(WAIT).until(() -> events.contains("end 2"));
        assertThat(events).as("one channel's attempts, one at a time").containsExactly("start 1", "end 1", "start 2", "end 2");
    }

    private static ConsumerConfig.Builder config(Topology t) {
        return ConsumerConfig.builder(t.inboundStream(), t.workerGroup()).consumerName("c")
                .retryOrder(RetryOrder.ORDERED).retryBackoff(Duration.ofMillis(50)).maxDeliveries(10)
                .concurrency(4).maxInFlight(4).closeTimeout(Duration.ofSeconds(1));
    }
}
