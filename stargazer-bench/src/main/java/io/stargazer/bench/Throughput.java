// The timing loops every publishing row uses, so the bus and its peers are measured the same way.
package io.stargazer.bench;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicReference;
import java.util.concurrent.atomic.LongAdder;

/**
 * Runs an operation flat out for a warm-up period (not counted) and then a measured period, and returns the
 * completed operations per second of the measured period. The first failure stops the run and is rethrown.
 */
final class Throughput {
    /** One blocking operation; {@code i} counts up per thread. */
    interface Op {
        void run(int i) throws Exception;
    }

    /** One asynchronous operation. */
    interface AsyncOp {
        CompletionStage<?> start(int i) throws Exception;
    }

    private Throughput() {
    }

    /** {@code threads} threads, each running {@code op} back to back. */
    static double blocking(int threads, Duration warm, Duration measure, Op op) throws Exception {
        LongAdder done = new LongAdder();
        AtomicReference<Throwable> failure = new AtomicReference<>();
        List<Thread> ts = new ArrayList<>();
        AtomicBoolean stop = new AtomicBoolean();
        for (int t = 0; t < threads; t++) {
            int base = t * 7;
            Thread th = new Thread(() -> {
                int i = base;
                try {
                    while (!stop.get()) {
                        op.run(i++);
                        done.increment();
                    }
                } catch (Throwable e) {
                    failure.compareAndSet(null, e);
                }
            }, "bench-publisher-" + t);
            th.setDaemon(true);
            ts.add(th);
        }
        ts.forEach(Thread::start);
        double rate = window(done, failure, warm, measure);
        stop.set(true);
        for (Thread th : ts) th.join(30_000);
        rethrow(failure);
        return rate;
    }

    /** One thread starting {@code op} whenever fewer than {@code window} are unfinished. */
    static double async(int window, Duration warm, Duration measure, AsyncOp op) throws Exception {
        LongAdder done = new LongAdder();
        AtomicReference<Throwable> failure = new AtomicReference<>();
        Semaphore permits = new Semaphore(window);
        AtomicBoolean stop = new AtomicBoolean();
        Thread th = new Thread(() -> {
            int i = 0;
            try {
                while (!stop.get() && failure.get() == null) {
                    if (!permits.tryAcquire(100, TimeUnit.MILLISECONDS)) continue;
                    op.start(i++).whenComplete((r, e) -> {
                        if (e != null) failure.compareAndSet(null, e);
                        done.increment();
                        permits.release();
                    });
                }
            } catch (Throwable e) {
                failure.compareAndSet(null, e);
            }
        }, "bench-async-publisher");
        th.setDaemon(true);
        th.start();
        double rate = window(done, failure, warm, measure);
        stop.set(true);
        th.join(30_000);
        permits.tryAcquire(window, 60, TimeUnit.SECONDS); // let what is in flight finish before the next row
        rethrow(failure);
        return rate;
    }

    private static double window(LongAdder done, AtomicReference<Throwable> failure, Duration warm, Duration measure)
            throws Exception {
        sleepUnlessFailed(failure, warm);
        long c0 = done.sum();
        long t0 = System.nanoTime();
        sleepUnlessFailed(failure, measure);
        long c1 = done.sum();
        long t1 = System.nanoTime();
        rethrow(failure);
        return (c1 - c0) / ((t1 - t0) / 1e9);
    }

    private static void sleepUnlessFailed(AtomicReference<Throwable> failure, Duration d) throws InterruptedException {
        long end = System.nanoTime() + d.toNanos();
        while (failure.get() == null && System.nanoTime() < end) {
            Thread.sleep(Math.max(1, Math.min(50, (end - System.nanoTime()) / 1_000_000)));
        }
    }

    private static void rethrow(AtomicReference<Throwable> failure) throws Exception {
        Throwable e = failure.get();
        if (e instanceof Exception ex) throw ex;
        if (e instanceof Error er) throw er;
    }
}
