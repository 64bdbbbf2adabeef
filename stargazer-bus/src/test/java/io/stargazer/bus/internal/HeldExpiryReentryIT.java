// Promise: every held publish ends, at its deadline or when room comes, and the bus's deadline timer keeps running
// whatever a caller's callback does. Found by the review of 908e2a9: StreamGuard.expireParked failed held publishes inside
// ArrayDeque.removeIf, completing their futures (running their callbacks, and RetryLanes' settle -> pump -> release)
// while it iterated. A callback that publishes to the
// same full stream parks a publish in that same deque (re-entrant lock), which removeIf does not allow: a
// ConcurrentModificationException escapes expireParked, kills the bus timer's periodic expirePublishes task for good,
// and leaves the deque corrupted (publishes already failed as "nothing was written" still held, to be sent on room).
package io.stargazer.bus.internal;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;

import io.stargazer.bus.Envelope;
import io.stargazer.bus.EventBus;
import io.stargazer.bus.PublishOptions;
import io.stargazer.bus.RedisUrl;
import io.stargazer.bus.testing.RawRedis;
import io.stargazer.bus.testing.RedisFaults;
import io.stargazer.embedded.RedisServerProcess;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

@Timeout(value = 2, unit = TimeUnit.MINUTES)
class HeldExpiryReentryIT {
    private final List<AutoCloseable> closeables = new ArrayList<>();

    @AfterEach
    void closeAll() throws Exception {
        for (int i = closeables.size() - 1; i >= 0; i--) closeables.get(i).close();
    }

    @Test
    void aHeldPublishFailedAtItsDeadlineMayPublishAgainFromItsCallback() throws Exception {
        Duration publishTimeout = Duration.ofSeconds(2);
        FullStream full = FullStream.start(closeables, publishTimeout, Duration.ofSeconds(60));
        RedisServerProcess server = full.server();
        EventBus bus = full.bus();
        StreamGuard.State st = full.state();

        AtomicReference<CompletableFuture<String>> again = new AtomicReference<>();
        CompletableFuture<String> a;
        CompletableFuture<String> b;
        long cStarted;
        try (RedisFaults.Fault paused = RedisFaults.pause(server)) {
            // Two publishes held back to back: the timer's pass fails both at their deadline. B's caller publishes again
            // on failure, as a caller handling BackpressureException does (and as RetryLanes' pump does when a retry's
            // last try fails there and lets the publishes behind it go).
            a = bus.publishInboundAsync(Envelope.of("seq", -1));
            b = bus.publishInboundAsync(Envelope.of("seq", -2));
            b.whenComplete((id, e) -> {
                if (e != null) again.set(bus.publishInboundAsync(Envelope.of("seq", -3)));
            });
            await().atMost(Duration.ofSeconds(6)).until(() -> a.isDone() && b.isDone() && again.get() != null);
            cStarted = System.nanoTime();
            CompletableFuture<String> c = again.get();
            // C, held while Redis does not answer, must end by its own deadline (2 s) as A and B did; well before the
            // 10 s command timeout of the trim check in flight.
            Throwable cOutcome = null;
            try {
                cOutcome = c.handle((id, e) -> e == null ? new AssertionError("stored: " + id) : e)
                        .get(publishTimeout.toMillis() + 2500, TimeUnit.MILLISECONDS);
            } catch (java.util.concurrent.TimeoutException stuck) {
                // reported below
            }
            int held = 0;
            int heldButFailed = 0;
            synchronized (st.parked) {
                for (StreamGuard.Parked p : st.parked) {
                    held++;
                    if (p.future().isDone()) heldButFailed++;
                }
            }
            assertThat(cOutcome).as("C, published from B's callback, answered within its deadline (%d ms since; still held: %d, "
                    + "of which %d already failed as 'nothing was written')", (System.nanoTime() - cStarted) / 1_000_000, held,
                    heldButFailed).isNotNull();
            assertThat(heldButFailed).as("held publishes whose futures already failed, still in the queue to be sent on room")
                    .isZero();
        }
    }

    /**
     * The same without any caller code: a retrying publish's last try, held in the full stream, is failed by the timer's
     * pass after another held publish; its lane then lets the publish waiting behind it go, which is held in the same
     * deque from inside removeIf. The timer is held only to put both ends of the wait in one pass, as a late tick does.
     */
    @Test
    void aRetrysLastHeldTryFailedInTheSamePassAsAnotherKillsTheTimer() throws Exception {
        Duration publishTimeout = Duration.ofSeconds(4);
        FullStream full = FullStream.start(closeables, publishTimeout, Duration.ofSeconds(60));
        RedisServerProcess server = full.server();
        EventBus bus = full.bus();
        RedisEventBus impl = full.impl();
        StreamGuard.State st = full.state();
        CompletableFuture<String> retrying = bus.publishInboundAsync(Envelope.of("seq", -1),
                io.stargazer.bus.PublishOptions.builder().dedupeKey("r-1").maxAttempts(2).build());
        await().atMost(Duration.ofSeconds(10)).until(() -> parked(st) == 1); // the retry's first try, held
        // A second later: A's deadline comes a second after the first try's (a spacing the scenario needs, not a wait
        // for a condition).
        await().atMost(Duration.ofSeconds(5)).pollDelay(Duration.ofSeconds(1)).until(() -> true);
        CompletableFuture<String> a = bus.publishInboundAsync(Envelope.of("seq", -2)); // held behind the retry's first try
        // The first try ends at its deadline; the retry holds the lane and its second (last) try is held behind A.
        await().atMost(Duration.ofSeconds(10)).until(() -> impl.lanes().size() == 1 && parked(st) == 2);
        CompletableFuture<String> behind = bus.publishInboundAsync(Envelope.of("seq", -3)); // waits in the lane
        java.util.concurrent.CountDownLatch timerFree = new java.util.concurrent.CountDownLatch(1);
        closeables.add(timerFree::countDown);
        impl.timers().execute(() -> {
            try {
                timerFree.await();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        });
        long behindDeadline = System.nanoTime() + publishTimeout.toNanos();
        try (RedisFaults.Fault paused = RedisFaults.pause(server)) {
            assertThat(a).as("A, held").isNotDone();
            // Past the ends of A's wait, the last try's and the waiting publish's deadline: one pass ends them all.
            await().atMost(Duration.ofSeconds(10)).until(() -> System.nanoTime() - behindDeadline > 100_000_000L);
            timerFree.countDown();
            Throwable outcome = null;
            try {
                outcome = behind.handle((id, e) -> e == null ? new AssertionError("stored: " + id) : e).get(3, TimeUnit.SECONDS);
            } catch (java.util.concurrent.TimeoutException stuck) {
                // reported below
            }
            assertThat(outcome).as("the publish that waited behind the retry, answered by its deadline (A done: %s, retry done: %s, "
                    + "held now: %d)", a.isDone(), retrying.isDone(), parked(st)).isNotNull();
        }
    }

    private static int parked(StreamGuard.State st) {
        synchronized (st.parked) {
            return st.parked.size();
        }
    }

    /**
     * When room came, the held publishes were taken off their queue one by one and handed on; one whose hand-over threw
     * (here a metrics hook; any bug on that path) was neither written nor failed, and its caller waited for ever: it had
     * left the queue the timer expires held publishes from. Found in review of 25e3fce.
     */
    @Test
    void aHeldPublishWhoseReleaseThrowsIsAnsweredNotLeftWaiting() throws Exception {
        FullStream full = FullStream.start(closeables, Duration.ofSeconds(60), Duration.ofSeconds(60));
        full.impl().addHooks(failingWhen(true, "hook failed on release"));
        var held = full.impl().publishAsync(full.stream(), Envelope.of("seq", -1), PublishOptions.NONE, full.stream());
        // Room: the group reads and acknowledges everything, and the next re-check (every 50 ms while full) trims.
        try (RawRedis raw = new RawRedis(RedisUrl.parse(full.server().url()))) {
            var read = raw.sync().xreadgroup(io.lettuce.core.Consumer.from(RawRedis.utf8("slow"), RawRedis.utf8("c")),
                    io.lettuce.core.XReadArgs.Builder.count(100_000),
                    io.lettuce.core.XReadArgs.StreamOffset.lastConsumed(RawRedis.utf8(full.stream())));
            raw.sync().xack(RawRedis.utf8(full.stream()), RawRedis.utf8("slow"), read.stream().map(m -> m.getId()).toArray(String[]::new));
        }
        // Well within the publish and backpressure timeouts (60 s): answered because room came, not because time ran out.
        assertThatThrownBy(() -> held.get(20, TimeUnit.SECONDS)).isInstanceOf(ExecutionException.class)
                .hasRootCauseMessage("hook failed on release");
        assertThat(full.guard().isFull(full.stream())).isFalse();
    }

    /**
     * The same on the other way a held publish ends, its wait running out: the timer took the publishes whose wait was
     * over off the queue, then for each told the metrics hook and failed it; a hook that threw (or any bug there) left
     * that publish and every later one of the pass neither written nor failed, their callers waiting for ever (the timer
     * logged the exception and went on). Found in review of a7ac9e9, which fixed the release side only.
     */
    @Test
    void heldPublishesWhoseExpiryHookThrowsAreAnsweredNotLeftWaiting() throws Exception {
        FullStream full = FullStream.start(closeables, Duration.ofSeconds(2), Duration.ofSeconds(60));
        full.impl().addHooks(failingWhen(false, "hook failed on expiry"));
        var first = full.impl().publishAsync(full.stream(), Envelope.of("seq", -1), PublishOptions.NONE, full.stream());
        var second = full.impl().publishAsync(full.stream(), Envelope.of("seq", -2), PublishOptions.NONE, full.stream());
        assertThat(full.guard().isFull(full.stream())).isTrue();
        // Their publish timeout (2 s) ends their wait; the stream stays full, so only the expiry can answer them.
        await("both held publishes answered").atMost(Duration.ofSeconds(15)).until(() -> first.isDone() && second.isDone());
        assertThat(first).isCompletedExceptionally();
        assertThat(second).isCompletedExceptionally();
    }

    /** A metrics hook that throws {@code message} when a held publish's wait ends with room ({@code true}) or without. */
    private static BusHooks failingWhen(boolean room, String message) {
        return new BusHooks() {
            @Override
            public void backpressureWaited(String stream, long nanos, boolean gotRoom) {
                if (gotRoom == room) throw new IllegalStateException(message);
            }
        };
    }
}
