package io.stargazer.bus.internal;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.AbstractExecutorService;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.locks.LockSupport;

/**
 * A subscription's handler threads: a fixed-size pool that wakes a thread only when the task needs one, not once per
 * task. {@code Executors.newFixedThreadPool} wakes a parked thread for every task while tasks remain, so a read of
 * 30 entries woke up to 16 threads for a few microseconds each; on the 2-core machines of the benchmarks a thread
 * switch costs about 8 µs, and the handler threads' switches were the largest single share of a worker's CPU in the
 * round trip (bench/profile-notes.md). Here a task submitted while a thread is awake (running a task or about to look
 * for the next) waits for that thread; another thread is woken only when the oldest waiting task has waited longer
 * than {@code helpAfter} (a slow or hung handler): so fast handlers run one after another on one thread, and slow ones
 * still get every thread of the pool.
 *
 * <p>Threads: up to {@code size} handler threads {@code <prefix>-N}, started when a task finds no thread to wake, never
 * stopped before shutdown; they run the tasks. One watch thread {@code <prefix>-watch}, started with the pool, sleeps
 * while no task waits; while one does, it looks every {@code helpAfter} and wakes a handler thread when the oldest
 * waiting task has waited longer than that (every awake thread is busy with a slow task: nobody else would take it).
 * {@link #execute} never blocks and may be called from any thread, a Redis I/O thread included (a completion stage
 * moving its lane on).
 *
 * <p>Shutdown is {@code ThreadPoolExecutor}'s: {@link #shutdown} runs what was submitted and rejects new tasks;
 * {@link #shutdownNow} interrupts the handler threads and returns the tasks that never started.
 */
final class HandlerPool extends AbstractExecutorService {
    /** How long a task may wait for a busy thread before an idle one is woken for it. */
    static final long DEFAULT_HELP_AFTER_NANOS = TimeUnit.MILLISECONDS.toNanos(1);

    /** How long the watch thread goes on looking after the last waiting task it saw, before it sleeps until armed. */
    static final long WATCH_IDLE_OUT_NANOS = TimeUnit.MILLISECONDS.toNanos(50);

    private static final int RUNNING = 0;
    private static final int SHUTDOWN = 1;
    private static final int STOP = 2;

    private record Queued(Runnable task, long since) {
    }

    private static final class Worker {
        final AtomicBoolean parked = new AtomicBoolean();
        Thread thread;
    }

    private final String prefix;
    private final long helpAfterNanos;
    private final ConcurrentLinkedQueue<Queued> queue = new ConcurrentLinkedQueue<>();
    /** Started handler threads, in start order; a slot is written once, under {@code this}. */
    private final Worker[] workers;
    /** Handler threads not parked: running a task or about to look for one. A task submitted while one is awake waits for it. */
    private final AtomicInteger awake = new AtomicInteger();
    private final AtomicBoolean watching = new AtomicBoolean();
    private final Thread watch;
    private final CountDownLatch terminated = new CountDownLatch(1);
    private volatile int state = RUNNING;
    /** Guarded by {@code this}. */
    private int started;
    /** Handler threads not yet ended; guarded by {@code this}. */
    private int live;

    HandlerPool(int size, String prefix) {
        this(size, prefix, DEFAULT_HELP_AFTER_NANOS);
    }

    HandlerPool(int size, String prefix, long helpAfterNanos) {
        if (size < 1) throw new IllegalArgumentException("size must be at least 1, was " + size);
        if (helpAfterNanos < 1) throw new IllegalArgumentException("helpAfterNanos must be positive, was " + helpAfterNanos);
        this.prefix = prefix;
        this.helpAfterNanos = helpAfterNanos;
        this.workers = new Worker[size];
        this.watch = new Thread(this::watch, prefix + "-watch");
        watch.setDaemon(true);
    }

    @Override
    public void execute(Runnable task) {
        java.util.Objects.requireNonNull(task, "task");
        if (state != RUNNING) throw new RejectedExecutionException(prefix + " is shut down");
        Queued q = new Queued(task, System.nanoTime());
        queue.offer(q);
        if (state != RUNNING && queue.remove(q)) {
            // Shut down between the check and the offer: the handler threads may have ended already.
            throw new RejectedExecutionException(prefix + " is shut down");
        }
        // The offer comes before this read and a parking thread lowers `awake` before it looks at the queue again
        // (both sequentially consistent), so either this sees nobody awake or that thread sees the task.
        if ((awake.get() == 0 && wakeOne()) || watching.get()) return;
        if (watching.compareAndSet(false, true)) LockSupport.unpark(watch);
    }

    /** Wakes a parked handler thread, or starts one while fewer than the pool's size run; false when every thread is awake. */
    private boolean wakeOne() {
        for (Worker w : workers) {
            if (w == null) break;
            if (w.parked.get() && w.parked.compareAndSet(true, false)) {
                awake.incrementAndGet();
                LockSupport.unpark(w.thread);
                return true;
            }
        }
        synchronized (this) {
            return startWorker();
        }
    }

    /** Called holding {@code this}. */
    private boolean startWorker() {
        if (started == workers.length || state == STOP) return false;
        if (started == 0) watch.start();
        Worker w = new Worker();
        w.thread = new Thread(() -> work(w), prefix + "-" + (started + 1));
        w.thread.setDaemon(true);
        awake.incrementAndGet();
        workers[started++] = w;
        live++;
        w.thread.start();
        return true;
    }

    private void work(Worker me) {
        try {
            while (true) {
                Queued q = state == STOP ? null : queue.poll();
                if (q != null) {
                    Queued next = queue.peek();
                    if (next != null && System.nanoTime() - next.since > helpAfterNanos) wakeOne();
                    // As ThreadPoolExecutor: interrupted when stopping, else not (an interrupt a last task left behind is
                    // not this one's); read the state again after clearing, as shutdownNow may have come in between.
                    if ((state == STOP || (Thread.interrupted() && state == STOP)) && !Thread.currentThread().isInterrupted()) {
                        Thread.currentThread().interrupt();
                    }
                    run(q.task);
                    continue;
                }
                if (state == STOP || (state == SHUTDOWN && queue.isEmpty())) return;
                me.parked.set(true);
                awake.decrementAndGet();
                if (!queue.isEmpty() || state != RUNNING) {
                    // A task came (or the pool shut down) between the poll and the park: take it back unless a
                    // submitter has already woken this thread (then it counted it awake itself).
                    if (me.parked.compareAndSet(true, false)) awake.incrementAndGet();
                    continue;
                }
                while (me.parked.get()) {
                    LockSupport.park(this);
                    if (state != RUNNING && me.parked.compareAndSet(true, false)) awake.incrementAndGet();
                }
            }
        } finally {
            synchronized (this) {
                live--;
            }
            tryTerminate();
        }
    }

    private static void run(Runnable task) {
        try {
            task.run();
        } catch (Throwable t) {
            // ThreadPoolExecutor would end the thread and start another; the thread itself is fine, so it goes on.
            Thread th = Thread.currentThread();
            th.getUncaughtExceptionHandler().uncaughtException(th, t);
        }
    }

    /**
     * The watch thread: wakes a handler thread for a task that waited too long behind busy ones. It looks every
     * {@code helpAfter} while tasks have waited in the last {@link #WATCH_IDLE_OUT_NANOS}, and sleeps until a submit
     * arms it after that: under a steady load it costs one wake-up per {@code helpAfter}, not one per read.
     */
    private void watch() {
        long lastSeen = System.nanoTime();
        while (!isTerminated()) {
            Queued head = queue.peek();
            long now = System.nanoTime();
            if (head != null) {
                lastSeen = now;
                // The oldest waited past its time: every awake thread is busy. Wake one (or none is left to wake) and
                // give it the time it takes to come; one that finds more old tasks behind its own wakes the next.
                if (now - head.since > helpAfterNanos) wakeOne();
                LockSupport.parkNanos(this, helpAfterNanos);
            } else if (now - lastSeen < WATCH_IDLE_OUT_NANOS) {
                LockSupport.parkNanos(this, helpAfterNanos);
            } else {
                watching.set(false);
                // A submit that read `watching` as true offered its task before this write, so this sees it.
                if (queue.isEmpty()) LockSupport.park(this);
                watching.set(true);
                lastSeen = System.nanoTime();
            }
        }
    }

    @Override
    public void shutdown() {
        synchronized (this) {
            if (state == RUNNING) state = SHUTDOWN;
        }
        wakeAll();
        tryTerminate();
    }

    @Override
    public List<Runnable> shutdownNow() {
        synchronized (this) {
            state = STOP;
        }
        List<Runnable> unrun = new ArrayList<>();
        for (Queued q; (q = queue.poll()) != null; ) unrun.add(q.task);
        for (Worker w : workers) {
            if (w != null) w.thread.interrupt();
        }
        wakeAll();
        tryTerminate();
        return unrun;
    }

    private void wakeAll() {
        for (Worker w : workers) {
            if (w == null) break;
            LockSupport.unpark(w.thread);
        }
        LockSupport.unpark(watch);
    }

    private void tryTerminate() {
        synchronized (this) {
            if (state == RUNNING || live > 0) return;
            // A task offered just before shutdown whose submitter has not yet started a thread for it: start it here.
            if (state == SHUTDOWN && !queue.isEmpty() && startWorker()) return;
        }
        terminated.countDown();
        LockSupport.unpark(watch);
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

    /** Handler threads started so far (tests). */
    synchronized int threadsStarted() {
        return started;
    }
}
