// Promise (relay mode): every outbox entry reaches its target once and each channel in order, through two relays at
// once, a relay restarted under its own name, Redis frozen or crashed mid-move, a full target under REJECT, hostile
// bodies behind a valid header, and a move tried again after its reply was lost; a publish completes only once its
// outbox holds it; and outbox memory stays bounded.
package io.stargazer.bus;

import static io.stargazer.bus.testing.RawRedis.b;
import static org.assertj.core.api.Assertions.assertThat;

import io.stargazer.bus.testing.RawRedis;
import io.stargazer.bus.testing.TcpProxy;
import io.stargazer.bus.testing.TestRedis;
import io.stargazer.bus.wire.WireFormat;
import io.stargazer.testing.ChildJvm;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import org.awaitility.Awaitility;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

@Timeout(240)
class RelayOnceInOrderIT {
    private static final List<String> PLATFORMS = List.of("webchat");
    private static final int CHANNELS = 8;

    private static BusConfig config(Topology t, NodeRole role, String id) {
        return BusConfig.builder().topology(t).role(role).nodeId(id).platforms(PLATFORMS).publishVia(PublishVia.RELAY).build();
    }

    @Test
    void twoRelaysAtOnceOneOfThemKilledMidStreamAddEachEntryOnce() throws Exception {
        String ns = TestRedis.namespace();
        Topology t = Topology.builder().namespace(ns).build();
        String in = t.inboundStream();
        String outbox = t.gatewayOutbox("webchat");
        int n = 10_000;
        try (EventBus gateway = EventBus.connect(TestRedis.url(), config(t, NodeRole.GATEWAY, "g1"));
             EventBus relayBus = EventBus.connect(TestRedis.url(), config(t, NodeRole.RELAY, "rb"));
             RawRedis raw = new RawRedis(TestRedis.url())) {
            backlog(gateway, t, n);
            long heldByChild;
            try (ChildJvm child = ChildJvm.start(RelayChild.class, TestRedis.url().toString(), ns, "webchat", "ra", "500")) {
                Awaitility.await().atMost(60, TimeUnit.SECONDS).pollInterval(Duration.ofMillis(5)).until(() -> raw.xlen(in) >= 100);
                try (Relay relay = Relay.start(relayBus, c -> c.consumerName("rb").claimIdle(Duration.ofMillis(500)))) {
                    Awaitility.await().atMost(60, TimeUnit.SECONDS).pollInterval(Duration.ofMillis(5)).until(() -> raw.xlen(in) >= n / 3);
                    child.kill();
                    heldByChild = relayBus.consumers(outbox, t.relayGroup()).stream().filter(c -> c.name().equals("ra"))
                            .mapToLong(ConsumerInfo::pending).sum();
                    Awaitility.await().atMost(90, TimeUnit.SECONDS).until(() -> raw.xlen(in) >= n
                            && relayBus.pendingCount(outbox, t.relayGroup()) == 0);
                }
            }
            assertThat(heldByChild).as("entries the killed relay held, taken over by the other").isPositive();
            Map<Long, Integer> counts = RelayIT.counts(relayBus, in);
            assertThat(counts).hasSize(n);
            assertThat(counts.values()).containsOnly(1);
            assertThat(raw.xlen(t.deadLetterStream(outbox))).isZero();
        }
    }

    /** docs/functions.md: a relay restarted with the same consumer name reads its own pending entries first. */
    @Test
    void aRelayKilledAndRestartedUnderItsOwnNameKeepsEachChannelInOrder() throws Exception {
        String ns = TestRedis.namespace();
        Topology t = Topology.builder().namespace(ns).build();
        String in = t.inboundStream();
        String outbox = t.gatewayOutbox("webchat");
        int n = 10_000;
        try (EventBus gateway = EventBus.connect(TestRedis.url(), config(t, NodeRole.GATEWAY, "g1"));
             EventBus relayBus = EventBus.connect(TestRedis.url(), config(t, NodeRole.RELAY, "r"));
             RawRedis raw = new RawRedis(TestRedis.url())) {
            backlog(gateway, t, n);
            try (ChildJvm child = ChildJvm.start(RelayChild.class, TestRedis.url().toString(), ns, "webchat", "r", "500")) {
                Awaitility.await().atMost(60, TimeUnit.SECONDS).pollInterval(Duration.ofMillis(5)).until(() -> raw.xlen(in) >= n / 3);
                child.kill();
            }
            long held = relayBus.pendingCount(outbox, t.relayGroup());
            try (Relay relay = Relay.start(relayBus, c -> c.consumerName("r").claimIdle(Duration.ofMillis(500)))) {
                Awaitility.await().atMost(90, TimeUnit.SECONDS).until(() -> raw.xlen(in) >= n
                        && relayBus.pendingCount(outbox, t.relayGroup()) == 0);
            }
            assertThat(held).as("entries the killed relay held").isPositive();
            assertOnceInOrder(relayBus, in, n);
        }
    }

    /** Redis stops answering the relay mid-stream for longer than its publish timeout, then answers again. */
    @Test
    void aRelayWhoseRedisFreezesMidMoveAddsEachEntryOnceInOrder() throws Exception {
        Topology t = TestRedis.topology();
        String in = t.inboundStream();
        String outbox = t.gatewayOutbox("webchat");
        int n = 5000;
        BusConfig relayConfig = config(t, NodeRole.RELAY, "rf").toBuilder().deadPeerTimeout(Duration.ofSeconds(1))
                .publishTimeout(Duration.ofSeconds(2)).build();
        try (TcpProxy proxy = TcpProxy.to(TestRedis.url());
             EventBus gateway = EventBus.connect(TestRedis.url(), config(t, NodeRole.GATEWAY, "g1"));
             EventBus relayBus = EventBus.connect(proxy.url(), relayConfig);
             RawRedis raw = new RawRedis(TestRedis.url())) {
            backlog(gateway, t, n);
            try (Relay relay = Relay.start(relayBus, c -> c.claimIdle(Duration.ofSeconds(2)))) {
                Awaitility.await().atMost(60, TimeUnit.SECONDS).pollInterval(Duration.ofMillis(2)).until(() -> raw.xlen(in) >= 300);
                proxy.freezeAll();
                // A 4-second freeze (not a wait for a condition): past the publish timeout and the dead-peer timeout.
                Awaitility.await().pollDelay(Duration.ofSeconds(4)).atMost(Duration.ofSeconds(5)).until(() -> true);
                proxy.unfreeze();
                Awaitility.await().atMost(90, TimeUnit.SECONDS).until(() -> raw.xlen(in) >= n
                        && gateway.pendingCount(outbox, t.relayGroup()) == 0);
            }
            assertOnceInOrder(gateway, in, n);
            assertThat(raw.xlen(t.deadLetterStream(outbox))).isZero();
        }
    }

    /**
     * SG_BACKPRESSURE=reject everywhere: the target at its SAFE cap holds the relay's moves, the gateway's publishes to its
     * full outbox are refused and write nothing, and every publish that was answered with an id arrives once.
     */
    @Test
    void aTargetAtItsCapUnderRejectHoldsTheMovesAndEveryAcceptedPublishArrivesOnce() throws Exception {
        Topology t = TestRedis.topology();
        String in = t.inboundStream();
        String outbox = t.gatewayOutbox("webchat");
        int n = 3000;
        java.util.function.UnaryOperator<BusConfig> reject = c -> c.toBuilder().streamMaxlen(1000).backpressure(Backpressure.REJECT).build();
        try (EventBus gateway = EventBus.connect(TestRedis.url(), reject.apply(config(t, NodeRole.GATEWAY, "g1")));
             EventBus relayBus = EventBus.connect(TestRedis.url(), reject.apply(config(t, NodeRole.RELAY, "r4")));
             EventBus worker = EventBus.connect(TestRedis.url(), reject.apply(config(t, NodeRole.WORKER, "w4")));
             RawRedis raw = new RawRedis(TestRedis.url());
             Relay relay = Relay.start(relayBus, c -> c.maxDeliveries(1).retryBackoff(Duration.ofMillis(50)))) {
            gateway.ensureStreams();
            worker.ensureStreams(); // the worker group, which reads nothing yet
            Set<Long> accepted = ConcurrentHashMap.newKeySet();
            int refused = 0;
            for (int i = 0; i < n; i++) {
                try {
                    gateway.publishInbound(Envelope.of("platform", "webchat", "channel_id", "c" + (i % CHANNELS), "n", i));
                    accepted.add((long) i);
                } catch (BackpressureException full) {
                    refused++;
                }
            }
            assertThat(refused).as("publishes refused at the full outbox").isPositive();
            Awaitility.await().during(Duration.ofSeconds(1)).atMost(Duration.ofSeconds(5))
                    .until(() -> raw.xlen(in) < accepted.size() && raw.xlen(t.deadLetterStream(outbox)) == 0);
            Map<Long, Integer> seen = new ConcurrentHashMap<>();
            try (Subscription s = worker.subscribeInbound(d -> { seen.merge(d.envelope().longValue("n", -1), 1, Integer::sum); })) {
                Awaitility.await().atMost(90, TimeUnit.SECONDS).until(() -> seen.size() >= accepted.size()
                        && relayBus.pendingCount(outbox, t.relayGroup()) == 0);
            }
            assertThat(seen.keySet()).isEqualTo(accepted);
            assertThat(seen.values()).containsOnly(1);
            assertThat(raw.xlen(t.deadLetterStream(outbox))).isZero();
        }
    }

    /**
     * Bodies that are no valid envelope behind a valid header (nesting bombs, lying length prefixes, non-UTF-8 names, a
     * payload field twice, thousands of fields): none stalls the outbox, and none vanishes: each is in the target or in the
     * outbox's dead letters, and the good entry after them arrives.
     */
    @Test
    void hostileBodiesBehindAValidHeaderNeitherStallTheOutboxNorVanish() {
        Topology t = TestRedis.topology();
        String in = t.inboundStream();
        String outbox = t.gatewayOutbox("webchat");
        Map<String, List<byte[]>> hostile = new LinkedHashMap<>();
        byte[] mapK = {(byte) 0x81, (byte) 0xa1, 'k'};
        hostile.put("nesting", List.of(b("payload"), HostileEntriesIT.concat(mapK, HostileEntriesIT.repeat(0x91, 100_000), new byte[] {(byte) 0xc0})));
        hostile.put("str32 claiming 4 GiB", List.of(b("payload"),
                HostileEntriesIT.concat(mapK, new byte[] {(byte) 0xdb, (byte) 0xff, (byte) 0xff, (byte) 0xff, (byte) 0xff}, HostileEntriesIT.repeat('x', 16))));
        hostile.put("truncated map", List.of(b("payload"), new byte[] {(byte) 0x83, (byte) 0xa1, 'k', (byte) 0xc0, (byte) 0xa1}));
        hostile.put("non-UTF-8 names", List.of(new byte[] {(byte) 0xff, (byte) 0xfe}, b("x"), new byte[] {(byte) 0xc3, 0x28}, b("y")));
        byte[] dupA = WireFormat.encode(Envelope.of("platform", "webchat", "channel_id", "c", "content", "dup-a"));
        hostile.put("payload twice", List.of(b("payload"), new byte[] {(byte) 0xc1}, b("payload"), dupA));
        List<byte[]> many = new ArrayList<>();
        for (int i = 0; i < 5000; i++) {
            many.add(b("f" + i));
            many.add(b("v" + i));
        }
        hostile.put("5000 fields", many);
        try (EventBus relayBus = EventBus.connect(TestRedis.url(), config(t, NodeRole.RELAY, "rh"));
             RawRedis raw = new RawRedis(TestRedis.url())) {
            relayBus.ensureGroup(in, t.workerGroup());
            Map<String, String> ids = new LinkedHashMap<>();
            for (Map.Entry<String, List<byte[]>> e : hostile.entrySet()) {
                List<byte[]> fields = new ArrayList<>(List.of(b("target"), b(in), b("dedupe"), b("")));
                fields.addAll(e.getValue());
                ids.put(raw.sync().xadd(b(outbox), new io.lettuce.core.XAddArgs(), fields.toArray()), e.getKey());
            }
            raw.xadd(outbox, "target", in, "dedupe", "", "payload",
                    WireFormat.encode(Envelope.of("platform", "webchat", "channel_id", "c", "content", "still here")), "trace_id", "t");
            try (Relay relay = Relay.start(relayBus, c -> c.maxDeliveries(2).retryBackoff(Duration.ofMillis(100)))) {
                Awaitility.await().atMost(60, TimeUnit.SECONDS).until(() -> relayBus.pendingCount(outbox, t.relayGroup()) == 0
                        && raw.xlen(in) + raw.xlen(t.deadLetterStream(outbox)) == hostile.size() + 1);
                assertThat(relay.subscriptions().get(0).state()).isEqualTo(Subscription.State.RUNNING);
            }
            assertThat(raw.xrange(in).stream().map(m -> RawRedis.fields(m).get("payload")).filter(java.util.Objects::nonNull)
                    .map(p -> { try { return WireFormat.decode(p).content(); } catch (RuntimeException e) { return null; } }))
                    .contains("still here");
        }
    }

    /**
     * Outbox memory is bounded: entries the relay has moved are trimmed once their outbox reaches its cap. The operator's
     * outbox is written only by replays (`stargazer dead replay`, a process that ends when they are stored), so no writer
     * of its own is there to trim it after the relay moved them.
     */
    @Test
    void theOperatorsOutboxIsTrimmedToItsCapOnceTheRelayHasMovedTheReplays() {
        Topology t = TestRedis.topology();
        String in = t.inboundStream();
        String dead = t.deadLetterStream(in);
        String outbox = t.operatorOutbox();
        int cap = 1000;
        int n = 3000;
        try (EventBus operator = EventBus.connect(TestRedis.url(), config(t, NodeRole.WORKER, "op").toBuilder().streamMaxlen(cap).build());
             EventBus relayBus = EventBus.connect(TestRedis.url(), config(t, NodeRole.RELAY, "ro").toBuilder().streamMaxlen(cap).build());
             RawRedis raw = new RawRedis(TestRedis.url())) {
            for (int i = 0; i < n; i++) {
                raw.xadd(dead, "payload", WireFormat.encode(Envelope.of("platform", "webchat", "channel_id", "c" + (i % CHANNELS), "n", i)),
                        "trace_id", "t", "error", "failed", "source_stream", in, "source_id", "1-" + i, "group", t.workerGroup());
            }
            assertThat(operator.deadLetters().replay(DeadLetterFilter.ALL, ReplayOptions.DEFAULTS).replayed()).isEqualTo(n);
            assertThat(raw.xlen(outbox)).isEqualTo(n);
            try (Relay relay = Relay.start(relayBus)) {
                Subscription operatorOutbox = relay.subscriptions().stream().filter(s -> s.stream().equals(outbox)).findFirst().orElseThrow();
                Awaitility.await().atMost(60, TimeUnit.SECONDS).until(() -> operatorOutbox.stats().acknowledged() >= n);
                Awaitility.await().atMost(30, TimeUnit.SECONDS).until(() -> raw.xlen(outbox) <= cap);
            } catch (org.awaitility.core.ConditionTimeoutException e) {
                throw new AssertionError(outbox + " holds " + raw.xlen(outbox) + " entries, every one moved (pending "
                        + relayBus.pendingCount(outbox, t.relayGroup()) + "), with a cap of " + cap, e);
            }
            assertThat(relayBus.pendingCount(outbox, t.relayGroup())).isZero();
        }
    }

    /**
     * A move that ran on the server but whose reply was lost is tried again by the relay; the outbox entry was already
     * moved and acknowledged, so the retry must add nothing, even when the dedupe window is short.
     */
    @Test
    void aMoveRetriedAfterItsReplyWasLostAddsNothingWithAShortDedupeWindow() throws Exception {
        Topology t = TestRedis.topology();
        String in = t.inboundStream();
        String outbox = t.gatewayOutbox("webchat");
        int n = 2000;
        BusConfig relayConfig = config(t, NodeRole.RELAY, "rw").toBuilder().deadPeerTimeout(Duration.ofSeconds(1))
                .publishTimeout(Duration.ofSeconds(2)).dedupeWindow(Duration.ofMillis(300)).build();
        try (TcpProxy proxy = TcpProxy.to(TestRedis.url());
             EventBus gateway = EventBus.connect(TestRedis.url(), config(t, NodeRole.GATEWAY, "g1"));
             EventBus relayBus = EventBus.connect(proxy.url(), relayConfig);
             RawRedis raw = new RawRedis(TestRedis.url())) {
            backlog(gateway, t, n);
            try (Relay relay = Relay.start(relayBus, c -> c.claimIdle(Duration.ofSeconds(2)))) {
                Awaitility.await().atMost(60, TimeUnit.SECONDS).pollInterval(Duration.ofMillis(2)).until(() -> raw.xlen(in) >= 300);
                int before = proxy.acceptedCount();
                proxy.dropRepliesOnExisting();
                Awaitility.await().atMost(60, TimeUnit.SECONDS).until(() -> proxy.acceptedCount() > before);
                Awaitility.await().atMost(90, TimeUnit.SECONDS).until(() -> raw.xlen(in) >= n
                        && gateway.pendingCount(outbox, t.relayGroup()) == 0);
                // Moves whose outcome the relay does not know yet are settled by then too.
                Awaitility.await().atMost(30, TimeUnit.SECONDS).until(() -> relay.subscriptions().get(0).stats().inFlight() == 0);
            }
            Map<Long, Integer> counts = RelayIT.counts(gateway, in);
            assertThat(counts).hasSize(n);
            assertThat(counts.entrySet().stream().filter(e -> e.getValue() > 1).map(Map.Entry::getKey).toList())
                    .as("entries added twice").isEmpty();
        }
    }

    /** Redis crashes mid-stream (SIGKILL, every write fsynced) and comes back with its data under the relay. */
    @Test
    void aRelayWhoseRedisCrashesAndRestartsWithItsDataAddsEachEntryOnceInOrder() throws Exception {
        io.stargazer.embedded.RedisServerProcess server = io.stargazer.embedded.RedisServerProcess.builder().appendOnly(true).start();
        try {
            RedisUrl url = RedisUrl.parse(server.url());
            Topology t = Topology.builder().namespace("relay-crash").build();
            String in = t.inboundStream();
            String outbox = t.gatewayOutbox("webchat");
            int n = 3000;
            try (EventBus gateway = EventBus.connect(url, config(t, NodeRole.GATEWAY, "g1"));
                 EventBus relayBus = EventBus.connect(url, config(t, NodeRole.RELAY, "rc").toBuilder().deadPeerTimeout(Duration.ofSeconds(1)).build());
                 RawRedis raw = new RawRedis(url)) {
                backlog(gateway, t, n);
                try (Relay relay = Relay.start(relayBus)) {
                    Awaitility.await().atMost(60, TimeUnit.SECONDS).pollInterval(Duration.ofMillis(2)).until(() -> raw.xlen(in) >= 300);
                    long beforeCrash = raw.xlen(in);
                    server.kill();
                    server.restart();
                    Awaitility.await().atMost(90, TimeUnit.SECONDS).ignoreExceptions().until(() -> raw.xlen(in) >= n
                            && gateway.pendingCount(outbox, t.relayGroup()) == 0);
                    assertThat(beforeCrash).as("moved before the crash").isLessThan(n);
                }
                assertOnceInOrder(gateway, in, n);
            }
        } finally {
            server.stop();
        }
    }

    /** A publish in relay mode completes only once its outbox holds its entry, with that entry's id. */
    @Test
    void aPublishCompletesOnlyOnceItsOutboxEntryIsStored() throws Exception {
        Topology t = TestRedis.topology();
        String outbox = t.gatewayOutbox("webchat");
        try (TcpProxy proxy = TcpProxy.to(TestRedis.url());
             EventBus gateway = EventBus.connect(proxy.url(), config(t, NodeRole.GATEWAY, "g1").toBuilder()
                     .publishTimeout(Duration.ofSeconds(30)).deadPeerTimeout(Duration.ofSeconds(30)).build());
             RawRedis raw = new RawRedis(TestRedis.url())) {
            gateway.ensureStreams();
            proxy.freezeAll();
            java.util.concurrent.CompletableFuture<String> sent = gateway.publishInboundAsync(
                    Envelope.of("platform", "webchat", "channel_id", "c1", "content", "hi"));
            Awaitility.await().during(Duration.ofSeconds(1)).atMost(Duration.ofSeconds(3))
                    .until(() -> !sent.isDone() && raw.xlen(outbox) == 0);
            proxy.unfreeze();
            String id = sent.get(20, TimeUnit.SECONDS);
            assertThat(raw.xrange(outbox)).extracting(m -> m.getId()).containsExactly(id);
        }
    }

    /** Every n from 0 to n-1 once, and within each channel in increasing order. */
    /** The gateway's outbox holds {@code n} numbered publishes, for the relay to move to an inbound stream with a group. */
    private static void backlog(EventBus gateway, Topology t, int n) throws InterruptedException {
        gateway.ensureStreams();
        gateway.ensureGroup(t.inboundStream(), t.workerGroup());
        RelayIT.publishNumbered(gateway, n);
    }

    private static void assertOnceInOrder(EventBus bus, String stream, int n) {
        Map<Long, Integer> counts = new HashMap<>();
        Map<String, List<Long>> byChannel = new LinkedHashMap<>();
        for (StreamEntry e : TestRedis.readAll(bus, stream)) {
            long k = e.envelope().longValue("n", -1);
            counts.merge(k, 1, Integer::sum);
            byChannel.computeIfAbsent(e.envelope().channelId(), c -> new ArrayList<>()).add(k);
        }
        assertThat(counts).hasSize(n);
        assertThat(counts.values()).containsOnly(1);
        for (Map.Entry<String, List<Long>> c : byChannel.entrySet()) {
            assertThat(c.getValue()).as("channel " + c.getKey() + " in the order published").isSorted();
        }
    }
}
