package io.stargazer.bus.internal;

import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;

/**
 * The one loop of a blocking reader (a subscription's, a tools client's): on its own thread and its own
 * {@link ReaderConnection}, it runs the reader's turns one after the other; after a failed turn it drops the
 * connection, waits (100 ms doubling to {@value #MAX_BACKOFF_MS} ms) and tries again, until stopped.
 *
 * <p>Threads: one, the loop's own. Every
 * {@link Body} method runs on it. {@link #stop()} may be called from any thread: it wakes a blocked read at once.
 *
 * <p>A trouble episode is logged once at WARN for each kind of failure it meets (a lost connection, each reply code of
 * the server; later failures of a kind already said at DEBUG) and its end at INFO, so a long outage is one line, not one
 * per retry.
 */
final class ReaderLoop {
    /**
     * The longest wait between failed turns: how late after Redis is back a reader reads again, as late as the shared
     * connection reconnects ({@code Redis.MAX_RECONNECT_DELAY}).
     */
    static final long MAX_BACKOFF_MS = 1000;

    /** What the loop runs; every method is called on the loop's thread. */
    interface Body {
        /** One turn: read and hand out what was read. Throws to report a failure. */
        void turn(ReaderConnection conn) throws Exception;

        /**
         * A turn failed: return false to end the loop for good (a refused permission), true to retry after the
         * backoff. Called before the failure is logged; may repair things (re-create a lost group).
         */
        default boolean failed(Throwable e) {
            return true;
        }

        /**
         * After {@link #failed} returned true: whether it repaired what failed (re-created a lost group), so the next
         * turn goes at once instead of after the backoff, which is for a Redis that cannot serve yet.
         */
        default boolean repaired() {
            return false;
        }

        /** The first turn that succeeded after a failed one. */
        default void recovered() {
        }

        /** The loop ends (stopped, or for good): the last use of the connection, before it is dropped. */
        default void ending(ReaderConnection conn) {
        }
    }

    private final ReaderConnection conn;
    private final Body body;
    private final Logger log;
    private final String what;
    private final Thread thread;
    private volatile boolean stopping;
    private volatile boolean troubled;
    /** {@link #wake} was called since the last turn began: a backoff ends at once. */
    private volatile boolean woken;
    /** The kinds of failure said at WARN in this trouble episode ({@link #kindOf}); loop thread only. */
    private final java.util.Set<String> warned = new java.util.HashSet<>();
    /** The last failed turn was repaired and retried at once ({@link Body#repaired}); loop thread only. */
    private boolean repairedLast;
    /** What a backoff waits on, so {@link #stop} ends it at once. */
    private final Object wake = new Object();

    ReaderLoop(Redis redis, String threadName, boolean daemon, String what, Logger log, Body body) {
        this.conn = new ReaderConnection(redis, what);
        this.body = body;
        this.log = log;
        this.what = what;
        this.thread = new Thread(this::run, threadName);
        this.thread.setDaemon(daemon);
    }

    void start() {
        thread.start();
    }

    boolean stopping() {
        return stopping;
    }

    /** True while the reader is failing (between a failed turn and the next good one). */
    boolean troubled() {
        return troubled;
    }

    /** Ends the loop: wakes a blocked read and waits up to {@code joinMillis} for the thread to finish. Any thread. */
    void stop(long joinMillis) throws InterruptedException {
        stopping = true;
        synchronized (wake) {
            wake.notifyAll(); // ends a backoff at once
        }
        conn.unblock();
        if (Thread.currentThread() != thread) {
            thread.join(joinMillis);
        }
    }

    /** Ends a blocked read, or a backoff, at once without stopping the loop (its next turn comes now). Any thread. */
    void wake() {
        woken = true;
        synchronized (wake) {
            wake.notifyAll();
        }
        conn.unblock();
    }

    /** True once the loop's thread has ended (its last read given up, {@link Body#ending} done). Any thread. */
    boolean ended() {
        return !thread.isAlive();
    }

    /**
     * Waits until the loop's thread has ended or {@code deadlineNanos} ({@link System#nanoTime()}) passes: after
     * {@link #stop}'s own wait ran out (a read on a silent connection ends only at its timeout), for what its ending does.
     */
    void awaitEnd(long deadlineNanos) throws InterruptedException {
        long left = deadlineNanos - System.nanoTime();
        if (left > 0 && Thread.currentThread() != thread) thread.join(Math.max(1, TimeUnit.NANOSECONDS.toMillis(left)));
    }

    private void run() {
        long backoff = 100;
        while (!stopping) {
            woken = false;
            try {
                body.turn(conn);
                if (troubled) {
                    troubled = false;
                    body.recovered();
                    log.atInfo().log(what + " recovered");
                }
                backoff = 100;
                repairedLast = false;
            } catch (Throwable e) {
                if (stopping) {
                    break;
                }
                conn.drop();
                boolean retry = body.failed(e);
                if (!retry) {
                    break;
                }
                String kind = kindOf(e);
                if (!troubled) {
                    troubled = true;
                    warned.clear();
                    warned.add(kind);
                    log.atWarn().log(what + said(kind) + e.getMessage());
                } else if (warned.add(kind)) {
                    // The same episode, another cause (a primary turned replica: its blocked read is UNBLOCKED, then
                    // every read is refused READONLY): said once, or only the first cause was ever said.
                    log.atWarn().log(what + " still failing; now it" + said(kind) + e.getMessage());
                } else {
                    log.atDebug().log(what + " still failing: " + e.getMessage());
                }
                // Once in a row: a repair that did not help (the next turn fails the same way) backs off as any failure.
                if (!repairedLast && body.repaired()) {
                    repairedLast = true;
                    backoff = 100;
                    continue;
                }
                repairedLast = false;
                backOff(backoff);
                backoff = Math.min(backoff * 2, MAX_BACKOFF_MS);
            }
        }
        try {
            body.ending(conn);
        } catch (RuntimeException e) {
            log.atDebug().log(what + " could not finish its last read: " + e.getMessage());
        }
        conn.drop();
    }

    /**
     * Waits {@code ms} between failed turns, or until stopped: a reader backing off from an outage (up to
     * {@value #MAX_BACKOFF_MS} ms) ends when its subscription closes, not at the end of its wait.
     */
    private void backOff(long ms) {
        long end = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(ms);
        synchronized (wake) {
            long left;
            while (!stopping && !woken && (left = end - System.nanoTime()) > 0) {
                try {
                    TimeUnit.NANOSECONDS.timedWait(wake, left);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    return;
                }
            }
        }
    }

    /** The kind of a turn's failure, each said at WARN once per episode: the server's reply code, or a lost connection. */
    private static String kindOf(Throwable e) {
        if (groupLost(e)) return "NOGROUP";
        if (e instanceof io.stargazer.bus.RedisServerException rse) return String.valueOf(rse.code());
        return CONNECTION;
    }

    private static final String CONNECTION = "connection";

    /**
     * What a failure of {@code kind} met, in an operator's words: a deleted group (XGROUP DESTROY, a stream deleted) or a
     * server that answers and refuses (READONLY, NOREPLICAS, LOADING, ...) is not a lost connection: say which it was.
     */
    private static String said(String kind) {
        if (kind.equals("NOGROUP")) return " lost its consumer group (NOGROUP); re-creating it: ";
        if (!kind.equals(CONNECTION)) return " is refused by Redis; trying again: ";
        return " lost Redis; reconnecting: ";
    }

    /** Whether {@code e}, or a cause of it, is Redis's NOGROUP reply. */
    static boolean groupLost(Throwable e) {
        for (Throwable c = e; c != null; c = c.getCause()) {
            if (c instanceof io.stargazer.bus.RedisServerException.NoGroup) return true;
            if (c instanceof io.lettuce.core.RedisCommandExecutionException && c.getMessage() != null
                    && c.getMessage().startsWith("NOGROUP")) return true;
            if (c.getCause() == c) break;
        }
        return false;
    }
}
