package io.stargazer.bus.tools;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.stargazer.bus.Envelope;
import io.stargazer.bus.EventBus;
import io.stargazer.bus.NodeRole;
import io.stargazer.bus.Topology;
import io.stargazer.bus.testing.RawRedis;
import io.stargazer.bus.testing.TestRedis;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * A worker's reply stream never outlives its use without an expiry (docs/tools.md, "The reply stream does not leak"):
 * an answer to a stream that is gone makes it again, without the expiry its client gave it, and nothing would ever
 * read or delete it. So a client keeps its stream for replyTtl past its last deadline (after close() or a crash too),
 * never deletes it nor shortens its expiry, and a tools service answers nothing once a deadline is more than
 * lateReplyLimit behind it.
 */
@org.junit.jupiter.api.Timeout(value = 2, unit = TimeUnit.MINUTES)
class ToolsReplyStreamLifetimeIT {

    /** A tool still running when its caller's client closes: its answer lands in a stream that still expires. */
    @Test
    void anAnswerAfterTheClientClosedLandsInAStreamThatExpires() throws Exception {
        Topology t = TestRedis.topology();
        CountDownLatch running = new CountDownLatch(1);
        CountDownLatch release = new CountDownLatch(1);
        ToolRegistry registry = slow(running, release);
        try (EventBus worker = TestRedis.bus(TestRedis.config(NodeRole.WORKER).topology(t).build());
             EventBus toolsBus = TestRedis.bus(TestRedis.config(NodeRole.TOOLS).topology(t).build());
             ToolService tools = ToolService.start(toolsBus, registry);
             RawRedis raw = new RawRedis(TestRedis.url())) {
            ToolClient client = ToolClient.create(worker, ToolClientConfig.builder().replyTtl(Duration.ofSeconds(10)).build());
            byte[] key = RawRedis.b(client.replyStream());
            CompletableFuture<Object> call = client.call("slow", Map.of(), Duration.ofSeconds(5));
            assertThat(running.await(10, TimeUnit.SECONDS)).isTrue();
            client.close();
            assertThat(call).isCompletedExceptionally();
            release.countDown();
            await().atMost(Duration.ofSeconds(10)).until(() -> tools.stats().succeeded() == 1
                    && toolsBus.pendingCount(t.toolsStream(), t.toolsGroup()) == 0);
            // The answer is stored in the stream the client left, which still has its expiry: it goes on its own.
            assertThat(raw.sync().xlen(key)).isEqualTo(1);
            assertThat(raw.sync().pttl(key)).as("the reply stream's expiry").isPositive();
            await().atMost(Duration.ofSeconds(40)).until(() -> raw.sync().exists(key) == 0);
        }
    }

    /**
     * A second client of the same stream (a worker restarted under its node id; here a client made after the first
     * one closed), with a shorter replyTtl and no call of its own, neither deletes the stream nor cuts its expiry
     * short while the first client's call is still being run: that answer still lands in a stream that expires.
     */
    @Test
    void aLaterClientOfTheSameStreamDoesNotCutAnEarlierOnesAnswersShort() throws Exception {
        Topology t = TestRedis.topology();
        CountDownLatch running = new CountDownLatch(1);
        CountDownLatch release = new CountDownLatch(1);
        ToolRegistry registry = slow(running, release);
        try (EventBus worker = TestRedis.bus(TestRedis.config(NodeRole.WORKER).topology(t).build());
             EventBus toolsBus = TestRedis.bus(TestRedis.config(NodeRole.TOOLS).topology(t).build());
             ToolService tools = ToolService.start(toolsBus, registry);
             RawRedis raw = new RawRedis(TestRedis.url())) {
            ToolClient first = ToolClient.create(worker);
            byte[] key = RawRedis.b(first.replyStream());
            CompletableFuture<Object> call = first.call("slow", Map.of(), Duration.ofSeconds(10));
            assertThat(running.await(10, TimeUnit.SECONDS)).isTrue();
            first.close();
            assertThat(call).isCompletedExceptionally();
            ToolClient second = ToolClient.create(worker, ToolClientConfig.builder().replyTtl(Duration.ofSeconds(1)).build());
            assertThat(second.replyStream()).isEqualTo(first.replyStream());
            second.close();
            long closed = System.nanoTime();
            // Longer than the second client's replyTtl: with its expiry, the stream would be gone by now.
            await().atMost(Duration.ofSeconds(10)).until(() -> System.nanoTime() - closed > 1_500_000_000L);
            assertThat(raw.sync().pttl(key)).as("the stream's expiry, as the first client left it").isGreaterThan(30_000L);
            release.countDown();
            await().atMost(Duration.ofSeconds(10)).until(() -> tools.stats().succeeded() == 1
                    && toolsBus.pendingCount(t.toolsStream(), t.toolsGroup()) == 0);
            assertThat(raw.sync().xlen(key)).isEqualTo(1);
            assertThat(raw.sync().pttl(key)).as("the reply stream's expiry (-1: none, it would never go)").isPositive();
        }
    }

    /** A client that made no call leaves its stream to expire within its replyTtl. */
    @Test
    void aClientWithoutCallsLeavesItsStreamToExpire() {
        Topology t = TestRedis.topology();
        try (EventBus worker = TestRedis.bus(TestRedis.config(NodeRole.WORKER).topology(t).build());
             RawRedis raw = new RawRedis(TestRedis.url())) {
            ToolClient client = ToolClient.create(worker, ToolClientConfig.builder().replyTtl(Duration.ofSeconds(5)).build());
            byte[] key = RawRedis.b(client.replyStream());
            client.close();
            assertThat(raw.sync().pttl(key)).isBetween(1L, 5000L);
            await().atMost(Duration.ofSeconds(20)).until(() -> raw.sync().exists(key) == 0);
        }
    }

    /**
     * A call with a longer timeout than the stream's expiry: the stream is kept past that call's deadline at once (a
     * worker that dies right after the call, before its next tick, still leaves the stream for the answer).
     */
    @Test
    void aLongCallKeepsTheStreamPastItsDeadline() {
        Topology t = TestRedis.topology();
        try (EventBus worker = TestRedis.bus(TestRedis.config(NodeRole.WORKER).topology(t).build());
             RawRedis raw = new RawRedis(TestRedis.url())) {
            ToolClient client = ToolClient.create(worker, ToolClientConfig.builder().replyTtl(Duration.ofSeconds(1)).build());
            byte[] key = RawRedis.b(client.replyStream());
            assertThat(raw.sync().pttl(key)).isBetween(1L, 1000L);
            CompletableFuture<Object> call = client.call("nobody-answers", Map.of(), Duration.ofSeconds(40));
            await().atMost(Duration.ofSeconds(10)).until(() -> raw.sync().pttl(key) > 30_000);
            client.close();
            assertThat(call).isCompletedExceptionally();
            // After close too, until replyTtl past the deadline.
            assertThat(raw.sync().pttl(key)).isBetween(30_000L, 41_000L);
        }
    }

    /**
     * A request whose deadline is long past (taken over after an outage, say) is acknowledged without an answer: its
     * caller stopped waiting, and the answer would make a reply stream that nobody reads.
     */
    @Test
    void aRequestFarPastItsDeadlineIsAcknowledgedWithoutAnAnswer() {
        String ns = TestRedis.namespace();
        Topology t = Topology.builder().namespace(ns).build();
        String replyTo = ns + ":gone-worker-replies";
        try (EventBus worker = TestRedis.bus(TestRedis.config(NodeRole.WORKER).topology(t).build());
             EventBus toolsBus = TestRedis.bus(TestRedis.config(NodeRole.TOOLS).topology(t).build());
             ToolService tools = ToolService.start(toolsBus, ToolRegistry.builder().register("n", a -> 1).build(),
                     ToolServiceConfig.builder().lateReplyLimit(Duration.ofSeconds(20)).build());
             RawRedis raw = new RawRedis(TestRedis.url())) {
            long now = System.currentTimeMillis();
            worker.publish(t.toolsStream(), request("long-past", replyTo, now - 60_000));
            worker.publish(t.toolsStream(), request("just-past", replyTo, now - 1_000));
            await().atMost(Duration.ofSeconds(10)).until(() -> tools.stats().received() == 2
                    && toolsBus.pendingCount(t.toolsStream(), t.toolsGroup()) == 0);
            assertThat(tools.stats().unanswered()).isEqualTo(1);
            // The one within the limit is still answered 'timeout', as before.
            assertThat(tools.stats().expired()).isEqualTo(1);
            assertThat(TestRedis.readAll(toolsBus, replyTo)).singleElement()
                    .satisfies(e -> assertThat(e.envelope().get("request_id")).isEqualTo("just-past"));
        }
    }

    /** A deadline must fit a Unix time in ms, and the stream is kept that long past it: a timeout over a day is refused. */
    @Test
    void aCallTimeoutOverADayIsRefused() {
        try (EventBus worker = TestRedis.bus(TestRedis.config(NodeRole.WORKER).topology(TestRedis.topology()).build());
             ToolClient client = ToolClient.create(worker)) {
            assertThat(client.call("n", Map.of(), Duration.ofMillis(Long.MAX_VALUE))).failsWithin(Duration.ofSeconds(1))
                    .withThrowableOfType(java.util.concurrent.ExecutionException.class)
                    .havingCause().isInstanceOf(IllegalArgumentException.class).withMessageContaining("PT24H");
            assertThat(client.stats().calls()).isZero();
        }
    }

    /** A tool "slow" that says it runs, then waits to be released. */
    private static ToolRegistry slow(CountDownLatch running, CountDownLatch release) {
        return ToolRegistry.builder().register("slow", a -> {
            running.countDown();
            release.await(30, TimeUnit.SECONDS);
            return "done";
        }).build();
    }

    private static Envelope request(String requestId, String replyTo, long deadlineMs) {
        return Envelope.of("request_id", requestId, "tool", "n", "args", Map.of(), "reply_to", replyTo, "deadline_ms", deadlineMs);
    }
}
