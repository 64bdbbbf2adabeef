package io.stargazer.bus;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.stargazer.bus.testing.RawRedis;
import io.stargazer.bus.testing.TestRedis;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * A delivery's count is what the handler is told and what dead-lettering counts: a consumer re-reading an entry it
 * already holds (its pending list after a reconnect, or its own entry taken again by its takeover pass when a refresh
 * came late) must not count as a delivery. Redis counts every such read (XREADGROUP of the history, XAUTOCLAIM), so the
 * consumer puts the count back.
 */
@Timeout(value = 1, unit = TimeUnit.MINUTES)
class DeliveryCountIT {
    @Test
    void rereadingItsPendingListAfterAReconnectDoesNotCountAsADelivery() throws Exception {
        try (EventBus bus = TestRedis.bus(NodeRole.WORKER); RawRedis raw = new RawRedis(TestRedis.url())) {
            String stream = bus.topology().inboundStream();
            String group = bus.topology().workerGroup();
            bus.ensureGroup(stream, group);
            bus.publish(stream, Envelope.of("channel_id", "c", "content", "hi"));
            List<Long> counts = new CopyOnWriteArrayList<>();
            ConsumerConfig cfg = ConsumerConfig.builder(stream, group).consumerName("w").retryBackoff(Duration.ofSeconds(2))
                    .maxRetryBackoff(Duration.ofSeconds(3)).blockTimeout(Duration.ofMillis(100)).build();
            try (Subscription sub = bus.subscribe(cfg, d -> {
                counts.add(d.deliveryCount());
                if (counts.size() == 1) {
                    // An infrastructure failure: retried without counting a delivery.
                    throw new BusConnectionException("Redis could not serve it", null);
                }
            })) {
                await().atMost(10, TimeUnit.SECONDS).until(() -> counts.size() == 1);
                // Cut every connection of the bus: its reader reconnects and reads its pending list again while the
                // entry waits for its retry.
                raw.sync().clientKill(io.lettuce.core.KillArgs.Builder.typeNormal().skipme(true));
                await().atMost(20, TimeUnit.SECONDS).until(() -> counts.size() == 2);
            }
            assertThat(counts).containsExactly(1L, 1L);
        }
    }

    @Test
    void aReleasedDeliveryIsNotCountedAndIsRunByTheConsumerThatTakesItOver() throws Exception {
        try (EventBus bus = TestRedis.bus(NodeRole.WORKER)) {
            String stream = bus.topology().inboundStream();
            String group = bus.topology().workerGroup();
            bus.ensureGroup(stream, group);
            bus.publish(stream, Envelope.of("channel_id", "c", "content", "hi"));
            // One delivery allowed: were the released one counted, the takeover would be past it and dead-letter the
            // entry without running it.
            ConsumerConfig.Builder cfg = ConsumerConfig.builder(stream, group).maxDeliveries(1).blockTimeout(Duration.ofMillis(100));
            List<Boolean> released = new CopyOnWriteArrayList<>();
            try (Subscription first = bus.subscribe(cfg.consumerName("first").claimIdle(Duration.ofSeconds(30)).build(), d -> {
                released.add(d.release());
                released.add(d.release());
                released.add(d.ack());
                released.add(d.settled());
            })) {
                await().atMost(10, TimeUnit.SECONDS).until(() -> released.size() == 4);
            }
            assertThat(released).as("release, again, ack, settled").containsExactly(true, false, false, true);
            assertThat(bus.pendingCount(stream, group)).as("left pending").isEqualTo(1);
            List<Long> ran = new CopyOnWriteArrayList<>();
            try (Subscription taker = bus.subscribe(cfg.consumerName("taker").claimIdle(Duration.ofMillis(200)).build(), d -> ran.add(d.deliveryCount()))) {
                await().atMost(10, TimeUnit.SECONDS).until(() -> bus.pendingCount(stream, group) == 0);
            }
            assertThat(ran).containsExactly(1L);
            assertThat(bus.read(stream + ":dead", "0", 10)).isEmpty();
        }
    }
}
