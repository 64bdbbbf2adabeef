package io.stargazer.bus;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.stargazer.bus.testing.Closer;
import io.stargazer.bus.testing.OwnServer;
import io.stargazer.bus.testing.RedisFaults;
import io.stargazer.bus.testing.TcpProxy;
import io.stargazer.bus.testing.TestRedis;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * A publish written to Redis whose connection is then lost before the reply (replaced by the dead-peer check, reset,
 * a paused server) is stored at most once and answered truthfully: with its id, or with
 * {@link PublishOutcomeUnknownException}, which a dedupe key and {@code maxAttempts} turn into a safe retry. Found by a
 * review: Lettuce wrote such publishes again on the new connection (stored twice, behind later ones, the caller told
 * "stored" once), and a reset failed the publish with a plain StargazerException that maxAttempts did not retry.
 */
@Timeout(value = 2, unit = TimeUnit.MINUTES)
class LostAfterWriteIT {
    @RegisterExtension
    static final OwnServer redis = new OwnServer();
    private final Closer closer = new Closer();
    private RedisUrl url;

    @BeforeEach
    void url() {
        url = redis.url();
    }

    @AfterEach
    void closeAll() throws Exception {
        closer.close();
    }

    private EventBus bus(RedisUrl to, Topology t, BusConfig.Builder tune) {
        return closer.add(EventBus.connect(to, tune.topology(t).role(NodeRole.GATEWAY).nodeId("lost-after-write").blockingPublishConnections(0).build()));
    }

    private EventBus reader(Topology t) {
        return closer.add(EventBus.connect(url, BusConfig.builder().topology(t).role(NodeRole.GATEWAY).nodeId("reader").build()));
    }

    private static List<Long> seqs(EventBus reader, String stream) {
        List<Long> out = new ArrayList<>();
        for (StreamEntry e : TestRedis.readAll(reader, stream)) out.add(e.envelope().longValue("seq", -1));
        return out;
    }

    private static Throwable failure(CompletableFuture<String> f) {
        return f.handle((id, e) -> e instanceof java.util.concurrent.CompletionException c ? c.getCause() : e).join();
    }

    /**
     * Each of seq 1..5 stored at most once and the stream in publish order; one reported stored is there once, one that
     * failed with an unknown outcome at most once, one refused as not sent not at all; and at least one of them was
     * written before the connection was lost.
     */
    private static void assertStoredAtMostOnceAndTruthfully(List<CompletableFuture<String>> fs, List<Long> stored) {
        assertThat(stored).as("stream order").isSorted();
        int unknown = 0;
        for (int i = 1; i <= 5; i++) {
            long seq = i;
            long copies = stored.stream().filter(s -> s == seq).count();
            CompletableFuture<String> f = fs.get(i - 1);
            if (f.isCompletedExceptionally() && failure(f) instanceof PublishOutcomeUnknownException) {
                assertThat(copies).as("copies of publish %d (unknown outcome) in %s", seq, stored).isLessThanOrEqualTo(1);
                unknown++;
            } else if (f.isCompletedExceptionally()) {
                // Made while the connection was being replaced: refused, nothing written.
                assertThat(failure(f)).as("publish %d", seq).isInstanceOf(BusConnectionException.class);
                assertThat(copies).as("copies of publish %d (not sent) in %s", seq, stored).isZero();
            } else {
                assertThat(copies).as("copies of publish %d (reported stored) in %s", seq, stored).isEqualTo(1);
            }
        }
        assertThat(unknown).as("publishes whose connection was lost after the write").isPositive();
    }

    /**
     * Replies lost on the way back: the XADDs run, the dead-peer check (1 s) replaces the connection; the publish
     * timeout (8 s) would leave time for a second write's answer.
     */
    @Test
    void publishesWhoseConnectionIsReplacedAfterTheWriteAreNotWrittenAgain() throws Exception {
        Topology t = Topology.builder().namespace(TestRedis.namespace()).build();
        String stream = t.inboundStream();
        TcpProxy proxy = closer.add(TcpProxy.to(url));
        EventBus bus = bus(proxy.url(), t, BusConfig.builder().deadPeerTimeout(Duration.ofSeconds(1)).publishTimeout(Duration.ofSeconds(8)));
        EventBus reader = reader(t);
        bus.publishAsync(stream, Envelope.of("channel_id", "c", "seq", 0)).get(10, TimeUnit.SECONDS);

        proxy.dropRepliesOnExisting();
        List<CompletableFuture<String>> fs = new ArrayList<>();
        for (int i = 1; i <= 5; i++) fs.add(bus.publishAsync(stream, Envelope.of("channel_id", "c", "seq", i)));
        await().atMost(Duration.ofSeconds(30)).until(() -> fs.stream().allMatch(CompletableFuture::isDone));
        // A second write would land within the publish timeout; give it that long to show.
        await().pollDelay(Duration.ofSeconds(2)).atMost(Duration.ofSeconds(5)).until(() -> true);
        assertStoredAtMostOnceAndTruthfully(fs, seqs(reader, stream));
    }

    /**
     * Redis paused (SIGSTOP) a little longer than the dead-peer timeout: the bus replaces the connection while the
     * XADDs wait in the server's socket buffer; when it resumes it runs them from the old connection, and it ran them
     * again from the new one.
     */
    @Test
    void publishesWrittenToAPausedRedisAreNotWrittenAgainOnTheNewConnection() throws Exception {
        Topology t = Topology.builder().namespace(TestRedis.namespace()).build();
        String stream = t.inboundStream();
        TcpProxy proxy = closer.add(TcpProxy.to(url)); // to see the new connection
        EventBus bus = bus(proxy.url(), t, BusConfig.builder().deadPeerTimeout(Duration.ofSeconds(1)).publishTimeout(Duration.ofSeconds(8)));
        EventBus reader = reader(t);
        bus.publishAsync(stream, Envelope.of("channel_id", "c", "seq", 0)).get(10, TimeUnit.SECONDS);
        int before = proxy.acceptedCount();
        List<CompletableFuture<String>> fs = new ArrayList<>();
        try (RedisFaults.Fault paused = RedisFaults.pause(redis.process())) {
            for (int i = 1; i <= 5; i++) fs.add(bus.publishAsync(stream, Envelope.of("channel_id", "c", "seq", i)));
            await().atMost(Duration.ofSeconds(20)).until(() -> proxy.acceptedCount() > before);
        }
        await().atMost(Duration.ofSeconds(30)).until(() -> fs.stream().allMatch(CompletableFuture::isDone));
        await().pollDelay(Duration.ofSeconds(1)).atMost(Duration.ofSeconds(5)).until(() -> true); // stray writes land
        assertStoredAtMostOnceAndTruthfully(fs, seqs(reader, stream));
    }

    /** The publish is the only command on the wire: stored, its reply lost, then the connection reset. */
    private CompletableFuture<String> publishStoredThenReset(Topology t, EventBus reader, PublishOptions options) throws Exception {
        String stream = t.inboundStream();
        TcpProxy proxy = closer.add(TcpProxy.to(url));
        EventBus bus = bus(proxy.url(), t, BusConfig.builder().publishTimeout(Duration.ofSeconds(20))
                // No background command (health PING, backlog check) on the shared connection meanwhile.
                .deadPeerTimeout(Duration.ofSeconds(60)).backlogCheckInterval(Duration.ofMinutes(10)));
        bus.publish(stream, Envelope.of("channel_id", "c", "seq", 0));
        // A second one, answered after the trim check the first started: nothing else is unanswered now.
        bus.publish(stream, Envelope.of("channel_id", "c", "seq", 0));
        proxy.dropRepliesOnExisting();
        CompletableFuture<String> f = bus.publishAsync(stream, Envelope.of("channel_id", "c", "seq", 1), options);
        await().atMost(Duration.ofSeconds(10)).until(() -> TestRedis.readAll(reader, stream).size() == 3);
        proxy.cutAll();
        await().atMost(Duration.ofSeconds(40)).until(f::isDone);
        return f;
    }

    @Test
    void aStoredPublishWhoseConnectionIsResetFailsWithAnUnknownOutcome() throws Exception {
        Topology t = Topology.builder().namespace(TestRedis.namespace()).build();
        EventBus reader = reader(t);
        CompletableFuture<String> f = publishStoredThenReset(t, reader, PublishOptions.NONE);
        assertThat(f).isCompletedExceptionally();
        assertThat(failure(f)).isInstanceOf(PublishOutcomeUnknownException.class);
        assertThat(seqs(reader, t.inboundStream())).containsExactly(0L, 0L, 1L);
    }

    @Test
    void aKeyedRetryingPublishWhoseConnectionIsResetIsTriedAgainAndAnswersTheStoredId() throws Exception {
        Topology t = Topology.builder().namespace(TestRedis.namespace()).build();
        EventBus reader = reader(t);
        CompletableFuture<String> f = publishStoredThenReset(t, reader, PublishOptions.builder().dedupeKey("k-1").maxAttempts(5).build());
        String stored = TestRedis.readAll(reader, t.inboundStream()).get(2).id();
        assertThat(f.get(30, TimeUnit.SECONDS)).isEqualTo(stored);
        assertThat(seqs(reader, t.inboundStream())).containsExactly(0L, 0L, 1L);
    }
}
