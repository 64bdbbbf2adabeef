package io.stargazer.bus.spring.autoconfigure;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.stargazer.bus.BusConfig;
import io.stargazer.bus.Delivery;
import io.stargazer.bus.Envelope;
import io.stargazer.bus.EventBus;
import io.stargazer.bus.RedisUrl;
import io.stargazer.bus.StreamEntry;
import io.stargazer.bus.Topology;
import io.stargazer.bus.spring.StargazerListener;
import io.stargazer.testing.TestServers;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.springframework.boot.autoconfigure.AutoConfigurations;
import org.springframework.boot.jackson.autoconfigure.JacksonAutoConfiguration;
import org.springframework.boot.test.context.runner.ApplicationContextRunner;
import org.springframework.context.annotation.Configuration;

// Batch @StargazerListener methods against a real Redis: an entry that cannot be mapped, an Error from the method, and
// closing the context while a batch runs.
@Timeout(120)
class BatchListenerIT {
    private static final Duration WAIT = Duration.ofSeconds(20);

    private final String ns = TestServers.namespace();
    private final ApplicationContextRunner runner = new ApplicationContextRunner()
            .withConfiguration(AutoConfigurations.of(JacksonAutoConfiguration.class, StargazerBusAutoConfiguration.class))
            .withPropertyValues("stargazer.bus.url=" + TestServers.url(), "stargazer.bus.topology.namespace=" + ns,
                    "stargazer.bus.consumer.retry-backoff=20ms", "stargazer.bus.consumer.max-deliveries=2");

    public record Order(String channel_id, int n) {
    }

    private EventBus probe() {
        return EventBus.connect(RedisUrl.parse(TestServers.url()), BusConfig.builder().topology(Topology.builder().namespace(ns).build()).build());
    }

    private static List<StreamEntry> deadLetters(EventBus bus, String stream) {
        return bus.read(stream + ":dead", "0", 10);
    }

    @Configuration(proxyBeanMethods = false)
    static class PartialBatches {
        final ConcurrentLinkedQueue<Order> got = new ConcurrentLinkedQueue<>();

        @StargazerListener(stream = "${stargazer.bus.topology.namespace}:orders", group = "g", batch = true, batchSize = "10", batchWait = "50ms")
        void many(List<Order> orders) {
            got.addAll(orders);
        }
    }

    @Test
    void anEntryThatCannotBeMappedFailsOnItsOwnAndPartialBatchesGoOn() {
        runner.withUserConfiguration(PartialBatches.class).run(ctx -> {
            assertThat(ctx).hasNotFailed();
            EventBus bus = ctx.getBean(EventBus.class);
            PartialBatches l = ctx.getBean(PartialBatches.class);
            String stream = ns + ":orders";
            bus.publish(stream, Envelope.of("channel_id", "a", "n", 1));
            await().atMost(WAIT).until(() -> l.got.size() == 1);

            // n is not a number: mapping it to Order fails on the batch thread, once per delivery.
            bus.publish(stream, Envelope.of("channel_id", "b", "n", "not-a-number"));
            for (int i = 2; i <= 4; i++) bus.publish(stream, Envelope.of("channel_id", "c" + i, "n", i));

            await().atMost(WAIT).untilAsserted(() -> assertThat(l.got).extracting(Order::n).containsExactlyInAnyOrder(1, 2, 3, 4));
            await().atMost(WAIT).untilAsserted(() -> assertThat(bus.pendingCount(stream, "g")).isZero());
            assertThat(deadLetters(bus, stream)).singleElement().satisfies(d -> assertThat(d.envelope().get("n")).isEqualTo("not-a-number"));
            // Later partial batches are still handed over.
            bus.publish(stream, Envelope.of("channel_id", "d", "n", 5));
            await().atMost(WAIT).untilAsserted(() -> assertThat(l.got).extracting(Order::n).contains(5));
        });
    }

    @Configuration(proxyBeanMethods = false)
    static class FullBatches {
        final ConcurrentLinkedQueue<Order> got = new ConcurrentLinkedQueue<>();

        @StargazerListener(stream = "${stargazer.bus.topology.namespace}:orders", group = "g", batch = true, batchSize = "2",
                batchWait = "10s", concurrency = "1")
        void many(List<Order> orders) {
            got.addAll(orders);
        }
    }

    @Test
    void aFullBatchWithAnEntryThatCannotBeMappedRunsTheRestAndFailsThatOne() {
        runner.withUserConfiguration(FullBatches.class).run(ctx -> {
            assertThat(ctx).hasNotFailed();
            EventBus bus = ctx.getBean(EventBus.class);
            FullBatches l = ctx.getBean(FullBatches.class);
            String stream = ns + ":orders";
            // Two entries make a full batch, handed over on the handler thread of the second (the 10 s wait never ends
            // first); the bad one was added first.
            bus.publish(stream, Envelope.of("channel_id", "a", "n", "not-a-number"));
            bus.publish(stream, Envelope.of("channel_id", "b", "n", 2));
            await().atMost(WAIT).untilAsserted(() -> assertThat(l.got).extracting(Order::n).containsExactly(2));
            // Its retry and the next good entry make the next full batch: the bad one fails again (max-deliveries=2).
            bus.publish(stream, Envelope.of("channel_id", "c", "n", 3));
            await().atMost(WAIT).untilAsserted(() -> assertThat(deadLetters(bus, stream)).hasSize(1));
            bus.publish(stream, Envelope.of("channel_id", "d", "n", 4));
            bus.publish(stream, Envelope.of("channel_id", "e", "n", 5));
            await().atMost(WAIT).untilAsserted(() -> assertThat(l.got).extracting(Order::n).containsExactlyInAnyOrder(2, 3, 4, 5));
            await().atMost(WAIT).untilAsserted(() -> assertThat(bus.pendingCount(stream, "g")).isZero());
        });
    }

    @Configuration(proxyBeanMethods = false)
    static class ErrorOnce {
        final AtomicInteger calls = new AtomicInteger();
        final ConcurrentLinkedQueue<Long> got = new ConcurrentLinkedQueue<>();

        @StargazerListener(stream = "${stargazer.bus.topology.namespace}:errors", group = "g", batch = true, batchSize = "10", batchWait = "50ms")
        void many(List<Envelope> batch) {
            if (calls.incrementAndGet() == 1) throw new AssertionError("an Error, not an Exception");
            batch.forEach(e -> got.add(e.longValue("n", -1)));
        }
    }

    @Test
    void anErrorFromTheBatchMethodHandsTheBatchBackAndTheListenerGoesOn() {
        runner.withUserConfiguration(ErrorOnce.class).run(ctx -> {
            assertThat(ctx).hasNotFailed();
            EventBus bus = ctx.getBean(EventBus.class);
            ErrorOnce l = ctx.getBean(ErrorOnce.class);
            String stream = ns + ":errors";
            bus.publish(stream, Envelope.of("channel_id", "a", "n", 1));
            await().atMost(WAIT).untilAsserted(() -> assertThat(l.got).containsExactly(1L));
            bus.publish(stream, Envelope.of("channel_id", "a", "n", 2));
            await().atMost(WAIT).untilAsserted(() -> assertThat(l.got).containsExactly(1L, 2L));
            await().atMost(WAIT).untilAsserted(() -> assertThat(bus.pendingCount(stream, "g")).isZero());
            assertThat(deadLetters(bus, stream)).isEmpty();
        });
    }

    @Configuration(proxyBeanMethods = false)
    static class Observations {
        final io.micrometer.core.instrument.MeterRegistry meters = new io.micrometer.core.instrument.simple.SimpleMeterRegistry();
        final ConcurrentLinkedQueue<io.micrometer.observation.Observation.Context> stopped = new ConcurrentLinkedQueue<>();

        @org.springframework.context.annotation.Bean
        io.micrometer.observation.ObservationRegistry observationRegistry() {
            io.micrometer.observation.ObservationRegistry r = io.micrometer.observation.ObservationRegistry.create();
            r.observationConfig().observationHandler(new io.micrometer.core.instrument.observation.DefaultMeterObservationHandler(meters))
                    .observationHandler(new io.micrometer.observation.ObservationHandler<>() {
                        @Override public boolean supportsContext(io.micrometer.observation.Observation.Context c) { return true; }
                        @Override public void onStop(io.micrometer.observation.Observation.Context c) { stopped.add(c); }
                    });
            return r;
        }
    }

    @Configuration(proxyBeanMethods = false)
    static class Observed {
        final AtomicInteger calls = new AtomicInteger();
        private final EventBus bus;

        Observed(EventBus bus) {
            this.bus = bus;
        }

        @StargazerListener(id = "archive", stream = "${stargazer.bus.topology.namespace}:observed", group = "g", batch = true,
                batchSize = "10", batchWait = "50ms")
        void many(List<Envelope> batch) {
            if (calls.incrementAndGet() == 1) throw new IllegalStateException("the first batch fails");
            bus.publish(batch.get(0).string("out"), Envelope.of("channel_id", "a"));
        }
    }

    /** The bus times its handler, which for a batch listener only hands the entry over: the batch call is timed apart. */
    @Test
    void eachBatchCallIsObservedWithItsListenerAndOutcome() {
        runner.withUserConfiguration(Observations.class, Observed.class).run(ctx -> {
            assertThat(ctx).hasNotFailed();
            EventBus bus = ctx.getBean(EventBus.class);
            Observations l = ctx.getBean(Observations.class);
            bus.publish(ns + ":observed", Envelope.of("channel_id", "a", "out", ns + ":observed-out"));
            await().atMost(WAIT).untilAsserted(() -> assertThat(bus.pendingCount(ns + ":observed", "g")).isZero());
            var timers = l.meters.find("stargazer.listener.batch").tag("listener", "archive").timers();
            assertThat(timers).anySatisfy(t -> {
                assertThat(t.getId().getTag("error")).isEqualTo("IllegalStateException");
                assertThat(t.count()).isEqualTo(1);
            });
            assertThat(timers).anySatisfy(t -> {
                assertThat(t.getId().getTag("error")).isEqualTo("none");
                assertThat(t.count()).isEqualTo(1);
            });
            // What the method publishes joins the batch call's observation.
            await().atMost(WAIT).untilAsserted(() -> assertThat(l.stopped)
                    .filteredOn(c -> ("send " + ns + ":observed-out").equals(c.getContextualName())).singleElement()
                    .satisfies(send -> assertThat(send.getParentObservation().getContextView().getName()).isEqualTo("stargazer.listener.batch")));
        });
    }

    @Configuration(proxyBeanMethods = false)
    static class SlowBatch {
        final CountDownLatch started = new CountDownLatch(1);
        final AtomicBoolean finished = new AtomicBoolean();
        final AtomicBoolean interrupted = new AtomicBoolean();
        /** Counted down as the context starts closing, before any listener stops. */
        final CountDownLatch closing = new CountDownLatch(1);

        @org.springframework.context.event.EventListener(org.springframework.context.event.ContextClosedEvent.class)
        void closing() {
            closing.countDown();
        }

        @StargazerListener(stream = "${stargazer.bus.topology.namespace}:slow", group = "g", batch = true, batchSize = "10", batchWait = "50ms")
        void many(List<Delivery> batch) throws InterruptedException {
            started.countDown();
            try {
                // The batch's work lasts until the context is closing, so the close meets it running.
                if (!closing.await(30, TimeUnit.SECONDS)) throw new IllegalStateException("the context never closed");
            } catch (InterruptedException e) {
                interrupted.set(true);
                throw e;
            }
            finished.set(true);
        }
    }

    @Test
    void closingWaitsForARunningPartialBatchWhichThenAcknowledges() {
        String stream = ns + ":slow";
        SlowBatch[] l = new SlowBatch[1];
        try (EventBus probe = probe()) {
            runner.withUserConfiguration(SlowBatch.class).withPropertyValues("stargazer.bus.consumer.max-deliveries=1").run(ctx -> {
                assertThat(ctx).hasNotFailed();
                l[0] = ctx.getBean(SlowBatch.class);
                probe.publish(stream, Envelope.of("channel_id", "c", "n", 1));
                assertThat(l[0].started.await(15, TimeUnit.SECONDS)).isTrue();
            }); // the context closes while the batch runs on its batch thread
            assertThat(l[0].interrupted).as("not interrupted by the shutdown").isFalse();
            assertThat(l[0].finished).as("the close waited for it").isTrue();
            await().atMost(WAIT).untilAsserted(() -> assertThat(probe.pendingCount(stream, "g")).isZero());
            assertThat(deadLetters(probe, stream)).isEmpty();
        }
    }

    @Configuration(proxyBeanMethods = false)
    static class StuckBatch {
        final CountDownLatch started = new CountDownLatch(1);
        final AtomicBoolean interrupted = new AtomicBoolean();
        volatile long interruptedAt;

        @StargazerListener(stream = "${stargazer.bus.topology.namespace}:stuck", group = "g", batch = true, batchSize = "10", batchWait = "50ms")
        void many(List<Delivery> batch) throws InterruptedException {
            started.countDown();
            try {
                new CountDownLatch(1).await(); // never done: only an interrupt ends it
            } catch (InterruptedException e) {
                interruptedAt = System.nanoTime();
                interrupted.set(true);
                throw e;
            }
        }
    }

    @Test
    void aBatchStillRunningAtTheCloseTimeoutIsInterruptedAndReleasedUncountedForTheNextConsumer() {
        String stream = ns + ":stuck";
        StuckBatch[] l = new StuckBatch[1];
        long[] closing = new long[1];
        try (EventBus probe = probe()) {
            runner.withUserConfiguration(StuckBatch.class).withPropertyValues("stargazer.bus.consumer.max-deliveries=1",
                    "stargazer.bus.consumer.close-timeout=500ms").run(ctx -> {
                assertThat(ctx).hasNotFailed();
                l[0] = ctx.getBean(StuckBatch.class);
                probe.publish(stream, Envelope.of("channel_id", "c", "n", 1));
                assertThat(l[0].started.await(15, TimeUnit.SECONDS)).isTrue();
                closing[0] = System.nanoTime(); // the runner closes the context next
            });
            assertThat(l[0].interrupted).as("interrupted once the close timeout was over").isTrue();
            assertThat(Duration.ofNanos(l[0].interruptedAt - closing[0])).as("not before the close timeout").isGreaterThanOrEqualTo(Duration.ofMillis(500));
            // On its last allowed delivery, a nack would have dead-lettered it.
            assertThat(probe.pendingCount(stream, "g")).isEqualTo(1);
            assertThat(deadLetters(probe, stream)).isEmpty();

            // Released, its delivery uncounted: the consumer that takes it over runs it. Kept at the count Redis added
            // when the batch read it, it would be past max-deliveries=1 on the takeover and dead-lettered unrun.
            ConcurrentLinkedQueue<Long> ran = new ConcurrentLinkedQueue<>();
            try (var s = probe.subscribe(probe.consumer(stream, "g").consumerName("taker").maxDeliveries(1)
                    .claimIdle(Duration.ofMillis(200)).build(), d -> ran.add(d.deliveryCount()))) {
                await().atMost(WAIT).untilAsserted(() -> assertThat(probe.pendingCount(stream, "g")).isZero());
            }
            assertThat(deadLetters(probe, stream)).as("dead-lettered without running").isEmpty();
            assertThat(ran).containsExactly(1L);
        }
    }

    @Configuration(proxyBeanMethods = false)
    static class FailOnceBatch {
        final AtomicInteger calls = new AtomicInteger();
        final ConcurrentLinkedQueue<Integer> done = new ConcurrentLinkedQueue<>();

        @StargazerListener(stream = "${stargazer.bus.topology.namespace}:ordered", group = "g", batch = true, batchSize = "2",
                batchWait = "20s", concurrency = "1")
        void many(List<Order> orders) {
            if (calls.incrementAndGet() == 1) throw new IllegalStateException("downstream briefly unavailable");
            orders.forEach(o -> done.add(o.n()));
        }
    }

    @Test
    void aBatchListenerKeepsOneChannelInOrderThroughARetry() {
        // Entry 1 let its channel's lane go when it was handed to the batcher (manual ack); entry 2, whose handler
        // thread ran the failed batch, kept it for its retry, and 1's retry queued behind it: [2, 1, 3, 4].
        runner.withUserConfiguration(FailOnceBatch.class).withPropertyValues("stargazer.bus.consumer.retry-backoff=1s").run(ctx -> {
            assertThat(ctx).hasNotFailed();
            EventBus bus = ctx.getBean(EventBus.class);
            FailOnceBatch l = ctx.getBean(FailOnceBatch.class);
            String stream = ns + ":ordered";
            bus.publish(stream, Envelope.of("channel_id", "a", "n", 1));
            bus.publish(stream, Envelope.of("channel_id", "a", "n", 2));
            await().atMost(WAIT).until(() -> l.calls.get() == 1); // the first batch [1, 2] failed; retried after 1 s
            bus.publish(stream, Envelope.of("channel_id", "a", "n", 3));
            bus.publish(stream, Envelope.of("channel_id", "a", "n", 4));
            await().atMost(WAIT).until(() -> l.done.size() == 4);
            assertThat(l.done).as("channel a handled in stream order (retry-order=ordered, the default)").containsExactly(1, 2, 3, 4);
        });
    }
}
