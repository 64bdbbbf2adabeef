package io.stargazer.bus;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.lettuce.core.StreamMessage;
import io.stargazer.bus.testing.ConsumerProcess;
import io.stargazer.bus.testing.Handled;
import io.stargazer.bus.testing.RawRedis;
import io.stargazer.bus.testing.TestRedis;
import io.stargazer.embedded.RedisServerProcess;
import io.stargazer.testing.ChildJvm;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.stream.Collectors;
import java.util.stream.IntStream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * The bus's promises, stated as tests and run against a real Redis (one subclass per server version):
 * nothing published and acknowledged is lost, every group sees every message, one channel stays in order,
 * failures are retried and then dead-lettered, and no consumer death, server restart or deleted entry wedges
 * the flow. Each subclass also runs, as nested classes, the same promises against the faults production brings
 * ({@link FaultPromises}), order through retries ({@link RetryOrderPromises}) and once-only publishing and answering
 * ({@link OncePromises}).
 */
abstract class BusAcceptanceSuite {
    private static final Duration WAIT = Duration.ofSeconds(30);

    /** The server these promises are checked against. */
    protected abstract RedisUrl url();

    /** A server of the same version this test may stop, kill and restart. */
    protected abstract RedisServerProcess.Builder ownServer();

    /**
     * Sets up a started {@link #ownServer()} as this suite's shared server is (the functions suite provisions the
     * library), for promises that need a server of their own but must hold as deployed, such as those under OOM, which
     * Redis applies to a function as a whole and to a script command by command. Returns the code a bus runs there.
     */
    protected ServerCodeMode deployOwn(RedisUrl url) {
        return ServerCodeMode.SCRIPTS;
    }

    private final List<AutoCloseable> closeables = new ArrayList<>();

    /** Fails the test when a handler below fails an assertion (which would otherwise only nack its delivery). */
    @RegisterExtension
    final Handled handled = new Handled();

    @AfterEach
    void closeAll() throws Exception {
        Collections.reverse(closeables);
        for (AutoCloseable c : closeables) {
            c.close();
        }
    }

    private <T extends AutoCloseable> T closeLater(T c) {
        closeables.add(c);
        return c;
    }

    private EventBus bus(RedisUrl url, Topology topology, String nodeId) {
        return closeLater(EventBus.connect(url, BusConfig.builder().topology(topology).role(NodeRole.STANDALONE).nodeId(nodeId).build()));
    }

    /** Consumer settings scaled down so takeovers and retries happen within a test. */
    static ConsumerConfig.Builder fast(String stream, String group, String consumer) {
        return ConsumerConfig.builder(stream, group).consumerName(consumer).claimIdle(Duration.ofMillis(500))
                .retryBackoff(Duration.ofMillis(20)).maxRetryBackoff(Duration.ofMillis(200)).blockTimeout(Duration.ofMillis(200))
                .closeTimeout(Duration.ofSeconds(2));
    }

    static Envelope message(int seq, String channel) {
        return Envelope.of("platform", "webchat", "channel_id", channel, "content", "m" + seq, "seq", seq);
    }

    static int seq(Delivery d) {
        return (int) d.envelope().longValue("seq", -1);
    }

    private static Set<Integer> range(int n) {
        return IntStream.range(0, n).boxed().collect(Collectors.toSet());
    }

    @Test
    void everyMessagePublishedConcurrentlyIsReceivedAtLeastOnceAndNoneIsMissing() throws Exception {
        Topology t = TestRedis.topology();
        EventBus bus = bus(url(), t, "pub");
        bus.ensureGroup(t.inboundStream(), t.workerGroup());
        Set<Integer> received = ConcurrentHashMap.newKeySet();
        for (int c = 0; c < 3; c++) {
            EventBus consumerBus = bus(url(), t, "worker-" + c);
            closeLater(consumerBus.subscribe(fast(t.inboundStream(), t.workerGroup(), "worker-" + c).build(), d -> received.add(seq(d))));
        }
        int threads = 4;
        int perThread = 500;
        List<Thread> publishers = new ArrayList<>();
        for (int p = 0; p < threads; p++) {
            int base = p * perThread;
            Thread th = new Thread(() -> {
                for (int i = 0; i < perThread; i++) {
                    bus.publishInbound(message(base + i, "c-" + (i % 13)));
                }
            });
            publishers.add(th);
            th.start();
        }
        for (Thread th : publishers) th.join();
        await().atMost(WAIT).untilAsserted(() -> assertThat(received).hasSize(threads * perThread));
        assertThat(received).isEqualTo(range(threads * perThread));
        await().atMost(WAIT).until(() -> bus.pendingCount(t.inboundStream(), t.workerGroup()) == 0);
    }

    @Test
    void everyGroupOnAStreamReceivesEveryMessage() {
        Topology t = TestRedis.topology();
        EventBus bus = bus(url(), t, "node");
        String stream = t.outboundStream("webchat");
        List<Set<Integer>> perGroup = new ArrayList<>();
        for (int g = 0; g < 3; g++) {
            Set<Integer> got = ConcurrentHashMap.newKeySet();
            perGroup.add(got);
            closeLater(bus.subscribe(fast(stream, "group-" + g, "c").build(), d -> got.add(seq(d))));
        }
        for (int i = 0; i < 300; i++) bus.publishOutbound("webchat", message(i, "c-" + (i % 5)));
        for (Set<Integer> got : perGroup) {
            await().atMost(WAIT).untilAsserted(() -> assertThat(got).isEqualTo(range(300)));
        }
    }

    @Test
    void entriesOfOneChannelAreHandledOneAtATimeInStreamOrderWhileChannelsRunInParallel() throws Exception {
        Topology t = TestRedis.topology();
        EventBus bus = bus(url(), t, "node");
        Map<String, List<Integer>> order = new ConcurrentHashMap<>();
        Map<String, AtomicInteger> active = new ConcurrentHashMap<>();
        AtomicBoolean overlapInChannel = new AtomicBoolean();
        CountDownLatch bothFirstsRunning = new CountDownLatch(2);
        AtomicBoolean channelsRanTogether = new AtomicBoolean(true);
        closeLater(bus.subscribe(fast(t.inboundStream(), t.workerGroup(), "c").concurrency(8).build(), d -> {
            String ch = d.envelope().channelId();
            if (active.computeIfAbsent(ch, k -> new AtomicInteger()).incrementAndGet() > 1) overlapInChannel.set(true);
            int s = seq(d);
            if (s == 0 || s == 1) {
                // The first entries of channels a and b wait for each other: only parallel channels get past this.
                bothFirstsRunning.countDown();
                if (!bothFirstsRunning.await(10, TimeUnit.SECONDS)) channelsRanTogether.set(false);
            }
            order.computeIfAbsent(ch, k -> new CopyOnWriteArrayList<>()).add(s);
            active.get(ch).decrementAndGet();
        }));
        bus.publishInbound(message(0, "a"));
        bus.publishInbound(message(1, "b"));
        for (int i = 2; i < 600; i++) bus.publishInbound(message(i, List.of("a", "b", "c", "d", "e").get(i % 5)));
        await().atMost(WAIT).until(() -> order.values().stream().mapToInt(List::size).sum() == 600);
        assertThat(overlapInChannel).isFalse();
        assertThat(channelsRanTogether).isTrue();
        for (List<Integer> seqs : order.values()) {
            assertThat(seqs).isSorted();
        }
    }

    @Test
    void aNackedEntryIsRedeliveredWithAGrowingDeliveryCountUntilItSucceeds() {
        Topology t = TestRedis.topology();
        EventBus bus = bus(url(), t, "node");
        List<Long> counts = new CopyOnWriteArrayList<>();
        AtomicInteger others = new AtomicInteger();
        closeLater(bus.subscribe(fast(t.inboundStream(), t.workerGroup(), "c").maxDeliveries(5).build(), handled.by(d -> {
            if (seq(d) != 0) {
                others.incrementAndGet();
                return;
            }
            counts.add(d.deliveryCount());
            if (d.deliveryCount() < 3) {
                assertThat(d.nack()).isTrue();
                assertThat(d.nack()).isFalse();
                assertThat(d.ack()).isFalse();
            }
        })));
        bus.publishInbound(message(0, "x"));
        for (int i = 1; i <= 20; i++) bus.publishInbound(message(i, "y"));
        await().atMost(WAIT).untilAsserted(() -> assertThat(counts).containsExactly(1L, 2L, 3L));
        await().atMost(WAIT).until(() -> others.get() == 20 && bus.pendingCount(t.inboundStream(), t.workerGroup()) == 0);
        assertThat(bus.streamInfo(t.deadLetterStream(t.inboundStream()))).isEmpty();
    }

    @Test
    void anEntryFailingEveryDeliveryIsDeadLetteredWithItsErrorWhileTheRestFlows() {
        Topology t = TestRedis.topology();
        EventBus bus = bus(url(), t, "node");
        Set<Integer> ok = ConcurrentHashMap.newKeySet();
        AtomicInteger poisonAttempts = new AtomicInteger();
        Subscription sub = closeLater(bus.subscribe(fast(t.inboundStream(), t.workerGroup(), "c").maxDeliveries(3).build(), d -> {
            if (seq(d) == 7) {
                poisonAttempts.incrementAndGet();
                throw new IllegalStateException("cannot digest seq 7");
            }
            ok.add(seq(d));
        }));
        String poisonId = null;
        for (int i = 0; i < 50; i++) {
            String id = bus.publishInbound(message(i, "c-" + (i % 3)));
            if (i == 7) poisonId = id;
        }
        String dead = t.deadLetterStream(t.inboundStream());
        try (RawRedis raw = new RawRedis(url())) {
            await().atMost(WAIT).until(() -> raw.xlen(dead) == 1);
            // With ordered retries (the default) the poison's own channel waits until it is dead-lettered; the rest
            // of that channel is handled right after, the other channels all along.
            await().atMost(WAIT).until(() -> ok.size() == 49);
            assertThat(ok).hasSize(49).doesNotContain(7);
            assertThat(poisonAttempts).hasValue(3);
            Map<String, byte[]> f = RawRedis.fields(raw.xrange(dead).get(0));
            Map<String, byte[]> original = RawRedis.fields(raw.xrange(t.inboundStream()).get(7));
            assertThat(f.get("payload")).isEqualTo(original.get("payload"));
            assertThat(f.get("trace_id")).isEqualTo(original.get("trace_id"));
            assertThat(text(f.get("error"))).contains("cannot digest seq 7").contains("3");
            assertThat(text(f.get("source_stream"))).isEqualTo(t.inboundStream());
            assertThat(text(f.get("source_id"))).isEqualTo(poisonId);
            assertThat(text(f.get("group"))).isEqualTo(t.workerGroup());
        }
        await().atMost(WAIT).until(() -> bus.pendingCount(t.inboundStream(), t.workerGroup()) == 0);
        assertThat(sub.stats().deadLettered()).isEqualTo(1);
    }

    @Test
    void malformedEntriesGoToTheDeadLetterStreamAtOnceAndTheConsumerGoesOn() {
        Topology t = TestRedis.topology();
        EventBus bus = bus(url(), t, "node");
        String stream = t.inboundStream();
        bus.ensureGroup(stream, t.workerGroup());
        List<Integer> handled = new CopyOnWriteArrayList<>();
        try (RawRedis raw = new RawRedis(url())) {
            raw.xadd(stream, "trace_id", "no-payload", "other", "x");
            raw.xadd(stream, "payload", new byte[] {(byte) 0xc1, 1, 2}, "trace_id", "bad-msgpack");
            raw.xadd(stream, "payload", new byte[] {(byte) 0x92, 1, 2}, "trace_id", "an-array");
            raw.xadd(stream, "payload", new byte[] {(byte) 0x81, 1, 2}, "trace_id", "int-key");
            bus.publishInbound(message(1, "c"));
            closeLater(bus.subscribe(fast(stream, t.workerGroup(), "c").build(), d -> handled.add(seq(d))));
            String dead = t.deadLetterStream(stream);
            await().atMost(WAIT).until(() -> raw.xlen(dead) == 4 && handled.size() == 1);
            List<StreamMessage<byte[], byte[]>> dl = raw.xrange(dead);
            assertThat(dl).extracting(m -> text(RawRedis.fields(m).get("trace_id")))
                    .containsExactlyInAnyOrder("no-payload", "bad-msgpack", "an-array", "int-key");
            for (StreamMessage<byte[], byte[]> m : dl) {
                Map<String, byte[]> f = RawRedis.fields(m);
                assertThat(text(f.get("error"))).startsWith("malformed: ");
                if (text(f.get("trace_id")).equals("bad-msgpack")) {
                    assertThat(f.get("payload")).containsExactly((byte) 0xc1, 1, 2);
                }
                if (text(f.get("trace_id")).equals("no-payload")) {
                    assertThat(text(f.get("other"))).isEqualTo("x");
                    assertThat(text(f.get("error"))).contains("no 'payload' field");
                }
            }
            assertThat(handled).containsExactly(1);
            await().atMost(WAIT).until(() -> bus.pendingCount(stream, t.workerGroup()) == 0);
        }
    }

    @Test
    void withManualAckAnUnacknowledgedDeliveryStaysPendingAndSettlingIsIdempotent() {
        Topology t = TestRedis.topology();
        EventBus bus = bus(url(), t, "node");
        List<Delivery> got = new CopyOnWriteArrayList<>();
        closeLater(bus.subscribe(fast(t.inboundStream(), t.workerGroup(), "c").manualAck(true).claimIdle(Duration.ofMinutes(5)).build(),
                got::add));
        for (int i = 0; i < 3; i++) bus.publishInbound(message(i, "c"));
        await().atMost(WAIT).until(() -> got.size() == 3);
        assertThat(bus.pendingCount(t.inboundStream(), t.workerGroup())).isEqualTo(3);
        assertThat(got.get(0).ack()).isTrue();
        assertThat(got.get(0).ack()).isFalse();
        assertThat(got.get(0).nack()).isFalse();
        assertThat(got.get(0).settled()).isTrue();
        assertThat(got.get(1).settled()).isFalse();
        await().atMost(WAIT).until(() -> bus.pendingCount(t.inboundStream(), t.workerGroup()) == 2);
    }

    @Test
    void readingPausesWhileTheInFlightLimitIsReached() {
        Topology t = TestRedis.topology();
        EventBus bus = bus(url(), t, "node");
        List<Delivery> got = new CopyOnWriteArrayList<>();
        closeLater(bus.subscribe(fast(t.inboundStream(), t.workerGroup(), "c").manualAck(true).maxInFlight(10).batchSize(4)
                .claimIdle(Duration.ofMinutes(5)).build(), got::add));
        for (int i = 0; i < 100; i++) bus.publishInbound(message(i, "c-" + i));
        await().atMost(WAIT).until(() -> got.size() == 10);
        // Several read cycles pass (BLOCK is 200 ms) and nothing more is read while ten are unsettled.
        await().during(Duration.ofMillis(800)).atMost(Duration.ofSeconds(3)).until(() -> got.size() == 10);
        assertThat(bus.pendingCount(t.inboundStream(), t.workerGroup())).isEqualTo(10);
        for (int round = 0; round < 10; round++) {
            int settledUpTo = got.size();
            got.forEach(Delivery::ack);
            await().atMost(WAIT).until(() -> got.size() == Math.min(100, settledUpTo + 10));
        }
        got.forEach(Delivery::ack);
        assertThat(got).extracting(BusAcceptanceSuite::seq).containsExactlyInAnyOrderElementsOf(range(100));
    }

    @Test
    void aConsumerClosedMidStreamLeavesWhatItDidNotFinishToAnother() throws Exception {
        Topology t = TestRedis.topology();
        EventBus bus = bus(url(), t, "node");
        bus.ensureGroup(t.inboundStream(), t.workerGroup());
        for (int i = 0; i < 40; i++) bus.publishInbound(message(i, "c-" + (i % 4)));
        Set<Integer> doneByA = ConcurrentHashMap.newKeySet();
        Set<Integer> doneByB = ConcurrentHashMap.newKeySet();
        CountDownLatch never = new CountDownLatch(1);
        AtomicInteger startedA = new AtomicInteger();
        Subscription a = bus.subscribe(fast(t.inboundStream(), t.workerGroup(), "a").concurrency(4).build(), d -> {
            if (startedA.incrementAndGet() > 8) {
                never.await(); // stuck: will be interrupted by close after its timeout
            }
            doneByA.add(seq(d));
        });
        await().atMost(WAIT).until(() -> startedA.get() > 8);
        a.close(Duration.ofMillis(300));
        assertThat(a.state()).isEqualTo(Subscription.State.STOPPED);
        EventBus busB = bus(url(), t, "node-b");
        closeLater(busB.subscribe(fast(t.inboundStream(), t.workerGroup(), "b").build(), d -> doneByB.add(seq(d))));
        await().atMost(WAIT).untilAsserted(() -> {
            Set<Integer> all = new HashSet<>(doneByA);
            all.addAll(doneByB);
            assertThat(all).isEqualTo(range(40));
        });
        await().atMost(WAIT).until(() -> bus.pendingCount(t.inboundStream(), t.workerGroup()) == 0);
    }

    @Test
    void aConsumerProcessKilledWithSigkillMidBatchHasItsEntriesFinishedByAnotherProcess() throws Exception {
        Topology t = TestRedis.topology();
        EventBus bus = bus(url(), t, "node");
        bus.ensureGroup(t.inboundStream(), t.workerGroup());
        for (int i = 0; i < 60; i++) bus.publishInbound(message(i, "c-" + (i % 6)));
        Set<Integer> byChild = ConcurrentHashMap.newKeySet();
        try (ChildJvm child = ChildJvm.start(ConsumerProcess.class, url().toString(), t.inboundStream(), t.workerGroup(), "doomed", "100")) {
            // A JVM's start is what a loaded machine slows most (CI once timed out here, at load 10 and more, with no
            // output to tell why): it gets a deadline of its own, and the child's output says why when either falls short.
            await().atMost(Duration.ofMinutes(2)).untilAsserted(() -> assertThat(child.printed("READY"))
                    .as(() -> "the child subscribed; alive " + child.isAlive() + ", its output: " + child.lines()).isTrue());
            await().atMost(WAIT).untilAsserted(() -> assertThat(child.lines().stream().filter(l -> l.startsWith("GOT ")).count())
                    .as(() -> "entries the child handled; alive " + child.isAlive() + ", its output: " + child.lines()).isGreaterThanOrEqualTo(5));
            child.kill();
            child.lines().stream().filter(l -> l.startsWith("GOT ")).forEach(l -> byChild.add(Integer.parseInt(l.substring(4))));
        }
        long pendingForDoomed = bus.consumers(t.inboundStream(), t.workerGroup()).stream()
                .filter(c -> c.name().equals("doomed")).mapToLong(ConsumerInfo::pending).sum();
        assertThat(pendingForDoomed).as("entries the killed process held").isPositive();
        Set<Integer> bySurvivor = ConcurrentHashMap.newKeySet();
        closeLater(bus.subscribe(fast(t.inboundStream(), t.workerGroup(), "survivor").build(), d -> bySurvivor.add(seq(d))));
        await().atMost(WAIT).untilAsserted(() -> {
            Set<Integer> all = new HashSet<>(byChild);
            all.addAll(bySurvivor);
            assertThat(all).isEqualTo(range(60));
        });
        await().atMost(WAIT).until(() -> bus.pendingCount(t.inboundStream(), t.workerGroup()) == 0);
    }

    @Test
    void aConsumerRestartedUnderItsNameFirstReadsItsOwnPendingEntriesAgain() {
        Topology t = TestRedis.topology();
        EventBus bus = bus(url(), t, "node");
        List<Delivery> first = new CopyOnWriteArrayList<>();
        Subscription s1 = bus.subscribe(fast(t.inboundStream(), t.workerGroup(), "same").manualAck(true)
                .claimIdle(Duration.ofMinutes(5)).build(), first::add);
        for (int i = 0; i < 10; i++) bus.publishInbound(message(i, "c"));
        await().atMost(WAIT).until(() -> first.size() == 10);
        s1.close();
        List<Delivery> second = new CopyOnWriteArrayList<>();
        closeLater(bus.subscribe(fast(t.inboundStream(), t.workerGroup(), "same").claimIdle(Duration.ofMinutes(5)).build(), second::add));
        await().atMost(WAIT).until(() -> second.size() == 10);
        assertThat(second).extracting(BusAcceptanceSuite::seq).containsExactlyElementsOf(range(10).stream().sorted().toList());
        assertThat(second).allSatisfy(d -> assertThat(d.deliveryCount()).isEqualTo(2));
        await().atMost(WAIT).until(() -> bus.pendingCount(t.inboundStream(), t.workerGroup()) == 0);
    }

    @Test
    void pendingEntriesDeletedFromTheStreamAreDroppedNotWedged() {
        Topology t = TestRedis.topology();
        EventBus bus = bus(url(), t, "node");
        List<Delivery> held = new CopyOnWriteArrayList<>();
        Subscription holder = bus.subscribe(fast(t.inboundStream(), t.workerGroup(), "holder").manualAck(true)
                .claimIdle(Duration.ofMinutes(5)).build(), held::add);
        List<String> ids = new ArrayList<>();
        for (int i = 0; i < 10; i++) ids.add(bus.publishInbound(message(i, "c")));
        await().atMost(WAIT).until(() -> held.size() == 10);
        holder.close();
        try (RawRedis raw = new RawRedis(url())) {
            raw.xdel(t.inboundStream(), ids.subList(0, 5).toArray(String[]::new));
        }
        // Another consumer takes the idle entries over: the deleted ones must not block it.
        Set<Integer> got = ConcurrentHashMap.newKeySet();
        closeLater(bus.subscribe(fast(t.inboundStream(), t.workerGroup(), "taker").build(), d -> got.add(seq(d))));
        await().atMost(WAIT).untilAsserted(() -> assertThat(got).containsExactlyInAnyOrder(5, 6, 7, 8, 9));
        await().atMost(WAIT).until(() -> bus.pendingCount(t.inboundStream(), t.workerGroup()) == 0);
        // And a consumer restarted under the deleting-victim's name finds nothing left to wedge on.
        bus.publishInbound(message(10, "c"));
        await().atMost(WAIT).until(() -> got.contains(10));
    }

    @Test
    void aDeletedGroupIsRecreatedAndConsumingGoesOnEveryTime() {
        Topology t = TestRedis.topology();
        EventBus bus = bus(url(), t, "node");
        Set<Integer> got = ConcurrentHashMap.newKeySet();
        // A small in-flight limit: a read that fails (NOGROUP) must give back what it took, every time.
        Subscription sub = closeLater(bus.subscribe(fast(t.inboundStream(), t.workerGroup(), "c").maxInFlight(8).batchSize(4).build(),
                d -> got.add(seq(d))));
        AtomicInteger next = new AtomicInteger();
        bus.publishInbound(message(next.getAndIncrement(), "c"));
        await().atMost(WAIT).until(() -> got.contains(0));
        for (int round = 0; round < 3; round++) {
            try (RawRedis raw = new RawRedis(url())) {
                raw.sync().xgroupDestroy(RawRedis.utf8(t.inboundStream()), RawRedis.utf8(t.workerGroup()));
            }
            // Publish until the consumer has noticed the loss and re-created its group: nothing after that is missed.
            int before = got.size();
            await().atMost(WAIT).until(() -> {
                bus.publishInbound(message(next.getAndIncrement(), "c"));
                return got.size() > before;
            });
            int last = next.getAndIncrement();
            bus.publishInbound(message(last, "c"));
            await().atMost(WAIT).until(() -> got.contains(last));
        }
        assertThat(sub.state()).isEqualTo(Subscription.State.RUNNING);
        assertThat(bus.groups(t.inboundStream())).extracting(GroupInfo::name).containsExactly(t.workerGroup());
    }

    @Test
    void idleConsumersWithNothingPendingAreRemovedButOnesHoldingEntriesAreKept() {
        Topology t = TestRedis.topology();
        EventBus bus = bus(url(), t, "node");
        String stream = t.inboundStream();
        bus.ensureGroup(stream, t.workerGroup());
        bus.publishInbound(message(0, "c"));
        try (RawRedis raw = new RawRedis(url())) {
            // "holding" reads the entry and never acknowledges; "empty" reads nothing.
            raw.sync().xreadgroup(io.lettuce.core.Consumer.from(RawRedis.utf8(t.workerGroup()), RawRedis.utf8("holding")),
                    io.lettuce.core.XReadArgs.StreamOffset.lastConsumed(RawRedis.utf8(stream)));
            raw.sync().xgroupCreateconsumer(RawRedis.utf8(stream),
                    io.lettuce.core.Consumer.from(RawRedis.utf8(t.workerGroup()), RawRedis.utf8("empty")));
        }
        assertThat(bus.consumers(stream, t.workerGroup())).extracting(ConsumerInfo::name).contains("holding", "empty");
        closeLater(bus.subscribe(fast(stream, t.workerGroup(), "live").claimIdle(Duration.ofMinutes(5))
                .consumerIdleLimit(Duration.ofMillis(300)).build(), d -> { }));
        await().atMost(WAIT).untilAsserted(() -> assertThat(bus.consumers(stream, t.workerGroup()))
                .extracting(ConsumerInfo::name).doesNotContain("empty").contains("holding", "live"));
    }

    @Test
    void aRedisRestartMidStreamLosesNoAcknowledgedEntryAndTheConsumerRecovers() throws Exception {
        RedisServerProcess server = closeLater(ownServer().appendOnly(true).start());
        RedisUrl url = RedisUrl.parse(server.url());
        Topology t = TestRedis.topology();
        EventBus bus = bus(url, t, "node");
        Set<Integer> got = ConcurrentHashMap.newKeySet();
        Subscription sub = closeLater(bus.subscribe(fast(t.inboundStream(), t.workerGroup(), "c").build(), d -> got.add(seq(d))));
        Set<Integer> acknowledged = ConcurrentHashMap.newKeySet();
        int total = 600;
        Thread publisher = new Thread(() -> {
            for (int i = 0; i < total; i++) {
                // A publisher that gets an error tries again (every 20 ms, within a deadline): what it was told is
                // stored must arrive.
                int seq = i;
                await().atMost(WAIT).pollDelay(Duration.ZERO).pollInterval(Duration.ofMillis(20)).pollInSameThread()
                        .ignoreExceptionsInstanceOf(StargazerException.class).until(() -> {
                            bus.publishInbound(message(seq, "c-" + (seq % 3)));
                            return true;
                        });
                acknowledged.add(i);
            }
        });
        publisher.setDaemon(true);
        publisher.start();
        await().atMost(WAIT).until(() -> acknowledged.size() > 200);
        server.restart();
        publisher.join(60_000);
        assertThat(acknowledged).hasSize(total);
        await().atMost(WAIT).untilAsserted(() -> assertThat(got).containsAll(acknowledged));
        await().atMost(WAIT).until(() -> sub.state() == Subscription.State.RUNNING);
        await().atMost(WAIT).until(() -> bus.pendingCount(t.inboundStream(), t.workerGroup()) == 0);
    }

    @Test
    void whileRedisIsDownTheSubscriptionSaysSoAndComesBackOnItsOwn() {
        RedisServerProcess server = closeLater(ownServer().appendOnly(true).start());
        RedisUrl url = RedisUrl.parse(server.url());
        Topology t = TestRedis.topology();
        EventBus bus = bus(url, t, "node");
        Set<Integer> got = ConcurrentHashMap.newKeySet();
        // A small in-flight limit: every failed read while Redis is down must give back what it took.
        Subscription sub = closeLater(bus.subscribe(fast(t.inboundStream(), t.workerGroup(), "c").maxInFlight(8).batchSize(4).build(),
                d -> got.add(seq(d))));
        await().atMost(WAIT).until(() -> sub.state() == Subscription.State.RUNNING);
        server.kill();
        await().atMost(WAIT).until(() -> sub.state() == Subscription.State.RECONNECTING);
        assertThat(sub.failure()).isNotNull();
        // Down long enough for several reconnect attempts (100, 200, 400, 800 ms backoff) to fail.
        await().pollDelay(Duration.ofMillis(1600)).atMost(WAIT).until(() -> sub.state() == Subscription.State.RECONNECTING);
        server.restart();
        await().atMost(WAIT).until(() -> sub.state() == Subscription.State.RUNNING);
        // The first publishes may still meet the shared connection reconnecting: the publisher is told, and retries.
        await().atMost(WAIT).ignoreExceptions().untilAsserted(() -> {
            bus.publishInbound(message(1, "c"));
            assertThat(got).contains(1);
        });
    }

    private static String text(byte[] b) {
        return b == null ? null : new String(b, StandardCharsets.UTF_8);
    }
}
