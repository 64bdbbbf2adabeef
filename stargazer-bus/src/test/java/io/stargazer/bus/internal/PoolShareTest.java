package io.stargazer.bus.internal;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;

import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The partitions' shares of one handler pool (PartitionReader): each keeps its own limit and life on threads they
 * share. Without Redis: what a share promises its partition is the executor contract StreamConsumer's close relies on.
 */
@Timeout(60)
class PoolShareTest {
    private HandlerPool pool;
    private final AtomicInteger terminatedShares = new AtomicInteger();

    @AfterEach
    void stop() {
        if (pool != null) pool.shutdownNow();
    }

    private PoolShare share(int limit) {
        return new PoolShare(pool, limit, "test-share", terminatedShares::incrementAndGet);
    }

    @Test
    void fastTasksOfEveryShareRunOnOneThreadOfThePool() {
        pool = new HandlerPool(8, "test", TimeUnit.HOURS.toNanos(1), false);
        List<PoolShare> shares = new ArrayList<>();
        for (int i = 0; i < 4; i++) shares.add(share(2));
        Set<Thread> threads = ConcurrentHashMap.newKeySet();
        AtomicInteger done = new AtomicInteger();
        for (int i = 0; i < 2_000; i++) {
            shares.get(i % 4).execute(() -> {
                threads.add(Thread.currentThread());
                done.incrementAndGet();
            });
        }
        await().atMost(10, TimeUnit.SECONDS).until(() -> done.get() == 2_000);
        // Four pools of their own would have woken a thread each.
        assertThat(threads).hasSize(1);
    }

    @Test
    void aShareWhoseTasksHangHoldsNoMoreThanItsLimitOfThePool() throws Exception {
        pool = new HandlerPool(4, "test");
        PoolShare stuck = share(2);
        PoolShare other = share(2);
        CountDownLatch hang = new CountDownLatch(1);
        AtomicInteger started = new AtomicInteger();
        for (int i = 0; i < 10; i++) {
            stuck.execute(() -> {
                started.incrementAndGet();
                awaitQuietly(hang);
            });
        }
        await().atMost(10, TimeUnit.SECONDS).until(() -> started.get() == 2);
        AtomicInteger otherDone = new AtomicInteger();
        for (int i = 0; i < 100; i++) other.execute(otherDone::incrementAndGet);
        await().atMost(10, TimeUnit.SECONDS).until(() -> otherDone.get() == 100);
        assertThat(started.get()).as("the hung share's tasks past its limit wait in it").isEqualTo(2);
        hang.countDown();
        await().atMost(10, TimeUnit.SECONDS).until(() -> started.get() == 10);
    }

    @Test
    void aShareRunsItsWaitingTasksInTheirOrder() {
        pool = new HandlerPool(4, "test");
        PoolShare s = share(1);
        List<Integer> seen = java.util.Collections.synchronizedList(new ArrayList<>());
        for (int i = 0; i < 500; i++) {
            int n = i;
            s.execute(() -> seen.add(n));
        }
        await().atMost(10, TimeUnit.SECONDS).until(() -> seen.size() == 500);
        assertThat(seen).isSorted();
    }

    @Test
    void shutdownRunsWhatWasSubmittedRefusesMoreAndTerminatesAlone() throws Exception {
        pool = new HandlerPool(4, "test");
        PoolShare closing = share(1);
        PoolShare staying = share(1);
        CountDownLatch gate = new CountDownLatch(1);
        AtomicInteger done = new AtomicInteger();
        closing.execute(() -> awaitQuietly(gate));
        for (int i = 0; i < 5; i++) closing.execute(done::incrementAndGet);
        closing.shutdown();
        assertThat(closing.isShutdown()).isTrue();
        assertThat(closing.isTerminated()).isFalse();
        assertThatThrownBy(() -> closing.execute(() -> { })).isInstanceOf(RejectedExecutionException.class);
        gate.countDown();
        assertThat(closing.awaitTermination(10, TimeUnit.SECONDS)).isTrue();
        assertThat(done.get()).isEqualTo(5);
        assertThat(terminatedShares.get()).isEqualTo(1);
        // The other share and the pool go on.
        AtomicBoolean ran = new AtomicBoolean();
        staying.execute(() -> ran.set(true));
        await().atMost(10, TimeUnit.SECONDS).untilTrue(ran);
        assertThat(pool.isShutdown()).isFalse();
    }

    @Test
    void shutdownNowInterruptsOnlyItsOwnTasksAndDropsTheUnstarted() throws Exception {
        pool = new HandlerPool(3, "test");
        PoolShare stopping = share(2);
        PoolShare other = share(3);
        CountDownLatch otherIn = new CountDownLatch(1);
        CountDownLatch release = new CountDownLatch(1);
        CountDownLatch otherDone = new CountDownLatch(1);
        AtomicBoolean otherInterrupted = new AtomicBoolean();
        other.execute(() -> {
            otherIn.countDown();
            try {
                release.await();
            } catch (InterruptedException e) {
                otherInterrupted.set(true);
            } finally {
                otherDone.countDown();
            }
        });
        assertThat(otherIn.await(10, TimeUnit.SECONDS)).isTrue();
        CountDownLatch ownIn = new CountDownLatch(2);
        AtomicInteger ownInterrupted = new AtomicInteger();
        AtomicInteger laterRan = new AtomicInteger();
        CountDownLatch neverReleased = new CountDownLatch(1); // they wait for the interrupt alone
        for (int i = 0; i < 2; i++) {
            stopping.execute(() -> {
                ownIn.countDown();
                try {
                    neverReleased.await();
                } catch (InterruptedException e) {
                    ownInterrupted.incrementAndGet();
                    Thread.currentThread().interrupt(); // left set, as a handler may leave it
                }
            });
        }
        for (int i = 0; i < 3; i++) stopping.execute(laterRan::incrementAndGet);
        assertThat(ownIn.await(10, TimeUnit.SECONDS)).isTrue();
        List<Runnable> unrun = stopping.shutdownNow();
        assertThat(unrun).hasSize(3);
        assertThat(stopping.awaitTermination(10, TimeUnit.SECONDS)).isTrue();
        assertThat(ownInterrupted.get()).isEqualTo(2);
        assertThat(laterRan.get()).isZero();
        release.countDown();
        assertThat(otherDone.await(10, TimeUnit.SECONDS)).isTrue();
        assertThat(otherInterrupted.get()).as("the other share's task").isFalse();
        // Three tasks that meet at a barrier run on all three threads of the pool, the two the stopped share
        // interrupted among them: none of them starts interrupted.
        java.util.concurrent.CyclicBarrier meet = new java.util.concurrent.CyclicBarrier(3);
        AtomicInteger interruptedAtStart = new AtomicInteger();
        CountDownLatch met = new CountDownLatch(3);
        for (int i = 0; i < 3; i++) {
            other.execute(() -> {
                if (Thread.currentThread().isInterrupted()) interruptedAtStart.incrementAndGet();
                try {
                    meet.await(10, TimeUnit.SECONDS);
                    met.countDown();
                } catch (Exception e) {
                    interruptedAtStart.incrementAndGet();
                }
            });
        }
        assertThat(met.await(10, TimeUnit.SECONDS)).isTrue();
        assertThat(interruptedAtStart.get()).isZero();
    }

    @Test
    void aTaskHandedToThePoolBeforeShutdownNowButNotStartedDoesNotRun() throws Exception {
        pool = new HandlerPool(1, "test", TimeUnit.HOURS.toNanos(1), false);
        PoolShare blocker = share(1);
        PoolShare stopping = share(4);
        CountDownLatch gate = new CountDownLatch(1);
        CountDownLatch in = new CountDownLatch(1);
        blocker.execute(() -> {
            in.countDown();
            awaitQuietly(gate);
        });
        assertThat(in.await(10, TimeUnit.SECONDS)).isTrue();
        AtomicInteger ran = new AtomicInteger();
        for (int i = 0; i < 3; i++) stopping.execute(ran::incrementAndGet); // in the pool's queue behind the blocker
        assertThat(stopping.shutdownNow()).isEmpty(); // none was waiting in the share itself
        assertThat(stopping.isTerminated()).isFalse();
        gate.countDown();
        assertThat(stopping.awaitTermination(10, TimeUnit.SECONDS)).isTrue();
        assertThat(ran.get()).isZero();
    }

    @Test
    void thePoolShutsDownWhenItsLastShareTerminates() throws Exception {
        pool = new HandlerPool(2, "test");
        PoolShare.Shared shares = new PoolShare.Shared(pool);
        PoolShare a = shares.share(1, "a");
        PoolShare b = shares.share(1, "b");
        AtomicBoolean ran = new AtomicBoolean();
        a.execute(() -> ran.set(true));
        await().atMost(10, TimeUnit.SECONDS).untilTrue(ran);
        a.shutdown();
        assertThat(a.awaitTermination(10, TimeUnit.SECONDS)).isTrue();
        assertThat(pool.isShutdown()).isFalse();
        b.shutdown();
        assertThat(b.awaitTermination(10, TimeUnit.SECONDS)).isTrue();
        assertThat(pool.isShutdown()).as("shut down by the time the last share's termination is seen").isTrue();
        assertThat(pool.awaitTermination(10, TimeUnit.SECONDS)).isTrue();
        assertThatThrownBy(() -> shares.share(1, "c")).isInstanceOf(IllegalStateException.class);
    }

    /**
     * A share runs its waiting tasks on the thread that finished one (a chain), and an interrupt a task leaves set does
     * not carry into the next task of the chain, as the pool clears it before each of its own tasks.
     */
    @Test
    void anInterruptATaskLeavesSetDoesNotCarryIntoTheNextTaskOfItsShare() {
        pool = new HandlerPool(1, "test", TimeUnit.HOURS.toNanos(1), false);
        PoolShare s = share(1);
        CountDownLatch go = new CountDownLatch(1);
        List<Boolean> interruptedAtStart = java.util.Collections.synchronizedList(new ArrayList<>());
        s.execute(() -> {
            awaitQuietly(go);
            Thread.currentThread().interrupt(); // left set, as a handler may leave it
        });
        for (int i = 0; i < 3; i++) {
            s.execute(() -> {
                interruptedAtStart.add(Thread.currentThread().isInterrupted());
                Thread.currentThread().interrupt();
            });
        }
        go.countDown();
        await().atMost(10, TimeUnit.SECONDS).until(() -> interruptedAtStart.size() == 3);
        assertThat(interruptedAtStart).containsExactly(false, false, false);
    }

    /**
     * A share's chain of waiting tasks does not pass a task waiting in the pool: the pool queues a task for a thread it
     * takes to be free (here the only one, its task started less than {@code helpAfter} ago), and that thread runs it
     * next, before the share's next task. With the chain running the share's tasks first (31573ee, found by review) the
     * other share's task waited for the whole chain (with a watch thread, for its look after {@code helpAfter}).
     */
    @Test
    void aShareChainDoesNotPassATaskWaitingInThePool() {
        pool = new HandlerPool(2, "test", TimeUnit.HOURS.toNanos(1), false);
        PoolShare a = share(1);
        PoolShare b = share(1);
        CountDownLatch running = new CountDownLatch(1);
        CountDownLatch go = new CountDownLatch(1);
        List<String> order = java.util.Collections.synchronizedList(new ArrayList<>());
        a.execute(() -> {
            running.countDown();
            awaitQuietly(go);
            order.add("a1");
        });
        a.execute(() -> order.add("a2")); // waits in the share: its one place is taken
        a.execute(() -> order.add("a3"));
        awaitQuietly(running);
        b.execute(() -> order.add("b1")); // queued for the thread running a1, which the pool takes to be free
        assertThat(pool.hasQueued()).isTrue();
        go.countDown();
        await().atMost(10, TimeUnit.SECONDS).until(() -> order.size() == 4);
        assertThat(order).containsExactly("a1", "b1", "a2", "a3");
    }

    private static void awaitQuietly(CountDownLatch latch) {
        try {
            latch.await();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
