package io.stargazer.bus;

import static io.stargazer.bus.BusAcceptanceSuite.fast;
import static io.stargazer.bus.BusAcceptanceSuite.message;
import static io.stargazer.bus.BusAcceptanceSuite.seq;
import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.lettuce.core.Limit;
import io.lettuce.core.Range;
import io.lettuce.core.models.stream.PendingMessage;
import io.stargazer.bus.testing.PublishLog;
import io.stargazer.bus.testing.RawRedis;
import io.stargazer.bus.testing.RedisFaults;
import io.stargazer.bus.testing.Sample;
import io.stargazer.bus.testing.TcpProxy;
import io.stargazer.bus.testing.TestRedis;
import io.stargazer.bus.wire.WireFormat;
import io.stargazer.embedded.RedisServerProcess;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.IntFunction;
import java.util.function.UnaryOperator;
import java.util.stream.Collectors;
import java.util.stream.IntStream;
import org.assertj.core.api.SoftAssertions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The README's promises ("nothing acknowledged is lost", "nothing wedges") against the faults production brings
 * (issue 17, faults 2 to 6): a group lost to a server that restarted empty or to XGROUP DESTROY, a connection that
 * stays open but carries nothing, a stalled connection behind which publishes queue, a handler slower than the
 * claim idle time, and a server that refuses writes. Run by {@link BusAcceptanceSuite} on every supported server.
 *
 * <p>The faults come from the harness in {@code io.stargazer.bus.testing}: {@link TcpProxy} between a bus and
 * Redis, {@link RedisFaults} for a server that refuses writes, and a server of the test's own that it restarts.
 * Every assertion is made on the test thread; handlers only record what they saw.
 */
@Timeout(value = 2, unit = TimeUnit.MINUTES)
abstract class FaultPromises extends SuitePromises {
    private static final Duration WAIT = Duration.ofSeconds(30);

    FaultPromises(BusAcceptanceSuite suite) {
        super(suite);
    }

    /** A thread that publishes at a steady rate, stopped when the test ends. */
    private ScheduledExecutorService ticker() {
        ScheduledExecutorService s = Executors.newSingleThreadScheduledExecutor(r -> {
            Thread t = new Thread(r, "test-publisher");
            t.setDaemon(true);
            return t;
        });
        closer.add(s::shutdownNow);
        return s;
    }

    /** Publishes seq {@code first}, {@code first + 1}, ... one every {@code period}, each recorded in {@code log}. */
    private ScheduledExecutorService publishSteadily(PublishLog log, int first, Duration period,
            IntFunction<CompletableFuture<String>> publish) {
        ScheduledExecutorService ticker = ticker();
        AtomicInteger next = new AtomicInteger(first);
        ticker.scheduleAtFixedRate(() -> {
            int s = next.getAndIncrement();
            log.publish(s, () -> publish.apply(s));
        }, 0, period.toMillis(), TimeUnit.MILLISECONDS);
        return ticker;
    }

    private static void stop(ScheduledExecutorService ticker) throws InterruptedException {
        ticker.shutdown();
        assertThat(ticker.awaitTermination(10, TimeUnit.SECONDS)).as("publisher thread stopped").isTrue();
    }

    /** The seq of every entry in {@code stream}, read through a connection of its own once the stream stops growing. */
    private static Set<Integer> seqsOnceStable(EventBus reader, String stream) {
        AtomicInteger last = new AtomicInteger(-1);
        await().atMost(WAIT).pollInterval(Duration.ofMillis(500)).until(() -> {
            int n = seqsIn(reader, stream).size();
            return n == last.getAndSet(n);
        });
        return seqsIn(reader, stream);
    }

    private static Set<Integer> seqsIn(EventBus reader, String stream) {
        Set<Integer> seqs = new TreeSet<>();
        String after = "0";
        while (true) {
            List<StreamEntry> batch = reader.read(stream, after, 1000);
            if (batch.isEmpty()) return seqs;
            for (StreamEntry e : batch) {
                if (e.envelope() != null) seqs.add((int) e.envelope().longValue("seq", -1));
            }
            after = batch.get(batch.size() - 1).id();
        }
    }

    private static <T> Set<T> missing(Set<T> expected, Set<T> got) {
        Set<T> m = new TreeSet<>(expected);
        m.removeAll(got);
        return m;
    }

    // ---- fault 2: a lost group -------------------------------------------------------------------------------

    /**
     * Redis is down for two seconds and restarts empty (no AOF) while a gateway publishes 50 a second. The gateway is
     * back first and stores entries in a stream that has no group yet; the worker comes back later (its connections
     * run through a proxy that holds them until the gateway has stored 25). Every entry the restarted server
     * acknowledged must be delivered: a group re-created at {@code $} skips them.
     */
    @Test
    void aRedisRestartedEmptyDeliversEveryEntryItAcknowledgedBeforeTheWorkerWasBack() throws Exception {
        RedisServerProcess server = closer.add(ownServer().appendOnly(false).start());
        RedisUrl direct = RedisUrl.parse(server.url());
        Topology t = TestRedis.topology();
        String stream = t.inboundStream();
        EventBus gateway = bus(direct, t, "gateway");
        gateway.ensureGroup(stream, t.workerGroup());
        TcpProxy workerLink = TcpProxy.to(direct);
        EventBus worker = bus(workerLink.url(), t, "worker");
        closer.add(workerLink); // closed before the buses: they then close at once, with nothing left to wait for
        Set<Integer> received = ConcurrentHashMap.newKeySet();
        Subscription sub = closer.add(worker.subscribe(fast(stream, t.workerGroup(), "worker").build(), d -> received.add(seq(d))));

        PublishLog log = new PublishLog();
        ScheduledExecutorService ticker = publishSteadily(log, 0, Duration.ofMillis(20),
                s -> gateway.publishInboundAsync(message(s, "c-" + s % 5)));
        await().atMost(WAIT).until(() -> log.stored().size() >= 50 && received.containsAll(log.stored()));

        String marker = t.inboundStream() + ":marker";
        try (RawRedis raw = new RawRedis(direct)) {
            raw.sync().set(RawRedis.utf8(marker), RawRedis.utf8("before the restart"));
        }
        server.kill();
        int failedAtKill = log.issued() - log.stored().size();
        // Down for about two seconds of publishing (100 publishes refused), and the worker has noticed.
        await().atMost(WAIT).until(() -> log.issued() - log.pending() - log.stored().size() >= failedAtKill + 100
                && sub.state() == Subscription.State.RECONNECTING);
        workerLink.freezeAll();
        server.restart();
        long restartedAt = System.nanoTime();
        try (RawRedis raw = new RawRedis(direct)) {
            assertThat(raw.sync().exists(RawRedis.utf8(marker))).as("a key set before the restart (no AOF)").isZero();
        }
        await().atMost(WAIT).until(() -> log.storedCalledSince(restartedAt).size() >= 25);
        workerLink.unfreeze();
        int workerBackAt = log.issued();
        await().atMost(WAIT).until(() -> log.storedCalledSince(restartedAt).stream().filter(s -> s >= workerBackAt).count() >= 25);
        stop(ticker);
        await().atMost(WAIT).until(log::allDone);

        Set<Integer> acknowledgedByNewServer = log.storedCalledSince(restartedAt);
        int beforeWorker = (int) acknowledgedByNewServer.stream().filter(s -> s < workerBackAt).count();
        System.out.printf("lost group (restart empty): the restarted server acknowledged %d publishes, %d before the worker was back%n",
                acknowledgedByNewServer.size(), beforeWorker);
        await().atMost(Duration.ofSeconds(20)).untilAsserted(() -> {
            Set<Integer> lost = missing(acknowledgedByNewServer, received);
            assertThat(lost.size()).as(() -> lost.size() + " of " + acknowledgedByNewServer.size()
                    + " publishes acknowledged by the restarted server were never delivered (" + beforeWorker
                    + " were stored before the worker was back): " + Sample.of(lost)).isZero();
        });
        assertThat(sub.state()).isEqualTo(Subscription.State.RUNNING);
    }

    /**
     * The group is destroyed (XGROUP DESTROY) while 300 entries wait unread behind a slow handler: all 300 must be
     * delivered once the consumer has re-created its group.
     */
    @Test
    void aGroupDestroyedWhileEntriesWaitUnreadIsRecreatedWithoutSkippingThem() throws Exception {
        Topology t = TestRedis.topology();
        String stream = t.inboundStream();
        EventBus bus = bus(url(), t, "node");
        Set<Integer> received = ConcurrentHashMap.newKeySet();
        AtomicInteger started = new AtomicInteger();
        CountDownLatch slow = new CountDownLatch(1);
        closer.add(slow::countDown);
        closer.add(bus.subscribe(fast(stream, t.workerGroup(), "c").maxInFlight(4).batchSize(4).concurrency(4)
                .claimIdle(Duration.ofSeconds(30)).build(), d -> {
                    started.incrementAndGet();
                    slow.await(); // the slow handler: the reader holds its four and reads nothing more meanwhile
                    received.add(seq(d));
                }));
        for (int i = 0; i < 4; i++) bus.publishInbound(message(i, "c-" + i));
        await().atMost(WAIT).until(() -> started.get() == 4);
        int total = 304;
        for (int i = 4; i < total; i++) bus.publishInbound(message(i, "c-" + i % 4));
        try (RawRedis raw = new RawRedis(url())) {
            assertThat(raw.sync().xgroupDestroy(RawRedis.utf8(stream), RawRedis.utf8(t.workerGroup()))).isTrue();
        }
        slow.countDown();

        Set<Integer> all = IntStream.range(0, total).boxed().collect(Collectors.toSet());
        await().atMost(Duration.ofSeconds(20)).untilAsserted(() -> {
            Set<Integer> lost = missing(all, received);
            assertThat(lost.size()).as(() -> lost.size() + " of the " + (total - 4) + " entries unread when the group was destroyed"
                    + " were never delivered: " + Sample.of(lost)).isZero();
        });
    }

    /**
     * A consumer that read little (it holds one slow entry) re-creates a lost group where the group was, not behind what
     * the other consumers read and acknowledged since: it reads the group's position every half claim time. Before,
     * it went by the last entry it read itself, and everything the others had handled came back to the new group.
     */
    @Test
    void aGroupLostIsRecreatedPastWhatOtherConsumersHadReadNotBehindIt() throws Exception {
        Topology t = TestRedis.topology();
        String stream = t.inboundStream();
        EventBus bus = bus(url(), t, "node");
        bus.ensureGroup(stream, t.workerGroup());
        Set<Integer> byA = ConcurrentHashMap.newKeySet();
        CountDownLatch slow = new CountDownLatch(1);
        closer.add(slow::countDown);
        closer.add(bus.subscribe(fast(stream, t.workerGroup(), "a").maxInFlight(1).batchSize(1).build(), d -> {
                    byA.add(seq(d));
                    if (seq(d) == 0) slow.await(); // holds a's one place: it reads nothing more meanwhile
                }));
        bus.publishInbound(message(0, "c-0"));
        await().atMost(WAIT).until(() -> byA.contains(0));
        int others = 100;
        Set<Integer> byB = ConcurrentHashMap.newKeySet();
        try (Subscription b = bus.subscribe(fast(stream, t.workerGroup(), "b").build(), d -> byB.add(seq(d)))) {
            for (int i = 1; i <= others; i++) bus.publishInbound(message(i, "c-" + i % 4));
            await().atMost(WAIT).until(() -> byB.size() == others && bus.pendingCount(stream, t.workerGroup()) == 1);
        }
        // Long enough for a's reader to read the group's position a few times (every half claim time: 250 ms here).
        await().pollDelay(Duration.ofSeconds(1)).atMost(Duration.ofSeconds(2)).until(() -> true);
        try (RawRedis raw = new RawRedis(url())) {
            assertThat(raw.sync().xgroupDestroy(RawRedis.utf8(stream), RawRedis.utf8(t.workerGroup()))).isTrue();
        }
        slow.countDown();
        bus.publishInbound(message(others + 1, "c-0"));
        await().atMost(WAIT).until(() -> byA.contains(others + 1));
        assertThat(byA).as("entries b had handled before the loss, delivered again to a").containsExactlyInAnyOrder(0, others + 1);
    }

    /**
     * The group is lost while every in-flight place is held by an entry waiting for a retry (a downstream outage makes
     * every handling fail): the reader takes no read, so only the retries' ownership checks and the refresh meet
     * NOGROUP. The group must still be re-created, the retries run once the downstream is back, and entries published
     * after the loss be delivered. Before, those checks failed with NOGROUP for ever, uncounted, and nothing was
     * delivered again.
     */
    @Test
    void aGroupLostWhileEveryInFlightPlaceWaitsForARetryIsRecreatedAndNewEntriesAreDelivered() throws Exception {
        Topology t = TestRedis.topology();
        String stream = t.inboundStream();
        String group = t.workerGroup();
        EventBus bus = bus(url(), t, "node");
        bus.ensureGroup(stream, group);
        java.util.concurrent.atomic.AtomicBoolean downstreamDown = new java.util.concurrent.atomic.AtomicBoolean(true);
        Map<Integer, AtomicInteger> attempts = new ConcurrentHashMap<>();
        Set<Integer> handled = ConcurrentHashMap.newKeySet();
        closer.add(bus.subscribe(fast(stream, group, "w").maxInFlight(2).concurrency(2).maxDeliveries(100)
                .retryBackoff(Duration.ofMillis(300)).maxRetryBackoff(Duration.ofMillis(300)).claimIdle(Duration.ofSeconds(2)).build(), d -> {
                    attempts.computeIfAbsent(seq(d), k -> new AtomicInteger()).incrementAndGet();
                    if (downstreamDown.get()) throw new IllegalStateException("model provider unavailable");
                    handled.add(seq(d));
                }));
        bus.publishInbound(message(0, "c-0"));
        bus.publishInbound(message(1, "c-1"));
        await().atMost(WAIT).until(() -> attempts.getOrDefault(0, new AtomicInteger()).get() >= 2
                && attempts.getOrDefault(1, new AtomicInteger()).get() >= 2);
        try (RawRedis raw = new RawRedis(url())) {
            assertThat(raw.sync().xgroupDestroy(RawRedis.utf8(stream), RawRedis.utf8(group))).isTrue();
        }
        downstreamDown.set(false);
        bus.publishInbound(message(2, "c-2"));
        await().atMost(WAIT).until(() -> handled.containsAll(Set.of(0, 1, 2)));
        assertThat(bus.groups(stream)).anyMatch(g -> g.name().equals(group));
    }

    /**
     * A handler finishes while Redis is paused (SIGSTOP) and the dead-peer check has dropped the shared connection: its
     * acknowledgement fails. It must be sent again once Redis answers, and the consumer's read of its own pending list
     * after the reconnect must not run the entry a second time. Before, the failed acknowledgement was forgotten and
     * that read handed the entry to the handler again.
     */
    @Test
    void aHandlerThatFinishesWhileRedisIsPausedIsNotRunAgainAfterIt() throws Exception {
        RedisServerProcess server = closer.add(ownServer().start());
        RedisUrl direct = RedisUrl.parse(server.url());
        Topology t = TestRedis.topology();
        String stream = t.inboundStream();
        EventBus worker = bus(direct, t, "wk", b -> b.role(NodeRole.WORKER).deadPeerTimeout(Duration.ofSeconds(2)));
        worker.ensureGroup(stream, t.workerGroup());
        Map<Integer, AtomicInteger> runs = new ConcurrentHashMap<>();
        Set<Integer> returned = ConcurrentHashMap.newKeySet();
        CountDownLatch release = new CountDownLatch(1);
        closer.add(release::countDown);
        Subscription sub = closer.add(worker.subscribe(fast(stream, t.workerGroup(), "wk").claimIdle(Duration.ofSeconds(30))
                .blockTimeout(Duration.ofMillis(500)).build(), d -> {
                    runs.computeIfAbsent(seq(d), k -> new AtomicInteger()).incrementAndGet();
                    release.await(60, TimeUnit.SECONDS); // a handler that takes a while (a model call)
                    returned.add(seq(d));
                }));
        worker.publishInbound(message(0, "c"));
        await().atMost(WAIT).until(() -> runs.containsKey(0));
        try (RedisFaults.Fault paused = RedisFaults.pause(server)) {
            await().atMost(WAIT).until(() -> sub.state() == Subscription.State.RECONNECTING);
            // The fault: paused long enough for the dead-peer check (2 s) to have dropped the shared connection too.
            await().pollDelay(Duration.ofSeconds(4)).atMost(Duration.ofSeconds(5)).until(() -> true);
            release.countDown();
            await().atMost(WAIT).until(() -> returned.contains(0));
            await().pollDelay(Duration.ofSeconds(2)).atMost(Duration.ofSeconds(3)).until(() -> true); // its XACK fails meanwhile
        }
        await().atMost(WAIT).until(() -> sub.state() == Subscription.State.RUNNING);
        // Read after the consumer's own pending list, on the same channel: once it has run, a second run of 0 would have too.
        worker.publishInbound(message(1, "c"));
        await().atMost(WAIT).until(() -> returned.contains(1) && worker.pendingCount(stream, t.workerGroup()) == 0);
        assertThat(runs.get(0).get()).as("runs of an entry whose handler returned once, during a pause").isEqualTo(1);
    }

    // ---- fault 3: a half-open shared connection ----------------------------------------------------------------

    /**
     * Every connection the bus has open stops carrying bytes but stays open (a dropped NAT or load-balancer flow);
     * new connections work. With a dead-peer timeout of 2 s the bus must replace them: publishes succeed again and
     * the consumer receives them while the old flows are still frozen.
     */
    @Test
    void connectionsThatStayOpenButCarryNothingAreReplacedWithinTheDeadPeerTimeout() throws Exception {
        Topology t = TestRedis.topology();
        String stream = t.inboundStream();
        TcpProxy link = TcpProxy.to(url());
        EventBus bus = bus(link.url(), t, "node", b -> b.deadPeerTimeout(Duration.ofSeconds(2)));
        closer.add(link);
        Set<Integer> received = ConcurrentHashMap.newKeySet();
        Subscription sub = closer.add(bus.subscribe(fast(stream, t.workerGroup(), "c").build(), d -> received.add(seq(d))));
        for (int i = 0; i < 10; i++) bus.publishInbound(message(i, "c-" + i % 3));
        await().atMost(WAIT).until(() -> received.size() == 10);

        int connectionsBefore = link.acceptedCount();
        link.freezeExisting();
        long frozenAt = System.nanoTime();
        PublishLog log = new PublishLog();
        ScheduledExecutorService ticker = publishSteadily(log, 10, Duration.ofMillis(100),
                s -> bus.publishInboundAsync(message(s, "c-" + s % 3)));

        await().atMost(Duration.ofSeconds(15)).untilAsserted(() -> {
            Set<Integer> stored = log.storedCalledSince(frozenAt);
            String state = "since the freeze: " + log.issued() + " publishes issued, " + stored.size() + " stored, " + log.pending()
                    + " pending, failed: [" + PublishLog.errorKinds(log.outcomes()) + "]; " + (link.acceptedCount() - connectionsBefore)
                    + " new connections; received " + (received.size() - 10) + "; subscription " + sub.state();
            assertThat(stored.size()).as("publishes that succeeded again, " + state).isPositive();
            assertThat(stored.stream().anyMatch(received::contains)).as("the consumer received one of them, " + state).isTrue();
        });
        System.out.printf("half-open: first publish stored %d ms after the freeze; old flows still open: %d%n",
                log.outcomes().stream().filter(PublishLog.Outcome::stored).mapToLong(o -> (o.doneAt() - frozenAt) / 1_000_000).min()
                        .orElse(-1), link.connectionCount());
        stop(ticker);
        await().atMost(WAIT).until(log::allDone);
        Set<Integer> stored = log.stored();
        await().atMost(WAIT).untilAsserted(() -> assertThat(received).containsAll(stored));
        assertThat(sub.state()).isEqualTo(Subscription.State.RUNNING);
    }

    // ---- fault 4: a publish's deadline and the queue of waiting publishes -----------------------------------------

    /**
     * Behind a connection that carries nothing (new ones neither), publishes issued steadily for 3 s with a 2 s
     * publish timeout must each complete within 3 s of the call; those that were in fact written (they are stored
     * once the stall ends) must fail with {@link PublishOutcomeUnknownException}, never with an error that says they
     * were not stored.
     */
    @Test
    void aPublishBehindAStallCompletesWithinItsDeadlineAndSaysWhenItsOutcomeIsUnknown() throws Exception {
        Topology t = TestRedis.topology();
        String stream = t.inboundStream();
        Duration deadline = Duration.ofSeconds(2);
        long allowedMillis = deadline.toMillis() + 1000;
        TcpProxy link = TcpProxy.to(url());
        EventBus bus = bus(link.url(), t, "gateway", b -> b.publishTimeout(deadline));
        closer.add(link);
        EventBus observer = bus(url(), t, "observer");
        bus.publishInbound(message(-1, "warm-up"));

        link.freezeAll();
        PublishLog log = new PublishLog();
        ScheduledExecutorService ticker = publishSteadily(log, 0, Duration.ofMillis(20),
                s -> bus.publishInboundAsync(message(s, "c-" + s % 7)));
        await().atMost(WAIT).until(() -> log.issued() >= 150);
        stop(ticker);
        await().atMost(Duration.ofSeconds(45)).until(log::allDone);
        List<PublishLog.Outcome> outcomes = log.outcomes();
        System.out.printf("publish deadline %d ms behind a stall: completion %s; stored %d; failed: [%s]%n", deadline.toMillis(),
                PublishLog.distribution(outcomes), log.stored().size(), PublishLog.errorKinds(outcomes));

        link.unfreeze(); // what was written reaches Redis now: which publishes were in fact stored
        Set<Integer> inStream = seqsOnceStable(observer, stream);
        List<PublishLog.Outcome> late = outcomes.stream().filter(o -> o.millis() > allowedMillis).toList();
        List<PublishLog.Outcome> storedYetPlainFailure = outcomes.stream()
                .filter(o -> !o.stored() && inStream.contains(o.seq()) && !(o.error() instanceof PublishOutcomeUnknownException)).toList();
        List<PublishLog.Outcome> foreignErrors = outcomes.stream()
                .filter(o -> !o.stored() && !(o.error() instanceof StargazerException)).toList();
        System.out.printf("publish deadline: %d of %d publishes were stored; %d of those failed with an error that is not "
                + "PublishOutcomeUnknownException%n", outcomes.stream().filter(o -> inStream.contains(o.seq())).count(), outcomes.size(),
                storedYetPlainFailure.size());
        SoftAssertions soft = new SoftAssertions();
        soft.assertThat(late.size()).as(late.size() + " of " + outcomes.size() + " publishes completed later than " + allowedMillis
                + " ms after their call (" + PublishLog.distribution(outcomes) + ")").isZero();
        soft.assertThat(storedYetPlainFailure.size()).as(storedYetPlainFailure.size() + " publishes were stored but failed with an "
                + "error that does not say the outcome is unknown: [" + PublishLog.errorKinds(storedYetPlainFailure) + "]").isZero();
        soft.assertThat(foreignErrors.size()).as("errors that are not the bus's own: [" + PublishLog.errorKinds(foreignErrors) + "]")
                .isZero();
        soft.assertAll();
    }

    /**
     * With a queue limit of 50, publishes issued while the connection is stalled beyond what may wait (50) and
     * what may be on the wire (two batches of 10) fail at once, with an error saying they were not sent.
     */
    @Test
    void publishesBeyondTheQueueLimitFailAtOnceWhileTheConnectionIsStalled() throws Exception {
        Topology t = TestRedis.topology();
        String stream = t.inboundStream();
        int limit = 50;
        int batch = 10;
        int burst = 300;
        TcpProxy link = TcpProxy.to(url());
        EventBus bus = bus(link.url(), t, "gateway", b -> b.publishTimeout(Duration.ofSeconds(2)).publishQueueLimit(limit)
                .publishBatchMax(batch));
        closer.add(link);
        EventBus observer = bus(url(), t, "observer");
        bus.publishInbound(message(-1, "warm-up"));

        link.freezeAll();
        PublishLog log = new PublishLog();
        for (int i = 0; i < burst; i++) {
            int s = i;
            log.publish(s, () -> bus.publishInboundAsync(message(s, "c-" + s % 7)));
        }
        long burstEnd = System.nanoTime();
        // Every publish completes within its deadline (2 s) and a margin of 1 s; those refused, at once.
        long settleMillis = 3000;
        await().atMost(Duration.ofSeconds(10)).until(() -> log.allDone() || System.nanoTime() - burstEnd > settleMillis * 1_000_000);
        List<PublishLog.Outcome> outcomes = log.outcomes();
        int notDone = log.pending();
        List<PublishLog.Outcome> refusedAtOnce = outcomes.stream().filter(o -> !o.stored() && o.millis() <= 200
                && o.error() instanceof StargazerException && !(o.error() instanceof PublishOutcomeUnknownException)).toList();
        System.out.printf("publish queue limit %d: %d of %d publishes refused at once, %d not completed %d ms after the last call; "
                + "completion %s; failed: [%s]%n", limit, refusedAtOnce.size(), burst, notDone, settleMillis,
                PublishLog.distribution(outcomes), PublishLog.errorKinds(outcomes));
        link.unfreeze();
        Set<Integer> inStream = seqsOnceStable(observer, stream);

        int mayWaitOrBeSent = limit + 2 * batch;
        List<Integer> refusedYetStored = refusedAtOnce.stream().map(PublishLog.Outcome::seq).filter(inStream::contains).toList();
        SoftAssertions soft = new SoftAssertions();
        soft.assertThat(refusedAtOnce.size()).as("publishes failed within 200 ms with an error that is not outcome-unknown, of " + burst
                + " issued while stalled (at most " + mayWaitOrBeSent + " may wait or be on the wire); completion "
                + PublishLog.distribution(outcomes)).isGreaterThanOrEqualTo(burst - mayWaitOrBeSent);
        soft.assertThat(notDone).as("publishes not completed " + settleMillis + " ms after the last was issued").isZero();
        soft.assertThat(refusedYetStored.size()).as("publishes refused at once that were stored all the same: "
                + Sample.of(refusedYetStored)).isZero();
        soft.assertAll();
    }

    // ---- fault 5: a slow handler's entries are not taken over ------------------------------------------------------

    /**
     * A 5 s handler and a claim idle time of 2 s, two consumers of one group a region away from Redis (300 ms round
     * trip), 60 entries: ten rounds a second apart, each of 3 new channels with two entries, added in one transaction so
     * that one consumer reads a whole round (whichever asks first). Both consumers stay alive, so neither may take over
     * what the other holds: no entry runs twice, no two handlers of one channel run at once, nobody runs an entry that
     * was already handled and acknowledged, and no held entry ever sits unrefreshed for the claim idle time (XPENDING's
     * idle time, which is what another consumer's claim goes by). Today an entry just read can sit unrefreshed past
     * the claim idle time; each round is a fresh chance for the other consumer's claim to meet that gap.
     */
    @Test
    void aSlowHandlersEntriesAreNotTakenOverWhileItsConsumerIsAlive() throws Exception {
        Topology t = TestRedis.topology();
        String stream = t.inboundStream();
        String group = t.workerGroup();
        int rounds = 10;
        int channelsPerRound = 3;
        int perChannel = 2;
        int total = rounds * channelsPerRound * perChannel;
        EventBus gateway = bus(url(), t, "gateway");
        // Both workers are a region away from Redis: a round trip takes 300 ms.
        TcpProxy linkA = TcpProxy.to(url());
        TcpProxy linkB = TcpProxy.to(url());
        linkA.delay(Duration.ofMillis(150));
        linkB.delay(Duration.ofMillis(150));
        EventBus busA = bus(linkA.url(), t, "a");
        EventBus busB = bus(linkB.url(), t, "b");
        closer.add(linkA);
        closer.add(linkB);
        gateway.ensureGroup(stream, group);

        Map<Integer, List<String>> startsBySeq = new ConcurrentHashMap<>();
        Map<String, AtomicInteger> activeByChannel = new ConcurrentHashMap<>();
        AtomicInteger active = new AtomicInteger();
        Set<Integer> finished = ConcurrentHashMap.newKeySet();
        List<String> overlaps = new CopyOnWriteArrayList<>();
        List<String> afterAck = new CopyOnWriteArrayList<>();
        class Slow implements MessageHandler {
            private final String consumer;

            Slow(String consumer) {
                this.consumer = consumer;
            }

            @Override
            public void handle(Delivery d) throws Exception {
                int s = seq(d);
                String ch = d.envelope().channelId();
                active.incrementAndGet();
                startsBySeq.computeIfAbsent(s, k -> new CopyOnWriteArrayList<>()).add(consumer);
                if (finished.contains(s)) afterAck.add(s + " on " + consumer);
                if (activeByChannel.computeIfAbsent(ch, k -> new AtomicInteger()).incrementAndGet() > 1) {
                    overlaps.add(ch + " (entry " + s + " on " + consumer + ")");
                }
                try {
                    Thread.sleep(5000); // the model call
                } finally {
                    activeByChannel.get(ch).decrementAndGet();
                    active.decrementAndGet();
                }
                finished.add(s);
            }
        }
        Duration claimIdle = Duration.ofSeconds(2);
        UnaryOperator<ConsumerConfig.Builder> settings = b -> b.claimIdle(claimIdle).concurrency(rounds * channelsPerRound)
                .closeTimeout(Duration.ofSeconds(6));
        closer.add(busA.subscribe(settings.apply(ConsumerConfig.builder(stream, group).consumerName("a")).build(), new Slow("a")));
        closer.add(busB.subscribe(settings.apply(ConsumerConfig.builder(stream, group).consumerName("b")).build(), new Slow("b")));

        AtomicInteger round = new AtomicInteger();
        RawRedis publisher = closer.add(new RawRedis(url()));
        ScheduledExecutorService ticker = ticker();
        ticker.scheduleAtFixedRate(() -> {
            int r = round.getAndIncrement();
            if (r >= rounds) return;
            publisher.sync().multi(); // served to a blocked reader only at EXEC: one consumer reads the whole round
            for (int i = 0; i < channelsPerRound * perChannel; i++) {
                int s = r * channelsPerRound * perChannel + i;
                publisher.xadd(stream, WireFormat.PAYLOAD_FIELD, WireFormat.encode(message(s, "r" + r + "-c" + i % channelsPerRound)),
                        WireFormat.TRACE_ID_FIELD, "seq-" + s);
            }
            publisher.sync().exec();
        }, 0, 1, TimeUnit.SECONDS);
        try (RawRedis raw = new RawRedis(url())) {
            AtomicLong longestIdle = new AtomicLong();
            await().atMost(Duration.ofSeconds(60)).until(() -> {
                longestIdle.accumulateAndGet(longestPendingIdleMillis(raw, stream, group), Math::max);
                return finished.size() == total && active.get() == 0 && gateway.pendingCount(stream, group) == 0;
            });
            stop(ticker);
            Map<String, Long> byConsumer = startsBySeq.values().stream().map(l -> l.get(0))
                    .collect(Collectors.groupingBy(c -> c, java.util.TreeMap::new, Collectors.counting()));
            List<Integer> twice = startsBySeq.entrySet().stream().filter(e -> e.getValue().size() > 1).map(Map.Entry::getKey).sorted()
                    .toList();
            System.out.printf("slow handler: read first by %s; held entries sat unrefreshed up to %d ms (claim idle 2000 ms); %d of %d "
                    + "entries ran more than once %s, %d overlaps in a channel, %d runs after the entry was acknowledged%n",
                    byConsumer, longestIdle.get(), twice.size(), total, Sample.of(twice), overlaps.size(), afterAck.size());
            SoftAssertions soft = new SoftAssertions();
            soft.assertThat(longestIdle.get()).as("longest time (ms) an entry held by a live consumer sat unrefreshed; from the claim "
                    + "idle time on, any other consumer of the group takes it over").isLessThan(claimIdle.toMillis());
            soft.assertThat(twice.size()).as(twice.size() + " of " + total + " entries ran more than once: " + Sample.of(twice.stream()
                    .map(s -> s + " on " + startsBySeq.get(s)).toList())).isZero();
            soft.assertThat(overlaps.size()).as(overlaps.size() + " times two handlers of one channel ran at once: " + Sample.of(overlaps))
                    .isZero();
            soft.assertThat(afterAck.size()).as(afterAck.size() + " handler runs began after the entry had been handled and "
                    + "acknowledged: " + Sample.of(afterAck)).isZero();
            soft.assertAll();
        }
    }

    /** The longest time since delivery (or last refresh) of the group's pending entries, from XPENDING. */
    private static long longestPendingIdleMillis(RawRedis raw, String stream, String group) {
        return raw.sync().xpending(RawRedis.utf8(stream), RawRedis.utf8(group), Range.create("-", "+"), Limit.from(1000)).stream()
                .mapToLong(PendingMessage::getMsSinceLastDelivery).max().orElse(0);
    }

    // ---- fault 6: an outage does not use up the delivery budget ----------------------------------------------------

    /**
     * Publishes one entry and, once its handler has started (and waits on {@code outage}), makes Redis refuse writes
     * for 3 s, letting the handler go on at the start of it.
     */
    private static void outageWhileHandling(EventBus bus, RedisUrl url, AtomicInteger attempts, CountDownLatch outage) {
        bus.publishInbound(message(0, "c"));
        await().atMost(WAIT).until(() -> attempts.get() == 1);
        try (RedisFaults.Fault oom = RedisFaults.refuseWrites(url)) {
            outage.countDown();
            await().pollDelay(Duration.ofSeconds(3)).atMost(Duration.ofSeconds(4)).until(() -> true);
        }
    }

    /**
     * A handler answers on another stream and fails when that publish fails. While Redis refuses writes (out of
     * memory) for 3 s its answers fail again and again; that is Redis's failure, not the handler's: the entry must
     * be answered once Redis accepts writes again, and never dead-lettered.
     */
    @Test
    void anOutageOfRedisDoesNotUseUpAnEntrysDeliveries() throws Exception {
        SuitePromises.Deployed server = ownServerAsDeployed();
        RedisUrl url = server.url();
        Topology t = TestRedis.topology();
        String stream = t.inboundStream();
        String answers = t.outboundStream("webchat");
        EventBus bus = bus(url, t, "worker");
        AtomicInteger attempts = new AtomicInteger();
        AtomicInteger publishFailures = new AtomicInteger();
        CountDownLatch outage = new CountDownLatch(1);
        closer.add(outage::countDown);
        closer.add(bus.subscribe(fast(stream, t.workerGroup(), "worker").maxDeliveries(3).retryBackoff(Duration.ofMillis(50))
                .maxRetryBackoff(Duration.ofMillis(200)).build(), d -> {
                    attempts.incrementAndGet();
                    outage.await(); // the first attempt waits until Redis refuses writes
                    try {
                        bus.publishOutbound("webchat", Envelope.of("platform", "webchat", "channel_id", d.envelope().channelId(),
                                "content", "answer to " + seq(d), "seq", seq(d)));
                    } catch (StargazerException e) {
                        publishFailures.incrementAndGet();
                        throw e;
                    }
                }));
        assertThat(bus.serverCode()).isEqualTo(server.code());
        outageWhileHandling(bus, url, attempts, outage);
        String dead = t.deadLetterStream(stream);
        try (RawRedis raw = new RawRedis(url)) {
            await().atMost(WAIT).until(() -> raw.xlen(answers) > 0 || raw.xlen(dead) > 0);
            String deadReason = raw.xlen(dead) == 0 ? "" : RawRedis.s(RawRedis.fields(raw.xrange(dead).get(0)).get("error"));
            System.out.printf("outage budget: %d attempts, %d answers failed while Redis refused writes; answered %d, "
                    + "dead-lettered %d %s%n",
                    attempts.get(), publishFailures.get(), raw.xlen(answers), raw.xlen(dead), deadReason);
            assertThat(publishFailures.get()).as("answers that failed while Redis refused writes").isGreaterThanOrEqualTo(1);
            assertThat(raw.xlen(dead)).as("dead-lettered after an outage (" + publishFailures.get() + " failed answers): " + deadReason)
                    .isZero();
            assertThat(raw.xlen(answers)).as("answers stored").isPositive();
        }
    }

    /**
     * The same outage, then the handler fails on its own ("model said no") every time: the entry is dead-lettered
     * after exactly {@code maxDeliveries} failures of the handler's own, and the dead letter names that cause.
     */
    @Test
    void aHandlersOwnFailuresAfterAnOutageDeadLetterItWithTheRealCause() throws Exception {
        SuitePromises.Deployed server = ownServerAsDeployed();
        RedisUrl url = server.url();
        Topology t = TestRedis.topology();
        String stream = t.inboundStream();
        EventBus bus = bus(url, t, "worker");
        AtomicInteger attempts = new AtomicInteger();
        AtomicInteger publishFailures = new AtomicInteger();
        AtomicInteger ownFailures = new AtomicInteger();
        CountDownLatch outage = new CountDownLatch(1);
        closer.add(outage::countDown);
        int maxDeliveries = 3;
        closer.add(bus.subscribe(fast(stream, t.workerGroup(), "worker").maxDeliveries(maxDeliveries).retryBackoff(Duration.ofMillis(50))
                .maxRetryBackoff(Duration.ofMillis(200)).build(), d -> {
                    attempts.incrementAndGet();
                    outage.await();
                    try {
                        bus.publishOutbound("webchat", Envelope.of("platform", "webchat", "channel_id", d.envelope().channelId(),
                                "type", "typing"));
                    } catch (StargazerException e) {
                        publishFailures.incrementAndGet();
                        throw e;
                    }
                    ownFailures.incrementAndGet();
                    throw new IllegalStateException("model said no");
                }));
        assertThat(bus.serverCode()).isEqualTo(server.code());
        outageWhileHandling(bus, url, attempts, outage);
        String dead = t.deadLetterStream(stream);
        try (RawRedis raw = new RawRedis(url)) {
            await().atMost(WAIT).until(() -> raw.xlen(dead) > 0);
            String reason = RawRedis.s(RawRedis.fields(raw.xrange(dead).get(0)).get("error"));
            System.out.printf("outage then own failure: %d attempts, %d failed on Redis, %d on the handler's own; dead letter: %s%n",
                    attempts.get(), publishFailures.get(), ownFailures.get(), reason);
            assertThat(publishFailures.get()).as("typing indicators that failed while Redis refused writes").isGreaterThanOrEqualTo(1);
            assertThat(reason).as("the dead letter's error").contains("model said no");
            assertThat(ownFailures.get()).as("failures of the handler's own before it was dead-lettered").isEqualTo(maxDeliveries);
            assertThat(raw.xlen(dead)).isEqualTo(1);
        }
    }

    /**
     * docs/reliability.md, "A slow handler": a live consumer keeps every entry it holds; another takes one over only
     * once it went unrefreshed for the whole claim time. Here the holder is alive and connected while Redis refuses
     * writes (out of memory) for 5 s, two and a half claim times. Consumer a is at its in-flight limit, so only its
     * timer's refresh keeps the entry a's. With the library, the refresh (sg_refresh) was refused as a whole under OOM,
     * as was every function registered without flags, and b ran the entry a was still running.
     */
    @Test
    void aSlowHandlersEntryIsNotTakenOverWhileRedisRefusesWrites() throws Exception {
        SuitePromises.Deployed server = ownServerAsDeployed();
        Topology t = TestRedis.topology();
        String stream = t.inboundStream();
        String group = t.workerGroup();
        EventBus a = bus(server.url(), t, "a");
        EventBus b = bus(server.url(), t, "b");
        assertThat(a.serverCode()).isEqualTo(server.code());
        Map<String, AtomicInteger> runs = new ConcurrentHashMap<>();
        CountDownLatch release = new CountDownLatch(1);
        closer.add(release::countDown);
        Duration claim = Duration.ofSeconds(2);
        closer.add(a.subscribe(fast(stream, group, "a").claimIdle(claim).maxInFlight(1).retryBackoff(Duration.ofMillis(50))
                .maxRetryBackoff(Duration.ofMillis(200)).closeTimeout(Duration.ofSeconds(1)).build(), d -> {
                    runs.computeIfAbsent("a", k -> new AtomicInteger()).incrementAndGet();
                    release.await(60, TimeUnit.SECONDS); // the slow handler
                }));
        a.publishInbound(message(0, "c"));
        await().atMost(WAIT).until(() -> runs.containsKey("a"));
        closer.add(b.subscribe(fast(stream, group, "b").claimIdle(claim).retryBackoff(Duration.ofMillis(50))
                .maxRetryBackoff(Duration.ofMillis(200)).closeTimeout(Duration.ofSeconds(1)).build(), d -> {
                    runs.computeIfAbsent("b", k -> new AtomicInteger()).incrementAndGet();
                }));
        try (RedisFaults.Fault oom = RedisFaults.refuseWrites(server.url())) {
            await().pollDelay(Duration.ofSeconds(5)).atMost(Duration.ofSeconds(6)).until(() -> true);
        }
        // Writes are accepted again and a's handler still runs: b must not run the entry now or later.
        boolean ranOnB;
        try {
            await().during(Duration.ofSeconds(5)).atMost(Duration.ofSeconds(7)).until(() -> !runs.containsKey("b"));
            ranOnB = false;
        } catch (org.awaitility.core.ConditionTimeoutException e) {
            ranOnB = true;
        }
        release.countDown();
        assertThat(ranOnB).as(server.code() + ": consumer b ran the entry live consumer a was still running, after Redis refused "
                + "writes for 5 s (claim idle 2 s); runs: " + runs).isFalse();
    }

    /**
     * A SAFE stream at its cap (1000 entries of 4 KB) fills Redis to its maxmemory while its only group has read
     * everything and acknowledged nothing. The group then catches up (XACK is allowed under OOM): the bus's trim check
     * (every 50 ms while the stream is full) must trim what it acknowledged, which frees the memory, and publishing
     * resumes. With the library, sg_trim was refused as a whole under OOM: the stream was never trimmed and every
     * publish failed until someone stepped in.
     */
    @Test
    void aStreamAtItsCapIsTrimmedOnceItsGroupCaughtUpWhileRedisIsOutOfMemory() {
        SuitePromises.Deployed server = ownServerAsDeployed();
        Topology t = TestRedis.topology();
        String stream = t.inboundStream();
        String group = t.workerGroup();
        EventBus bus = bus(server.url(), t, "gateway", c -> c.streamMaxlen(1000).publishTimeout(Duration.ofSeconds(2))
                .backpressureTimeout(Duration.ofSeconds(1)));
        assertThat(bus.serverCode()).isEqualTo(server.code());
        bus.ensureGroup(stream, group);
        String big = "x".repeat(4096);
        for (int i = 0; i < 1000; i++) {
            bus.publishInbound(Envelope.of("platform", "webchat", "channel_id", "c", "content", big, "seq", i));
        }
        try (RawRedis raw = new RawRedis(server.url())) {
            var sync = raw.sync();
            var read = sync.xreadgroup(io.lettuce.core.Consumer.from(RawRedis.utf8(group), RawRedis.utf8("late")),
                    io.lettuce.core.XReadArgs.Builder.count(2000), io.lettuce.core.XReadArgs.StreamOffset.lastConsumed(RawRedis.utf8(stream)));
            assertThat(read).hasSize(1000);
            long maxmemory = usedMemory(sync) - 200_000;
            sync.configSet("maxmemory-policy", "noeviction");
            sync.configSet("maxmemory", Long.toString(maxmemory));
            closer.add(() -> {
                try (RawRedis undo = new RawRedis(server.url())) {
                    undo.sync().configSet("maxmemory", "0");
                }
            });
            java.util.concurrent.atomic.AtomicReference<Throwable> last = new java.util.concurrent.atomic.AtomicReference<>();
            assertThat(tryPublish(bus, last)).as("a publish while Redis is out of memory").isFalse();
            assertThat(sync.xack(RawRedis.utf8(stream), RawRedis.utf8(group), read.stream().map(m -> m.getId()).toArray(String[]::new)))
                    .isEqualTo(1000);
            try {
                await().atMost(Duration.ofSeconds(20)).pollInterval(Duration.ofMillis(500)).until(() -> tryPublish(bus, last));
            } catch (org.awaitility.core.ConditionTimeoutException e) {
                throw new AssertionError(server.code() + ": 20 s after its only group acknowledged every entry, the stream was still "
                        + "not trimmed (XLEN " + raw.xlen(stream) + ", used_memory " + usedMemory(sync) + " > maxmemory " + maxmemory
                        + ") and publishing still failed: " + last.get() + "; the bus's trim state: "
                        + io.stargazer.bus.internal.BusInternals.trimState(bus, stream), e);
            }
            assertThat(raw.xlen(stream)).isLessThan(1000);
        }
    }

    private static boolean tryPublish(EventBus bus, java.util.concurrent.atomic.AtomicReference<Throwable> last) {
        try {
            bus.publishInbound(Envelope.of("platform", "webchat", "channel_id", "c", "content", "probe"));
            return true;
        } catch (StargazerException e) {
            last.set(e);
            return false;
        }
    }

    private static long usedMemory(io.lettuce.core.api.sync.RedisCommands<byte[], byte[]> sync) {
        for (String line : sync.info("memory").split("\\r?\\n")) {
            if (line.startsWith("used_memory:")) return Long.parseLong(line.substring("used_memory:".length()).trim());
        }
        throw new IllegalStateException("no used_memory in INFO memory");
    }
}
