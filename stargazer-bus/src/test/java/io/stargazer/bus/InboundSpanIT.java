package io.stargazer.bus;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.stargazer.bus.internal.BusInternals;
import io.stargazer.bus.testing.Closer;
import io.stargazer.bus.testing.RawRedis;
import io.stargazer.bus.testing.TcpProxy;
import io.stargazer.bus.testing.TestRedis;
import io.stargazer.embedded.RedisServerProcess;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.atomic.AtomicBoolean;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

// On a single server the inbound partitions' plain publishes share one publisher whose batches span the partitions
// (StreamPublisher's class comment): what that may never do is reorder a channel, lose a publish, or blur which stream
// a failure or a limit belongs to.
class InboundSpanIT {
    private static final int PARTITIONS = 6;
    private final Closer closer = new Closer();

    @AfterEach
    void close() throws Exception {
        closer.close();
    }

    private RedisServerProcess ownServer() {
        return closer.add(RedisServerProcess.builder().appendOnly(false).start());
    }

    private static Topology partitioned() {
        return partitioned(PARTITIONS);
    }

    private static Topology partitioned(int partitions) {
        return Topology.builder().namespace(TestRedis.namespace()).inboundPartitions(partitions).build();
    }

    private EventBus bus(RedisUrl url, Topology t, java.util.function.UnaryOperator<BusConfig.Builder> tune) {
        return closer.add(EventBus.connect(url, tune.apply(BusConfig.builder().topology(t).role(NodeRole.GATEWAY)
                .nodeId("span-" + TestRedis.namespace()).backlogCheckInterval(Duration.ofHours(1))).build()));
    }

    private static List<String> oneChannelPerPartition(Topology t) {
        return TestRedis.oneChannelPerPartition(PARTITIONS);
    }

    private static Envelope message(String channel, int n) {
        return Envelope.of("platform", "test", "channel_id", channel, "n", n);
    }

    /**
     * Plain publishes to six (or twelve) partitions queued at one moment are written as one command, as they would be to
     * one stream: before, each partition's publisher wrote its own batch (at least six scripts for what queued behind the
     * frozen connection). Each entry is stored once, in its channel's partition, in the order it was published, and each
     * publish is answered in the order it was made. Twelve:
     * a batch that names more streams than the grouping's first guess (eight) holds.
     */
    @ParameterizedTest
    @ValueSource(ints = {PARTITIONS, 12})
    void plainPublishesToEveryPartitionQueuedAtOnceGoOutAsOneBatch(int partitions) {
        RedisUrl url = RedisUrl.parse(ownServer().url());
        TcpProxy proxy = closer.add(TcpProxy.to(url));
        Topology t = partitioned(partitions);
        EventBus bus = bus(proxy.url(), t, b -> b.publishBatchMax(1000));
        assertThat(bus.serverCode()).isEqualTo(ServerCodeMode.SCRIPTS);
        List<String> channels = TestRedis.oneChannelPerPartition(partitions);
        try (RawRedis raw = new RawRedis(url)) {
            // The trim guard's first look at each stream is a script too: let those run before counting.
            for (String c : channels) bus.publishInboundAsync(message(c, -1)).join();
            await().atMost(Duration.ofSeconds(10)).until(() -> raw.commandCalls("eval") >= partitions);
            long before = raw.commandCalls("eval");
            proxy.freezeAll();
            List<CompletableFuture<String>> futures = new ArrayList<>();
            java.util.Queue<Integer> answered = new java.util.concurrent.ConcurrentLinkedQueue<>();
            for (int n = 0; n < 600 / partitions; n++) {
                for (String c : channels) {
                    int i = futures.size();
                    futures.add(bus.publishInboundAsync(message(c, n)));
                    futures.get(i).whenComplete((id, e) -> answered.add(i));
                }
            }
            proxy.unfreeze();
            CompletableFuture.allOf(futures.toArray(CompletableFuture[]::new)).join();
            await().atMost(Duration.ofSeconds(10)).until(() -> answered.size() == futures.size());
            // Answered in the order they were published, as publishes to one stream are, though the batch was written
            // grouped by stream: a publisher waiting on its window is woken once for its run of answers, not once for
            // each stream's part of it.
            assertThat(List.copyOf(answered)).as("the order the publishes were answered in")
                    .isEqualTo(java.util.stream.IntStream.range(0, futures.size()).boxed().toList());
            // What was taken before the rest queued (at most two batches: both places on the wire), then one batch.
            assertThat(raw.commandCalls("eval") - before).as("scripts that carried the 600 publishes").isLessThanOrEqualTo(3);
            java.util.Map<String, Long> stored = new java.util.HashMap<>(); // partition and entry id -> n
            for (int p = 0; p < partitions; p++) {
                String channel = channels.get(p);
                List<StreamEntry> entries = TestRedis.readAll(bus, t.inboundStreams().get(p));
                assertThat(entries).allMatch(e -> channel.equals(e.envelope().channelId()));
                assertThat(entries.stream().map(e -> e.envelope().longValue("n", -2)).toList()).as(channel)
                        .hasSize(600 / partitions + 1).isSorted().doesNotHaveDuplicates();
                for (StreamEntry e : entries) stored.put(p + " " + e.id(), e.envelope().longValue("n", -2));
            }
            // The batch went out grouped by stream: each publish is still answered with its own entry's id.
            for (int i = 0; i < futures.size(); i++) {
                assertThat(stored.get(i % partitions + " " + futures.get(i).join())).as("publish %d's id", i).isEqualTo((long) (i / partitions));
            }
        }
    }

    /**
     * One thread's publishes to one channel keep their order whichever way each goes: plain ones through the span, keyed
     * ones and blocking ones through the partition's own publisher, while other threads keep
     * the span busy. A keyed publish made after a plain one still queued in the span must wait for it, and a plain one
     * after a keyed one still unanswered must not pass it through the span.
     */
    @Test
    void aThreadsPublishesToOneChannelKeepTheirOrderWhicheverWayEachGoes() throws Exception {
        RedisUrl url = RedisUrl.parse(ownServer().url());
        TcpProxy proxy = closer.add(TcpProxy.to(url));
        Topology t = partitioned();
        EventBus bus = bus(proxy.url(), t, b -> b.publishBatchMax(64));
        proxy.delay(Duration.ofMillis(1)); // answers come late, so the span's queue is seldom empty
        List<String> channels = oneChannelPerPartition(t);
        AtomicBoolean stop = new AtomicBoolean();
        List<Thread> noise = new ArrayList<>();
        for (int k = 1; k < PARTITIONS; k++) {
            String other = channels.get(k);
            Thread th = new Thread(() -> {
                java.util.concurrent.Semaphore window = new java.util.concurrent.Semaphore(200);
                for (int n = 0; !stop.get(); n++) {
                    window.acquireUninterruptibly();
                    bus.publishInboundAsync(message(other, n)).whenComplete((id, e) -> window.release());
                }
            });
            th.start();
            noise.add(th);
        }
        String channel = channels.get(0);
        List<CompletableFuture<String>> mine = new ArrayList<>();
        try {
            for (int n = 0; n < 600; n++) {
                int k = n % 50;
                if (k == 10 || k == 49) {
                    // Blocking: at 10 after keyed ones (on the partition's own publisher), at 49 after a run of plain
                    // ones still in the span, which a connection of its own would overtake.
                    bus.publishInbound(message(channel, n));
                } else if (k < 10 && k % 2 == 1) {
                    mine.add(bus.publishInboundAsync(message(channel, n), PublishOptions.dedupeKey("k-" + n)));
                } else {
                    mine.add(bus.publishInboundAsync(message(channel, n)));
                }
            }
            CompletableFuture.allOf(mine.toArray(CompletableFuture[]::new)).get(30, java.util.concurrent.TimeUnit.SECONDS);
        } finally {
            stop.set(true);
            for (Thread th : noise) th.join(10_000);
        }
        List<Long> seen = TestRedis.readAll(bus, t.inboundStreams().get(0)).stream()
                .filter(e -> channel.equals(e.envelope().channelId())).map(e -> e.envelope().longValue("n", -1)).toList();
        assertThat(seen).as("channel %s in stream order", channel).hasSize(600).isSorted().doesNotHaveDuplicates();
    }

    /**
     * A span's publish counts against its own stream's queue limit (not the span's), fails at its deadline naming its own
     * stream, and a full partition does not refuse another partition's publishes.
     */
    @Test
    void limitsAndDeadlinesInTheSpanAreEachStreamsOwn() {
        RedisUrl url = RedisUrl.parse(ownServer().url());
        TcpProxy proxy = closer.add(TcpProxy.to(url));
        Topology t = partitioned();
        EventBus bus = bus(proxy.url(), t, b -> b.publishQueueLimit(20).publishTimeout(Duration.ofSeconds(1)));
        List<String> channels = oneChannelPerPartition(t);
        for (String c : channels) bus.publishInboundAsync(message(c, -1)).join();
        proxy.freezeAll();
        // Two publishes, each taken before the next is made, fill the span's two places on the wire: what follows queues.
        String stream2 = t.inboundStreams().get(2);
        List<CompletableFuture<String>> plugs = new ArrayList<>();
        for (int n = 0; n < 2; n++) {
            plugs.add(bus.publishInboundAsync(message(channels.get(2), n)));
            await().atMost(Duration.ofSeconds(5)).until(() -> BusInternals.waiting(bus, stream2) == 0);
        }
        List<CompletableFuture<String>> first = new ArrayList<>();
        for (int n = 0; n < 30; n++) first.add(bus.publishInboundAsync(message(channels.get(0), n)));
        List<CompletableFuture<String>> second = new ArrayList<>();
        for (int n = 0; n < 10; n++) second.add(bus.publishInboundAsync(message(channels.get(1), n)));
        await().atMost(Duration.ofSeconds(10)).until(() -> first.stream().allMatch(CompletableFuture::isDone)
                && second.stream().allMatch(CompletableFuture::isDone) && plugs.stream().allMatch(CompletableFuture::isDone));
        assertThat(plugs).as("written, unanswered at their deadline: named for their own stream").allSatisfy(f ->
                assertThat(f.handle((id, e) -> e).join()).isInstanceOfSatisfying(PublishOutcomeUnknownException.class,
                        e -> assertThat(e.stream()).isEqualTo(stream2)));
        String stream0 = t.inboundStreams().get(0);
        String stream1 = t.inboundStreams().get(1);
        List<Throwable> errors0 = first.stream().map(f -> f.handle((id, e) -> e).join()).toList();
        // 20 fill the stream's limit and fail at their deadline (not sent, or written when the plugs' places came free
        // and then unanswered); the last 10 are refused at once.
        assertThat(errors0.subList(20, 30)).allSatisfy(e -> assertThat(e).isInstanceOfSatisfying(PublishQueueFullException.class,
                full -> assertThat(full.stream()).isEqualTo(stream0)));
        assertThat(errors0.subList(0, 20)).allSatisfy(e -> assertThat(e).isInstanceOf(BusConnectionException.class)
                .hasMessageContaining("'" + stream0 + "'"));
        assertThat(errors0.subList(0, 20)).filteredOn(e -> e instanceof PublishOutcomeUnknownException)
                .allSatisfy(e -> assertThat(((PublishOutcomeUnknownException) e).stream()).isEqualTo(stream0));
        List<Throwable> errors1 = second.stream().map(f -> f.handle((id, e) -> e).join()).toList();
        assertThat(errors1).as("the other partition's publishes: not refused for the first one's queue").allSatisfy(e ->
                assertThat(e).isInstanceOf(BusConnectionException.class).hasMessageContaining("'" + stream1 + "'"));
        // Every count the span held for the partitions was given back: their own publishers write again, and the idle
        // sweep can forget them.
        proxy.unfreeze();
        assertThat(bus.publishInboundAsync(message(channels.get(0), 100), PublishOptions.dedupeKey("after")))
                .succeedsWithin(Duration.ofSeconds(10));
        assertThat(bus.publishInboundAsync(message(channels.get(1), 100))).succeedsWithin(Duration.ofSeconds(10));
        await().atMost(Duration.ofSeconds(15)).until(() -> {
            BusInternals.forgetIdleStreams(bus, Duration.ZERO);
            return BusInternals.publisherCount(bus) == 0;
        });
    }

    /**
     * A partition the server refuses (its key holds a string) fails its own publishes, named for its stream, and not the
     * other partitions' in the same batch: before the span gave each entry its own outcome, the batch's script stopped
     * at the refused entry and every publish in it failed, some of them stored.
     */
    @Test
    void aPartitionTheServerRefusesFailsOnlyItsOwnPublishes() {
        RedisUrl url = RedisUrl.parse(ownServer().url());
        TcpProxy proxy = closer.add(TcpProxy.to(url));
        Topology t = partitioned();
        EventBus bus = bus(proxy.url(), t, b -> b);
        List<String> channels = oneChannelPerPartition(t);
        String broken = t.inboundStreams().get(2);
        try (RawRedis raw = new RawRedis(url)) {
            raw.sync().set(RawRedis.utf8(broken), RawRedis.utf8("not a stream"));
        }
        proxy.freezeAll();
        List<List<CompletableFuture<String>>> futures = new ArrayList<>();
        for (int p = 0; p < PARTITIONS; p++) futures.add(new ArrayList<>());
        for (int n = 0; n < 20; n++) {
            for (int p = 0; p < PARTITIONS; p++) futures.get(p).add(bus.publishInboundAsync(message(channels.get(p), n)));
        }
        proxy.unfreeze();
        for (int p = 0; p < PARTITIONS; p++) {
            for (CompletableFuture<String> f : futures.get(p)) {
                if (p == 2) {
                    assertThat(f).failsWithin(Duration.ofSeconds(10)).withThrowableOfType(java.util.concurrent.ExecutionException.class)
                            .havingCause().isInstanceOfSatisfying(RedisServerException.class, e -> {
                                assertThat(e.code()).isEqualTo("WRONGTYPE");
                                assertThat(e).hasMessageContaining("'" + broken + "'");
                            });
                } else {
                    assertThat(f).as("partition %d", p).succeedsWithin(Duration.ofSeconds(10));
                }
            }
        }
        for (int p = 0; p < PARTITIONS; p++) {
            if (p == 2) continue;
            assertThat(TestRedis.readAll(bus, t.inboundStreams().get(p))).as("partition %d", p).hasSize(20);
        }
    }
}
