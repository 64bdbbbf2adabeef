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

    /**
     * A release after another consumer took the entry over (here by an XCLAIM, as that consumer's takeover pass does
     * once this one missed its refreshes for the claim time) leaves it with that consumer: before, the give-back's
     * XCLAIM took it back, and this consumer's takeover pass ran it again beside the one still running it (found by the
     * review of Delivery.release).
     */
    @Test
    void aReleaseAfterATakeoverLeavesTheEntryWithTheConsumerThatTookItOver() throws Exception {
        try (EventBus bus = TestRedis.bus(NodeRole.WORKER); RawRedis raw = new RawRedis(TestRedis.url())) {
            String stream = bus.topology().inboundStream();
            String group = bus.topology().workerGroup();
            bus.ensureGroup(stream, group);
            String id = bus.publish(stream, Envelope.of("channel_id", "c", "content", "hi"));
            java.util.concurrent.atomic.AtomicReference<Delivery> held = new java.util.concurrent.atomic.AtomicReference<>();
            List<String> runs = new CopyOnWriteArrayList<>();
            java.util.concurrent.CountDownLatch takerMayFinish = new java.util.concurrent.CountDownLatch(1);
            ConsumerConfig.Builder cfg = ConsumerConfig.builder(stream, group).blockTimeout(Duration.ofMillis(100))
                    .claimIdle(Duration.ofSeconds(2));
            try (Subscription first = bus.subscribe(cfg.consumerName("first").manualAck(true).build(), d -> {
                runs.add(held.compareAndSet(null, d) ? "first" : "first-again");
            })) {
                await().atMost(10, TimeUnit.SECONDS).until(() -> held.get() != null);
                raw.sync().xclaim(io.stargazer.bus.testing.RawRedis.b(stream),
                        io.lettuce.core.Consumer.from(io.stargazer.bus.testing.RawRedis.b(group), io.stargazer.bus.testing.RawRedis.b("taker")),
                        io.lettuce.core.XClaimArgs.Builder.minIdleTime(0), id);
                try (Subscription taker = bus.subscribe(cfg.consumerName("taker").build(), d -> {
                    runs.add("taker");
                    takerMayFinish.await(30, TimeUnit.SECONDS);
                })) {
                    await().atMost(10, TimeUnit.SECONDS).until(() -> runs.contains("taker"));
                    try {
                        assertThat(held.get().release()).isTrue();
                        // Past the first consumer's claim time, the entry stays the taker's and nobody runs it beside it.
                        await().during(Duration.ofSeconds(3)).atMost(Duration.ofSeconds(5)).untilAsserted(() -> {
                            assertThat(owner(raw, stream, group)).isEqualTo("taker");
                            assertThat(runs).containsExactly("first", "taker");
                        });
                    } finally {
                        takerMayFinish.countDown();
                    }
                }
            }
        }
    }

    /**
     * A release after the group was lost and re-created past the entry (here destroyed, and re-created by the consumer
     * when its read met NOGROUP, as after an empty restart) finds it pending nowhere: no consumer of the group would be
     * given it again, and it was read and not handled. It is dead-lettered, to be replayed; before, it was let go with
     * an INFO line ("no longer pending with this consumer") and lost.
     */
    @Test
    void aReleaseOfAnEntryWhoseGroupWasLostSinceDeadLettersItRatherThanLosingIt() throws Exception {
        try (EventBus bus = TestRedis.bus(NodeRole.WORKER); RawRedis raw = new RawRedis(TestRedis.url())) {
            String stream = bus.topology().inboundStream();
            String group = bus.topology().workerGroup();
            bus.ensureGroup(stream, group);
            String id = bus.publish(stream, Envelope.of("channel_id", "c", "content", "hi"));
            java.util.concurrent.atomic.AtomicReference<Delivery> held = new java.util.concurrent.atomic.AtomicReference<>();
            try (Subscription s = bus.subscribe(bus.consumer(stream, group).consumerName("first").manualAck(true)
                    .blockTimeout(Duration.ofMillis(100)).build(), d -> { held.compareAndSet(null, d); })) {
                await().atMost(10, TimeUnit.SECONDS).until(() -> held.get() != null);
                raw.sync().xgroupDestroy(RawRedis.b(stream), RawRedis.b(group));
                await().atMost(10, TimeUnit.SECONDS).until(() -> bus.groups(stream).stream().anyMatch(g -> g.name().equals(group)));
                assertThat(bus.pendingCount(stream, group)).as("pending nowhere").isZero();

                assertThat(held.get().release()).isTrue();

                DeadLetter dead = await().atMost(10, TimeUnit.SECONDS)
                        .until(() -> bus.deadLetters().list(DeadLetterFilter.ALL).entries(), l -> !l.isEmpty()).get(0);
                assertThat(dead.sourceId()).isEqualTo(id);
                assertThat(dead.error()).contains("released by its handler").contains("group was lost");
                assertThat(s.state()).isEqualTo(Subscription.State.RUNNING);
            }
        }
    }

    /**
     * A release called after its subscription closed (the Spring starter's batch listener releases what its stop
     * interrupted once the subscription is closed) and followed at once by the bus's close: the give-back is two
     * commands on the shared connection, and the bus closed that connection under them, so the count stayed as Redis
     * had it and the consumer that took the entry over with one delivery allowed dead-lettered it unrun (seen in CI as
     * BatchListenerIT's stuck-batch test failing under load). The bus's close now waits for give-backs in flight.
     */
    @Test
    void aReleaseJustBeforeTheBusClosesIsStillPutBack() throws Exception {
        String stream;
        String group;
        String id;
        try (RawRedis raw = new RawRedis(TestRedis.url()); io.stargazer.bus.testing.TcpProxy proxy = io.stargazer.bus.testing.TcpProxy.to(TestRedis.url())) {
            EventBus bus = EventBus.connect(proxy.url(), TestRedis.config(NodeRole.WORKER).build());
            stream = bus.topology().inboundStream();
            group = bus.topology().workerGroup();
            try {
                bus.ensureGroup(stream, group);
                id = bus.publish(stream, Envelope.of("channel_id", "c", "content", "hi"));
                java.util.concurrent.atomic.AtomicReference<Delivery> held = new java.util.concurrent.atomic.AtomicReference<>();
                Subscription s = bus.subscribe(bus.consumer(stream, group).consumerName("first").manualAck(true)
                        .blockTimeout(Duration.ofMillis(100)).build(), d -> { held.compareAndSet(null, d); });
                await().atMost(10, TimeUnit.SECONDS).until(() -> held.get() != null);
                s.close();
                // A slow link: the give-back's ownership check and XCLAIM take a few hundred milliseconds.
                proxy.delay(Duration.ofMillis(100));
                assertThat(held.get().release()).isTrue();
            } finally {
                bus.close();
            }
            var pending = raw.sync().xpending(RawRedis.b(stream), RawRedis.b(group), io.lettuce.core.Range.create("-", "+"),
                    io.lettuce.core.Limit.from(10));
            assertThat(pending).singleElement().satisfies(p -> {
                assertThat(p.getId()).isEqualTo(id);
                assertThat(p.getRedeliveryCount()).as("the delivery the release gave back is not counted").isZero();
            });
        }
    }

    private static String owner(RawRedis raw, String stream, String group) {
        var pending = raw.sync().xpending(RawRedis.b(stream), RawRedis.b(group), io.lettuce.core.Range.create("-", "+"),
                io.lettuce.core.Limit.from(10));
        return pending.isEmpty() ? "none" : pending.get(0).getConsumer();
    }
}
