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
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * With ORDERED retries a failed entry keeps its channel's lane through its retries, also when the retry's timer fires
 * before the failed attempt's lane stage is decided. Before, that decision read only the retry flag, which the retry had
 * already cleared: the lane was let go while the retry ran, and the channel's next entry ran beside it, out of order.
 * The seam {@link StreamConsumer#beforeLaneStage} holds the failed attempt's thread until the retry has started, the
 * order a descheduled thread produces.
 */
@Timeout(value = 2, unit = TimeUnit.MINUTES)
class OrderedRetryLaneIT {
    private static final Duration WAIT = Duration.ofSeconds(20);
    private final Closer closer = new Closer();

    @AfterEach
    void closeAll() throws Exception {
        closer.close();
    }

    @Test
    void aRetryStartedBeforeTheFailedAttemptsLaneStageKeepsTheChannelsNextEntryWaiting() throws Exception {
        EventBus bus = closer.add(TestRedis.bus(NodeRole.STANDALONE));
        List<String> events = new CopyOnWriteArrayList<>();
        AtomicInteger aAttempts = new AtomicInteger();
        CountDownLatch aThirdStarted = new CountDownLatch(1);
        CountDownLatch releaseA = new CountDownLatch(1);
        closer.add(releaseA::countDown);
        StreamConsumer sub = ordered(bus, Duration.ofMillis(200), d -> {
                    if (d.envelope().content().equals("a")) {
                        int n = aAttempts.incrementAndGet();
                        events.add("a" + n);
                        if (n < 3) throw new IllegalStateException("a fails on attempt " + n);
                        aThirdStarted.countDown();
                        releaseA.await();
                    } else {
                        events.add(d.envelope().content());
                    }
                });
        AtomicBoolean held = new AtomicBoolean();
        sub.beforeLaneStage = () -> {
            // a's second attempt failed and scheduled the third; let the third start before the lane is decided.
            if (aAttempts.get() == 2 && held.compareAndSet(false, true)) {
                try {
                    aThirdStarted.await(WAIT.toMillis(), TimeUnit.MILLISECONDS);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            }
        };

        bus.publishInbound(Envelope.of("platform", "webchat", "channel_id", "c", "content", "a"));
        bus.publishInbound(Envelope.of("platform", "webchat", "channel_id", "c", "content", "b"));

        await("a's third attempt").atMost(WAIT).until(() -> aThirdStarted.getCount() == 0);
        await("b waits while a's third attempt runs").during(Duration.ofMillis(700)).atMost(Duration.ofSeconds(5))
                .until(() -> !events.contains("b"));
        releaseA.countDown();
        await("b handled").atMost(WAIT).until(() -> events.contains("b"));
        assertThat(held).as("the seam held a's second attempt").isTrue();
        assertThat(events).as("one channel's deliveries, in order").containsExactly("a1", "a2", "a3", "b");
    }

    /**
     * The first attempt's retry fires before that attempt's lane stage is decided (no lane held yet): the retry goes
     * back to the lanes, the lane is let go, and the retry runs before the channel's next entry; nothing waits on a
     * lane that nobody will let go.
     */
    @Test
    void aRetryFiredBeforeTheFirstAttemptsLaneStageRunsBeforeTheChannelsNextEntry() throws Exception {
        EventBus bus = closer.add(TestRedis.bus(NodeRole.STANDALONE));
        List<String> events = new CopyOnWriteArrayList<>();
        AtomicInteger aAttempts = new AtomicInteger();
        StreamConsumer sub = ordered(bus, Duration.ofMillis(50), d -> {
                    if (d.envelope().content().equals("a")) {
                        int n = aAttempts.incrementAndGet();
                        events.add("a" + n);
                        if (n == 1) throw new IllegalStateException("a fails on attempt 1");
                    } else {
                        events.add(d.envelope().content());
                    }
                });
        AtomicBoolean held = new AtomicBoolean();
        AtomicBoolean retryQueued = new AtomicBoolean();
        sub.beforeLaneStage = () -> {
            // Hold a's first attempt until its retry's timer has fired: the retry then waits in the channel's lane
            // beside b. A timeout here leaves retryQueued false, which the test thread reports.
            if (aAttempts.get() == 1 && held.compareAndSet(false, true)) {
                await("a's retry queued in its lane beside b").atMost(WAIT).until(() -> sub.waitingInLane("c") == 2);
                retryQueued.set(true);
            }
        };
        bus.publishInbound(Envelope.of("platform", "webchat", "channel_id", "c", "content", "a"));
        bus.publishInbound(Envelope.of("platform", "webchat", "channel_id", "c", "content", "b"));

        await("a retried and b handled").atMost(WAIT).until(() -> events.size() == 3);
        assertThat(held).as("the seam held a's first attempt").isTrue();
        assertThat(retryQueued).as("the seam held a's first attempt until its retry was queued").isTrue();
        assertThat(events).as("one channel's deliveries, in order").containsExactly("a1", "a2", "b");
    }

    /**
     * A retry that settles its entry (here ack(); reply() the same) and then goes on working keeps the channel until
     * its handler returns, as a first delivery does. Before, the entry's settlement let the lane go at once, and the
     * channel's next entry ran beside the retry's handler (helper-87: about 500 overlaps in 4 000 entries).
     */
    @Test
    void aRetryThatSettlesBeforeItsHandlerReturnsKeepsTheChannelUntilItDoes() throws Exception {
        EventBus bus = closer.add(TestRedis.bus(NodeRole.STANDALONE));
        List<String> events = new CopyOnWriteArrayList<>();
        AtomicInteger aAttempts = new AtomicInteger();
        CountDownLatch aSettled = new CountDownLatch(1);
        CountDownLatch finishA = new CountDownLatch(1);
        closer.add(finishA::countDown);
        ordered(bus, Duration.ofMillis(50), d -> {
            String content = d.envelope().content();
            if (content.equals("a") && aAttempts.incrementAndGet() == 1) throw new IllegalStateException("a fails once");
            events.add("start " + content);
            d.ack();
            if (content.equals("a")) {
                aSettled.countDown();
                finishA.await(); // work after settling
            }
            events.add("end " + content);
        });
        bus.publishInbound(Envelope.of("platform", "webchat", "channel_id", "c", "content", "a"));
        bus.publishInbound(Envelope.of("platform", "webchat", "channel_id", "c", "content", "b"));

        await("a's retry settled it").atMost(WAIT).until(() -> aSettled.getCount() == 0);
        await("b waits while a's retry handler runs").during(Duration.ofMillis(700)).atMost(Duration.ofSeconds(5))
                .until(() -> !events.contains("start b"));
        finishA.countDown();
        await("b handled").atMost(WAIT).until(() -> events.contains("end b"));
        assertThat(events).as("one channel's handlers, one at a time").containsExactly("start a", "end a", "start b", "end b");
    }

    /**
     * An entry whose dead letter cannot be stored (here the dead-letter stream's name holds a string: WRONGTYPE; in the
     * tests from outside, Redis killed) keeps its channel and is dead-lettered once it can be. Before, it was let go:
     * the channel's next entry ran, and the entry came back through a claim and ran again after it (helper-87).
     */
    @Test
    void anEntryWhoseDeadLetterCannotBeStoredYetKeepsItsChannelUntilItIs() throws Exception {
        EventBus bus = closer.add(TestRedis.bus(NodeRole.STANDALONE));
        Topology t = bus.topology();
        String dead = t.deadLetterStream(t.inboundStream());
        List<String> events = new CopyOnWriteArrayList<>();
        try (io.stargazer.bus.testing.RawRedis raw = new io.stargazer.bus.testing.RawRedis(TestRedis.url())) {
            raw.sync().set(io.stargazer.bus.testing.RawRedis.b(dead), io.stargazer.bus.testing.RawRedis.b("not a stream"));
            ordered(bus, Duration.ofMillis(50), d -> {
                events.add(d.envelope().content());
                if (d.envelope().content().equals("a")) throw new io.stargazer.bus.NotRetryableException("a cannot be handled", null);
            });
            bus.publishInbound(Envelope.of("platform", "webchat", "channel_id", "c", "content", "a"));
            bus.publishInbound(Envelope.of("platform", "webchat", "channel_id", "c", "content", "b"));

            await("a ran").atMost(WAIT).until(() -> events.contains("a"));
            await("b waits while a's dead letter cannot be stored").during(Duration.ofMillis(700)).atMost(Duration.ofSeconds(5))
                    .until(() -> !events.contains("b"));
            raw.sync().del(io.stargazer.bus.testing.RawRedis.b(dead));
            await("b handled").atMost(WAIT).until(() -> events.contains("b"));
            await("a dead-lettered").atMost(WAIT).until(() -> raw.xlen(dead) == 1);
            assertThat(events).as("one channel's deliveries, in order, a once").containsExactly("a", "b");
        }
    }

    /** A subscription to the inbound stream with ORDERED retries after {@code backoff}, four deliveries at once. */
    @Test
    void withManualAckAChannelsEntriesNackedTogetherAreRetriedInStreamOrder() throws Exception {
        // What a batch listener does: each entry is kept unsettled when its handler returns (its lane goes on, so the
        // next one can join the batch), and the handler of the last one settles them all. Entry a let its lane go, b's
        // handler nacked both and kept the lane for b's retry: a's retry queued behind it and ran after b's.
        EventBus bus = closer.add(TestRedis.bus(NodeRole.STANDALONE));
        List<String> runs = new CopyOnWriteArrayList<>();
        List<io.stargazer.bus.Delivery> batch = new CopyOnWriteArrayList<>();
        Topology t = bus.topology();
        closer.add(bus.subscribe(ConsumerConfig.builder(t.inboundStream(), t.workerGroup()).consumerName("c").manualAck(true)
                .retryOrder(RetryOrder.ORDERED).retryBackoff(Duration.ofMillis(200)).maxDeliveries(10)
                .concurrency(4).maxInFlight(8).closeTimeout(Duration.ofSeconds(1)).build(), d -> {
                    runs.add(d.envelope().content() + "#" + d.deliveryCount());
                    if (d.deliveryCount() > 1) {
                        d.ack();
                        return;
                    }
                    batch.add(d);
                    if (batch.size() == 2) {
                        for (io.stargazer.bus.Delivery held : batch) held.nack(new IllegalStateException("the batch failed"));
                    }
                }));

        bus.publishInbound(Envelope.of("platform", "webchat", "channel_id", "c", "content", "a"));
        bus.publishInbound(Envelope.of("platform", "webchat", "channel_id", "c", "content", "b"));

        await("both retried").atMost(WAIT).until(() -> runs.size() == 4);
        assertThat(runs).as("channel c's retries in stream order").containsExactly("a#1", "b#1", "a#2", "b#2");
        await("both acknowledged").atMost(WAIT).until(() -> bus.pendingCount(t.inboundStream(), t.workerGroup()) == 0);
    }

    private StreamConsumer ordered(EventBus bus, Duration backoff, io.stargazer.bus.MessageHandler handler) {
        Topology t = bus.topology();
        return (StreamConsumer) closer.add(bus.subscribe(ConsumerConfig.builder(t.inboundStream(), t.workerGroup()).consumerName("c")
                .retryOrder(RetryOrder.ORDERED).retryBackoff(backoff).maxDeliveries(10)
                .concurrency(4).maxInFlight(4).closeTimeout(Duration.ofSeconds(1)).build(), handler));
    }
}
