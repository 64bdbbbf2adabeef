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
import java.util.concurrent.atomic.AtomicReferenceArray;
import java.util.concurrent.locks.LockSupport;

/**
 * A subscription's handler threads: a fixed-size pool that wakes a thread only when the task needs one, not once per
 * task. {@code Executors.newFixedThreadPool} wakes a parked thread for every task while tasks remain, so a read of
 * 30 entries woke up to 16 threads for a few microseconds each; on the 2-core machines of the benchmarks a thread
 * switch costs about 8 µs, and the handler threads' switches were the largest single share of a worker's CPU in the
 * round trip (bench/profile-notes.md). Here a task submitted while a thread is awake and free (between tasks, or in a
 * task for less than {@code helpAfter}) waits for that thread; otherwise a parked thread is woken at once. A task queued
 * behind a thread whose handler turns slow only afterwards is the watch thread's: it wakes another thread when the
 * oldest waiting task has waited longer than {@code helpAfter}. So fast handlers run one after another on one thread,
 * and slow or hung ones still get every thread of the pool.
 *
 * <p>Threads: up to {@code size} handler threads {@code <prefix>-N}, started when a task finds no thread to wake (and
 * in place of one that died), never stopped before shutdown; they run the tasks. One watch thread {@code
 * <prefix>-watch}, started with the first handler thread: it looks every {@code helpAfter} while tasks have waited in
 * the last {@link #WATCH_IDLE_OUT_NANOS}, and sleeps until a submit arms it after that. {@link #execute} does not wait
 * for other tasks (it may take the pool's lock to start a thread) and may be called from any thread, a Redis I/O thread
 * included (a completion stage moving its lane on).
 *
 * <p>Shutdown is {@code ThreadPoolExecutor}'s: {@link #shutdown} runs what was submitted and rejects new tasks;
 * {@link #shutdownNow} interrupts the handler threads and returns the tasks that never started.
 */
final class HandlerPool extends AbstractExecutorService {
    private static final org.slf4j.Logger log = org.slf4j.LoggerFactory.getLogger(HandlerPool.class);
    /** How long a task may wait for a busy thread before an idle one is woken for it. */
    static final long DEFAULT_HELP_AFTER_NANOS = TimeUnit.MILLISECONDS.toNanos(1);

    /** How long the watch thread goes on looking after the last waiting task it saw, before it sleeps until armed. */
    static final long WATCH_IDLE_OUT_NANOS = TimeUnit.MILLISECONDS.toNanos(50);

    private static final int RUNNING = 0;
    private static final int SHUTDOWN = 1;
    private static final int STOP = 2;

    private record Queued(Runnable task, long since) {
    }

    private static final long NOT_IN_A_TASK = Long.MIN_VALUE;

    private static final class Worker {
        final AtomicBoolean parked = new AtomicBoolean();
        final int slot;
        /** Set before the thread starts. */
        Thread thread;
        /** When its current task started ({@code System.nanoTime}), or {@link #NOT_IN_A_TASK}. */
        volatile long busySince = NOT_IN_A_TASK;
        /** Its thread has ended (its slot is free); guarded by the pool. */
        boolean ended;

        Worker(int slot) {
            this.slot = slot;
        }
    }

    private final String prefix;
    private final long helpAfterNanos;
    private final ConcurrentLinkedQueue<Queued> queue = new ConcurrentLinkedQueue<>();
    /** The handler threads, slot by slot; a slot is filled (or refilled, after a thread died) under {@code this}. */
    private final AtomicReferenceArray<Worker> workers;
    /**
     * Handler threads not parked: running a task or about to look for one. A task submitted while one of them is free
     * or has been in its task for less than {@code helpAfter} waits for it.
     */
    private final AtomicInteger awake = new AtomicInteger();
    private final AtomicBoolean watching = new AtomicBoolean();
    private final Thread watch;
    private final CountDownLatch terminated = new CountDownLatch(1);
    private volatile int state = RUNNING;
    /** Slots filled so far; written under {@code this}, read without it to bound the scans. */
    private volatile int started;
    /** Handler threads not yet ended; guarded by {@code this}. */
    private int live;
    private final AtomicInteger threadNumber = new AtomicInteger();

    HandlerPool(int size, String prefix) {
        this(size, prefix, DEFAULT_HELP_AFTER_NANOS, true);
    }

    /** {@code watch} false leaves the watch thread out (tests of the submit path alone). */
    HandlerPool(int size, String prefix, long helpAfterNanos, boolean watch) {
        if (size < 1) throw new IllegalArgumentException("size must be at least 1, was " + size);
        if (helpAfterNanos < 1) throw new IllegalArgumentException("helpAfterNanos must be positive, was " + helpAfterNanos);
        this.prefix = prefix;
        this.helpAfterNanos = helpAfterNanos;
        this.workers = new AtomicReferenceArray<>(size);
        this.watch = watch ? new Thread(this::watch, prefix + "-watch") : null;
        if (watch) this.watch.setDaemon(true);
    }

    @Override
    public void execute(Runnable task) {
        java.util.Objects.requireNonNull(task, "task");
        if (state != RUNNING) throw new RejectedExecutionException(prefix + " is shut down");
        long now = System.nanoTime();
        Queued q = new Queued(task, now);
        queue.offer(q);
        if (state != RUNNING && queue.remove(q)) {
            // Shut down between the check and the offer: the handler threads may have ended already.
            throw new RejectedExecutionException(prefix + " is shut down");
        }
        // The offer comes before this read and a parking thread lowers `awake` before it looks at the queue again
        // (both sequentially consistent), so either this sees nobody awake or that thread sees the task.
        if (awake.get() == 0 || !anyAwakeThreadFree(now)) {
            if (wakeParked()) return;
            // A thread on its way to sleep may have taken itself back for this task meanwhile (work): it runs it, so no
            // thread is started for it.
            if (awake.get() > 0 && anyAwakeThreadFree(now)) return;
            synchronized (this) {
                if (startInFreeSlot()) return;
            }
        }
        if (watch == null || watching.get()) return;
        if (watching.compareAndSet(false, true)) LockSupport.unpark(watch);
    }

    /**
     * Whether an awake thread will take the next task soon: one between tasks, or one whose task has run for less than
     * {@code helpAfter}. Without this, a long handler made every task behind it wait for the watch thread.
     */
    private boolean anyAwakeThreadFree(long now) {
        for (int i = 0, n = started; i < n; i++) {
            Worker w = workers.get(i);
            if (w == null) continue;
            if (w.parked.get()) continue;
            long since = w.busySince;
            if (since == NOT_IN_A_TASK || now - since <= helpAfterNanos) return true;
        }
        return false;
    }

    /** Wakes a parked handler thread, or starts one while fewer than the pool's size run; false when none could be. */
    private boolean wakeOne() {
        if (wakeParked()) return true;
        synchronized (this) {
            return startInFreeSlot();
        }
    }

    /** Wakes a parked handler thread; false when none is parked. */
    private boolean wakeParked() {
        for (int i = 0, n = started; i < n; i++) {
            Worker w = workers.get(i);
            if (w == null) continue;
            if (w.parked.get() && w.parked.compareAndSet(true, false)) {
                awake.incrementAndGet();
                LockSupport.unpark(w.thread);
                return true;
            }
        }
        return false;
    }

    /** Starts a handler thread in a slot never used or whose thread has ended. Called holding {@code this}. */
    private boolean startInFreeSlot() {
        for (int i = 0; i < workers.length(); i++) {
            Worker w = workers.get(i);
            if (w == null || w.ended) return startWorker(i);
        }
        return false;
    }

    /**
     * Starts a handler thread in {@code slot}, a new one or that of a thread that died; false when the pool has
     * stopped or the thread could not be started (then the task waits for a thread, and the watch thread tries again).
     * Called holding {@code this}.
     */
    private boolean startWorker(int slot) {
        if (state == STOP) return false;
        Worker w = new Worker(slot);
        w.thread = new Thread(() -> work(w), prefix + "-" + threadNumber.incrementAndGet());
        w.thread.setDaemon(true);
        try {
            if (watch != null && watch.getState() == Thread.State.NEW) watch.start();
            w.thread.start();
        } catch (Throwable e) { // OutOfMemoryError "unable to create native thread", above all
            log.atWarn().setCause(e).log("Could not start a handler thread; its task waits for another");
            return false;
        }
        awake.incrementAndGet();
        workers.set(slot, w);
        if (slot == started) started++;
        live++;
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
                    me.busySince = System.nanoTime();
                    runReporting(q.task);
                    me.busySince = NOT_IN_A_TASK;
                    continue;
                }
                if (state == STOP || (state == SHUTDOWN && queue.isEmpty())) return;
                me.parked.set(true);
                awake.decrementAndGet();
                if (!queue.isEmpty() || state != RUNNING) {
                    // A task came (or the pool shut down) between the poll and the park: take it back unless a
                    // submitter has already woken this thread (then it counted it awake itself). Counted awake
                    // before the take-back, so that a submit in between never sees nobody awake and starts a thread.
                    awake.incrementAndGet();
                    if (!me.parked.compareAndSet(true, false)) awake.decrementAndGet();
                    continue;
                }
                while (me.parked.get()) {
                    // An interrupt a task left set would make park return at once: this thread would spin while idle.
                    Thread.interrupted();
                    LockSupport.park(this);
                    if (state != RUNNING && me.parked.compareAndSet(true, false)) awake.incrementAndGet();
                }
            }
        } finally {
            exited(me);
        }
    }

    /**
     * A handler thread ended: at shutdown, or (an Error the loop itself met) while the pool runs, when another takes its
     * slot, as ThreadPoolExecutor replaces a worker that died.
     */
    private void exited(Worker me) {
        if (!me.parked.get()) awake.decrementAndGet();
        synchronized (this) {
            live--;
            me.ended = true;
            if (state == RUNNING || (state == SHUTDOWN && !queue.isEmpty())) startWorker(me.slot);
        }
        tryTerminate();
    }

    /** Runs {@code task}; what it throws goes to the thread's uncaught-exception handler, and the thread goes on. */
    static void runReporting(Runnable task) {
        try {
            task.run();
        } catch (Throwable t) {
            // ThreadPoolExecutor would end the thread and start another; the thread itself is fine, so it goes on.
            try {
                Thread th = Thread.currentThread();
                th.getUncaughtExceptionHandler().uncaughtException(th, t);
            } catch (Throwable ignored) {
                // As the JVM does with an uncaught-exception handler that throws.
            }
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
        drainQueued(unrun);
        for (int i = 0; i < workers.length(); i++) {
            Worker w = workers.get(i);
            if (w != null) w.thread.interrupt();
        }
        wakeAll();
        tryTerminate();
        return unrun;
    }

    private void wakeAll() {
        for (int i = 0; i < workers.length(); i++) {
            Worker w = workers.get(i);
            if (w != null) LockSupport.unpark(w.thread);
        }
        if (watch != null) LockSupport.unpark(watch);
    }

    private void tryTerminate() {
        synchronized (this) {
            if (state == RUNNING || live > 0) return;
            // A task offered just before shutdown whose submitter has not yet started a thread for it: start it here.
            if (state == SHUTDOWN && !queue.isEmpty() && startInFreeSlot()) return;
        }
        terminated.countDown();
        if (watch != null) LockSupport.unpark(watch);
    }

    /**
     * Whether a task waits in the pool's queue: one that a thread's own chain of work ({@link PoolShare}) must not
     * pass, since {@link #execute} queued it for a thread it took to be free.
     */
    boolean hasQueued() {
        return !queue.isEmpty();
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

    /** Moves the tasks not yet started to {@code into}, as {@code ThreadPoolExecutor.getQueue().drainTo} does. */
    void drainQueued(java.util.Collection<? super Runnable> into) {
        for (Queued q; (q = queue.poll()) != null; ) into.add(q.task);
    }

    /** Handler threads started so far (tests). */
    int threadsStarted() {
        return started;
    }
}
