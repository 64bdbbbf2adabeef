package io.stargazer.bus.internal;

import static io.stargazer.testing.RawRedis.b;
import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.lettuce.core.Range;
import io.stargazer.bus.ConsumerConfig;
import io.stargazer.bus.Envelope;
import io.stargazer.bus.EventBus;
import io.stargazer.bus.NodeRole;
import io.stargazer.bus.Subscription;
import io.stargazer.bus.Topology;
import io.stargazer.bus.testing.Closer;
import io.stargazer.bus.testing.RawRedis;
import io.stargazer.bus.testing.TestRedis;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Closing while handlers run: what a closing bus or subscription waits for may still answer, and what it must
 * interrupt is given back, never failed. Each test failed on the code before it: the bus refused the answers of the
 * handlers its close() was waiting for ("the bus is closed"), a counted failure that dead-lettered a healthy message on
 * its last delivery; and a handler interrupted after the close timeout was dead-lettered on its last delivery.
 */
@Timeout(value = 2, unit = TimeUnit.MINUTES)
class ClosingWithHandlersIT {
    private final Closer closer = new Closer();

    @AfterEach
    void closeAll() throws Exception {
        closer.close();
    }

    @ParameterizedTest(name = "maxDeliveries {0}")
    @ValueSource(ints = {5, 1})
    void aHandlerThatFinishesWhileTheBusClosesStoresItsAnswer(int maxDeliveries) throws Exception {
        EventBus bus = closer.add(TestRedis.bus(NodeRole.STANDALONE));
        Topology t = bus.topology();
        String in = t.inboundStream();
        String out = t.outboundStream("webchat");
        CountDownLatch started = new CountDownLatch(1);
        CountDownLatch closing = new CountDownLatch(1);
        List<Throwable> failures = new CopyOnWriteArrayList<>();
        bus.subscribe(ConsumerConfig.builder(in, t.workerGroup()).consumerName("c").maxDeliveries(maxDeliveries)
                .closeTimeout(Duration.ofSeconds(30)).build(), d -> {
                    started.countDown();
                    closing.await(30, TimeUnit.SECONDS);
                    try {
                        d.reply(out, Envelope.of("platform", "webchat", "channel_id", "c", "content", "answer")).join();
                    } catch (RuntimeException e) {
                        failures.add(e);
                        throw e;
                    }
                });
        bus.publish(in, Envelope.of("platform", "webchat", "channel_id", "c", "content", "question"));
        assertThat(started.await(20, TimeUnit.SECONDS)).isTrue();
        // close() waits for the handler (up to its close timeout of 30 s); the handler answers once close() has begun.
        Thread closeThread = new Thread(bus::close, "test-bus-close");
        closeThread.start();
        awaitWaitingForHandlers(closeThread, in);
        closing.countDown();
        closeThread.join(TimeUnit.SECONDS.toMillis(60));
        assertThat(closeThread.isAlive()).as("close() returned").isFalse();

        assertThat(failures).as("the answer was not refused").isEmpty();
        try (RawRedis raw = new RawRedis(TestRedis.url())) {
            assertThat(raw.xlen(out)).as("the answer is stored").isEqualTo(1);
            assertThat(raw.sync().exists(b(t.deadLetterStream(in))) == 1).as("nothing dead-lettered").isFalse();
            assertThat(raw.sync().xpending(b(in), b(t.workerGroup())).getCount()).as("the question is acknowledged").isZero();
        }
    }

    @Test
    void aHandlerInterruptedByCloseOnItsLastDeliveryIsGivenBackNotDeadLettered() throws Exception {
        EventBus bus = closer.add(TestRedis.bus(NodeRole.STANDALONE));
        Topology t = bus.topology();
        String in = t.inboundStream();
        CountDownLatch started = new CountDownLatch(1);
        CountDownLatch never = new CountDownLatch(1);
        Subscription sub = bus.subscribe(ConsumerConfig.builder(in, t.workerGroup()).consumerName("c")
                .maxDeliveries(1).closeTimeout(Duration.ofMillis(300)).build(), d -> {
                    started.countDown();
                    never.await(); // a slow but healthy handler: only close()'s interrupt ends it
                });
        String id = bus.publishInbound(Envelope.of("platform", "webchat", "channel_id", "c", "content", "a"));
        assertThat(started.await(20, TimeUnit.SECONDS)).isTrue();
        sub.close();

        try (RawRedis raw = new RawRedis(TestRedis.url())) {
            // Given back: still pending, with its delivery count put back to 0 so that its taker does not count it twice.
            await("the delivery count put back").atMost(Duration.ofSeconds(10)).until(() -> {
                var rows = raw.sync().xpending(b(in), b(t.workerGroup()), Range.create(id, id), io.lettuce.core.Limit.from(1));
                return rows.size() == 1 && rows.get(0).getRedeliveryCount() == 0;
            });
            assertThat(raw.sync().exists(b(t.deadLetterStream(in))) == 1).as("not dead-lettered").isFalse();
        }
        // And it runs again where it is taken over, on what is still its only allowed delivery.
        List<Long> counts = new CopyOnWriteArrayList<>();
        closer.add(bus.subscribe(ConsumerConfig.builder(in, t.workerGroup()).consumerName("d").maxDeliveries(1)
                .claimIdle(Duration.ofSeconds(1)).build(), d -> counts.add(d.deliveryCount())));
        await("taken over and handled").atMost(Duration.ofSeconds(30)).until(() -> !counts.isEmpty());
        assertThat(counts).containsExactly(1L);
    }

    /**
     * A handler that outlasts close()'s timeout and its interrupt: an asynchronous one whose stage never completes (the
     * interrupt reaches no thread of it), or one deaf to interrupts. Its entry is given back like an interrupted one,
     * count put back, and runs on its taker on what is still its only allowed delivery; what the handler ends with
     * later is too late to settle it. Before, the entry was left counted, and the taker dead-lettered it unrun (found
     * by trying the Spring starter with an asynchronous listener).
     */
    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"asynchronous, its stage never completes", "deaf to interrupts"})
    void aHandlerThatOutlastsCloseAndItsInterruptIsGivenBack(String kind) throws Exception {
        EventBus bus = closer.add(TestRedis.bus(NodeRole.STANDALONE));
        Topology t = bus.topology();
        String in = t.inboundStream();
        CountDownLatch started = new CountDownLatch(1);
        CompletableFuture<Void> endOfTest = new CompletableFuture<>();
        ConsumerConfig cfg = ConsumerConfig.builder(in, t.workerGroup()).consumerName("c").maxDeliveries(1)
                .closeTimeout(Duration.ofMillis(300)).build();
        Subscription sub = kind.startsWith("asynchronous")
                ? bus.subscribeAsync(cfg, d -> {
                    started.countDown();
                    return new CompletableFuture<Void>();
                })
                : bus.subscribe(cfg, d -> {
                    started.countDown();
                    while (!endOfTest.isDone()) {
                        try {
                            endOfTest.get(50, TimeUnit.MILLISECONDS);
                        } catch (InterruptedException | java.util.concurrent.TimeoutException ignored) {
                            // deaf: goes on working
                        }
                    }
                });
        try {
            String id = bus.publishInbound(Envelope.of("platform", "webchat", "channel_id", "c", "content", "a"));
            assertThat(started.await(20, TimeUnit.SECONDS)).isTrue();
            sub.close();
            try (RawRedis raw = new RawRedis(TestRedis.url())) {
                var rows = raw.sync().xpending(b(in), b(t.workerGroup()), Range.create(id, id), io.lettuce.core.Limit.from(1));
                assertThat(rows).as("still pending when close() returns").hasSize(1);
                assertThat(rows.get(0).getRedeliveryCount()).as("its delivery count, given back").isZero();
            }
            List<Long> counts = new CopyOnWriteArrayList<>();
            closer.add(bus.subscribe(ConsumerConfig.builder(in, t.workerGroup()).consumerName("d").maxDeliveries(1)
                    .claimIdle(Duration.ofSeconds(1)).build(), d -> counts.add(d.deliveryCount())));
            await("taken over and handled").atMost(Duration.ofSeconds(30)).until(() -> !counts.isEmpty());
            assertThat(counts).containsExactly(1L);
            assertThat(TestRedis.readAll(bus, t.deadLetterStream(in))).as("not dead-lettered").isEmpty();
        } finally {
            endOfTest.complete(null);
        }
    }

    /**
     * An asynchronous handler that close() gave back while it ran and that succeeds afterwards, the bus still open: its
     * entry is acknowledged then, so it is not run again (the review of the give-back: its late success was refused as
     * too late, and the entry ran a second time on the consumer taking it over).
     */
    @Test
    void aHandlerGivenBackAtCloseThatSucceedsLaterIsAcknowledged() throws Exception {
        EventBus bus = closer.add(TestRedis.bus(NodeRole.STANDALONE));
        Topology t = bus.topology();
        String in = t.inboundStream();
        CountDownLatch started = new CountDownLatch(1);
        CompletableFuture<Void> work = new CompletableFuture<>();
        Subscription sub = bus.subscribeAsync(ConsumerConfig.builder(in, t.workerGroup()).consumerName("c").maxDeliveries(1)
                .closeTimeout(Duration.ofMillis(300)).build(), d -> {
                    started.countDown();
                    return work;
                });
        String id = bus.publishInbound(Envelope.of("platform", "webchat", "channel_id", "c", "content", "a"));
        assertThat(started.await(20, TimeUnit.SECONDS)).isTrue();
        sub.close();
        try (RawRedis raw = new RawRedis(TestRedis.url())) {
            assertThat(raw.sync().xpending(b(in), b(t.workerGroup()), Range.create(id, id), io.lettuce.core.Limit.from(1)))
                    .as("given back when close() returns").hasSize(1);
            work.complete(null);
            await("acknowledged once it succeeded").atMost(Duration.ofSeconds(10))
                    .until(() -> raw.sync().xpending(b(in), b(t.workerGroup())).getCount() == 0);
        }
    }

    /**
     * With manual acknowledgement the same: a handler close() gave back that acknowledges or answers afterwards settles
     * its entry (before, its ack() returned false and its reply() threw "already settled": the entry ran again on the
     * consumer that took it over, and the answer was lost or made twice).
     */
    @ParameterizedTest(name = "settled by {0}")
    @ValueSource(strings = {"ack", "reply"})
    void aManualAckHandlerGivenBackAtCloseThatSettlesLaterCounts(String how) throws Exception {
        EventBus bus = closer.add(TestRedis.bus(NodeRole.STANDALONE));
        Topology t = bus.topology();
        String in = t.inboundStream();
        String out = t.outboundStream("webchat");
        CompletableFuture<io.stargazer.bus.Delivery> running = new CompletableFuture<>();
        Subscription sub = bus.subscribeAsync(ConsumerConfig.builder(in, t.workerGroup()).consumerName("c").maxDeliveries(1)
                .manualAck(true).closeTimeout(Duration.ofMillis(300)).build(), d -> {
                    running.complete(d);
                    return new CompletableFuture<Void>(); // settles the delivery itself, later
                });
        String id = bus.publishInbound(Envelope.of("platform", "webchat", "channel_id", "c", "content", "a"));
        io.stargazer.bus.Delivery d = running.get(20, TimeUnit.SECONDS);
        sub.close();
        try (RawRedis raw = new RawRedis(TestRedis.url())) {
            assertThat(raw.sync().xpending(b(in), b(t.workerGroup()), Range.create(id, id), io.lettuce.core.Limit.from(1)))
                    .as("given back when close() returns").hasSize(1);
            if (how.equals("ack")) {
                assertThat(d.ack()).as("the late ack takes effect").isTrue();
            } else {
                assertThat(d.reply(out, Envelope.of("platform", "webchat", "channel_id", "c", "content", "answer")))
                        .succeedsWithin(Duration.ofSeconds(10));
                assertThat(raw.xlen(out)).as("the answer is stored").isEqualTo(1);
            }
            await("acknowledged once it was settled").atMost(Duration.ofSeconds(10))
                    .until(() -> raw.sync().xpending(b(in), b(t.workerGroup())).getCount() == 0);
            assertThat(d.ack()).as("settled once").isFalse();
        }
    }

    /**
     * Entries waiting behind a handler that outlasts close() are given back uncounted also when they were read from the
     * consumer's pending list (a subscription reopened under the same name) rather than as new entries. Before, only new
     * ones were: closed twice before they ran, they stayed counted, and with one delivery allowed the third subscription
     * dead-lettered them unrun (helper-87).
     */
    @Test
    void entriesReReadFromThePendingListAndNotRunAreGivenBackAtCloseToo() throws Exception {
        EventBus bus = closer.add(TestRedis.bus(NodeRole.STANDALONE));
        Topology t = bus.topology();
        String in = t.inboundStream();
        bus.ensureGroup(in, t.workerGroup());
        for (int i = 0; i < 6; i++) bus.publish(in, Envelope.of("platform", "webchat", "channel_id", "c", "seq", i));
        Set<Long> ran = ConcurrentHashMap.newKeySet();
        for (int round = 1; round <= 3; round++) {
            boolean last = round == 3;
            Subscription sub = bus.subscribeAsync(ConsumerConfig.builder(in, t.workerGroup()).consumerName("a").maxDeliveries(1)
                    .closeTimeout(Duration.ofMillis(300)).build(), d -> {
                        long seq = d.envelope().longValue("seq", -1);
                        if (seq == 0 && !last) return new CompletableFuture<Void>(); // outlasts close(): the others wait behind it
                        ran.add(seq);
                        return CompletableFuture.completedFuture(null);
                    });
            if (last) {
                closer.add(sub);
                break;
            }
            await("all six held, five waiting behind the first").atMost(Duration.ofSeconds(20)).until(() -> sub.stats().inFlight() == 6);
            sub.close();
        }
        try (RawRedis raw = new RawRedis(TestRedis.url())) {
            await("every entry ran, or one was dead-lettered").atMost(Duration.ofSeconds(20))
                    .until(() -> ran.size() == 6 || raw.sync().exists(b(t.deadLetterStream(in))) == 1);
            assertThat(raw.sync().exists(b(t.deadLetterStream(in)))).as("nothing dead-lettered").isZero();
            assertThat(ran).containsExactlyInAnyOrder(0L, 1L, 2L, 3L, 4L, 5L);
        }
    }

    /** An asynchronous handler holds no handler thread while it works: close() waits for its stage all the same. */
    @Test
    void anAsynchronousHandlerThatAnswersWhileTheBusClosesStoresItsAnswer() throws Exception {
        EventBus bus = closer.add(TestRedis.bus(NodeRole.STANDALONE));
        Topology t = bus.topology();
        String in = t.inboundStream();
        String out = t.outboundStream("webchat");
        CountDownLatch started = new CountDownLatch(1);
        CompletableFuture<Void> work = new CompletableFuture<>();
        List<Throwable> failures = new CopyOnWriteArrayList<>();
        bus.subscribeAsync(ConsumerConfig.builder(in, t.workerGroup()).consumerName("c").maxDeliveries(1)
                .closeTimeout(Duration.ofSeconds(30)).build(), d -> {
                    started.countDown();
                    return work.thenCompose(v -> d.reply(out, Envelope.of("platform", "webchat", "channel_id", "c", "content", "answer")))
                            .whenComplete((r, e) -> { if (e != null) failures.add(e); });
                });
        bus.publish(in, Envelope.of("platform", "webchat", "channel_id", "c", "content", "question"));
        assertThat(started.await(20, TimeUnit.SECONDS)).isTrue();
        Thread closeThread = new Thread(bus::close, "test-bus-close");
        closeThread.start();
        awaitWaitingForHandlers(closeThread, in);
        work.completeAsync(() -> null);
        closeThread.join(TimeUnit.SECONDS.toMillis(60));
        assertThat(closeThread.isAlive()).as("close() returned").isFalse();
        assertThat(failures).as("the answer was not refused").isEmpty();
        try (RawRedis raw = new RawRedis(TestRedis.url())) {
            assertThat(raw.xlen(out)).as("the answer is stored").isEqualTo(1);
            assertThat(raw.sync().xpending(b(in), b(t.workerGroup())).getCount()).as("the question is acknowledged").isZero();
        }
    }

    /**
     * The usual shutdown is EventBus.close(): the interrupted handler's give-back must reach Redis before the bus
     * closes its connection, however long the handler takes to end after its interrupt.
     */
    @ParameterizedTest(name = "the handler ends {0} ms after its interrupt")
    @ValueSource(ints = {0, 300})
    void aHandlerInterruptedByTheBusClosingIsGivenBackAndRunsOnItsTaker(int windDownMs) throws Exception {
        EventBus bus = closer.add(TestRedis.bus(NodeRole.WORKER));
        String stream = bus.topology().inboundStream();
        String group = bus.topology().workerGroup();
        bus.ensureGroup(stream, group);
        CountDownLatch started = new CountDownLatch(1);
        bus.subscribe(ConsumerConfig.builder(stream, group).consumerName("A").maxDeliveries(1)
                .closeTimeout(Duration.ofMillis(300)).build(), d -> {
                    started.countDown();
                    try {
                        new CountDownLatch(1).await();
                    } catch (InterruptedException e) {
                        long end = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(windDownMs);
                        while (System.nanoTime() < end) Thread.onSpinWait(); // cleaning up
                        throw e;
                    }
                });
        bus.publish(stream, Envelope.of("channel_id", "c", "content", "x"));
        assertThat(started.await(20, TimeUnit.SECONDS)).isTrue();
        bus.close();
        EventBus next = closer.add(TestRedis.bus(NodeRole.WORKER));
        List<Long> counts = new CopyOnWriteArrayList<>();
        closer.add(next.subscribe(ConsumerConfig.builder(stream, group).consumerName("d").maxDeliveries(1)
                .claimIdle(Duration.ofSeconds(1)).build(), d -> counts.add(d.deliveryCount())));
        await("taken over and run").atMost(Duration.ofSeconds(30)).until(() -> !counts.isEmpty());
        assertThat(counts).as("run on what is still its only allowed delivery").containsExactly(1L);
        assertThat(TestRedis.readAll(next, next.topology().deadLetterStream(stream))).as("not dead-lettered").isEmpty();
    }

    /**
     * Publishes from other threads while the bus closes: each is answered before the connections go, or refused as
     * "the bus is closed"; none is left with an unknown outcome (before: about one in ten of those in flight), and none
     * hangs. The asynchronous publisher keeps at most 2 000 unanswered, well under the queue limit (10 000): unbounded,
     * it had up to 3 500 unanswered on a quiet machine while close() waited for the slow handler, and a slower one could
     * fill the queue, whose refusal ("nothing was written", a true answer) failed this test (with the limit at 2 500: two
     * runs in ten).
     */
    @Test
    void everyPublishRacingTheBusClosingIsAnsweredOrRefusedNeverLeftUnknown() throws Exception {
        EventBus bus = closer.add(TestRedis.bus(NodeRole.WORKER));
        String stream = bus.topology().inboundStream();
        String group = bus.topology().workerGroup();
        bus.ensureGroup(stream, group);
        CountDownLatch started = new CountDownLatch(1);
        CountDownLatch slow = new CountDownLatch(1);
        bus.subscribe(ConsumerConfig.builder(stream, group).consumerName("A").closeTimeout(Duration.ofSeconds(10)).build(), d -> {
            if (d.envelope().content().equals("slow")) {
                started.countDown();
                slow.await(10, TimeUnit.SECONDS);
            }
        });
        bus.publish(stream, Envelope.of("channel_id", "s", "content", "slow"));
        assertThat(started.await(20, TimeUnit.SECONDS)).isTrue();
        List<CompletableFuture<String>> published = new CopyOnWriteArrayList<>();
        java.util.concurrent.atomic.AtomicBoolean stop = new java.util.concurrent.atomic.AtomicBoolean();
        List<Throwable> blockingFailures = new CopyOnWriteArrayList<>();
        java.util.concurrent.Semaphore inFlight = new java.util.concurrent.Semaphore(2_000);
        Thread asyncPublisher = new Thread(() -> {
            for (int i = 0; !stop.get(); i++) {
                try {
                    // None completing for that long fails the test below (a publish never answered).
                    if (!inFlight.tryAcquire(10, TimeUnit.SECONDS)) return;
                } catch (InterruptedException e) {
                    return;
                }
                CompletableFuture<String> f = bus.publishAsync(stream, Envelope.of("channel_id", "p" + (i % 8), "content", "a" + i));
                f.whenComplete((id, e) -> inFlight.release());
                published.add(f);
                if (published.size() % 2000 == 0 && slow.getCount() > 0) slow.countDown(); // close() is under way by now
            }
        });
        Thread blockingPublisher = new Thread(() -> {
            for (int i = 0; !stop.get(); i++) {
                try {
                    bus.publish(stream, Envelope.of("channel_id", "q", "content", "b" + i));
                } catch (RuntimeException e) {
                    blockingFailures.add(e);
                }
            }
        });
        asyncPublisher.start();
        blockingPublisher.start();
        await("publishing under way").atMost(Duration.ofSeconds(10)).until(() -> published.size() > 500);
        bus.close();
        stop.set(true);
        asyncPublisher.join(10_000);
        blockingPublisher.join(10_000);
        assertThat(blockingPublisher.isAlive()).as("a blocking publish racing close() returns").isFalse();
        assertThat(asyncPublisher.isAlive()).as("the asynchronous publisher stopped").isFalse();
        await("every accepted publish completes").atMost(Duration.ofSeconds(10))
                .until(() -> published.stream().allMatch(CompletableFuture::isDone));
        List<Throwable> failures = new java.util.ArrayList<>(blockingFailures);
        for (CompletableFuture<String> f : published) {
            if (f.isCompletedExceptionally()) failures.add(f.handle((r, e) -> e).join());
        }
        // Only the offending ones, so that a failure names them (allSatisfy printed every refusal, thousands).
        assertThat(failures).extracting(Failures::unwrap)
                .filteredOn(e -> e instanceof io.stargazer.bus.PublishOutcomeUnknownException
                        || e.getMessage() == null || !e.getMessage().contains("the bus is closed"))
                .as("refused as closed, never of unknown outcome").isEmpty();
    }

    /** A retrying publish waiting for its next try when the bus closes fails with its last try's outcome; it never hangs. */
    @Test
    void aRetryingPublishWaitingForItsNextTryWhenTheBusClosesFailsWithItsLastOutcome() throws Exception {
        Topology t = TestRedis.topology();
        EventBus bus = closer.add(TestRedis.bus(io.stargazer.bus.BusConfig.builder().topology(t).role(NodeRole.WORKER).nodeId("n")
                .streamMaxlen(1000).trimPolicy(io.stargazer.bus.TrimPolicy.SAFE).backpressure(io.stargazer.bus.Backpressure.REJECT).build()));
        String stream = t.inboundStream();
        bus.ensureGroup(stream, "laggard");
        // Full: a group that reads nothing holds the stream at its cap, and every publish is refused (a failure that may pass).
        await("the stream is full").atMost(Duration.ofSeconds(30)).until(() -> {
            try {
                for (int i = 0; i < 200; i++) bus.publishInbound(Envelope.of("seq", i));
                return false;
            } catch (io.stargazer.bus.BackpressureException full) {
                return true;
            }
        });
        List<CompletableFuture<String>> retrying = new CopyOnWriteArrayList<>();
        for (int i = 0; i < 20; i++) {
            retrying.add(bus.publishAsync(stream, Envelope.of("seq", -i),
                    io.stargazer.bus.PublishOptions.builder().dedupeKey("k" + i).maxAttempts(50).build()));
        }
        await("each has failed a first try and waits for its next").atMost(Duration.ofSeconds(10)).pollDelay(Duration.ofMillis(200))
                .until(() -> retrying.stream().noneMatch(CompletableFuture::isDone));
        bus.close();
        await("each completes").atMost(Duration.ofSeconds(10)).until(() -> retrying.stream().allMatch(CompletableFuture::isDone));
        for (CompletableFuture<String> f : retrying) {
            Throwable e = f.handle((r, x) -> Failures.unwrap(x)).join();
            assertThat(e instanceof io.stargazer.bus.BackpressureException || String.valueOf(e.getMessage()).contains("the bus is closed"))
                    .as("its last try's failure (refused: full), or its next try refused as closed: %s", e).isTrue();
        }
    }

    /**
     * A retry handed back to the channel lanes (UNORDERED retries) that waits behind another entry of its channel when
     * the subscription closes never runs: the lane's next task is refused by the pool close() shut down. It stays
     * pending in Redis for whoever takes it over, and the subscription lets go of it. Before, the closed subscription's
     * {@code stats().inFlight()} counted it for good, as close() let go only of entries that had never run and of
     * retries still waiting for their backoff.
     */
    @Test
    void aRetryWaitingInItsChannelsLaneWhenTheSubscriptionClosesIsNotCountedInFlight() throws Exception {
        EventBus bus = closer.add(TestRedis.bus(NodeRole.STANDALONE));
        Topology t = bus.topology();
        String in = t.inboundStream();
        java.util.concurrent.atomic.AtomicInteger firstAttempts = new java.util.concurrent.atomic.AtomicInteger();
        CountDownLatch failFirst = new CountDownLatch(1);
        closer.add(failFirst::countDown);
        CountDownLatch secondStarted = new CountDownLatch(1);
        CountDownLatch finishSecond = new CountDownLatch(1);
        closer.add(finishSecond::countDown);
        Subscription sub = bus.subscribe(ConsumerConfig.builder(in, t.workerGroup()).consumerName("c")
                .retryOrder(io.stargazer.bus.RetryOrder.UNORDERED).retryBackoff(Duration.ofMillis(50)).maxDeliveries(10)
                .concurrency(4).maxInFlight(4).closeTimeout(Duration.ofSeconds(30)).build(), d -> {
                    if ("first".equals(d.envelope().content())) {
                        if (firstAttempts.incrementAndGet() == 1) failFirst.await(); // until the second waits behind it
                        throw new IllegalStateException("fails, to be retried");
                    }
                    secondStarted.countDown();
                    finishSecond.await();
                });
        String first = bus.publishInbound(Envelope.of("platform", "webchat", "channel_id", "c", "content", "first"));
        await("the first entry runs").atMost(Duration.ofSeconds(20)).until(() -> firstAttempts.get() == 1);
        bus.publishInbound(Envelope.of("platform", "webchat", "channel_id", "c", "content", "second"));
        StreamConsumer consumer = (StreamConsumer) sub;
        await("the second entry waits for the first").atMost(Duration.ofSeconds(20)).until(() -> consumer.waitingInLane("c") == 1);
        failFirst.countDown();
        assertThat(secondStarted.await(20, TimeUnit.SECONDS)).isTrue();
        await("the retry waits in the channel's lane behind the second entry").atMost(Duration.ofSeconds(20))
                .until(() -> consumer.waitingInLane("c") == 1);

        Thread closeThread = new Thread(sub::close, "test-subscription-close");
        closeThread.start();
        awaitWaitingForHandlers(closeThread, in);
        finishSecond.countDown();
        closeThread.join(TimeUnit.SECONDS.toMillis(60));
        assertThat(closeThread.isAlive()).as("close() returned").isFalse();

        assertThat(firstAttempts).as("the retry never ran").hasValue(1);
        assertThat(sub.stats().inFlight()).as("nothing is in flight in a closed subscription: " + sub.stats()).isZero();
        try (RawRedis raw = new RawRedis(TestRedis.url())) {
            var pending = raw.sync().xpending(b(in), b(t.workerGroup()), Range.create("-", "+"), io.lettuce.core.Limit.from(10));
            assertThat(pending).as("the retried entry stays pending for whoever takes it over")
                    .singleElement().satisfies(p -> assertThat(p.getId()).isEqualTo(first));
        }
    }

    /**
     * Until close() waits for the handlers: its reader has stopped (close() stops it first, waiting for it) and the
     * closing thread waits again. Before the fix, close() did not wait for an asynchronous handler at all.
     */
    private static void awaitWaitingForHandlers(Thread closeThread, String stream) {
        await("close() waits for the handlers").atMost(Duration.ofSeconds(10)).until(() ->
                Thread.getAllStackTraces().keySet().stream().noneMatch(t -> t.getName().equals("stargazer-reader-" + stream))
                        && (closeThread.getState() == Thread.State.TIMED_WAITING || closeThread.getState() == Thread.State.WAITING));
    }

    /** Publishes held for room in a full stream when the bus closes: each fails, none was written, nobody waits forever. */
    @Test
    void publishesHeldForRoomWhenTheBusClosesFailAndABlockedPublisherReturns() throws Exception {
        Topology t = TestRedis.topology();
        EventBus bus = closer.add(TestRedis.bus(io.stargazer.bus.BusConfig.builder().topology(t).role(NodeRole.WORKER).nodeId("n")
                .streamMaxlen(1000).trimPolicy(io.stargazer.bus.TrimPolicy.SAFE).backpressure(io.stargazer.bus.Backpressure.BLOCK)
                .backpressureTimeout(Duration.ofMinutes(10)).publishTimeout(Duration.ofMinutes(10)).build()));
        String stream = t.inboundStream();
        bus.ensureGroup(stream, "laggard");
        // One at a time until one is held (the trim check finds the stream full only after it got there).
        CompletableFuture<String> held = null;
        for (int i = 0; i < 20_000 && held == null; i++) {
            CompletableFuture<String> f = bus.publishInboundAsync(Envelope.of("seq", i));
            try {
                f.get(3, TimeUnit.SECONDS);
            } catch (java.util.concurrent.TimeoutException stillHeld) {
                held = f;
            }
        }
        assertThat(held).as("a publish is held: the stream is full").isNotNull();
        List<Throwable> blockedOutcome = new CopyOnWriteArrayList<>();
        Thread blocked = new Thread(() -> {
            try {
                bus.publishInbound(Envelope.of("seq", -1));
            } catch (RuntimeException e) {
                blockedOutcome.add(e);
            }
        }, "test-blocked-publisher");
        blocked.start();
        await("the blocking publish is held").atMost(Duration.ofSeconds(10)).until(() -> blocked.getState() == Thread.State.WAITING);
        bus.close();
        blocked.join(TimeUnit.SECONDS.toMillis(30));
        assertThat(blocked.isAlive()).as("a publish() held for room returns when the bus closes").isFalse();
        assertThat(blockedOutcome).singleElement().isInstanceOf(io.stargazer.bus.BackpressureException.class);
        await("the held publish completes").atMost(Duration.ofSeconds(10)).until(held::isDone);
        assertThat(held.handle((r, e) -> Failures.unwrap(e)).join()).isInstanceOf(io.stargazer.bus.BackpressureException.class);
    }

    /**
     * Consumer a is closed in the middle of a backlog, with entries read (handed out and waiting for their channel, or
     * read ahead) that it did not run; consumer b takes them over. Every entry runs, none twice, and none is dead-lettered:
     * also with one delivery allowed: before, a left them counted, and b dead-lettered them unrun.
     */
    @ParameterizedTest(name = "maxDeliveries {0}")
    @ValueSource(ints = {5, 1})
    void aConsumerClosedInTheMiddleOfABacklogLeavesWhatItDidNotRunToTheNextUncounted(int maxDeliveries) {
        EventBus bus = closer.add(TestRedis.bus(NodeRole.STANDALONE));
        Topology t = bus.topology();
        String in = t.inboundStream();
        int total = 3000;
        bus.ensureGroup(in, t.workerGroup());
        for (int i = 0; i < total; i++) bus.publish(in, Envelope.of("channel_id", "c-" + i % 7, "seq", i));
        Map<Long, String> ranBy = new ConcurrentHashMap<>();
        Set<Long> twice = ConcurrentHashMap.newKeySet();
        ConsumerConfig.Builder config = ConsumerConfig.builder(in, t.workerGroup()).batchSize(50).maxInFlight(200).concurrency(2)
                .maxDeliveries(maxDeliveries).claimIdle(Duration.ofSeconds(1));
        Subscription a = bus.subscribe(config.consumerName("a").build(), d -> {
            if (ranBy.put(d.envelope().longValue("seq", -1), "a") != null) twice.add(d.envelope().longValue("seq", -1));
            // The handler's work, not a wait: slow enough that a is closed with entries read and not yet run.
            Thread.sleep(1);
        });
        await().atMost(Duration.ofSeconds(30)).until(() -> ranBy.size() >= 300);
        a.close(Duration.ofSeconds(10));
        int byA = ranBy.size();
        assertThat(byA).as("a was closed in the middle of the backlog").isLessThan(total);
        closer.add(bus.subscribe(config.consumerName("b").build(), d -> {
            if (ranBy.put(d.envelope().longValue("seq", -1), "b") != null) twice.add(d.envelope().longValue("seq", -1));
        }));
        try (RawRedis raw = new RawRedis(TestRedis.url())) {
            await().atMost(Duration.ofSeconds(60)).until(() -> ranBy.size() >= total
                    && raw.sync().xpending(b(in), b(t.workerGroup())).getCount() == 0
                    || raw.sync().exists(b(t.deadLetterStream(in))) == 1);
            assertThat(raw.sync().exists(b(t.deadLetterStream(in)))).as("nothing dead-lettered").isZero();
        }
        assertThat(twice).as("run twice").isEmpty();
        assertThat(ranBy).as("every entry ran").hasSize(total);
        assertThat(ranBy).as("b ran what a left").containsValue("b");
    }
}
