package io.stargazer.bus;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.stargazer.bus.internal.ServerCode;
import io.stargazer.bus.testing.RawRedis;
import io.stargazer.bus.testing.TestRedis;
import io.stargazer.embedded.RedisServerProcess;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * A bus that runs the stargazer library's functions ({@code SG_SERVER_CODE=auto}, provisioned server) follows the
 * library while it runs: a Redis that restarts empty (no AOF) has lost it, and the bus runs scripts until it is
 * provisioned again, then functions. Before, every batch of publishes, dedupe-keyed publish and answer was refused with
 * "ERR Function not found" until someone provisioned, and a worker could not answer anything meanwhile.
 */
@Timeout(value = 2, unit = TimeUnit.MINUTES)
class LibraryFollowIT {
    private final Topology t = TestRedis.topology();
    private final BusConfig config = BusConfig.builder().topology(t).role(NodeRole.STANDALONE).nodeId("follow").build();
    /** Inbound contents the worker answered, with {@code Delivery.reply}. */
    private final Set<String> answered = ConcurrentHashMap.newKeySet();
    private RedisServerProcess server;
    private RedisUrl url;

    @BeforeEach
    void start() {
        server = RedisServerProcess.builder().appendOnly(false).start();
        url = RedisUrl.parse(server.url());
        Provisioning.provision(url, config);
    }

    @AfterEach
    void stop() {
        server.stop();
    }

    @Test
    void aServerThatRestartsEmptyHasNoLibraryAndTheBusRunsScriptsUntilItIsProvisionedAgain() throws Exception {
        try (EventBus bus = EventBus.connect(url, config); RawRedis raw = new RawRedis(url)) {
            assertThat(bus.serverCode()).isEqualTo(ServerCodeMode.FUNCTIONS);
            Subscription worker = bus.subscribe(bus.consumer(t.inboundStream(), t.workerGroup()).consumerName("w").build(), d -> {
                d.reply(t.outboundStream("webchat"), Envelope.of("channel_id", d.envelope().channelId(), "content", "re:" + d.envelope().content()))
                        .get(10, TimeUnit.SECONDS);
                answered.add(d.envelope().content());
            });
            publishAll(bus, "before", 50);
            await().atMost(Duration.ofSeconds(20)).until(() -> answered.size() == 50);

            server.kill();
            server.restart(); // empty: no streams, no groups, no library
            assertThat(raw.sync().functionList()).as("the library after an empty restart").isEmpty();

            // The first batches after it may be refused (nothing of theirs stored); the bus then runs scripts.
            await().atMost(Duration.ofSeconds(30)).until(() -> {
                publishAll(bus, "probe", 20);
                return bus.serverCode() == ServerCodeMode.SCRIPTS;
            });
            List<String> during = publishAll(bus, "during", 200);
            assertThat(during).as("publishes refused while the library is gone").isEmpty();
            String id = bus.publish(t.inboundStream(), Envelope.of("channel_id", "c", "content", "keyed"), PublishOptions.builder().dedupeKey("k-1").build());
            assertThat(bus.publish(t.inboundStream(), Envelope.of("channel_id", "c", "content", "keyed"), PublishOptions.builder().dedupeKey("k-1").build()))
                    .as("a dedupe key, with scripts").isEqualTo(id);
            await().atMost(Duration.ofSeconds(30)).until(() -> answered.containsAll(contents("during", 200)) && answered.contains("keyed"));

            Provisioning.provision(url, config);
            await().atMost(ServerCode.CHECK_INTERVAL.multipliedBy(3)).until(() -> bus.serverCode() == ServerCodeMode.FUNCTIONS);
            assertThat(publishAll(bus, "after", 200)).isEmpty();
            await().atMost(Duration.ofSeconds(30)).until(() -> answered.containsAll(contents("after", 200)));

            // Each answer stored once: one per inbound entry the worker answered since the restart, none twice.
            long inbound = raw.sync().xlen(RawRedis.b(t.inboundStream()));
            await().atMost(Duration.ofSeconds(30)).until(() -> bus.pendingCount(t.inboundStream(), t.workerGroup()) == 0);
            assertThat(raw.sync().xlen(RawRedis.b(t.outboundStream("webchat")))).isEqualTo(inbound);
            worker.close();
        }
    }

    @Test
    void aLibraryOfAnotherVersionLoadedUnderARunningBusIsNotCalledUntilItsVersionIsBack() throws Exception {
        try (EventBus bus = EventBus.connect(url, config); RawRedis raw = new RawRedis(url)) {
            assertThat(bus.serverCode()).isEqualTo(ServerCodeMode.FUNCTIONS);
            raw.sync().functionLoad(ServerCode.librarySource().replace("local VERSION = " + ServerCode.VERSION,
                    "local VERSION = " + (ServerCode.VERSION + 1)), true);
            await().atMost(ServerCode.CHECK_INTERVAL.multipliedBy(3)).until(() -> bus.serverCode() == ServerCodeMode.SCRIPTS);
            assertThat(publishAll(bus, "other", 100)).isEmpty();
            Provisioning.provision(url, config); // replaces it with this bus's version
            await().atMost(ServerCode.CHECK_INTERVAL.multipliedBy(3)).until(() -> bus.serverCode() == ServerCodeMode.FUNCTIONS);
            assertThat(publishAll(bus, "back", 100)).isEmpty();
        }
    }

    /**
     * An answer refused because the library went ("ERR Function not found") is Redis's failure, not the entry's: tried
     * again uncounted (as a script), never dead-lettered for it. Before, it counted as a delivery, and with one delivery
     * allowed the question was dead-lettered unanswered (helper-86).
     */
    @Test
    void anAnswerRefusedAsTheLibraryGoesIsTriedAgainUncounted() throws Exception {
        try (EventBus bus = EventBus.connect(url, config); RawRedis raw = new RawRedis(url)) {
            assertThat(bus.serverCode()).isEqualTo(ServerCodeMode.FUNCTIONS);
            java.util.concurrent.atomic.AtomicBoolean flushed = new java.util.concurrent.atomic.AtomicBoolean();
            bus.subscribe(bus.consumer(t.inboundStream(), t.workerGroup()).consumerName("w").maxDeliveries(1).build(), d -> {
                // The library goes right before the answer: its FCALL is the first call refused (the consumer's own
                // function calls, which would turn the bus to scripts first, come seconds apart).
                if (flushed.compareAndSet(false, true)) raw.sync().functionFlush(io.lettuce.core.FlushMode.SYNC);
                d.reply(t.outboundStream("webchat"), Envelope.of("channel_id", d.envelope().channelId(), "content", "re:" + d.envelope().content()))
                        .get(10, TimeUnit.SECONDS);
                answered.add(d.envelope().content());
            });
            bus.publish(t.inboundStream(), Envelope.of("channel_id", "c", "content", "question"));

            await().atMost(Duration.ofSeconds(20)).until(() -> answered.contains("question")
                    || raw.sync().exists(RawRedis.b(t.deadLetterStream(t.inboundStream()))) == 1);
            assertThat(raw.sync().exists(RawRedis.b(t.deadLetterStream(t.inboundStream())))).as("dead-lettered").isZero();
            assertThat(raw.sync().xlen(RawRedis.b(t.outboundStream("webchat")))).as("answered once").isEqualTo(1);
        }
    }

    /**
     * A handler whose own call of a Redis function its application never loaded fails with "ERR Function not found" has
     * failed itself: the failure counts, and with one delivery allowed the entry is dead-lettered. Before, any failure
     * saying "Function not found" was taken for the bus's library gone (Redis's failure, retried uncounted), so such an
     * entry was retried for ever and held its channel.
     */
    @Test
    void aHandlersOwnCallOfAMissingFunctionIsItsFailureAndCounts() throws Exception {
        try (EventBus bus = EventBus.connect(url, config); RawRedis raw = new RawRedis(url)) {
            java.util.concurrent.atomic.AtomicInteger runs = new java.util.concurrent.atomic.AtomicInteger();
            bus.subscribe(bus.consumer(t.inboundStream(), t.workerGroup()).consumerName("w").maxDeliveries(1).build(), d -> {
                runs.incrementAndGet();
                raw.sync().fcall("app_function_never_loaded", io.lettuce.core.ScriptOutputType.STATUS, new byte[0][]);
            });
            bus.publish(t.inboundStream(), Envelope.of("channel_id", "c", "content", "question"));

            await().atMost(Duration.ofSeconds(20)).until(() -> raw.sync().exists(RawRedis.b(t.deadLetterStream(t.inboundStream()))) == 1);
            assertThat(runs.get()).as("runs before it was dead-lettered").isEqualTo(1);
            assertThat(bus.serverCode()).as("the bus's own library is still there").isEqualTo(ServerCodeMode.FUNCTIONS);
        }
    }

    /**
     * Publishes written as functions when the library goes are written again as scripts, in their order, instead of
     * failing (before, each batch on the wire then was refused: "ERR Function not found"). Keyed publishes, so every
     * batch is a function call while the library is there: none can be stored between a refused batch and its second
     * writing, so none may fail.
     */
    @Test
    void publishesOnTheWireWhenTheLibraryGoesAreWrittenAgainInOrderNotRefused() throws Exception {
        int threads = 4;
        int each = 3_000;
        List<String> streams = List.of(t.inboundStream(), t.outboundStream("webchat"));
        try (EventBus bus = EventBus.connect(url, config); RawRedis raw = new RawRedis(url)) {
            assertThat(bus.serverCode()).isEqualTo(ServerCodeMode.FUNCTIONS);
            java.util.concurrent.atomic.AtomicInteger published = new java.util.concurrent.atomic.AtomicInteger();
            // The writers stop at three quarters until the library is gone, so that it goes while they publish, not
            // after they finished (12 000 keyed publishes can all be stored before a FUNCTION FLUSH gets there).
            java.util.concurrent.CountDownLatch flushed = new java.util.concurrent.CountDownLatch(1);
            List<CompletableFuture<List<CompletableFuture<String>>>> runs = new ArrayList<>();
            for (int w = 0; w < threads; w++) {
                int writer = w;
                runs.add(CompletableFuture.supplyAsync(() -> {
                    java.util.concurrent.Semaphore window = new java.util.concurrent.Semaphore(64);
                    List<CompletableFuture<String>> sent = new ArrayList<>();
                    for (int i = 0; i < each; i++) {
                        if (i == each * 3 / 4) {
                            try {
                                if (!flushed.await(60, TimeUnit.SECONDS)) throw new IllegalStateException("the library was not flushed");
                            } catch (InterruptedException e) {
                                throw new IllegalStateException(e);
                            }
                        }
                        window.acquireUninterruptibly();
                        CompletableFuture<String> f = bus.publishAsync(streams.get(writer % 2),
                                Envelope.of("channel_id", "w" + writer, "content", Integer.toString(i)),
                                PublishOptions.builder().dedupeKey("w" + writer + "-" + i).build());
                        f.whenComplete((id, e) -> window.release());
                        sent.add(f);
                        published.incrementAndGet();
                    }
                    return sent;
                }, java.util.concurrent.Executors.newSingleThreadExecutor()));
            }
            await().atMost(Duration.ofSeconds(30)).until(() -> published.get() >= threads * each / 4);
            raw.sync().functionFlush(io.lettuce.core.FlushMode.SYNC);
            flushed.countDown();

            List<String> failed = new ArrayList<>();
            for (CompletableFuture<List<CompletableFuture<String>>> run : runs) {
                for (CompletableFuture<String> f : run.get(60, TimeUnit.SECONDS)) {
                    try {
                        f.get(30, TimeUnit.SECONDS);
                    } catch (ExecutionException e) {
                        failed.add(String.valueOf(e.getCause()));
                    }
                }
            }
            assertThat(failed).as("publishes failed as the library went").isEmpty();
            assertThat(bus.serverCode()).isEqualTo(ServerCodeMode.SCRIPTS);
            for (int w = 0; w < threads; w++) {
                List<Integer> seen = new ArrayList<>();
                for (var m : raw.xrange(streams.get(w % 2))) {
                    Envelope e = io.stargazer.bus.wire.WireFormat.decode(RawRedis.fields(m).get("payload"));
                    if (e.channelId().equals("w" + w)) seen.add(Integer.parseInt(e.content()));
                }
                List<Integer> expected = new ArrayList<>();
                for (int i = 0; i < each; i++) expected.add(i);
                assertThat(seen).as("writer %d's entries: each once, in the order published", w).isEqualTo(expected);
            }
        }
    }

    /** Publishes {@code n} envelopes at once (so they go in batches) to the inbound stream; returns the failures. */
    private List<String> publishAll(EventBus bus, String prefix, int n) throws InterruptedException {
        List<CompletableFuture<String>> sent = new ArrayList<>();
        for (String content : contents(prefix, n)) {
            sent.add(bus.publishAsync(t.inboundStream(), Envelope.of("channel_id", "c-" + content.hashCode() % 4, "content", content)).toCompletableFuture());
        }
        List<String> failed = new ArrayList<>();
        for (CompletableFuture<String> f : sent) {
            try {
                f.get(30, TimeUnit.SECONDS);
            } catch (ExecutionException | java.util.concurrent.TimeoutException e) {
                failed.add(String.valueOf(e.getCause()));
            }
        }
        return failed;
    }

    private static List<String> contents(String prefix, int n) {
        List<String> out = new ArrayList<>();
        for (int i = 0; i < n; i++) out.add(prefix + "-" + i);
        return out;
    }
}
