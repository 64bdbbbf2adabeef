// At most one log line per interval about something that can happen many times a second, as the bus's handler-failure
// WARN does ("(N more failures since the last warning)"): a flood of lines hides the rest
// of the log and costs more than what it reports. The bus keeps its own in its implementation, which the node cannot
// reach (the module exports only the API): io.stargazer.bus.internal.LogLimit, of which this is a copy without the
// forced line the bus's acknowledgement WARN needs. Change both together.
package io.stargazer.node.web;

import java.time.Duration;
import java.util.concurrent.atomic.AtomicLong;

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
        long now = System.nanoTime();
        long due = nextAt.get();
        if (now - due >= 0 && nextAt.compareAndSet(due, now + everyNanos)) {
            return held.getAndSet(0);
        }
        held.incrementAndGet();
        return -1;
    }

    /** {@code " (N more <what> since the last warning)"}, or nothing when none were held back. */
    static String more(long held, String what) {
        return held > 0 ? " (" + held + " more " + what + " since the last warning)" : "";
    }
}
