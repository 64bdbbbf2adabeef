package io.stargazer.bus;

import static io.stargazer.bus.testing.RawRedis.b;
import static org.assertj.core.api.Assertions.assertThat;

import io.stargazer.bus.testing.RawRedis;
import io.stargazer.bus.testing.TcpProxy;
import io.stargazer.bus.testing.TestRedis;
import io.stargazer.embedded.RedisServerProcess;
import io.stargazer.testing.ChildJvm;
import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import org.awaitility.Awaitility;
import org.awaitility.core.ConditionTimeoutException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

// Relay mode (issue 18): roles write only their outboxes; the relay moves each outbox entry to its target once, in one
// step with its acknowledgement, and refuses targets the outbox's role may not write. AclIT shows the same under the
// strict ACL users; this shows the mechanics on the shared test server.
@Timeout(180)
class RelayIT {
    private static final List<String> PLATFORMS = List.of("webchat");

    private static BusConfig config(Topology t, NodeRole role, String id) {
        return BusConfig.builder().topology(t).role(role).nodeId(id).platforms(PLATFORMS).publishVia(PublishVia.RELAY).build();
    }

    @Test
    void rolesWriteOnlyTheirOutboxesAndTheRelayAddsEachEntryToItsTargetOnce() throws Exception {
        Topology t = TestRedis.topology();
        String in = t.inboundStream();
        String out = t.outboundStream("webchat");
        try (EventBus gateway = EventBus.connect(TestRedis.url(), config(t, NodeRole.GATEWAY, "g1"));
             EventBus worker = EventBus.connect(TestRedis.url(), config(t, NodeRole.WORKER, "w1"));
             EventBus relayBus = EventBus.connect(TestRedis.url(), config(t, NodeRole.RELAY, "r1"));
             RawRedis raw = new RawRedis(TestRedis.url())) {
            worker.ensureStreams();
            gateway.ensureStreams();
            Envelope hi = Envelope.of("platform", "webchat", "channel_id", "c1", "content", "hi");
            PublishOptions once = PublishOptions.builder().dedupeKey("webchat:m1").build();
            String first = gateway.publishInbound(hi, once);
            gateway.publishInbound(hi, once); // sent twice: one outbox entry each, one entry in the target
            gateway.publishInbound(Envelope.of("platform", "webchat", "channel_id", "c2", "content", "fail"));
            // Nothing reached the shared stream: the outbox holds the three publishes, with their target.
            assertThat(raw.xlen(in)).isZero();
            assertThat(raw.xlen(t.gatewayOutbox("webchat"))).isEqualTo(3);
            Map<String, byte[]> entry = RawRedis.fields(raw.xrange(t.gatewayOutbox("webchat")).get(0));
            assertThat(raw.xrange(t.gatewayOutbox("webchat")).get(0).getId()).isEqualTo(first);
            assertThat(RawRedis.s(entry.get("target"))).isEqualTo(in);
            assertThat(RawRedis.s(entry.get("dedupe"))).isEqualTo("webchat:m1");

            try (Relay relay = Relay.start(relayBus);
                 Subscription s = worker.subscribeInbound(c -> c.maxDeliveries(1), d -> {
                     if ("fail".equals(d.envelope().content())) throw new IllegalStateException("cannot answer this");
                     d.reply(out, Envelope.of("platform", "webchat", "channel_id", d.envelope().channelId(), "content", "echo")).join();
                 })) {
                assertThat(relay.subscriptions()).extracting(Subscription::stream).containsExactly(t.gatewayOutbox("webchat"),
                        t.workerOutbox(), t.toolsOutbox(), t.operatorOutbox());
                Awaitility.await().atMost(30, TimeUnit.SECONDS).until(() -> raw.xlen(out) == 1
                        && raw.xlen(t.deadLetterStream(in)) == 1 && worker.pendingCount(in, t.workerGroup()) == 0
                        && worker.pendingCount(t.workerOutbox(), t.relayGroup()) == 0);
            }
            // The dedupe key kept the second publish out of the inbound stream, as it does when published directly.
            // (Channels c1 and c2 are moved in parallel: which comes first in the stream is not promised.)
            assertThat(raw.xrange(in)).hasSize(2);
            io.lettuce.core.StreamMessage<byte[], byte[]> hiEntry = raw.xrange(in).stream()
                    .filter(m -> RawRedis.fields(m).containsKey("dedupe_key")).findFirst().orElseThrow();
            Map<String, byte[]> stored = RawRedis.fields(hiEntry);
            assertThat(RawRedis.s(stored.get("dedupe_key"))).isEqualTo("webchat:m1");
            assertThat(stored).doesNotContainKeys("target", "dedupe");
            assertThat(raw.xrange(in)).filteredOn(m -> RawRedis.fields(m).containsKey("dedupe_key")).hasSize(1);
            // The answer went through the worker's outbox with its reply key, and the inbound entry was acknowledged.
            String source = hiEntry.getId();
            Map<String, byte[]> answer = RawRedis.fields(raw.xrange(out).get(0));
            assertThat(RawRedis.s(answer.get("dedupe_key"))).isEqualTo("reply:" + in + ":" + source);
            // Stored in the worker's outbox and acknowledged in one script (sg_reply on the outbox): the reply key is
            // recorded in the outbox's dedupe hash, which only that step writes (a two-step publish dedupes in the target).
            String replyKey = "reply:" + in + ":" + source;
            assertThat(List.of("dedupe:0", "dedupe:1").stream()
                    .map(h -> raw.sync().hget(b(Topology.slotKey(t.workerOutbox(), h)), b(replyKey))).filter(java.util.Objects::nonNull))
                    .hasSize(1);
            Map<String, byte[]> dead = RawRedis.fields(raw.xrange(t.deadLetterStream(in)).get(0));
            assertThat(RawRedis.s(dead.get("error"))).contains("cannot answer this");
            assertThat(RawRedis.s(dead.get("source_stream"))).isEqualTo(in);
            assertThat(raw.xlen(t.workerOutbox())).isEqualTo(2); // the answer and the dead letter
        }
    }

    @Test
    void anOutboxEntryNamingATargetItsRoleMayNotWriteIsRefusedAndDeadLettered() {
        Topology t = TestRedis.topology();
        String outbox = t.gatewayOutbox("webchat");
        String out = t.outboundStream("webchat");
        try (EventBus relayBus = EventBus.connect(TestRedis.url(), config(t, NodeRole.RELAY, "r1"));
             RawRedis raw = new RawRedis(TestRedis.url())) {
            relayBus.ensureGroup(out, t.gatewayGroup("webchat"));
            // What a compromised gateway could write to its own outbox: an "answer" for the web chat, a tool request.
            raw.xadd(outbox, "target", out, "dedupe", "", "payload", b("forged"), "trace_id", "t");
            raw.xadd(outbox, "target", t.toolsStream(), "dedupe", "", "payload", b("forged"), "trace_id", "t");
            raw.xadd(outbox, "payload", b("no header"), "trace_id", "t");
            // A key of the relay's own shape, recorded early, would make the relay drop another outbox's entry of that id.
            String poison = "reply:" + t.gatewayOutbox("discord") + ":9999999999999-0";
            raw.xadd(outbox, "target", t.inboundStream(), "dedupe", poison, "payload", b("p"), "trace_id", "t");
            // A key of the operator's replays' shape, recorded early, would make the relay drop that dead letter's replay.
            String replayPoison = "replay:" + t.deadLetterStream(t.inboundStream()) + ":9999999999999-0";
            raw.xadd(outbox, "target", t.inboundStream(), "dedupe", replayPoison, "payload", b("p"), "trace_id", "t");
            try (Relay relay = Relay.start(relayBus)) {
                Awaitility.await().atMost(30, TimeUnit.SECONDS).until(() -> raw.xlen(t.deadLetterStream(outbox)) == 5);
            }
            assertThat(raw.xlen(t.inboundStream())).isZero();
            assertThat(raw.xlen(out)).isZero();
            assertThat(raw.xlen(t.toolsStream())).isZero();
            List<String> errors = raw.xrange(t.deadLetterStream(outbox)).stream()
                    .map(m -> RawRedis.s(RawRedis.fields(m).get("error"))).toList();
            assertThat(errors.get(0)).contains("refused").contains("'" + out + "'").contains(outbox);
            assertThat(errors.get(1)).contains("refused").contains("'" + t.toolsStream() + "'");
            assertThat(errors.get(2)).contains("does not start with target");
            assertThat(errors.get(3)).contains("refused").contains(poison);
            assertThat(errors.get(4)).contains("refused").contains(replayPoison);
            assertThat(relayBus.pendingCount(outbox, t.relayGroup())).isZero();
        }
    }

    /**
     * The relay refuses (dead-letters) an outbox entry whose dedupe key has the shape of the operator's replays
     * ({@code replay:...}) or of its own keys ({@code reply:<outbox prefix>:...}), so a publish with such a key was stored
     * in the outbox, answered with an id, and then never reached its stream. It is refused at the publish, naming the key,
     * and nothing is written. The same key on a stream written directly (an application's own) is taken, as in direct mode.
     */
    @Test
    void aPublishWithADedupeKeyReservedForTheRelayOrTheOperatorIsRefusedAtThePublish() {
        Topology t = TestRedis.topology();
        String outbox = t.gatewayOutbox("webchat");
        Envelope hi = Envelope.of("platform", "webchat", "channel_id", "c1", "content", "hi");
        try (EventBus gateway = EventBus.connect(TestRedis.url(), config(t, NodeRole.GATEWAY, "g1"));
             EventBus worker = EventBus.connect(TestRedis.url(), config(t, NodeRole.WORKER, "w1"));
             RawRedis raw = new RawRedis(TestRedis.url())) {
            for (String key : List.of("replay:webchat-msg-17", "reply:" + t.gatewayOutbox("discord") + ":1-0")) {
                org.assertj.core.api.Assertions.assertThatThrownBy(() -> gateway.publishInbound(hi, PublishOptions.dedupeKey(key)))
                        .isInstanceOf(ConfigException.class).hasMessageContaining("'" + key + "'").hasMessageContaining("reserved");
                assertThat(gateway.publishInboundAsync(hi, PublishOptions.dedupeKey(key))).isCompletedExceptionally();
                org.assertj.core.api.Assertions.assertThatThrownBy(() -> worker.publishOutbound("webchat", hi, PublishOptions.dedupeKey(key)))
                        .isInstanceOf(ConfigException.class).hasMessageContaining("'" + key + "'");
            }
            assertThat(raw.xlen(outbox)).isZero();
            assertThat(raw.xlen(t.workerOutbox())).isZero();
            // Keys that only look alike, and any key on a stream the relay does not carry, are taken.
            gateway.publishInbound(hi, PublishOptions.dedupeKey("replays:webchat-msg-17"));
            gateway.publishInbound(hi, PublishOptions.dedupeKey("reply:webchat-msg-17"));
            assertThat(raw.xlen(outbox)).isEqualTo(2);
            String own = t.inboundStream() + ":app-own";
            gateway.publish(own, hi, PublishOptions.dedupeKey("replay:webchat-msg-17"));
            assertThat(raw.xlen(own)).isEqualTo(1);
        }
    }

    /**
     * A target at its SAFE cap (its group lags) holds the relay's moves as it would hold a publish: they are tried again
     * without using up deliveries (here one allowed), nothing goes to the dead letters, and once the group reads, every
     * entry arrives once.
     */
    @Test
    void aTargetAtItsCapHoldsTheMovesWithoutDeadLetteringThemUntilItsGroupCatchesUp() throws Exception {
        Topology t = TestRedis.topology();
        String in = t.inboundStream();
        String outbox = t.gatewayOutbox("webchat");
        int n = 1500;
        try (EventBus gateway = EventBus.connect(TestRedis.url(), config(t, NodeRole.GATEWAY, "g1").toBuilder().streamMaxlen(1000).build());
             EventBus relayBus = EventBus.connect(TestRedis.url(), config(t, NodeRole.RELAY, "r4").toBuilder().streamMaxlen(1000).build());
             EventBus worker = EventBus.connect(TestRedis.url(), config(t, NodeRole.WORKER, "w4").toBuilder().streamMaxlen(1000).build());
             RawRedis raw = new RawRedis(TestRedis.url());
             Relay relay = Relay.start(relayBus, c -> c.maxDeliveries(1).retryBackoff(Duration.ofMillis(50)))) {
            gateway.ensureStreams();
            worker.ensureStreams(); // the worker group, which reads nothing yet
            publishNumbered(gateway, n);
            Awaitility.await().atMost(30, TimeUnit.SECONDS).until(() -> raw.xlen(in) >= 1000);
            Awaitility.await().during(Duration.ofSeconds(1)).atMost(Duration.ofSeconds(3))
                    .until(() -> raw.xlen(in) < n && raw.xlen(t.deadLetterStream(outbox)) == 0);
            Map<Long, Integer> seen = new java.util.concurrent.ConcurrentHashMap<>();
            try (Subscription s = worker.subscribeInbound(d -> { seen.merge(d.envelope().longValue("n", -1), 1, Integer::sum); })) {
                Awaitility.await().atMost(60, TimeUnit.SECONDS).until(() -> seen.size() == n);
            }
            assertThat(seen.values()).containsOnly(1);
            assertThat(raw.xlen(t.deadLetterStream(outbox))).isZero();
        }
    }

    /**
     * The relay's connections lose every reply mid-stream (the moves run on the server, the relay never hears of them),
     * are found dead and replaced, and later are cut outright: the moves it could not confirm are tried again, and the
     * atomic move-and-acknowledge makes those find their entry already acknowledged. Every entry arrives once.
     */
    @Test
    void aRelayWhoseConnectionsLoseTheirRepliesAndAreCutLosesNothingAndAddsNothingTwice() throws Exception {
        Topology t = TestRedis.topology();
        String in = t.inboundStream();
        int n = 5000;
        BusConfig relayConfig = config(t, NodeRole.RELAY, "r3").toBuilder().deadPeerTimeout(Duration.ofSeconds(1)).build();
        try (io.stargazer.bus.testing.TcpProxy proxy = io.stargazer.bus.testing.TcpProxy.to(TestRedis.url());
             EventBus gateway = EventBus.connect(TestRedis.url(), config(t, NodeRole.GATEWAY, "g1"));
             EventBus relayBus = EventBus.connect(proxy.url(), relayConfig);
             RawRedis raw = new RawRedis(TestRedis.url())) {
            gateway.ensureStreams();
            gateway.ensureGroup(in, t.workerGroup());
            publishNumbered(gateway, n);
            try (Relay relay = Relay.start(relayBus, c -> c.claimIdle(Duration.ofSeconds(2)))) {
                Awaitility.await().atMost(60, TimeUnit.SECONDS).pollInterval(Duration.ofMillis(5)).until(() -> raw.xlen(in) >= 300);
                int before = proxy.acceptedCount();
                proxy.dropRepliesOnExisting();
                Awaitility.await().atMost(60, TimeUnit.SECONDS).until(() -> proxy.acceptedCount() > before); // replaced
                Awaitility.await().atMost(60, TimeUnit.SECONDS).pollInterval(Duration.ofMillis(5)).until(() -> raw.xlen(in) >= n / 2);
                proxy.cutAll();
                Awaitility.await().atMost(90, TimeUnit.SECONDS).until(() -> raw.xlen(in) >= n
                        && gateway.pendingCount(t.gatewayOutbox("webchat"), t.relayGroup()) == 0);
            }
            Map<Long, Integer> counts = counts(gateway, in);
            assertThat(counts).hasSize(n);
            assertThat(counts.values()).containsOnly(1);
        }
    }

    @Test
    void aRelayKilledMidStreamLosesNothingAndAddsNothingTwice() throws Exception {
        String ns = TestRedis.namespace();
        Topology t = Topology.builder().namespace(ns).build();
        String in = t.inboundStream();
        int n = 20_000;
        try (EventBus gateway = EventBus.connect(TestRedis.url(), config(t, NodeRole.GATEWAY, "g1"));
             EventBus relayBus = EventBus.connect(TestRedis.url(), config(t, NodeRole.RELAY, "r2"));
             RawRedis raw = new RawRedis(TestRedis.url())) {
            gateway.ensureStreams();
            relayBus.ensureGroup(in, t.workerGroup());
            publishNumbered(gateway, n);
            try (ChildJvm child = ChildJvm.start(RelayChild.class, TestRedis.url().toString(), ns, "webchat", "child", "500")) {
                Awaitility.await().atMost(60, TimeUnit.SECONDS).pollInterval(Duration.ofMillis(5)).until(() -> raw.xlen(in) >= 300);
                child.kill(); // SIGKILL mid-stream: what it read and had not moved stays pending with it
            }
            long movedByChild = raw.xlen(in);
            long heldByChild = relayBus.pendingCount(t.gatewayOutbox("webchat"), t.relayGroup());
            try (Relay relay = Relay.start(relayBus, c -> c.consumerName("b").claimIdle(Duration.ofMillis(500)))) {
                Awaitility.await().atMost(60, TimeUnit.SECONDS).until(() -> raw.xlen(in) >= n
                        && relayBus.pendingCount(t.gatewayOutbox("webchat"), t.relayGroup()) == 0);
            }
            Map<Long, Integer> counts = counts(relayBus, in);
            assertThat(movedByChild).as("the child was killed mid-stream").isLessThan(n);
            assertThat(heldByChild).as("entries read by the killed relay and not acknowledged: taken over").isPositive();
            assertThat(counts).as("moved by the child %d, held by it at the kill %d", movedByChild, heldByChild).hasSize(n);
            assertThat(counts.values()).containsOnly(1);
        }
    }

    /** Publishes inbound envelopes n = 0 .. count-1 over 8 channels, 1000 in flight at most (far below the queue's limit). */
    static void publishNumbered(EventBus gateway, int count) throws InterruptedException {
        java.util.concurrent.Semaphore window = new java.util.concurrent.Semaphore(1000);
        CompletableFuture<?>[] sent = new CompletableFuture<?>[count];
        for (int i = 0; i < count; i++) {
            window.acquire();
            sent[i] = gateway.publishInboundAsync(Envelope.of("platform", "webchat", "channel_id", "c" + (i % 8), "n", i))
                    .whenComplete((id, e) -> window.release());
        }
        CompletableFuture.allOf(sent).join();
    }

    /** How often each n is in the stream. */
    static Map<Long, Integer> counts(EventBus bus, String stream) {
        Map<Long, Integer> counts = new HashMap<>();
        for (StreamEntry e : TestRedis.readAll(bus, stream)) counts.merge(e.envelope().longValue("n", -1), 1, Integer::sum);
        return counts;
    }

    /**
     * Relay mode: a worker's dead letter goes through its outbox, and its XACK of the inbound entry never reaches Redis;
     * the worker that takes the entry over dead-letters it again (a second outbox entry). The relay must add one dead
     * letter to the dead-letter stream, not two.
     */
    @Test
    void aDeadLetterWhoseAcknowledgementWasLostReachesTheDeadLetterStreamOnce() throws Exception {
        Topology t = TestRedis.topology();
        String in = t.inboundStream();
        String dead = t.deadLetterStream(in);
        MessageHandler fails = d -> {
            throw new IllegalStateException("always fails");
        };
        try (TcpProxy proxy = TcpProxy.to(TestRedis.url());
             EventBus gateway = EventBus.connect(TestRedis.url(), config(t, NodeRole.GATEWAY, "g6"));
             EventBus survivorBus = EventBus.connect(TestRedis.url(), config(t, NodeRole.WORKER, "w6b"));
             EventBus relayBus = EventBus.connect(TestRedis.url(), config(t, NodeRole.RELAY, "r6"));
             RawRedis raw = new RawRedis(TestRedis.url());
             Relay relay = Relay.start(relayBus)) {
            EventBus doomedBus = EventBus.connect(proxy.url(), config(t, NodeRole.WORKER, "w6a"));
            doomedBus.ensureStreams();
            Subscription doomed = doomedBus.subscribeInbound(c -> c.maxDeliveries(1), fails);
            proxy.cutConnectionsSending("XACK", 1000);
            gateway.publishInbound(Envelope.of("platform", "webchat", "channel_id", "c1", "content", "poison"));
            Awaitility.await().atMost(30, TimeUnit.SECONDS).until(() -> raw.xlen(dead) == 1 && proxy.commandsCut() >= 1);
            doomed.close();
            doomedBus.close();
            assertThat(survivorBus.pendingCount(in, t.workerGroup())).as("left pending by the lost XACK").isEqualTo(1);
            try (Subscription s = survivorBus.subscribeInbound(c -> c.maxDeliveries(1).claimIdle(Duration.ofMillis(300)), fails)) {
                Awaitility.await().atMost(30, TimeUnit.SECONDS).until(() -> survivorBus.pendingCount(in, t.workerGroup()) == 0
                        && raw.xlen(t.workerOutbox()) == 2 && survivorBus.pendingCount(t.workerOutbox(), t.relayGroup()) == 0);
            }
            assertThat(raw.xlen(dead)).isEqualTo(1);
        }
    }

    /**
     * docs/functions.md: the relay group is created from an outbox's first entry, nothing a role writes before the relay
     * first runs is skipped. Redis restarts empty while a relay runs that has not yet moved anything from the gateway's
     * outbox (its group at 0-0); the gateway is back first and stores its publishes in the outbox. The relay's reader
     * then meets NOGROUP and must re-create its group at the outbox's start. Before, a consumer that had read nothing
     * re-created it at '$', past the gateway's entries: never moved, though each publish was answered with an id.
     */
    @Test
    void afterAnEmptyRestartTheRelayMovesWhatTheGatewayWroteBeforeItsReaderCameBack() throws Exception {
        RedisServerProcess server = RedisServerProcess.builder().appendOnly(false).start();
        try {
            RedisUrl url = RedisUrl.parse(server.url());
            Topology t = Topology.builder().namespace("relay-restart-1").build();
            String in = t.inboundStream();
            String outbox = t.gatewayOutbox("webchat");
            try (TcpProxy proxy = TcpProxy.to(url);
                 EventBus gateway = EventBus.connect(url, config(t, NodeRole.GATEWAY, "g1"));
                 EventBus relayBus = EventBus.connect(proxy.url(), config(t, NodeRole.RELAY, "r1").toBuilder()
                         .deadPeerTimeout(Duration.ofSeconds(1)).build());
                 Relay relay = Relay.start(relayBus)) {
                gateway.ensureStreams();
                Awaitility.await().atMost(10, TimeUnit.SECONDS)
                        .until(() -> relay.subscriptions().stream().allMatch(s -> s.state() == Subscription.State.RUNNING));
                // The relay's connections stall (as behind its reconnect backoff) while Redis restarts empty.
                proxy.freezeAll();
                server.kill();
                server.restart();
                Awaitility.await().atMost(30, TimeUnit.SECONDS).pollInterval(Duration.ofMillis(200)).ignoreExceptions()
                        .until(() -> gateway.ping() != null);
                int n = 5;
                for (int i = 0; i < n; i++) {
                    gateway.publishInbound(Envelope.of("platform", "webchat", "channel_id", "c" + i, "n", i));
                }
                try (RawRedis raw = new RawRedis(url)) {
                    assertThat(raw.xlen(outbox)).as("stored in the outbox, each answered with its id").isEqualTo(n);
                    proxy.unfreeze();
                    proxy.cutAll();
                    try {
                        Awaitility.await().atMost(30, TimeUnit.SECONDS).until(() -> raw.xlen(in) == n);
                    } catch (ConditionTimeoutException e) {
                        Map<String, String> group = relayBus.groups(outbox).stream().collect(Collectors.toMap(GroupInfo::name,
                                g -> "last-delivered " + g.lastDeliveredId() + ", pending " + g.pending()));
                        throw new AssertionError(n + " publishes stored in " + outbox + " after the restart; moved to " + in + ": "
                                + raw.xlen(in) + "; relay group re-created as " + group, e);
                    }
                }
            }
        } finally {
            server.stop();
        }
    }


    /**
     * The same without a proxy: Redis is killed and comes back empty 4 s later; the gateway's publishes made during the
     * outage are stored in the outbox as soon as Redis is back, while the relay's reader is still in its reconnect
     * backoff. All of them must be moved.
     */
    @Test
    void afterAnEmptyRestartTheRelayMovesThePublishesHeldDuringTheOutage() throws Exception {
        RedisServerProcess server = RedisServerProcess.builder().appendOnly(false).start();
        try {
            RedisUrl url = RedisUrl.parse(server.url());
            Topology t = Topology.builder().namespace("relay-restart-2").build();
            String in = t.inboundStream();
            String outbox = t.gatewayOutbox("webchat");
            try (EventBus gateway = EventBus.connect(url, config(t, NodeRole.GATEWAY, "g1"));
                 EventBus relayBus = EventBus.connect(url, config(t, NodeRole.RELAY, "r1"));
                 Relay relay = Relay.start(relayBus)) {
                gateway.ensureStreams();
                Awaitility.await().atMost(10, TimeUnit.SECONDS)
                        .until(() -> relay.subscriptions().stream().allMatch(s -> s.state() == Subscription.State.RUNNING));
                server.kill();
                int n = 5;
                List<java.util.concurrent.CompletableFuture<String>> sent = new java.util.ArrayList<>();
                for (int i = 0; i < n; i++) {
                    sent.add(gateway.publishInboundAsync(Envelope.of("platform", "webchat", "channel_id", "c" + i, "n", i)));
                }
                // A 4-second outage (not a wait for a condition).
                Awaitility.await().pollDelay(Duration.ofSeconds(4)).atMost(Duration.ofSeconds(5)).until(() -> true);
                server.restart();
                for (int i = 0; i < n; i++) {
                    try {
                        sent.get(i).get(20, TimeUnit.SECONDS);
                    } catch (java.util.concurrent.ExecutionException failed) {
                        int k = i; // failed during the outage: published again, now that Redis is back
                        Awaitility.await().atMost(20, TimeUnit.SECONDS).ignoreExceptions().until(() ->
                                gateway.publishInbound(Envelope.of("platform", "webchat", "channel_id", "c" + k, "n", k)) != null);
                    }
                }
                try (RawRedis raw = new RawRedis(url)) {
                    assertThat(raw.xlen(outbox)).as("stored in the outbox, each answered with its id").isEqualTo(n);
                    try {
                        Awaitility.await().atMost(30, TimeUnit.SECONDS).until(() -> raw.xlen(in) == n);
                    } catch (ConditionTimeoutException e) {
                        Map<String, String> group = relayBus.groups(outbox).stream().collect(Collectors.toMap(GroupInfo::name,
                                g -> "last-delivered " + g.lastDeliveredId() + ", pending " + g.pending()));
                        throw new AssertionError(n + " publishes stored in " + outbox + " (ids " + raw.xrange(outbox).stream()
                                .map(m -> m.getId()).toList() + "); moved to " + in + ": " + raw.xlen(in)
                                + "; relay group re-created as " + group, e);
                    }
                }
            }
        } finally {
            server.stop();
        }
    }

    private static String deadErrors(RawRedis raw, String deadStream) {
        return String.join(" | ", raw.xrange(deadStream).stream().map(m -> RawRedis.s(RawRedis.fields(m).get("error"))).toList());
    }

    /**
     * docs/cluster.md, "Changing N safely": the gateways switch to the new SG_INBOUND_PARTITIONS while the relay still runs
     * on the old one. The relay took only its own count's partitions for inbound streams and dead-lettered every entry
     * naming a new partition as forged ("which its role may not write"), each answered with an id at its publish. Any
     * partition of the inbound base under the relay's own count or the one it is given for the change
     * (SG_INBOUND_PARTITIONS_ALSO) is a gateway's to write (found by the review of relay mode).
     */
    @Test
    void duringAPartitionCountChangeARelayOnTheOldCountMovesTheEntriesOfGatewaysOnTheNewCount() {
        String ns = TestRedis.namespace();
        Topology oldN = Topology.builder().namespace(ns).build();
        Topology newN = Topology.builder().namespace(ns).inboundPartitions(2).build();
        String outbox = oldN.gatewayOutbox("webchat");
        Topology relayN = oldN.toBuilder().alsoInboundPartitions(2).build();
        try (EventBus relayBus = EventBus.connect(TestRedis.url(), config(relayN, NodeRole.RELAY, "relay"));
             EventBus newWorker = EventBus.connect(TestRedis.url(), config(newN, NodeRole.WORKER, "w-new"));
             EventBus newGateway = EventBus.connect(TestRedis.url(), config(newN, NodeRole.GATEWAY, "g-new"));
             RawRedis raw = new RawRedis(TestRedis.url());
             Relay relay = Relay.start(relayBus)) {
            newWorker.ensureStreams(); // step 1: the new partitions' groups first
            newGateway.ensureStreams();
            String target = newN.inboundStreamFor("c1");
            newGateway.publishInbound(Envelope.of("platform", "webchat", "channel_id", "c1", "content", "hi"));
            Awaitility.await().atMost(15, TimeUnit.SECONDS)
                    .until(() -> raw.xlen(target) == 1 || raw.xlen(oldN.deadLetterStream(outbox)) > 0);
            assertThat(deadErrors(raw, oldN.deadLetterStream(outbox))).as("outbox dead letters").isEmpty();
            assertThat(raw.xlen(target)).isEqualTo(1);
        }
    }

    /** The other order: the relay already on the new count, gateways still on the old one (the single stream). */
    @Test
    void duringAPartitionCountChangeARelayOnTheNewCountMovesTheEntriesOfGatewaysStillOnTheOldCount() {
        String ns = TestRedis.namespace();
        Topology oldN = Topology.builder().namespace(ns).build();
        Topology newN = Topology.builder().namespace(ns).inboundPartitions(2).build();
        String outbox = oldN.gatewayOutbox("webchat");
        Topology relayN = newN.toBuilder().alsoInboundPartitions(1).build();
        try (EventBus relayBus = EventBus.connect(TestRedis.url(), config(relayN, NodeRole.RELAY, "relay"));
             EventBus oldWorker = EventBus.connect(TestRedis.url(), config(oldN, NodeRole.WORKER, "w-old"));
             EventBus oldGateway = EventBus.connect(TestRedis.url(), config(oldN, NodeRole.GATEWAY, "g-old"));
             RawRedis raw = new RawRedis(TestRedis.url());
             Relay relay = Relay.start(relayBus)) {
            oldWorker.ensureStreams();
            oldGateway.ensureStreams();
            String target = oldN.inboundStream();
            oldGateway.publishInbound(Envelope.of("platform", "webchat", "channel_id", "c1", "content", "hi"));
            Awaitility.await().atMost(15, TimeUnit.SECONDS)
                    .until(() -> raw.xlen(target) == 1 || raw.xlen(oldN.deadLetterStream(outbox)) > 0);
            assertThat(deadErrors(raw, oldN.deadLetterStream(outbox))).as("outbox dead letters").isEmpty();
            assertThat(raw.xlen(target)).isEqualTo(1);
        }
    }

    /**
     * A compromised gateway writes its own outbox only; the relay is what keeps it to the streams its role writes. The relay
     * took an inbound partition of any count from 2 to 1024 as a gateway's to write (523 776 names), so forged outbox
     * entries made it create streams no process reads, each with no group and up to the cap. With no count change under
     * way (no SG_INBOUND_PARTITIONS_ALSO) only the topology's own inbound streams are; the others are dead-lettered as
     * refused (found by the second review of relay mode).
     */
    @Test
    void aGatewayOutboxCannotMakeTheRelayWriteInboundPartitionsOfACountNoProcessUses() {
        Topology t = TestRedis.topology();
        String outbox = t.gatewayOutbox("webchat");
        List<String> forged = new java.util.ArrayList<>();
        for (int n : new int[] {7, 333, 1024}) forged.add(Topology.partitionNames(t.inboundStream(), n).get(n - 1));
        try (EventBus relayBus = EventBus.connect(TestRedis.url(), config(t, NodeRole.RELAY, "r1"));
             RawRedis raw = new RawRedis(TestRedis.url())) {
            for (String target : forged) {
                raw.xadd(outbox, "target", target, "dedupe", "", "payload", b("forged"), "trace_id", "t");
            }
            try (Relay relay = Relay.start(relayBus)) {
                Awaitility.await().atMost(30, TimeUnit.SECONDS).until(() -> relayBus.pendingCount(outbox, t.relayGroup()) == 0
                        && raw.xlen(t.deadLetterStream(outbox)) + forged.stream().mapToLong(raw::xlen).sum() == forged.size());
            }
            assertThat(forged.stream().map(raw::xlen).toList()).as("entries written to partitions no process reads: " + forged)
                    .containsOnly(0L);
            assertThat(deadErrors(raw, t.deadLetterStream(outbox))).contains("which its role may not write");
            assertThat(raw.xlen(t.deadLetterStream(outbox))).isEqualTo(forged.size());
        }
    }

    /**
     * A publish for a platform outside SG_PLATFORMS went to that platform's gateway outbox, which the relay never reads (it
     * reads the outboxes of SG_PLATFORMS): answered with an id, never delivered (in direct mode it is). A worker's answer to
     * such a platform went through the workers' outbox and was dead-lettered by the relay as refused. Both are refused at
     * the publish, naming the platform and SG_PLATFORMS, and nothing is written (found by the review of relay mode).
     */
    @Test
    void aPublishForAPlatformOutsideSgPlatformsIsRefusedAtThePublishAndNothingIsWritten() {
        Topology t = TestRedis.topology();
        try (EventBus gateway = EventBus.connect(TestRedis.url(), config(t, NodeRole.GATEWAY, "g1"));
             EventBus worker = EventBus.connect(TestRedis.url(), config(t, NodeRole.WORKER, "w1"));
             RawRedis raw = new RawRedis(TestRedis.url())) {
            gateway.ensureStreams();
            worker.ensureStreams();
            Throwable in = org.assertj.core.api.Assertions.catchThrowable(() ->
                    gateway.publishInbound(Envelope.of("platform", "discord", "channel_id", "d1", "content", "hi")));
            assertThat(in).isInstanceOf(ConfigException.class).hasMessageStartingWith("SG_PLATFORMS: ")
                    .hasMessageContaining("'discord'").hasMessageContaining("[webchat]").hasMessageContaining("nothing was written");
            Throwable out = org.assertj.core.api.Assertions.catchThrowable(() ->
                    worker.publishOutbound("discord", Envelope.of("platform", "discord", "channel_id", "d1", "content", "re")));
            assertThat(out).isInstanceOf(ConfigException.class).hasMessageContaining("'discord'").hasMessageContaining("SG_PLATFORMS");
            assertThat(raw.xlen(t.gatewayOutbox("discord"))).isZero();
            assertThat(raw.xlen(t.workerOutbox())).isZero();
            // The platforms of SG_PLATFORMS go on as before.
            assertThat(gateway.publishInbound(Envelope.of("platform", "webchat", "channel_id", "w1", "content", "hi"))).isNotNull();
            assertThat(raw.xlen(t.gatewayOutbox("webchat"))).isEqualTo(1);
        }
    }

    /**
     * The relay took every dedupe key under reply:<outbox prefix>: for one of its own and dead-lettered the entry. An answer
     * (Delivery.reply) to an entry of an application's own stream named under the prefix carries reply:<that stream>:<id>,
     * which no relay key can equal: it was refused all the same, the source entry acknowledged, the answer never delivered.
     * Only reply:<outbox>:... for an outbox's name is the relay's now (found by the review of relay mode, which met it with
     * SG_OUTBOX_PREFIX a prefix of the inbound name, refused at configuration since).
     */
    @Test
    void anAnswerToAnEntryOfAStreamNamedUnderTheOutboxPrefixReachesItsTarget() {
        Topology t = TestRedis.topology();
        String jobs = t.outboxPrefix() + ":jobs"; // an application's own stream, written directly
        String out = t.outboundStream("webchat");
        try (EventBus worker = EventBus.connect(TestRedis.url(), config(t, NodeRole.WORKER, "w1"));
             EventBus gateway = EventBus.connect(TestRedis.url(), config(t, NodeRole.GATEWAY, "g1"));
             EventBus relayBus = EventBus.connect(TestRedis.url(), config(t, NodeRole.RELAY, "r1"));
             RawRedis raw = new RawRedis(TestRedis.url());
             Relay relay = Relay.start(relayBus)) {
            worker.ensureStreams();
            gateway.ensureStreams();
            try (Subscription s = worker.subscribe(worker.consumer(jobs, "app").build(), d -> d.reply(out,
                    Envelope.of("platform", "webchat", "channel_id", d.envelope().channelId(), "content", "done")).join())) {
                worker.publish(jobs, Envelope.of("channel_id", "c1", "content", "job"));
                Awaitility.await().atMost(15, TimeUnit.SECONDS).until(() -> raw.xlen(out) == 1
                        || raw.xlen(t.deadLetterStream(t.workerOutbox())) > 0);
            }
            assertThat(deadErrors(raw, t.deadLetterStream(t.workerOutbox()))).as("workers' outbox dead letters").isEmpty();
            assertThat(raw.xlen(out)).isEqualTo(1);
        }
        // The relay's own keys, of every outbox, stay refused (see anOutboxEntryNamingATargetItsRoleMayNotWriteIsRefusedAndDeadLettered).
    }

    /**
     * The node started the relay with the SG_* consumer settings, SG_RETRY_ORDER included: with unordered, a channel's later
     * outbox entries were moved while its earlier one waited for its retry, so the relay could put one channel's entries in
     * another order than their writer's (docs/functions.md promises order through one relay). The relay's subscriptions keep
     * ordered retries whatever they are given. Here the channel's first entry fails (its target is not a stream) and is
     * retried after 2 s, then dead-lettered; its second is moved only after that.
     */
    @Test
    void theRelayKeepsAChannelInOrderThroughRetriesEvenWhenGivenUnorderedRetries() {
        Topology t = TestRedis.topology();
        String outbox = t.gatewayOutbox("webchat");
        String in = t.inboundStream();
        String notAStream = t.deadLetterStream(t.outboundStream("webchat"));
        try (EventBus relayBus = EventBus.connect(TestRedis.url(), config(t, NodeRole.RELAY, "r7"));
             RawRedis raw = new RawRedis(TestRedis.url())) {
            raw.sync().set(b(notAStream), b("a string, so every move to it fails"));
            raw.xadd(outbox, "target", notAStream, "dedupe", "", "payload",
                    io.stargazer.bus.wire.WireFormat.encode(Envelope.of("platform", "webchat", "channel_id", "c1", "content", "first")), "trace_id", "t1");
            raw.xadd(outbox, "target", in, "dedupe", "", "payload",
                    io.stargazer.bus.wire.WireFormat.encode(Envelope.of("platform", "webchat", "channel_id", "c1", "content", "second")), "trace_id", "t2");
            try (Relay relay = Relay.start(relayBus, c -> c.retryOrder(RetryOrder.UNORDERED).maxDeliveries(2)
                    .retryBackoff(Duration.ofSeconds(2)).maxRetryBackoff(Duration.ofSeconds(2)))) {
                Awaitility.await().atMost(30, TimeUnit.SECONDS).until(() -> raw.xlen(t.deadLetterStream(outbox)) == 1 && raw.xlen(in) == 1);
            }
            String deadId = raw.xrange(t.deadLetterStream(outbox)).get(0).getId();
            String movedId = raw.xrange(in).get(0).getId();
            // Ids of two streams order their writes only to the millisecond: the move that follows the dead letter in the
            // same millisecond has an equal id (the CI run of 662788c). Unordered, the second was moved at once, about 2 s
            // before the first was dead-lettered.
            assertThat(StreamEntry.compareIds(movedId, deadId)).as("second moved (" + movedId + ") not before the first was settled ("
                    + deadId + ")").isGreaterThanOrEqualTo(0);
        }
    }
}
