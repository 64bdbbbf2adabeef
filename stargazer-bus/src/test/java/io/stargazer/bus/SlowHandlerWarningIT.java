package io.stargazer.bus;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.stargazer.bus.testing.TestRedis;
import io.stargazer.testing.CapturedStderr;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * A handler that does not return (a call made without a timeout) keeps its entry, an in-flight place and its channel
 * for as long as it runs: the bus keeps refreshing the entry and cannot know whether the work may be cut short. It must
 * not do so silently: a WARN names the entry and its channel once the handler has run longer than the claim time, and
 * again every claim time. Before, nothing said so.
 */
@Timeout(value = 1, unit = TimeUnit.MINUTES)
class SlowHandlerWarningIT {
    @Test
    void aHandlerRunningLongerThanTheClaimTimeIsReportedAndKeepsItsEntry() throws Exception {
        CountDownLatch started = new CountDownLatch(1);
        CountDownLatch release = new CountDownLatch(1);
        try (EventBus bus = TestRedis.bus(NodeRole.WORKER); CapturedStderr err = new CapturedStderr()) {
            String stream = bus.topology().inboundStream();
            String group = bus.topology().workerGroup();
            bus.ensureGroup(stream, group);
            try (Subscription sub = bus.subscribe(ConsumerConfig.builder(stream, group).consumerName("slow").claimIdle(Duration.ofSeconds(1))
                    .build(), d -> {
                started.countDown();
                release.await(30, TimeUnit.SECONDS);
            })) {
                String id = bus.publish(stream, Envelope.of("channel_id", "stuck-channel", "content", "x"));
                assertThat(started.await(10, TimeUnit.SECONDS)).isTrue();
                await().atMost(Duration.ofSeconds(10)).until(() -> err.text().lines().anyMatch(l -> l.contains("running longer than the claim time")
                        && l.contains("stream_msg_id=" + id) && l.contains("channel_id=stuck-channel")));
                assertThat(bus.pendingCount(stream, group)).as("kept by its consumer meanwhile").isEqualTo(1);
                release.countDown();
                await().atMost(Duration.ofSeconds(10)).until(() -> bus.pendingCount(stream, group) == 0);
            }
        }
    }

    /**
     * A handler that settles its entry (here an acknowledgement) and then does not finish keeps its ORDERED channel: the
     * channel's next entry waits for the attempt to end. That wait must be reported as a running handler's is. Before,
     * the entry had left the consumer's in-flight entries at its acknowledgement, and nothing said why the channel stood.
     */
    @org.junit.jupiter.params.ParameterizedTest
    @org.junit.jupiter.params.provider.EnumSource(RetryOrder.class)
    void aHandlerThatSettledItsEntryAndRunsOnIsReportedWhileItHoldsItsChannel(RetryOrder order) throws Exception {
        CompletableFuture<Void> never = new CompletableFuture<>();
        CountDownLatch second = new CountDownLatch(1);
        try (EventBus bus = TestRedis.bus(NodeRole.WORKER); CapturedStderr err = new CapturedStderr()) {
            String stream = bus.topology().inboundStream();
            String group = bus.topology().workerGroup();
            bus.ensureGroup(stream, group);
            try (Subscription sub = bus.subscribeAsync(ConsumerConfig.builder(stream, group).consumerName("lingering").manualAck(true)
                    .retryOrder(order).claimIdle(Duration.ofSeconds(1)).build(), d -> {
                if (d.envelope().content().equals("second")) {
                    second.countDown();
                    d.ack();
                    return CompletableFuture.completedFuture(null);
                }
                d.ack();
                return never;
            })) {
                String id = bus.publish(stream, Envelope.of("channel_id", "held-channel", "content", "first"));
                bus.publish(stream, Envelope.of("channel_id", "held-channel", "content", "second"));
                await().atMost(Duration.ofSeconds(10)).until(() -> err.text().lines().anyMatch(l -> l.contains("after settling its entry")
                        && l.contains("stream_msg_id=" + id) && l.contains("channel_id=held-channel")
                        && l.contains("its channel's later entries wait until it returns")));
                assertThat(second.getCount()).as("the channel's next entry waits for the attempt").isEqualTo(1);
                never.complete(null);
                assertThat(second.await(10, TimeUnit.SECONDS)).as("and runs once it ended").isTrue();
            }
        }
    }

    /**
     * Entries without a channel run at once, in no lane: one whose handler acked it and runs on holds nothing, so it is
     * neither kept nor reported (a review found each such entry kept for good and named every claim time).
     */
    @Test
    void settledEntriesWithoutAChannelAreNotKeptNorReported() throws Exception {
        CompletableFuture<Void> never = new CompletableFuture<>();
        java.util.concurrent.atomic.AtomicInteger acked = new java.util.concurrent.atomic.AtomicInteger();
        try (EventBus bus = TestRedis.bus(NodeRole.WORKER); CapturedStderr err = new CapturedStderr()) {
            String stream = bus.topology().inboundStream();
            String group = bus.topology().workerGroup();
            bus.ensureGroup(stream, group);
            try (Subscription sub = bus.subscribeAsync(ConsumerConfig.builder(stream, group).consumerName("loose").manualAck(true)
                    .maxInFlight(4).claimIdle(Duration.ofSeconds(1)).build(), d -> {
                d.ack();
                acked.incrementAndGet();
                return never;
            })) {
                for (int i = 0; i < 20; i++) bus.publish(stream, Envelope.of("content", "loose-" + i));
                await().atMost(Duration.ofSeconds(10)).until(() -> acked.get() == 20);
                // Through two claim times and more, when the heartbeat would have named them.
                await().during(Duration.ofMillis(2500)).atMost(Duration.ofSeconds(5))
                        .until(() -> err.text().lines().noneMatch(l -> l.contains("after settling its entry")));
            } finally {
                never.complete(null);
            }
        }
    }
}
