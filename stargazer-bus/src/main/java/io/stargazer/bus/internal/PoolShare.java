package io.stargazer.bus.internal;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.AbstractExecutorService;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.TimeUnit;

/**
 * One partition's part of a {@link HandlerPool} that the inbound partitions read by one {@link PartitionReader} share:
 * an executor with the partition's own limit and life, whose tasks run on the pool's threads. Why: with a pool per
 * partition, each share of a read woke a thread in each partition's pool, and six pools of four threads switched three
 * times as often as one stream's pool (bench/profile-notes.md); a shared pool lets a thread awake and free take any
 * partition's next task.
 *
 * <p>What stays each partition's own: at most {@code limit} of its tasks are in the pool at once (its
 * {@code concurrency}; the rest wait here, in order), so a partition whose handlers hang holds at most that many of the
 * pool's threads, as it held its own pool's; the pool has the sum of the partitions' limits. {@link #shutdown} lets the
 * share's submitted tasks run and refuses new ones; {@link #shutdownNow} drops those not started (a task the pool
 * starts after it returns does not run) and interrupts the threads running the share's tasks, no other; termination
 * is the share's tasks all ended. When the last share of the pool has terminated, the pool shuts down. A thread that
 * ends one of the share's tasks runs its waiting ones after it, in order, while no task waits in the pool ({@link #run}).
 *
 * <p>Threads: none of its own. {@link #execute} may be called from any thread (the reader, a handler thread, a Redis
 * I/O thread completing a stage); it holds this share's lock for a few field updates only, and never waits.
 */
final class PoolShare extends AbstractExecutorService {
    private static final int RUNNING = 0;
    private static final int SHUTDOWN = 1;
    private static final int STOP = 2;

    private final HandlerPool pool;
    private final int limit;
    private final String name;
    private final Runnable terminatedHook;
    /** Tasks beyond the limit, in submission order; guarded by {@code this}. */
    private final ArrayDeque<Runnable> waiting = new ArrayDeque<>();
    /** Threads running one of this share's tasks now; guarded by {@code this}. */
    private final Set<Thread> running = new HashSet<>();
    private final CountDownLatch terminated = new CountDownLatch(1);
    /** Tasks handed to the pool and not yet ended (run or skipped); guarded by {@code this}. */
    private int inPool;
    /** Set once, by the call that terminates the share; guarded by {@code this}. */
    private boolean terminating;
    private volatile int state = RUNNING;

    /** A pool given out in shares, shut down when the last share given out has terminated. */
    static final class Shared {
        private final HandlerPool pool;
        private final java.util.concurrent.atomic.AtomicInteger live = new java.util.concurrent.atomic.AtomicInteger();

        Shared(HandlerPool pool) {
            this.pool = pool;
        }

        PoolShare share(int limit, String name) {
            if (pool.isShutdown()) throw new IllegalStateException(name + ": the pool of its partitions is shut down");
            live.incrementAndGet();
            return new PoolShare(pool, limit, name, () -> {
                if (live.decrementAndGet() == 0) pool.shutdown();
            });
        }
    }

    /** {@code terminatedHook}: called once, when this share has terminated. */
    PoolShare(HandlerPool pool, int limit, String name, Runnable terminatedHook) {
        if (limit < 1) throw new IllegalArgumentException("limit must be at least 1, was " + limit);
        this.pool = pool;
        this.limit = limit;
        this.name = name;
        this.terminatedHook = terminatedHook;
    }

    @Override
    public void execute(Runnable task) {
        java.util.Objects.requireNonNull(task, "task");
        synchronized (this) {
            if (state != RUNNING) throw new RejectedExecutionException(name + " is shut down");
            if (inPool >= limit) {
                waiting.add(task);
                return;
            }
            inPool++;
        }
        hand(task);
    }

    /** Gives a task counted in {@link #inPool} to the pool. */
    private void hand(Runnable task) {
        try {
            pool.execute(() -> run(task));
        } catch (RejectedExecutionException e) {
            // Only a pool shut down refuses, and it is shut down after its last share terminated: not reached while
            // this share runs. Its place is freed; what waits stays for shutdownNow to return.
            boolean done;
            synchronized (this) {
                inPool--;
                done = terminatesNow();
            }
            if (done) terminated();
            throw e;
        }
    }

    /**
     * Runs {@code task}, then the share's waiting tasks one after another on this thread while there are any and nothing
     * waits in the pool: each would otherwise be handed back to the pool (a queue and a look for a free thread per task,
     * the handler threads' largest extra over one stream's in a profile of the 6-partition row: bench/profile-notes.md).
     * The share's place in the pool passes from one to the next, so it still holds at most {@code limit} threads. A task
     * waiting in the pool was queued for a thread the pool took to be free, perhaps this one (a thread is taken to be
     * free for the first {@code helpAfter} of a task): the next one of the share is then handed back to the pool, behind
     * it, as before, rather than run ahead of it.
     */
    private void run(Runnable task) {
        Thread me = Thread.currentThread();
        Runnable current = task;
        boolean first = true;
        while (current != null) {
            // As the pool does before each task: an interrupt the last task left set is not this one's. Cleared before
            // the thread counts as running this share's task, so that one of this share's shutdownNow, which may come
            // right after, stays set for the task.
            if (!first) Thread.interrupted();
            first = false;
            boolean skip;
            synchronized (this) {
                skip = state == STOP; // shutdownNow came after the task was handed: it never runs
                if (!skip) running.add(me);
            }
            if (!skip) HandlerPool.runReporting(current);
            boolean done = false;
            // Out of `running` under the lock shutdownNow interrupts under: no interrupt of this share's comes after.
            synchronized (this) {
                if (!skip) running.remove(me);
                current = state == STOP ? null : waiting.poll();
                if (current == null) {
                    inPool--;
                    done = terminatesNow();
                }
            }
            if (done) terminated();
            if (current != null && pool.hasQueued()) {
                hand(current); // its place with it
                return;
            }
        }
    }

    /** Under {@code this}: true once, when the share is shut down with nothing of it left to run. */
    private boolean terminatesNow() {
        if (state == RUNNING || inPool > 0 || !waiting.isEmpty() || terminating) return false;
        terminating = true;
        return true;
    }

    /** The hook first, so that whoever awaits the last share's termination finds the pool shut down. */
    private void terminated() {
        try {
            terminatedHook.run();
        } finally {
            terminated.countDown();
        }
    }

    @Override
    public void shutdown() {
        boolean done;
        synchronized (this) {
            if (state == RUNNING) state = SHUTDOWN;
            done = terminatesNow();
        }
        if (done) terminated();
    }

    @Override
    public List<Runnable> shutdownNow() {
        List<Runnable> unrun;
        boolean done;
        synchronized (this) {
            state = STOP;
            unrun = new ArrayList<>(waiting);
            waiting.clear();
            for (Thread t : running) t.interrupt();
            done = terminatesNow();
        }
        if (done) terminated();
        return unrun;
    }

    @Override
    public boolean isShutdown() {
        return state != RUNNING;
    }

    @Override
    public boolean isTerminated() {
        return terminated.getCount() == 0;
    }

    @Override
    public boolean awaitTermination(long timeout, TimeUnit unit) throws InterruptedException {
        return terminated.await(timeout, unit);
    }
}
