// At most one log line per interval about something that can happen many times a second (a handler failing on every
// entry, acknowledgements refused through an outage): a flood of lines hides the rest of the log and costs more than
// what it reports, so the lines in between are counted and the next one says how many.
package io.stargazer.bus.internal;

import java.time.Duration;
import java.util.concurrent.atomic.AtomicLong;

/** Thread-safe: any thread may call {@link #take}; the first one past the interval logs. */
final class LogLimit {
    private final long everyNanos;
    private final AtomicLong nextAt;
    private final AtomicLong held = new AtomicLong();

    LogLimit(Duration every) {
        this.everyNanos = every.toNanos();
        this.nextAt = new AtomicLong(System.nanoTime()); // the first one is logged at once
    }

    /**
     * Counts one occurrence. Returns how many were held back since the last one logged when this one is to be
     * logged (at most one per interval, whichever thread comes first), else -1: the caller logs it at DEBUG at most.
     */
    long take() {
        return take(false);
    }

    /** As {@link #take()}; {@code force}: this one is logged whatever the interval (and restarts it). */
    long take(boolean force) {
        long now = System.nanoTime();
        for (;;) {
            long due = nextAt.get();
            if (!force && now - due < 0) break;
            if (nextAt.compareAndSet(due, now + everyNanos)) return held.getAndSet(0);
            if (!force) break; // another thread logs this interval's line
        }
        held.incrementAndGet();
        return -1;
    }

    /** {@code " (N more <what> since the last warning)"}, or nothing when none were held back. */
    static String more(long held, String what) {
        return held > 0 ? " (" + held + " more " + what + " since the last warning)" : "";
    }
}
