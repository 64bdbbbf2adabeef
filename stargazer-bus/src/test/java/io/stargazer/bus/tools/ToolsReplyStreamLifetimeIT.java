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
 * and a tools service answers nothing once a deadline is more than lateReplyLimit behind it.
 */
@org.junit.jupiter.api.Timeout(value = 2, unit = TimeUnit.MINUTES)
class ToolsReplyStreamLifetimeIT {

    /** A tool still running when its caller's client closes: its answer lands in a stream that still expires. */
    @Test
    void anAnswerAfterTheClientClosedLandsInAStreamThatExpires() throws Exception {
        Topology t = TestRedis.topology();
        CountDownLatch running = new CountDownLatch(1);
        CountDownLatch release = new CountDownLatch(1);
        ToolRegistry registry = ToolRegistry.builder().register("slow", a -> {
            running.countDown();
            release.await(30, TimeUnit.SECONDS);
            return "done";
        }).build();
        try (EventBus worker = TestRedis.bus(TestRedis.config(NodeRole.WORKER).topology(t).build());
             EventBus toolsBus = TestRedis.bus(TestRedis.config(NodeRole.TOOLS).topology(t).build());
             ToolService tools = ToolService.start(toolsBus, registry);
             RawRedis raw = new RawRedis(TestRedis.url())) {
            ToolClient client = ToolClient.create(worker, ToolClientConfig.builder().replyTtl(Duration.ofSeconds(3)).build());
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
            await().atMost(Duration.ofSeconds(20)).until(() -> raw.sync().exists(key) == 0);
        }
    }

    /** A client that made no call has nothing to wait for: close() deletes its stream at once. */
    @Test
    void aClientWithoutCallsDeletesItsStreamOnClose() {
        Topology t = TestRedis.topology();
        try (EventBus worker = TestRedis.bus(TestRedis.config(NodeRole.WORKER).topology(t).build());
             RawRedis raw = new RawRedis(TestRedis.url())) {
            ToolClient client = ToolClient.create(worker);
            byte[] key = RawRedis.b(client.replyStream());
            assertThat(raw.sync().exists(key)).isEqualTo(1);
            client.close();
            assertThat(raw.sync().exists(key)).isZero();
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
                     ToolServiceConfig.builder().lateReplyLimit(Duration.ofSeconds(5)).build());
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

    @Test
    void lateReplyLimitRefusesANegativeDuration() {
        org.assertj.core.api.Assertions.assertThatThrownBy(() -> ToolServiceConfig.builder().lateReplyLimit(Duration.ofSeconds(-1)))
                .isInstanceOf(io.stargazer.bus.ConfigException.class).hasMessageContaining("lateReplyLimit").hasMessageContaining("PT-1S");
        assertThat(ToolServiceConfig.defaults().lateReplyLimit()).isEqualTo(ToolServiceConfig.DEFAULT_LATE_REPLY_LIMIT);
        assertThat(ToolServiceConfig.builder().lateReplyLimit(Duration.ZERO).build().lateReplyLimit()).isZero();
    }

    private static Envelope request(String requestId, String replyTo, long deadlineMs) {
        return Envelope.of("request_id", requestId, "tool", "n", "args", Map.of(), "reply_to", replyTo, "deadline_ms", deadlineMs);
    }
}
