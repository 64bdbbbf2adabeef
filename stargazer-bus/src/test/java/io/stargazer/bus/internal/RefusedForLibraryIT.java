package io.stargazer.bus.internal;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowable;
import static org.awaitility.Awaitility.await;

import io.lettuce.core.RedisCommandExecutionException;
import io.stargazer.bus.BusConfig;
import io.stargazer.bus.RedisServerException;
import io.stargazer.bus.RedisUrl;
import io.stargazer.bus.testing.Closer;
import io.stargazer.bus.testing.RawRedis;
import io.stargazer.embedded.RedisServerProcess;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Publishes refused because the library's function is gone ("ERR Function not found": an empty restart, {@code FUNCTION
 * FLUSH}) ran nothing on the server, so a bus that follows the library writes them again as scripts; but never after
 * something written later to the same stream. Before, every batch written as a function when the library went was
 * failed: after an empty restart a gateway told about 130 tabs per restart "could not publish" (helper-81, stop 39).
 *
 * <p>Each case writes its batches inside one task on the connection's event loop, so all of them are on the wire before
 * the first answer can be read: the interleavings that matter (a later batch written before the refusal comes back) are
 * then certain, not a race.
 *
 * <p>What such a hold keeps still ends by its deadline ({@link #publishesAHoldKeepsAreAnsweredAtTheirOwnDeadlinesAndNotWrittenAfterThem}).
 */
@Timeout(value = 2, unit = TimeUnit.MINUTES)
class RefusedForLibraryIT {
    private static final String STREAM = "refused-for-library";
    private static final Duration WAIT = Duration.ofSeconds(20);

    private final Closer closer = new Closer();
    private RawRedis raw;
    private Redis redis;
    private StreamPublisher publisher;
    /** An answer whose command never goes to Redis: unanswered until completed, so a hold waits for it. */
    private final io.lettuce.core.protocol.AsyncCommand<String, byte[], byte[]> gate = new io.lettuce.core.protocol.AsyncCommand<>(
            new io.lettuce.core.protocol.Command<>(io.lettuce.core.protocol.CommandType.EVAL, new io.lettuce.core.output.ValueOutput<>(Redis.CODEC)));

    @BeforeEach
    void start() {
        RedisServerProcess server = closer.add(RedisServerProcess.builder().start());
        RedisUrl url = RedisUrl.parse(server.url());
        raw = closer.add(new RawRedis(url));
        redis = closer.add(Redis.connect(url, "refused-for-library"));
        ServerCode.load(redis.sharedSync());
        redis.useCode(ServerCode.choose(redis, BusConfig.builder().build()));
        assertThat(redis.code().functions()).isTrue();
        assertThat(redis.code().follows()).isTrue();
        publisher = new StreamPublisher(STREAM, redis.sharedAsync(), 64, StreamPublisher.MAX_IN_FLIGHT, 1000, Duration.ofMinutes(1),
                redis.publishLoop(), redis.code(), null, redis.writeOnce(), code -> { }, null);
        raw.sync().functionFlush(io.lettuce.core.FlushMode.SYNC); // the library goes under the running publisher
    }

    @AfterEach
    void stop() throws Exception {
        gate.complete(bytes("0-0")); // a test that failed early must not leave a hold waiting
        closer.close();
    }

    @Test
    void batchesRefusedForWantOfTheLibraryAreWrittenAgainAsScriptsInTheirOrder() throws Exception {
        // a and b each a batch of its own, keyed (so a function call even alone); c and d wait for a free slot.
        List<CompletableFuture<String>> sent = onTheLoop(() -> List.of(keyed("a"), keyed("b"), plain("c"), plain("d")));

        for (CompletableFuture<String> f : sent) {
            assertThat(f).as("a publish refused for want of the library is written again").succeedsWithin(WAIT);
        }
        assertThat(payloads()).containsExactly("a", "b", "c", "d");
        assertThat(redis.code().functions()).as("the bus runs scripts until the library is back").isFalse();
        await("every count and slot given back").atMost(WAIT).until(() -> publisher.retireIfIdle(0));
    }

    @Test
    void aRefusedBatchFailsWhenOneWrittenAfterItMayHaveStoredItsEntry() throws Exception {
        // b alone and unkeyed is a plain XADD, which needs no library: stored, so a written again after it would be
        // stored after it, out of the order they were published in.
        List<CompletableFuture<String>> sent = onTheLoop(() -> List.of(keyed("a"), plain("b")));

        assertThat(sent.get(1)).succeedsWithin(WAIT);
        Throwable refused = catchThrowable(() -> sent.get(0).get(WAIT.toSeconds(), TimeUnit.SECONDS));
        assertThat(refused.getCause()).isInstanceOf(RedisServerException.class).hasMessageContaining("Function not found");
        assertThat(payloads()).containsExactly("b");
        await("every count and slot given back").atMost(WAIT).until(() -> publisher.retireIfIdle(0));
    }

    @Test
    void nothingIsWrittenAsAScriptWhileABatchWrittenAsAFunctionBeforeItMayStillBeRefused() throws Exception {
        // Another stream's refusal (or the periodic check) turns the bus to scripts while a, written as a function, is
        // on its way: b, a plain XADD, written now would be stored before a could be written again.
        List<CompletableFuture<String>> sent = onTheLoop(() -> {
            CompletableFuture<String> a = keyed("a");
            redis.code().noticed(new RedisCommandExecutionException("ERR Function not found"));
            return List.of(a, plain("b"), plain("c"));
        });

        for (CompletableFuture<String> f : sent) {
            assertThat(f).succeedsWithin(WAIT);
        }
        assertThat(payloads()).containsExactly("a", "b", "c");
        await("every count and slot given back").atMost(WAIT).until(() -> publisher.retireIfIdle(0));
    }

    @Test
    void aRefusedPublishPastItsDeadlineFailsAsRefusedAndIsNotWrittenAgain() throws Exception {
        // Written with its deadline already past (nothing here runs the expiry, so it goes out and is refused): its
        // caller may have given up on it, so it is failed as what it is, refused with nothing stored.
        List<CompletableFuture<String>> sent = onTheLoop(() -> List.of(
                publisher.submit(bytes("late"), bytes("t"), List.of(), System.nanoTime() - 1, "k-late", null, null, false, true),
                keyed("b")));

        assertThat(sent.get(1)).succeedsWithin(WAIT);
        Throwable refused = catchThrowable(() -> sent.get(0).get(WAIT.toSeconds(), TimeUnit.SECONDS));
        assertThat(refused).as("the late publish is not written again").isNotNull();
        assertThat(refused.getCause()).isInstanceOf(RedisServerException.class).hasMessageContaining("Function not found");
        assertThat(payloads()).containsExactly("b");
        await("every count and slot given back").atMost(WAIT).until(() -> publisher.retireIfIdle(0));
    }

    @Test
    void aRefusedBatchIsNotWrittenAgainAfterOneWrittenLaterThatLeftTheWaitEarly() throws Exception {
        // b, written after a, leaves the batches on the wire before it is answered (its deadline passed: the expiry
        // settles it as of unknown outcome), and is stored. a, refused, must not be written after it.
        List<CompletableFuture<String>> sent = onTheLoop(() -> {
            CompletableFuture<String> a = keyed("a");
            CompletableFuture<String> b = publisher.submit(bytes("b"), bytes("t"), List.of(), System.nanoTime() - 1, null, null, null, false, true);
            publisher.expire(System.nanoTime());
            return List.of(a, b);
        });

        Throwable refused = catchThrowable(() -> sent.get(0).get(WAIT.toSeconds(), TimeUnit.SECONDS));
        assertThat(refused).as("a is not written again after b").isNotNull();
        assertThat(refused.getCause()).isInstanceOf(RedisServerException.class).hasMessageContaining("Function not found");
        assertThat(payloads()).containsExactly("b");
        await("every count and slot given back").atMost(WAIT).until(() -> publisher.retireIfIdle(0));
    }

    @Test
    void publishesWaitingForAFunctionCallToBeAnsweredAreWrittenWhenItIsEvenAfterItsDeadlineFreedItsPlace() throws Exception {
        // a, a function call, passes its deadline (the expiry fails it and frees its place on the wire) while the bus has
        // turned to scripts: b waits for a's answer, and must be written when it comes, not wait for another publish.
        List<CompletableFuture<String>> sent = onTheLoop(() -> {
            CompletableFuture<String> a = publisher.submit(bytes("a"), bytes("t"), List.of(), System.nanoTime() - 1, "k-a", null, null, false, true);
            redis.code().noticed(new RedisCommandExecutionException("ERR Function not found"));
            CompletableFuture<String> b = plain("b");
            publisher.expire(System.nanoTime());
            return List.of(a, b);
        });

        assertThat(sent.get(1)).as("b is written once a is answered").succeedsWithin(WAIT);
        assertThat(sent.get(0)).isCompletedExceptionally();
        assertThat(payloads()).containsExactly("b");
        await("every count and slot given back").atMost(WAIT).until(() -> publisher.retireIfIdle(0));
    }

    @Test
    void publishesWaitingForAnExpiredFunctionCallAreWrittenWhenTheLibraryCameBackBeforeItsAnswer() throws Exception {
        // As above, but the periodic check finds the library back before a's answer comes (helper-88's case).
        List<CompletableFuture<String>> sent = onTheLoop(() -> {
            CompletableFuture<String> a = publisher.submit(bytes("a"), bytes("t"), List.of(), System.nanoTime() - 1, "k-a", null, null, false, true);
            redis.code().noticed(new RedisCommandExecutionException("ERR Function not found"));
            CompletableFuture<String> b = plain("b");
            publisher.expire(System.nanoTime());
            redis.code().check(libraryAt(ServerCode.VERSION)); // the check's answer, given here: no blocking call on the loop
            assertThat(redis.code().functions()).isTrue();
            return List.of(a, b);
        });

        assertThat(sent.get(1)).as("b is written once a is answered").succeedsWithin(WAIT);
        assertThat(sent.get(0)).isCompletedExceptionally();
        await("every count and slot given back").atMost(WAIT).until(() -> publisher.retireIfIdle(0));
    }

    @Test
    void anAnswerRefusedAfterARefusedBatchFailsAndTheBatchesAroundItAreWrittenAgain() throws Exception {
        // A step (Delivery.reply's script, here its function called with the library gone) between two refused batches:
        // refused too, it stored nothing, so the hold ends and both batches are written again; the step itself fails
        // (a delivery whose answer fails is handled again).
        List<CompletableFuture<String>> sent = onTheLoop(() -> List.of(keyed("a"),
                publisher.submitStep(() -> redis.sharedAsync().fcall("sg_reply", io.lettuce.core.ScriptOutputType.VALUE, new String[] {STREAM}),
                        deadline()),
                keyed("c")));

        assertThat(sent.get(0)).succeedsWithin(WAIT);
        assertThat(sent.get(2)).succeedsWithin(WAIT);
        assertThat(sent.get(1)).failsWithin(WAIT);
        assertThat(payloads()).containsExactly("a", "c");
        await("every count and slot given back").atMost(WAIT).until(() -> publisher.retireIfIdle(0));
    }

    /**
     * The publishes a hold keeps, the refused batch's and those formed while it waits, end at their own deadlines. The
     * hold waits for the batches written after the refused one, until they are answered or past their own deadlines,
     * which can be up to a publish timeout later (a {@code Delivery.reply} answer or a retry's try counts from when it
     * was made). Before, no expiry looked at what a hold kept: its publishes were answered only when it ended.
     */
    @Test
    void publishesAHoldKeepsAreAnsweredAtTheirOwnDeadlinesAndNotWrittenAfterThem() throws Exception {
        long own = deadline();
        long later = own + TimeUnit.MINUTES.toNanos(1);
        CompletableFuture<String> refused = onTheLoop(() -> {
            CompletableFuture<String> a = publisher.submit(bytes("a"), bytes("t"), List.of(), own, "k-a", null, null, false, true);
            publisher.submitStep(() -> gate, later); // written after a, and unanswered: the hold waits for it
            return List.of(a);
        }).get(0);
        await("the refusal came: the bus turned to scripts, the batch is held").atMost(WAIT).until(() -> !redis.code().functions());
        CompletableFuture<String> formedMeanwhile = publisher.submit(bytes("b"), bytes("t"), List.of(), own, null, null, null, false, false);
        assertThat(refused).isNotDone();
        assertThat(formedMeanwhile).isNotDone();

        // Time passed to expire, as the bus's timer calls it each tick, rather than waited for.
        await("the refused publish answered at its deadline").atMost(WAIT).until(() -> {
            publisher.expire(own + 1);
            return refused.isDone();
        });
        await("the publish formed during the hold answered at its deadline").atMost(WAIT).until(() -> {
            publisher.expire(own + 1);
            return formedMeanwhile.isDone();
        });
        assertThat(catchThrowable(refused::join).getCause())
                .isInstanceOf(RedisServerException.class).hasMessageContaining("Function not found");
        assertThat(catchThrowable(formedMeanwhile::join).getCause())
                .isExactlyInstanceOf(io.stargazer.bus.BusConnectionException.class).hasMessageContaining("nothing was written");

        // The hold ends: neither is written after its caller was told it failed, and every count comes back.
        gate.complete(bytes("0-0"));
        assertThat(publisher.submit(bytes("c"), bytes("t"), List.of(), later, null, null, null, false, true)).succeedsWithin(WAIT);
        assertThat(payloads()).containsExactly("c");
        await("every count and slot given back").atMost(WAIT).until(() -> publisher.retireIfIdle(0));
    }

    /** Commands whose only answer is {@code FCALL_RO sg_version}'s: {@code version}. */
    @SuppressWarnings("unchecked")
    private static io.lettuce.core.cluster.api.sync.RedisClusterCommands<String, byte[]> libraryAt(int version) {
        return (io.lettuce.core.cluster.api.sync.RedisClusterCommands<String, byte[]>) java.lang.reflect.Proxy.newProxyInstance(
                RefusedForLibraryIT.class.getClassLoader(), new Class<?>[] {io.lettuce.core.cluster.api.sync.RedisClusterCommands.class},
                (proxy, m, args) -> {
                    if (m.getName().equals("fcallReadOnly")) return (long) version;
                    throw new UnsupportedOperationException(m.getName());
                });
    }

    private CompletableFuture<String> keyed(String payload) {
        return publisher.submit(bytes(payload), bytes("t"), List.of(), deadline(), "k-" + payload, null, null, false, true);
    }

    private CompletableFuture<String> plain(String payload) {
        return publisher.submit(bytes(payload), bytes("t"), List.of(), deadline(), null, null, null, false, true);
    }

    private static long deadline() {
        return System.nanoTime() + TimeUnit.MINUTES.toNanos(1);
    }

    /** Runs {@code writes} on the connection's event loop: what it writes is all on the wire before any answer is read. */
    private List<CompletableFuture<String>> onTheLoop(java.util.concurrent.Callable<List<CompletableFuture<String>>> writes) throws Exception {
        assertThat(raw.sync().functionList()).as("the library is gone").isEmpty();
        return redis.publishLoop().submit(writes).get(WAIT.toSeconds(), TimeUnit.SECONDS);
    }

    private List<String> payloads() {
        return raw.xrange(STREAM).stream().map(m -> new String(RawRedis.fields(m).get("payload"), StandardCharsets.UTF_8)).toList();
    }

    private static byte[] bytes(String s) {
        return s.getBytes(StandardCharsets.US_ASCII);
    }
}
