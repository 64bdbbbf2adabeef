package io.stargazer.bus.internal;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;

import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicIntegerArray;
import java.util.concurrent.locks.LockSupport;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The handler pool's promises without Redis: fast tasks do not wake a thread each, a slow or hung task never holds the
 * others while a thread is free, no task is lost between a submit and a thread going to sleep, and shutdown behaves as
 * {@code ThreadPoolExecutor}'s.
 */
@Timeout(60)
class HandlerPoolTest {
    /** With the watch thread left out: a thread in a task counts as free this long, so what these tests see is the submit path alone. */
    private static final long NEVER = TimeUnit.HOURS.toNanos(1);

    private HandlerPool pool;

    @AfterEach
    void stop() {
        if (pool != null) pool.shutdownNow();
    }

    @Test
    void fastTasksFromOneSubmitterRunOnOneThreadInsteadOfWakingOnePerTask() {
        pool = new HandlerPool(16, "test", NEVER, false);
        Set<Thread> threads = ConcurrentHashMap.newKeySet();
        AtomicInteger done = new AtomicInteger();
        for (int i = 0; i < 2_000; i++) {
            pool.execute(() -> {
                threads.add(Thread.currentThread());
                done.incrementAndGet();
            });
        }
        await().atMost(10, TimeUnit.SECONDS).until(() -> done.get() == 2_000);
        // A fixed ThreadPoolExecutor spreads such a burst over its threads, waking one per task while tasks remain.
        assertThat(threads).hasSize(1);
        assertThat(pool.threadsStarted()).isEqualTo(1);
    }

    @Test
    void aHungTaskDoesNotHoldTheTasksBehindIt() {
        pool = new HandlerPool(4, "test");
        CountDownLatch hang = new CountDownLatch(1);
        AtomicInteger done = new AtomicInteger();
        for (int hung = 0; hung < 3; hung++) pool.execute(() -> awaitQuietly(hang));
        for (int i = 0; i < 100; i++) pool.execute(done::incrementAndGet);
        // Submitted while the hung tasks' threads are awake: the watch thread wakes a free one for them.
        await().atMost(10, TimeUnit.SECONDS).until(() -> done.get() == 100);
        hang.countDown();
    }

    @Test
    void aTaskThatBecomesSlowAfterOthersQueuedBehindItGetsThemAnotherThread() {
        pool = new HandlerPool(2, "test");
        CountDownLatch started = new CountDownLatch(1);
        CountDownLatch hang = new CountDownLatch(1);
        AtomicInteger done = new AtomicInteger();
        pool.execute(() -> {
            started.countDown();
            awaitQuietly(hang);
        });
        awaitQuietly(started);
        pool.execute(done::incrementAndGet); // its only awake thread is hung: nothing else would take it
        await().atMost(10, TimeUnit.SECONDS).until(() -> done.get() == 1);
        hang.countDown();
    }

    @Test
    void slowTasksGetEveryThreadOfThePoolAndNoMore() {
        pool = new HandlerPool(8, "test");
        CountDownLatch allIn = new CountDownLatch(8);
        CountDownLatch release = new CountDownLatch(1);
        AtomicInteger running = new AtomicInteger();
        AtomicInteger most = new AtomicInteger();
        AtomicInteger done = new AtomicInteger();
        for (int i = 0; i < 16; i++) {
            pool.execute(() -> {
                most.accumulateAndGet(running.incrementAndGet(), Math::max);
                allIn.countDown();
                awaitQuietly(release);
                running.decrementAndGet();
                done.incrementAndGet();
            });
        }
        await().atMost(10, TimeUnit.SECONDS).until(() -> allIn.getCount() == 0); // eight at once
        release.countDown();
        await().atMost(10, TimeUnit.SECONDS).until(() -> done.get() == 16);
        assertThat(most.get()).isEqualTo(8);
        assertThat(pool.threadsStarted()).isEqualTo(8);
    }

    /**
     * One task at a time, each submitted as the last one's thread goes back to sleep: a task left in the queue with every
     * thread asleep would never run (the watch thread, which could hide that, is kept out of it), and this wait times out.
     */
    @Test
    void noTaskIsLostWhileItsThreadGoesToSleep() {
        pool = new HandlerPool(4, "test", NEVER, false);
        for (int i = 0; i < 20_000; i++) {
            CountDownLatch ran = new CountDownLatch(1);
            pool.execute(ran::countDown);
            if (i % 3 == 0) LockSupport.parkNanos(1_000 * (i % 7)); // vary where the thread is on its way to sleep
            assertThat(awaitQuietly(ran, 10)).as("task %d ran", i).isTrue();
        }
    }

    @Test
    void manySubmittersEveryTaskRunsExactlyOnce() throws Exception {
        pool = new HandlerPool(4, "test", NEVER, false);
        int submitters = 4;
        int each = 25_000;
        AtomicIntegerArray runs = new AtomicIntegerArray(submitters * each);
        Thread[] threads = new Thread[submitters];
        for (int s = 0; s < submitters; s++) {
            int base = s * each;
            threads[s] = new Thread(() -> {
                for (int i = 0; i < each; i++) {
                    int n = base + i;
                    pool.execute(() -> runs.incrementAndGet(n));
                    if (i % 97 == 0) LockSupport.parkNanos(20_000);
                }
            });
            threads[s].start();
        }
        for (Thread t : threads) t.join();
        await().atMost(20, TimeUnit.SECONDS).until(() -> {
            for (int i = 0; i < runs.length(); i++) if (runs.get(i) == 0) return false;
            return true;
        });
        for (int i = 0; i < runs.length(); i++) assertThat(runs.get(i)).as("runs of task %d", i).isEqualTo(1);
    }

    @Test
    void aTaskThatThrowsLeavesItsThreadWorking() {
        pool = new HandlerPool(2, "test", NEVER, false);
        AtomicBoolean after = new AtomicBoolean();
        Thread.UncaughtExceptionHandler quiet = (t, e) -> { };
        pool.execute(() -> {
            Thread.currentThread().setUncaughtExceptionHandler(quiet);
            throw new AssertionError("boom");
        });
        pool.execute(() -> after.set(true));
        await().atMost(10, TimeUnit.SECONDS).untilTrue(after);
        assertThat(pool.threadsStarted()).isEqualTo(1); // the same thread went on; none was started in its place
    }

    /** An uncaught-exception handler that throws ended the thread, left it counted awake, and shutdown dropped the next task. */
    @Test
    void aTaskWhoseUncaughtExceptionHandlerThrowsDoesNotWedgeThePool() throws Exception {
        pool = new HandlerPool(1, "test");
        AtomicBoolean after = new AtomicBoolean();
        pool.execute(() -> {
            Thread.currentThread().setUncaughtExceptionHandler((t, e) -> { throw new IllegalStateException("handler broke"); });
            throw new AssertionError("boom");
        });
        pool.execute(() -> after.set(true));
        await().atMost(10, TimeUnit.SECONDS).untilTrue(after);
        pool.shutdown();
        assertThat(pool.awaitTermination(10, TimeUnit.SECONDS)).isTrue();
    }

    /** A task that returns with its interrupt flag set (as a caught InterruptedException often leaves it) made park return at once. */
    @Test
    void anIdleThreadSleepsEvenWhenItsLastTaskLeftAnInterruptSet() {
        pool = new HandlerPool(2, "test");
        java.util.concurrent.atomic.AtomicReference<Thread> worker = new java.util.concurrent.atomic.AtomicReference<>();
        pool.execute(() -> {
            worker.set(Thread.currentThread());
            Thread.currentThread().interrupt();
        });
        await().atMost(10, TimeUnit.SECONDS).until(() -> worker.get() != null && worker.get().getState() == Thread.State.WAITING);
        int running = 0;
        for (int i = 0; i < 200; i++) {
            if (worker.get().getState() == Thread.State.RUNNABLE) running++;
            LockSupport.parkNanos(1_000_000);
        }
        assertThat(running).as("samples of 200 with the idle thread running").isLessThanOrEqualTo(2);
    }

    /** The watch thread is left out: a task submitted behind a thread long in its task must wake another by itself. */
    @Test
    void aTaskSubmittedBehindALongHandlerWakesAFreeThreadAtOnce() {
        long helpAfter = TimeUnit.MILLISECONDS.toNanos(20);
        pool = new HandlerPool(4, "test", helpAfter, false);
        CountDownLatch hang = new CountDownLatch(1);
        java.util.concurrent.atomic.AtomicLong longStarted = new java.util.concurrent.atomic.AtomicLong();
        pool.execute(() -> {
            longStarted.set(System.nanoTime());
            awaitQuietly(hang);
        });
        await().atMost(10, TimeUnit.SECONDS).pollInterval(java.time.Duration.ofMillis(5))
                .until(() -> longStarted.get() != 0 && System.nanoTime() - longStarted.get() > 2 * helpAfter);
        AtomicBoolean ran = new AtomicBoolean();
        pool.execute(() -> ran.set(true));
        await().atMost(10, TimeUnit.SECONDS).untilTrue(ran);
        hang.countDown();
    }

    @Test
    void shutdownEndsIdleThreads() throws Exception {
        pool = new HandlerPool(4, "test");
        java.util.concurrent.atomic.AtomicReference<Thread> worker = new java.util.concurrent.atomic.AtomicReference<>();
        pool.execute(() -> worker.set(Thread.currentThread()));
        await().atMost(10, TimeUnit.SECONDS).until(() -> worker.get() != null && worker.get().getState() == Thread.State.WAITING);
        pool.shutdown(); // no interrupt, unlike shutdownNow: the parked thread must be woken to see it
        assertThat(pool.awaitTermination(10, TimeUnit.SECONDS)).isTrue();
        await().atMost(10, TimeUnit.SECONDS).until(() -> !worker.get().isAlive());
    }

    @Test
    void shutdownRunsWhatWasSubmittedAndRejectsNewTasks() throws Exception {
        pool = new HandlerPool(1, "test");
        CountDownLatch hang = new CountDownLatch(1);
        AtomicInteger done = new AtomicInteger();
        pool.execute(() -> awaitQuietly(hang));
        for (int i = 0; i < 10; i++) pool.execute(done::incrementAndGet);
        pool.shutdown();
        assertThat(pool.isShutdown()).isTrue();
        assertThatThrownBy(() -> pool.execute(done::incrementAndGet)).isInstanceOf(RejectedExecutionException.class);
        assertThat(pool.awaitTermination(50, TimeUnit.MILLISECONDS)).isFalse();
        hang.countDown();
        assertThat(pool.awaitTermination(10, TimeUnit.SECONDS)).isTrue();
        assertThat(pool.isTerminated()).isTrue();
        assertThat(done.get()).isEqualTo(10);
    }

    @Test
    void shutdownNowInterruptsTheRunningAndReturnsTheUnrun() throws Exception {
        pool = new HandlerPool(1, "test");
        CountDownLatch started = new CountDownLatch(1);
        AtomicBoolean interrupted = new AtomicBoolean();
        pool.execute(() -> {
            started.countDown();
            try {
                new CountDownLatch(1).await(60, TimeUnit.SECONDS); // blocks until interrupted
            } catch (InterruptedException e) {
                interrupted.set(true);
            }
        });
        awaitQuietly(started);
        AtomicInteger ran = new AtomicInteger();
        for (int i = 0; i < 5; i++) pool.execute(ran::incrementAndGet);
        List<Runnable> unrun = pool.shutdownNow();
        assertThat(pool.awaitTermination(10, TimeUnit.SECONDS)).isTrue();
        assertThat(interrupted).isTrue();
        assertThat(unrun).hasSize(5);
        assertThat(ran.get()).isZero();
    }

    /** What the tool service does at close: the requests still waiting for a tool thread are taken back, not run. */
    @Test
    void drainQueuedTakesTheWaitingTasksBack() throws Exception {
        pool = new HandlerPool(1, "test", NEVER, false);
        CountDownLatch hang = new CountDownLatch(1);
        CountDownLatch started = new CountDownLatch(1);
        AtomicInteger ran = new AtomicInteger();
        pool.execute(() -> {
            started.countDown();
            awaitQuietly(hang);
        });
        awaitQuietly(started);
        for (int i = 0; i < 3; i++) pool.execute(ran::incrementAndGet);
        List<Runnable> taken = new java.util.ArrayList<>();
        pool.drainQueued(taken);
        pool.shutdown();
        hang.countDown();
        assertThat(pool.awaitTermination(10, TimeUnit.SECONDS)).isTrue();
        assertThat(taken).hasSize(3);
        assertThat(ran.get()).isZero();
    }

    @Test
    void anUnusedPoolTerminatesAtShutdown() throws Exception {
        pool = new HandlerPool(4, "test");
        pool.shutdown();
        assertThat(pool.awaitTermination(10, TimeUnit.SECONDS)).isTrue();
        assertThat(pool.threadsStarted()).isZero();
    }

    @Test
    void badSizesAreRefusedByName() {
        assertThatThrownBy(() -> new HandlerPool(0, "test")).isInstanceOf(IllegalArgumentException.class).hasMessageContaining("size");
        assertThatThrownBy(() -> new HandlerPool(1, "test", 0, true)).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("helpAfterNanos");
    }

    private static void awaitQuietly(CountDownLatch latch) {
        awaitQuietly(latch, 60);
    }

    private static boolean awaitQuietly(CountDownLatch latch, int seconds) {
        try {
            return latch.await(seconds, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return false;
        }
    }
}
