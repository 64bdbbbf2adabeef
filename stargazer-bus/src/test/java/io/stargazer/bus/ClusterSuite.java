// Promise: on a real Redis Cluster (3 primaries + 3 replicas) the bus works end to end with 6 inbound partitions
// spread over every shard, keeps per-channel order, serves outbound, tools and reply streams, and after a primary is
// killed mid-stream recovers on its own: every publish acknowledged after the failover arrives, and every channel's
// answers stay in order through the failover.
package io.stargazer.bus;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.stargazer.bus.testing.Sample;
import io.stargazer.bus.testing.TestRedis;
import io.stargazer.bus.tools.TestTools;
import io.stargazer.bus.tools.ToolClient;
import io.stargazer.bus.tools.ToolRegistry;
import io.stargazer.bus.tools.ToolService;
import io.stargazer.embedded.RedisServerProcess;
import io.stargazer.testing.RedisClusterProcess;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.Executor;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicIntegerArray;
import java.util.concurrent.atomic.AtomicLong;
import java.util.stream.IntStream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestMethodOrder;
import org.junit.jupiter.api.Timeout;

/** The cluster tests, run by {@link ClusterIT} on the default redis-server and by {@link ClusterRedis62IT} on 6.2. */
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
abstract class ClusterSuite {
    static final int PARTITIONS = 6;
    static final Duration WAIT = Duration.ofSeconds(30);

    static RedisClusterProcess cluster;
    static RedisUrl url;

    static void startCluster(RedisClusterProcess.Builder builder) {
        cluster = builder.start();
        url = RedisUrl.parse(cluster.url());
    }

    @AfterAll
    static void stopCluster() {
        if (cluster != null) cluster.close();
        cluster = null;
    }

    static BusConfig.Builder config(NodeRole role) {
        Topology t = Topology.builder().namespace(TestRedis.namespace()).inboundPartitions(PARTITIONS).build();
        return TestRedis.config(role).topology(t);
    }

    static String channel(int i) {
        return "room-" + i;
    }

    @Test
    @Order(1)
    void inboundPartitionsLandOnEveryShardTwoEach() {
        Topology t = config(NodeRole.WORKER).build().topology();
        Map<Integer, Integer> perPrimary = new HashMap<>();
        for (String stream : t.inboundStreams()) {
            assertThat(cluster.keySlot(stream)).isEqualTo(Topology.slot(stream));
            perPrimary.merge(cluster.primaryFor(stream).port(), 1, Integer::sum);
        }
        assertThat(perPrimary).hasSize(3);
        assertThat(perPrimary.values()).containsOnly(2);
    }

    @Test
    @Order(2)
    void endToEndWithSixPartitionsKeepsEveryMessageAndPerChannelOrder() throws Exception {
        int threads = 4;
        int channels = 48;
        int perChannel = 40;
        BusConfig workerConfig = config(NodeRole.WORKER).build();
        Map<String, List<Integer>> seen = new ConcurrentHashMap<>();
        AtomicInteger received = new AtomicInteger();
        try (EventBus worker = EventBus.connect(url, workerConfig);
             EventBus publisher = EventBus.connect(url, workerConfig.toBuilder().role(NodeRole.GATEWAY).nodeId("pub").build())) {
            assertThat(worker.serverVersion()).isNotBlank();
            worker.ensureStreams();
            Subscription sub = worker.subscribeInbound(b -> b.concurrency(4), d -> {
                // Handlers of one channel never run at once, so this list is appended in handling order.
                seen.computeIfAbsent(d.envelope().channelId(), k -> new CopyOnWriteArrayList<>()).add(((Long) d.envelope().get("seq")).intValue());
                received.incrementAndGet();
            });
            assertThat(sub.partitions()).hasSize(PARTITIONS);
            assertThat(sub.partitions()).extracting(Subscription::stream).containsExactlyElementsOf(workerConfig.topology().inboundStreams());

            // Each channel is published by one thread, in order; the threads interleave freely.
            CountDownLatch done = new CountDownLatch(threads);
            List<Throwable> errors = new CopyOnWriteArrayList<>();
            for (int t = 0; t < threads; t++) {
                int me = t;
                new Thread(() -> {
                    try {
                        List<CompletableFuture<String>> ids = new ArrayList<>();
                        for (int seq = 0; seq < perChannel; seq++) {
                            for (int c = me; c < channels; c += threads) {
                                ids.add(publisher.publishInboundAsync(Envelope.of("platform", "webchat", "channel_id", channel(c),
                                        "seq", seq)));
                            }
                        }
                        CompletableFuture.allOf(ids.toArray(CompletableFuture[]::new)).join();
                    } catch (Throwable e) {
                        errors.add(e);
                    } finally {
                        done.countDown();
                    }
                }, "publisher-" + t).start();
            }
            assertThat(done.await(60, TimeUnit.SECONDS)).isTrue();
            assertThat(errors).isEmpty();
            await().atMost(WAIT).until(() -> received.get() >= channels * perChannel);
            assertThat(received.get()).isEqualTo(channels * perChannel);
            for (int c = 0; c < channels; c++) {
                List<Integer> expected = new ArrayList<>();
                for (int s = 0; s < perChannel; s++) expected.add(s);
                assertThat(seen.get(channel(c))).as(channel(c)).containsExactlyElementsOf(expected);
            }
            // Every partition carried traffic, and its stream holds what went to it.
            for (Subscription p : sub.partitions()) {
                assertThat(p.stats().delivered()).as(p.stream()).isPositive();
                assertThat(worker.streamInfo(p.stream()).orElseThrow().length()).isEqualTo(p.stats().delivered());
            }
            assertThat(sub.state()).isEqualTo(Subscription.State.RUNNING);
            await().atMost(WAIT).until(() -> sub.stats().acknowledged() == channels * perChannel);
            for (String s : workerConfig.topology().inboundStreams()) {
                assertThat(worker.pendingCount(s, workerConfig.topology().workerGroup())).isZero();
            }
            sub.close();
            assertThat(sub.state()).isEqualTo(Subscription.State.STOPPED);
        }
    }

    /** Relay mode moves an entry between two slots in one script: refused at connect, naming the setting. */
    @Test
    @Order(2)
    void relayModeIsRefusedOnACluster() {
        org.assertj.core.api.Assertions.assertThatThrownBy(() -> EventBus.connect(url, config(NodeRole.GATEWAY)
                .publishVia(PublishVia.RELAY).build())).isInstanceOf(ConfigException.class).hasMessageContaining("SG_PUBLISH_VIA")
                .hasMessageContaining("single");
    }

    /**
     * A stream without a hash tag keeps its dedupe hashes under {@code {<stream>}:dedupe:N}, in the stream's slot unless
     * the name holds a '}' (Redis then takes the tag only up to it): {@code a}b}, {@code room{}1}. A keyed publish to such
     * a stream cannot be one script on a cluster; it was sent and refused by Redis with CROSSSLOT (and, coalesced with
     * plain publishes, failed them too). It fails before it is sent, naming the stream and why; exactly the names whose
     * hashes lie in another slot are refused, so every name that took keyed publishes still does.
     */
    @Test
    @Order(2)
    void aKeyedPublishToAStreamWhoseDedupeHashesLieInAnotherSlotFailsAtOnceNamingIt() {
        String ns = TestRedis.namespace();
        try (EventBus bus = EventBus.connect(url, config(NodeRole.GATEWAY).build())) {
            for (String stream : List.of(ns + ":app}events", ns + ":room{}1", "}" + ns, ns + ":{tag}x}y", ns + ":a{b", ns + ":plain")) {
                boolean ownSlot = io.lettuce.core.cluster.SlotHash.getSlot(Topology.slotKey(stream, "dedupe:0"))
                        == io.lettuce.core.cluster.SlotHash.getSlot(stream);
                assertThat(bus.publish(stream, Envelope.of("channel_id", "c"))).as(stream).isNotNull();
                if (ownSlot) {
                    String id = bus.publish(stream, Envelope.of("channel_id", "c"), PublishOptions.dedupeKey("k1"));
                    assertThat(bus.publish(stream, Envelope.of("channel_id", "c"), PublishOptions.dedupeKey("k1"))).as(stream).isEqualTo(id);
                } else {
                    org.assertj.core.api.Assertions.assertThatThrownBy(() -> bus.publish(stream, Envelope.of("channel_id", "c"),
                            PublishOptions.dedupeKey("k1"))).as(stream).isInstanceOf(ConfigException.class)
                            .hasMessageContaining("'" + stream + "'").hasMessageContaining("another slot")
                            .hasMessageNotContaining("CROSSSLOT");
                    // Plain publishes to it go on.
                    assertThat(bus.publish(stream, Envelope.of("channel_id", "c"))).as(stream).isNotNull();
                }
            }
            assertThat(io.lettuce.core.cluster.SlotHash.getSlot(Topology.slotKey(ns + ":app}events", "dedupe:0")))
                    .isNotEqualTo(io.lettuce.core.cluster.SlotHash.getSlot(ns + ":app}events"));
        }
    }

    /**
     * Dead letters on a cluster: stored once through the dead-letter script, whose keys (the dead-letter stream and its
     * dedupe hashes) share a slot: a partition's (hash tag kept), an untagged name's ({@code {<name>}:dedupe:N}); and a
     * dead-letter stream whose hashes lie in another slot (a '}' without a tag) still gets its dead letters, by a plain
     * XADD, instead of a CROSSSLOT refusal that would leave the entry pending for ever.
     */
    @Test
    @Order(2)
    void deadLettersAreStoredOnEveryKindOfStreamName() {
        String ns = TestRedis.namespace();
        BusConfig c = config(NodeRole.WORKER).build();
        List<String> streams = List.of(c.topology().inboundStreams().get(0), ns + ":plain", ns + ":app}events");
        try (EventBus bus = EventBus.connect(url, c)) {
            for (String stream : streams) {
                bus.ensureGroup(stream, "g");
                try (Subscription s = bus.subscribe(ConsumerConfig.builder(stream, "g").consumerName("c").maxDeliveries(1)
                        .blockTimeout(Duration.ofMillis(100)).build(), d -> {
                            throw new IllegalStateException("always fails");
                        })) {
                    String id = bus.publish(stream, Envelope.of("channel_id", "c"));
                    await().atMost(WAIT).until(() -> bus.pendingCount(stream, "g") == 0 && s.stats().deadLettered() == 1);
                    List<StreamEntry> dead = TestRedis.readAll(bus, stream + ":dead");
                    assertThat(dead).as(stream).hasSize(1);
                    assertThat(bus.deadLetters().get(dead.get(0).id(), DeadLetterFilter.builder().stream(stream + ":dead").build()))
                            .as(stream).map(DeadLetter::sourceId).contains(id);
                }
            }
        }
    }

    @Test
    @Order(3)
    void outboundToolsAndReplyStreamsWorkOnTheCluster() {
        BusConfig base = config(NodeRole.STANDALONE).platforms(List.of("discord")).build();
        List<String> delivered = new CopyOnWriteArrayList<>();
        try (EventBus gateway = EventBus.connect(url, base.toBuilder().role(NodeRole.GATEWAY).nodeId("gw").build());
             EventBus worker = EventBus.connect(url, base.toBuilder().role(NodeRole.WORKER).nodeId("w1").build());
             EventBus toolsBus = EventBus.connect(url, base.toBuilder().role(NodeRole.TOOLS).nodeId("tools-1").build())) {
            gateway.ensureStreams();
            Topology t = base.topology();
            try (Subscription out = gateway.subscribe(gateway.consumer(t.outboundStream("discord"), t.gatewayGroup("discord")).build(),
                    d -> delivered.add(d.envelope().content()))) {
                for (int i = 0; i < 20; i++) {
                    worker.publishOutbound("discord", Envelope.of("platform", "discord", "channel_id", "c" + (i % 3), "content", "m" + i));
                }
                await().atMost(WAIT).until(() -> delivered.size() == 20);
                assertThat(new HashSet<>(delivered)).hasSize(20);
            }
            toolsBus.ensureStreams();
            try (ToolService service = ToolService.start(toolsBus, TestTools.register(ToolRegistry.builder()).build());
                 ToolClient client = ToolClient.create(worker)) {
                List<CompletableFuture<Object>> calls = new ArrayList<>();
                for (int i = 0; i < 30; i++) {
                    calls.add(client.call("mul", Map.of("a", i, "b", 2), Duration.ofSeconds(20)));
                }
                for (int i = 0; i < 30; i++) {
                    assertThat(calls.get(i).join()).isEqualTo((long) i * 2);
                }
                assertThat(client.stats().lateReplies()).isZero();
            }
        }
    }

    /**
     * Publishes one message at a time (retrying a failed publish after 100 ms, without blocking a thread) while a
     * primary that serves two partitions is killed. Publishes acknowledged after the failover completed must all
     * arrive; those acknowledged just before may be lost (asynchronous replication): counted and reported.
     */
    @Test
    @Order(4)
    void afterAPrimaryIsKilledMidStreamEverythingAcknowledgedAfterTheFailoverArrives() {
        BusConfig workerConfig = config(NodeRole.WORKER).build();
        Topology t = workerConfig.topology();
        int channels = 24;
        int total = 200_000;
        Set<Integer> received = ConcurrentHashMap.newKeySet();
        AtomicIntegerArray ackedAtPhase = new AtomicIntegerArray(total);
        AtomicInteger phase = new AtomicInteger(); // 1 = before the kill, 2 = failing over, 3 = failover complete
        AtomicInteger acked = new AtomicInteger();
        AtomicInteger firstAfterFailover = new AtomicInteger(Integer.MAX_VALUE);
        AtomicLong publishErrors = new AtomicLong();
        AtomicBoolean stop = new AtomicBoolean();
        CompletableFuture<Void> publishing = new CompletableFuture<>();
        Executor retryLater = CompletableFuture.delayedExecutor(100, TimeUnit.MILLISECONDS);
        try (EventBus worker = EventBus.connect(url, workerConfig);
             EventBus publisher = EventBus.connect(url, workerConfig.toBuilder().role(NodeRole.GATEWAY).nodeId("pub-f").build())) {
            worker.ensureStreams();
            Subscription sub = worker.subscribeInbound(b -> b.concurrency(2).claimIdle(Duration.ofSeconds(2)),
                    d -> received.add(((Long) d.envelope().get("seq")).intValue()));
            String victimStream = t.inboundStreams().get(0);
            RedisServerProcess victim = cluster.primaryFor(victimStream);
            List<String> victimStreams = t.inboundStreams().stream().filter(s -> cluster.primaryFor(s) == victim).toList();
            assertThat(victimStreams).hasSize(2);
            phase.set(1);

            class Publish {
                void send(int seq) {
                    if (seq == total || stop.get()) {
                        publishing.complete(null);
                        return;
                    }
                    int startedIn = phase.get();
                    publisher.publishInboundAsync(Envelope.of("platform", "webchat", "channel_id", channel(seq % channels), "seq", seq))
                            .whenComplete((id, e) -> {
                                if (e != null) {
                                    publishErrors.incrementAndGet();
                                    CompletableFuture.runAsync(() -> send(seq), retryLater);
                                    return;
                                }
                                ackedAtPhase.set(seq, startedIn);
                                acked.incrementAndGet();
                                if (startedIn == 3) firstAfterFailover.accumulateAndGet(seq, Math::min);
                                CompletableFuture.runAsync(() -> send(seq + 1));
                            });
                }
            }
            new Publish().send(0);

            await().atMost(WAIT).until(() -> acked.get() >= 1000 && received.size() >= 500);
            phase.set(2);
            victim.kill();
            cluster.awaitHealthy(WAIT);
            phase.set(3);
            RedisServerProcess promoted = cluster.primaryFor(victimStream);
            assertThat(promoted).isNotSameAs(victim);

            // Publishers recover on their own: publishes started after the failover are acknowledged, 1000 of them.
            await().atMost(WAIT).until(() -> firstAfterFailover.get() != Integer.MAX_VALUE
                    && acked.get() - firstAfterFailover.get() >= 1000 || publishing.isDone());
            stop.set(true);
            await().atMost(WAIT).until(publishing::isDone);
            int first = firstAfterFailover.get();
            int end = acked.get();
            assertThat(first).isLessThan(end);

            // Consumers recover on their own: every publish acknowledged after the failover arrives.
            await().atMost(WAIT).untilAsserted(() -> {
                List<Integer> missing = new ArrayList<>();
                for (int s = first; s < total; s++) {
                    if (ackedAtPhase.get(s) == 3 && !received.contains(s)) missing.add(s);
                }
                assertThat(missing).as("acknowledged after the failover, not received").isEmpty();
            });
            await().atMost(WAIT).until(() -> sub.state() == Subscription.State.RUNNING);

            // Before the failover: only entries of the killed primary's partitions may be lost, never others.
            int lost = 0;
            int ackedBefore = 0;
            for (int s = 0; s < first; s++) {
                if (ackedAtPhase.get(s) == 0) continue;
                ackedBefore++;
                if (!received.contains(s)) {
                    lost++;
                    assertThat(victimStreams).as("lost seq " + s).contains(t.inboundStreamFor(channel(s % channels)));
                }
            }
            System.out.printf("cluster failover: acknowledged before/while failing over %d, lost of those %d (all on the killed "
                    + "primary's partitions); acknowledged after %d, lost 0; publish errors retried %d%n",
                    ackedBefore, lost, end - first, publishErrors.get());
            sub.close();
        }
    }

    /**
     * Issue 20 on a cluster: a gateway publishes 50 channels, each strictly in order (the next seq only once the
     * previous one is stored; a failed publish is retried), a worker answers each entry on the outbound stream, and the
     * primary holding that outbound stream is killed under this traffic (while the worker's answers fail, its handler
     * fails). Every channel's answers must stand in order in the outbound stream: an answer lost with the dead primary
     * leaves a gap, and one repeated after a redelivery counts where it first appeared. Prints the time from the kill to
     * the cluster being whole again and to the first answer written after the kill.
     */
    @Test
    @Order(5)
    @Timeout(value = 4, unit = TimeUnit.MINUTES)
    void afterThePrimaryOfTheAnswersIsKilledEveryChannelsAnswersStayInOrder() throws Exception {
        Topology t = config(NodeRole.WORKER).build().topology();
        String platform = platformOnAPrimaryWithALiveReplica(t);
        String answers = t.outboundStream(platform);
        RedisServerProcess victim = cluster.primaryFor(answers);
        BusConfig workerConfig = config(NodeRole.WORKER).topology(t).platforms(List.of(platform)).build();
        int channels = 50;
        AtomicLong killedAt = new AtomicLong();
        AtomicLong firstAnswerAfterKill = new AtomicLong();
        AtomicIntegerArray lastStored = new AtomicIntegerArray(channels);
        for (int c = 0; c < channels; c++) lastStored.set(c, -1);
        AtomicBoolean stop = new AtomicBoolean();
        CountDownLatch chainsEnded = new CountDownLatch(channels);
        AtomicLong publishRetries = new AtomicLong();
        ScheduledExecutorService timer = Executors.newSingleThreadScheduledExecutor();
        try (EventBus worker = EventBus.connect(url, workerConfig);
             EventBus gateway = EventBus.connect(url, workerConfig.toBuilder().role(NodeRole.GATEWAY).nodeId("gw-order").build())) {
            worker.ensureStreams();
            Subscription sub = worker.subscribeInbound(b -> b.concurrency(8).claimIdle(Duration.ofSeconds(2)), d -> {
                Envelope in = d.envelope();
                worker.publishOutbound(platform, Envelope.of("platform", platform, "channel_id", in.channelId(), "type", "message",
                        "seq", in.get("seq")));
                if (killedAt.get() != 0) firstAnswerAfterKill.compareAndSet(0, System.nanoTime());
            });

            // One chain per channel: publish seq, and only once it is stored, seq + 1 (250 a second in all).
            class Chain {
                final int channel;

                Chain(int channel) {
                    this.channel = channel;
                }

                void publish(int seq) {
                    gateway.publishInboundAsync(Envelope.of("platform", "webchat", "channel_id", channel(channel), "seq", seq))
                            .whenComplete((id, e) -> {
                                if (e != null) {
                                    publishRetries.incrementAndGet();
                                    timer.schedule(() -> publish(seq), 100, TimeUnit.MILLISECONDS);
                                    return;
                                }
                                lastStored.set(channel, seq);
                                if (stop.get()) {
                                    chainsEnded.countDown();
                                    return;
                                }
                                timer.schedule(() -> publish(seq + 1), 200, TimeUnit.MILLISECONDS);
                            });
                }
            }
            for (int c = 0; c < channels; c++) new Chain(c).publish(0);
            await().atMost(WAIT).until(() -> IntStream.range(0, channels).allMatch(c -> lastStored.get(c) >= 4));

            killedAt.set(System.nanoTime());
            victim.kill();
            cluster.awaitHealthy(WAIT);
            long wholeAt = System.nanoTime();
            assertThat(cluster.primaryFor(answers)).isNotSameAs(victim);
            int[] atWhole = IntStream.range(0, channels).map(lastStored::get).toArray();
            await().atMost(Duration.ofSeconds(60))
                    .until(() -> IntStream.range(0, channels).allMatch(c -> lastStored.get(c) >= atWhole[c] + 10));
            stop.set(true);
            assertThat(chainsEnded.await(60, TimeUnit.SECONDS)).as("every publishing chain ended").isTrue();

            // Every channel's last entry is answered, and nothing is left pending (failed answers retried).
            await().atMost(Duration.ofSeconds(90)).until(() -> {
                Map<String, List<Integer>> got = answersByChannel(worker, answers);
                return IntStream.range(0, channels).allMatch(c -> got.getOrDefault(channel(c), List.of()).contains(lastStored.get(c)))
                        && t.inboundStreams().stream().mapToLong(s -> worker.pendingCount(s, t.workerGroup())).sum() == 0;
            });
            Map<String, List<Integer>> got = answersByChannel(worker, answers);
            List<String> outOfOrder = new ArrayList<>();
            int overtaken = 0;
            int total = 0;
            for (int c = 0; c < channels; c++) {
                List<Integer> firsts = new ArrayList<>(new LinkedHashSet<>(got.getOrDefault(channel(c), List.of())));
                total += firsts.size();
                int highest = -1;
                for (int s : firsts) {
                    if (s < highest) overtaken++;
                    highest = Math.max(highest, s);
                }
                if (!firsts.equals(firsts.stream().sorted().toList())) outOfOrder.add(channel(c) + " " + firsts);
            }
            long deadLettered = t.inboundStreams().stream().mapToLong(s -> worker.streamInfo(t.deadLetterStream(s))
                    .map(StreamInfo::length).orElse(0L)).sum();
            System.out.printf("cluster failover order: kill to cluster whole %d ms, kill to first answer written after it %s; "
                    + "%d answers over %d channels, %d channels out of order, %d answers came after a later one of their channel; "
                    + "publish retries %d, dead-lettered %d%n", (wholeAt - killedAt.get()) / 1_000_000,
                    firstAnswerAfterKill.get() == 0 ? "never" : (firstAnswerAfterKill.get() - killedAt.get()) / 1_000_000 + " ms",
                    total, channels, outOfOrder.size(), overtaken, publishRetries.get(), deadLettered);
            assertThat(outOfOrder.size()).as(outOfOrder.size() + " of " + channels + " channels' answers out of order (" + overtaken
                    + " answers after a later one of their channel): " + Sample.of(outOfOrder, 2)).isZero();
            sub.close();
        } finally {
            timer.shutdownNow();
        }
    }

    /** A platform whose outbound stream is served by a primary that has a live replica, so killing it fails over. */
    private static String platformOnAPrimaryWithALiveReplica(Topology t) {
        int perPrimary = cluster.replicas().size() / cluster.primaries().size();
        for (int i = 0; i < 200; i++) {
            String platform = "p" + i;
            int index = cluster.primaries().indexOf(cluster.primaryFor(t.outboundStream(platform)));
            if (index >= 0 && cluster.replicas().subList(index * perPrimary, (index + 1) * perPrimary).stream()
                    .anyMatch(RedisServerProcess::isAlive)) {
                return platform;
            }
        }
        throw new IllegalStateException("no primary with a live replica is left in " + cluster);
    }

    /** The answers in the outbound stream, per channel in stream order (their seq). */
    private static Map<String, List<Integer>> answersByChannel(EventBus bus, String stream) {
        Map<String, List<Integer>> out = new HashMap<>();
        String after = "0";
        while (true) {
            List<StreamEntry> batch = bus.read(stream, after, 1000);
            if (batch.isEmpty()) return out;
            for (StreamEntry e : batch) {
                if (e.envelope() != null) {
                    out.computeIfAbsent(e.envelope().channelId(), k -> new ArrayList<>()).add((int) e.envelope().longValue("seq", -1));
                }
            }
            after = batch.get(batch.size() - 1).id();
        }
    }
}
