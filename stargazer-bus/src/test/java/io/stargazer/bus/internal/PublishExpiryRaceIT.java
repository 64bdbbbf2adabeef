package io.stargazer.bus.internal;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowable;
import static org.awaitility.Awaitility.await;

import io.lettuce.core.output.ValueOutput;
import io.lettuce.core.protocol.AsyncCommand;
import io.lettuce.core.protocol.Command;
import io.lettuce.core.protocol.CommandType;
import io.stargazer.bus.BusConnectionException;
import io.stargazer.bus.PublishOutcomeUnknownException;
import io.stargazer.bus.RedisUrl;
import io.stargazer.bus.testing.Closer;
import io.stargazer.bus.testing.RawRedis;
import io.stargazer.bus.testing.TcpProxy;
import io.stargazer.embedded.RedisServerProcess;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * A publish whose deadline passes just as the drain takes it is failed as "nothing was written" only if it was not
 * written. Before, {@link StreamPublisher#expire} (the maintenance thread) failed a queued publish past its deadline with
 * a plain {@link BusConnectionException} (safe to retry) while the drain (the event loop) could take the same publish,
 * see its future not yet done, and write it: the entry stored, its caller told it was not, and the caller's retry a
 * duplicate (docs/reliability.md, "A publish that gets no answer").
 *
 * <p>The interleaving is forced: a step the test holds keeps the publisher's one slot (as on a cluster) busy so the
 * publish waits in the queue; the seam {@link StreamPublisher#beforeExpiring} runs once {@code expire} has found it past
 * its deadline, and there the test frees the slot and waits until the server has the entry. A proxy drops the server's
 * replies meanwhile, so the publish's own reply cannot settle it first and hide the race. Time is passed to
 * {@code expire} rather than waited for.
 *
 * <p>And a publish waiting in the queue ends by its own deadline wherever it waits there
 * ({@link #aReleasedPublishQueuedBehindALaterDeadlineFailsAtItsOwn}).
 */
@Timeout(value = 2, unit = TimeUnit.MINUTES)
class PublishExpiryRaceIT {
    private static final String STREAM = "expiry-race";
    private static final Duration WAIT = Duration.ofSeconds(20);

    private final Closer closer = new Closer();
    private TcpProxy proxy;
    private RawRedis raw;
    private StreamPublisher publisher;
    /** Holds the publisher's only slot until completed: a step whose command never goes to Redis. */
    private final AsyncCommand<String, byte[], byte[]> gate =
            new AsyncCommand<>(new Command<>(CommandType.EVAL, new ValueOutput<>(Redis.CODEC)));

    @BeforeEach
    void start() {
        RedisServerProcess server = closer.add(RedisServerProcess.builder().start());
        RedisUrl direct = RedisUrl.parse(server.url());
        proxy = closer.add(TcpProxy.to(direct));
        raw = closer.add(new RawRedis(direct));
        Redis redis = closer.add(Redis.connect(proxy.url(), "expiry-race"));
        publisher = new StreamPublisher(STREAM, redis.sharedAsync(), 64, 1, 100, Duration.ofMinutes(1), redis.publishLoop(),
                redis.code(), null, redis.writeOnce(), code -> { }, null);
    }

    @AfterEach
    void stop() throws Exception {
        gate.complete(bytes("0-0")); // a test that failed early must not leave the drain waiting
        closer.close();
    }

    @Test
    void aPublishTheDrainTakesAsItsDeadlinePassesIsNotReportedAsUnwritten() {
        long deadline = System.nanoTime() + TimeUnit.MINUTES.toNanos(1);
        CompletableFuture<String> late = queueBehindTheGate(deadline);
        publisher.beforeExpiring = p -> {
            if (p.future() != late) return;
            proxy.dropRepliesOnExisting();
            gate.complete(bytes("0-0"));
            await("the drain writes the expiring publish").atMost(WAIT).until(() -> raw.xlen(STREAM) == 1);
        };

        publisher.expire(deadline + 1);

        assertThat(raw.xlen(STREAM)).isEqualTo(1);
        assertThat(late).isDone();
        Throwable failure = catchThrowable(late::join);
        assertThat(failure).isInstanceOf(CompletionException.class);
        assertThat(failure.getCause())
                .as("the entry is stored, so its publish must not fail as 'nothing was written' (a retry would duplicate it)")
                .isInstanceOf(PublishOutcomeUnknownException.class);

        // Its write is cancelled when the connection is lost and cannot come back: then nothing stays counted.
        proxy.close();
        await("every count back to zero").atMost(WAIT).until(() -> publisher.retireIfIdle(0));
    }

    /** Control: expiry first; the drain, freed later, skips the publish, which stays unwritten and uncounted. */
    @Test
    void aPublishExpiredBeforeTheDrainTakesItIsNeverWritten() {
        long deadline = System.nanoTime() + TimeUnit.MINUTES.toNanos(1);
        CompletableFuture<String> late = queueBehindTheGate(deadline);

        publisher.expire(deadline + 1);

        Throwable failure = catchThrowable(late::join);
        assertThat(failure).isInstanceOf(CompletionException.class);
        assertThat(failure.getCause()).isExactlyInstanceOf(BusConnectionException.class).hasMessageContaining("nothing was written");

        gate.complete(bytes("0-0"));
        CompletableFuture<String> next = publisher.submit(bytes("next"), bytes("t2"), List.of(),
                System.nanoTime() + TimeUnit.MINUTES.toNanos(1), null, null, null, false, true);
        String id = next.join();
        assertThat(raw.xrange(STREAM)).hasSize(1).allSatisfy(m -> assertThat(m.getId()).isEqualTo(id));
        await("every count back to zero").atMost(WAIT).until(() -> publisher.retireIfIdle(0));
    }

    /**
     * A publish ends by its own deadline also when it waits behind one whose deadline is later. That order is ordinary:
     * a publish released from a wait (for room in a full stream, or behind a retry of its stream) keeps its call's
     * deadline, while what was queued just before it may count from later (a retry's try, a {@code Delivery.reply}
     * answer). Before, {@code expire} stopped at the first queued publish not yet due, so while the drain was held (its
     * batches unanswered by a stalled server, a blocking publish's connection unanswered) the released publish waited
     * for the later deadline too: up to a publish timeout late, and written after its own if the drain took it first.
     */
    @Test
    void aReleasedPublishQueuedBehindALaterDeadlineFailsAtItsOwn() {
        long own = System.nanoTime() + TimeUnit.MINUTES.toNanos(1);
        CompletableFuture<String> first = queueBehindTheGate(own + TimeUnit.MINUTES.toNanos(1));
        // As StreamGuard and RetryLanes release a held publish: its call's deadline, not held to the queue limit again.
        CompletableFuture<String> released = publisher.submit(bytes("released"), bytes("t2"), List.of(), own, null, null, null,
                false, false);

        publisher.expire(own + 1);

        assertThat(released).as("a publish past its own deadline is answered, whatever waits before it").isDone();
        Throwable failure = catchThrowable(released::join);
        assertThat(failure).isInstanceOf(CompletionException.class);
        assertThat(failure.getCause()).isExactlyInstanceOf(BusConnectionException.class).hasMessageContaining("nothing was written");
        assertThat(first).as("the one before it has time left").isNotDone();

        // Once the slot is free only the publish with time left is written: the expired one never is.
        gate.complete(bytes("0-0"));
        String id = first.join();
        assertThat(raw.xrange(STREAM)).hasSize(1).allSatisfy(m -> assertThat(m.getId()).isEqualTo(id));
        await("every count back to zero").atMost(WAIT).until(() -> publisher.retireIfIdle(0));
    }

    /**
     * Queues a publish with {@code deadline} behind {@link #gate}, which holds the publisher's one slot: it waits in
     * the queue until the gate is completed.
     */
    private CompletableFuture<String> queueBehindTheGate(long deadline) {
        AtomicBoolean gateWritten = new AtomicBoolean();
        publisher.submitStep(() -> {
            gateWritten.set(true);
            return gate;
        }, deadline + TimeUnit.HOURS.toNanos(1));
        await("the gate holds the slot").atMost(WAIT).untilTrue(gateWritten);
        CompletableFuture<String> late = publisher.submit(bytes("late"), bytes("t1"), List.of(), deadline, null, null, null, false, true);
        assertThat(late).isNotDone();
        assertThat(raw.xlen(STREAM)).isZero();
        return late;
    }

    private static byte[] bytes(String s) {
        return s.getBytes(StandardCharsets.US_ASCII);
    }
}
