package io.stargazer.bus;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import io.stargazer.bus.micrometer.BusMetrics;
import io.stargazer.bus.testing.RedisFaults;
import io.stargazer.bus.testing.TcpProxy;
import io.stargazer.bus.testing.TestRedis;
import io.stargazer.embedded.RedisServerProcess;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Entries reach a stream in the order this process published them: across threads' batches, and across the retries of
 * a publish with {@link PublishOptions#maxAttempts}, which later publishes of its stream wait behind (docs/once.md,
 * "Retrying publishes keep their place"). The retry tests make their own server refuse writes (out of memory), so that
 * a retrying publish's first try fails and its next waits for its backoff; their buses reach it through a proxy that
 * can hold its answers back.
 */
@Timeout(value = 2, unit = TimeUnit.MINUTES)
class PublishOrderIT {
    private static final long WAIT_S = 30;
    /** Its own server: refusing writes on the shared one would fail other tests' publishes. */
    private static RedisServerProcess server;
    private static RedisUrl url;
    private static TcpProxy proxy;

    @BeforeAll
    static void start() {
        server = RedisServerProcess.builder().start();
        url = RedisUrl.parse(server.url());
        proxy = TcpProxy.to(url);
    }

    @AfterAll
    static void stop() {
        proxy.close();
        server.stop();
    }

    // Entries published by one thread reach the stream in the order they were published, also while batches complete
    // on the Redis I/O thread and the next batch is sent from there.
    @Test
    void eachThreadsEntriesKeepTheirOrderInTheStream() throws Exception {
        try (EventBus bus = TestRedis.bus(NodeRole.GATEWAY)) {
            String stream = bus.topology().inboundStream();
            int perThread = 3000;
            int threadCount = 4;
            List<Thread> threads = new ArrayList<>();
            List<CompletableFuture<String>> all = java.util.Collections.synchronizedList(new ArrayList<>());
            for (int t = 0; t < threadCount; t++) {
                String name = "t" + t;
                threads.add(new Thread(() -> {
                    for (int i = 0; i < perThread; i++) {
                        all.add(bus.publishAsync(stream, Envelope.of("channel_id", name, "n", i)));
                        // Pace the publishes a little, as requests arriving over a network do, so that batches
                        // often complete (and the next is sent) on the Redis I/O thread between two publishes.
                        if (i % 8 == 0) all.get(all.size() - 1).join();
                    }
                }));
            }
            threads.forEach(Thread::start);
            for (Thread t : threads) t.join();
            CompletableFuture.allOf(all.toArray(CompletableFuture[]::new)).join();
            long[] last = new long[threadCount];
            java.util.Arrays.fill(last, -1);
            String after = "0";
            int seen = 0;
            // Every publish completed above, so the stream holds them all: an empty page ends the read.
            for (List<StreamEntry> page = bus.read(stream, after, 1000); !page.isEmpty(); page = bus.read(stream, after, 1000)) {
                for (StreamEntry e : page) {
                    int t = Integer.parseInt(e.envelope().channelId().substring(1));
                    long n = e.envelope().longValue("n", -1);
                    assertThat(n).as("entry %s of %s", n, e.envelope().channelId()).isEqualTo(last[t] + 1);
                    last[t] = n;
                    after = e.id();
                    seen++;
                }
            }
            assertThat(seen).isEqualTo(threadCount * perThread);
        }
    }

    /**
     * Before, each later try was a new publish, made after its backoff behind whatever had been published meanwhile:
     * the stream read 0, 2, 1 although every future reported success.
     */
    @Test
    void aRetriedPublishKeepsItsPlaceBeforeLaterPublishesOfItsStream() throws Exception {
        try (EventBus bus = bus(Duration.ofSeconds(10), 100)) {
            String stream = bus.topology().inboundStream();
            bus.publish(stream, Envelope.of("seq", 0));
            CompletableFuture<String> first;
            try (RedisFaults.Fault oom = RedisFaults.refuseWrites(url)) {
                first = retryingAfterAFailedTry(bus, stream, 5);
            }
            // Redis takes writes again; the retry is still waiting for its backoff. Both forms of a later publish.
            CompletableFuture<String> second = bus.publishAsync(stream, Envelope.of("seq", 2),
                    PublishOptions.builder().dedupeKey("m-2").maxAttempts(5).build());
            String third = bus.publish(stream, Envelope.of("seq", 3));
            String firstId = first.get(WAIT_S, TimeUnit.SECONDS);
            String secondId = second.get(WAIT_S, TimeUnit.SECONDS);
            assertThat(seqs(bus, stream)).as("the stream, 1 retried after its first try failed").containsExactly(0L, 1L, 2L, 3L);
            assertThat(List.of(firstId, secondId, third)).as("the ids each publish was answered with").containsExactlyElementsOf(
                    TestRedis.readAll(bus, stream).stream().skip(1).map(StreamEntry::id).toList());
        }
    }

    /** A publish waiting behind a retry that does not end still ends by its own deadline, and is then never written. */
    @Test
    void aPublishWaitingBehindARetryFailsAtItsDeadlineAsNotSent() throws Exception {
        Duration publishTimeout = Duration.ofSeconds(1);
        try (EventBus bus = bus(publishTimeout, 100)) {
            String stream = bus.topology().inboundStream();
            bus.publish(stream, Envelope.of("seq", 0));
            CompletableFuture<String> first;
            Throwable waited;
            long waitedMillis;
            try (RedisFaults.Fault oom = RedisFaults.refuseWrites(url)) {
                first = retryingAfterAFailedTry(bus, stream, 100);
                long start = System.nanoTime();
                waited = failure(bus.publishAsync(stream, Envelope.of("seq", 2)));
                waitedMillis = (System.nanoTime() - start) / 1_000_000;
            }
            assertThat(waited).as("the publish behind the retry").isInstanceOf(BusConnectionException.class)
                    .hasMessageContaining("SG_PUBLISH_TIMEOUT_MS").hasMessageContaining("nothing was written");
            assertThat(waitedMillis).as("ms from its call to its answer").isLessThan(publishTimeout.toMillis() + 4000);
            first.get(WAIT_S, TimeUnit.SECONDS);
            assertThat(seqs(bus, stream)).containsExactly(0L, 1L);
        }
    }

    /**
     * A retrying publish made while an earlier one of its stream is being retried waits behind it with no try begun; its
     * first try has the whole publish timeout from when it is sent (SG_PUBLISH_TIMEOUT_MS is per try). Before, that try
     * kept the deadline of the call, long passed when the lane let it go: the bus's deadline timer failed it at its next
     * tick as "written, but Redis did not answer within the publish timeout" although it had just been sent, a try of
     * its budget lost (and a timeout in the metrics) to a publish that had not timed out.
     */
    @Test
    void aRetryingPublishWaitingBehindARetryHasItsWholeTimeoutForItsFirstTry() throws Exception {
        Duration publishTimeout = Duration.ofSeconds(1);
        MeterRegistry registry = new SimpleMeterRegistry();
        try (EventBus bus = bus(publishTimeout, 100)) {
            new BusMetrics(bus).bindTo(registry);
            String stream = bus.topology().inboundStream();
            bus.publish(stream, Envelope.of("seq", 0));
            CompletableFuture<String> first;
            CompletableFuture<String> second;
            try {
                try (RedisFaults.Fault oom = RedisFaults.refuseWrites(url)) {
                    first = retryingAfterAFailedTry(bus, stream, 100);
                    long made = System.nanoTime();
                    second = bus.publishAsync(stream, Envelope.of("seq", 2),
                            PublishOptions.builder().dedupeKey("m-2").maxAttempts(2).build());
                    // Behind the first's retries for longer than a publish timeout.
                    await().atMost(Duration.ofSeconds(WAIT_S))
                            .until(() -> System.nanoTime() - made > publishTimeout.toNanos() + 500_000_000L);
                    assertThat(second).as("the second retrying publish, waiting behind the first").isNotDone();
                    // From now on a round trip (300 ms and more) outlasts a tick of the bus's deadline timer (100 ms).
                    proxy.delay(Duration.ofMillis(150));
                }
                first.get(WAIT_S, TimeUnit.SECONDS);
                second.get(WAIT_S, TimeUnit.SECONDS);
            } finally {
                proxy.delay(Duration.ZERO);
            }
            assertThat(seqs(bus, stream)).containsExactly(0L, 1L, 2L);
            double timedOut = 0;
            for (String type : List.of(PublishOutcomeUnknownException.class.getSimpleName(), BusConnectionException.class.getSimpleName())) {
                for (Counter c : registry.find("messaging.client.sent.messages").tag(BusMetrics.TAG_ERROR, type).counters()) {
                    timedOut += c.count();
                }
            }
            assertThat(timedOut).as("tries that failed as not answered or not sent within the publish timeout").isZero();
        }
    }

    /** Publishes waiting behind a retry take memory as queued ones do: SG_PUBLISH_QUEUE_LIMIT bounds them. */
    @Test
    void publishesWaitingBehindARetryAreHeldToTheQueueLimit() throws Exception {
        int limit = 5;
        try (EventBus bus = bus(Duration.ofSeconds(10), limit)) {
            String stream = bus.topology().inboundStream();
            bus.publish(stream, Envelope.of("seq", 0));
            CompletableFuture<String> first;
            List<CompletableFuture<String>> later = new ArrayList<>();
            try (RedisFaults.Fault oom = RedisFaults.refuseWrites(url)) {
                first = retryingAfterAFailedTry(bus, stream, 100);
                for (int i = 0; i < limit + 3; i++) later.add(bus.publishAsync(stream, Envelope.of("seq", 2 + i)));
                assertThat(later.subList(0, limit)).as("within the limit: waiting").noneMatch(CompletableFuture::isDone);
                for (CompletableFuture<String> f : later.subList(limit, later.size())) {
                    assertThat(failure(f)).as("past the limit: refused at once").isInstanceOf(PublishQueueFullException.class);
                }
            }
            first.get(WAIT_S, TimeUnit.SECONDS);
            for (CompletableFuture<String> f : later.subList(0, limit)) f.get(WAIT_S, TimeUnit.SECONDS);
            assertThat(seqs(bus, stream)).containsExactly(0L, 1L, 2L, 3L, 4L, 5L, 6L);
        }
    }

    /** A retry that fails for good lets the publishes behind it go at once (here into the same refusal). */
    @Test
    void aRetryThatFailsForGoodLetsThePublishesBehindItGo() throws Exception {
        try (EventBus bus = bus(Duration.ofSeconds(60), 100)) {
            String stream = bus.topology().inboundStream();
            bus.publish(stream, Envelope.of("seq", 0));
            try (RedisFaults.Fault oom = RedisFaults.refuseWrites(url)) {
                // Its tries come 100, 200 and 400 ms apart: time enough to publish behind it.
                CompletableFuture<String> first = retryingAfterAFailedTry(bus, stream, 4);
                CompletableFuture<String> second = bus.publishAsync(stream, Envelope.of("seq", 2));
                assertThat(failure(first)).as("the retrying publish's last try").isInstanceOf(RedisServerException.class);
                // Sent, and refused by Redis as its own try: not held until its 60 s deadline.
                assertThat(failure(second)).as("the publish behind it").isInstanceOf(RedisServerException.class)
                        .hasMessageContaining("OOM");
            }
        }
    }

    /**
     * A retrying publish its caller cancelled tries no more, and the publishes behind it go on at once (they waited for
     * its whole budget of tries, up to minutes: found by the review of the lanes).
     */
    @Test
    void aRetryItsCallerCancelledLetsThePublishesBehindItGo() throws Exception {
        try (EventBus bus = bus(Duration.ofSeconds(60), 100)) {
            String stream = bus.topology().inboundStream();
            bus.publish(stream, Envelope.of("seq", 0));
            try (RedisFaults.Fault oom = RedisFaults.refuseWrites(url)) {
                CompletableFuture<String> first = retryingAfterAFailedTry(bus, stream, 100);
                CompletableFuture<String> second = bus.publishAsync(stream, Envelope.of("seq", 2));
                first.cancel(false);
                // Sent at the cancelled retry's next turn, and refused by Redis as its own try; before, it waited behind
                // the retry's hundred tries and failed at its 60 s deadline as not sent.
                await().atMost(Duration.ofSeconds(20)).until(second::isDone);
                assertThat(failure(second)).as("the publish behind the cancelled retry").isInstanceOf(RedisServerException.class)
                        .hasMessageContaining("OOM");
            }
        }
    }

    /**
     * Closing the bus ends the retry with its last try's outcome and fails what waits behind it as not sent (the bus
     * is closed): nothing waits forever, and nothing is written after close.
     */
    @Test
    void closingFailsARetryWithItsLastOutcomeAndThePublishesBehindItAsNotSent() throws Exception {
        try (RedisFaults.Fault oom = RedisFaults.refuseWrites(url)) {
            CompletableFuture<String> first;
            CompletableFuture<String> second;
            try (EventBus bus = bus(Duration.ofSeconds(60), 100)) {
                String stream = bus.topology().inboundStream();
                first = retryingAfterAFailedTry(bus, stream, 100);
                second = bus.publishAsync(stream, Envelope.of("seq", 2));
            }
            assertThat(failure(first)).as("the retrying publish").isInstanceOf(RedisServerException.class).hasMessageContaining("OOM");
            assertThat(failure(second)).as("the publish behind it").hasMessageContaining("the bus is closed")
                    .hasMessageContaining("nothing was written");
        }
    }

    private static EventBus bus(Duration publishTimeout, int queueLimit) {
        Topology t = Topology.builder().namespace(TestRedis.namespace()).build();
        return EventBus.connect(proxy.url(), BusConfig.builder().topology(t).role(NodeRole.GATEWAY).nodeId("order")
                .publishTimeout(publishTimeout).publishQueueLimit(queueLimit).build());
    }

    /**
     * Publishes seq 1 with a dedupe key and up to {@code maxAttempts} tries while the server refuses writes; returns
     * once its first try has failed, with its next waiting for its backoff.
     */
    private static CompletableFuture<String> retryingAfterAFailedTry(EventBus bus, String stream, int maxAttempts) throws Exception {
        CompletableFuture<String> retrying;
        CompletableFuture<String> probe;
        // Both handed to the stream's publisher before Redis answers either, so answered in that order: once the probe
        // has failed, so has the retrying publish's first try, and what that failure set in motion has run. Without the
        // hold, the first try's answer could come first, and the probe would wait behind its retry.
        proxy.freezeExisting();
        try {
            retrying = bus.publishAsync(stream, Envelope.of("seq", 1), PublishOptions.builder().dedupeKey("m-1").maxAttempts(maxAttempts).build());
            probe = bus.publishAsync(stream, Envelope.of("seq", -1));
        } finally {
            proxy.unfreeze();
        }
        assertThat(failure(probe)).as("a publish while Redis refuses writes").hasMessageContaining("OOM");
        assertThat(retrying).as("the retrying publish, waiting for its next try").isNotDone();
        return retrying;
    }

    /** The failure of {@code f}, waited for; fails the test when it succeeds or takes too long. */
    private static Throwable failure(CompletableFuture<String> f) throws Exception {
        Throwable e = f.handle((id, x) -> x).get(WAIT_S, TimeUnit.SECONDS);
        assertThat(e).as("a failure, not an entry id").isNotNull();
        return e instanceof CompletionException && e.getCause() != null ? e.getCause() : e;
    }

    /** The seq of each entry in {@code stream}, in stream order. */
    private static List<Long> seqs(EventBus bus, String stream) {
        return TestRedis.readAll(bus, stream).stream().map(e -> e.envelope().longValue("seq", -1)).toList();
    }
}
