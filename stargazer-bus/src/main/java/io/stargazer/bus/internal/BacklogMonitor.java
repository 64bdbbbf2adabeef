package io.stargazer.bus.internal;

import io.stargazer.bus.GroupInfo;
import java.time.Clock;
import java.util.List;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Function;
import java.util.function.ToLongFunction;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The original module's eviction-risk warning (a stream over 80 % of its cap, or a group with over 1000 entries
 * pending) without its two extra round trips per publish: a publish only reads a timestamp; at most once per
 * interval per stream a check runs in the background, and a warning is logged once when an episode starts and an
 * info line once when it ends. A stream not published to or checked for a while is forgotten ({@link #forgetIdle}),
 * unless it is in a high-backlog episode, so a process that publishes once to many streams does not keep them all.
 */
final class BacklogMonitor {
    private static final Logger log = LoggerFactory.getLogger("io.stargazer.bus.backlog");
    static final long PENDING_THRESHOLD = 1000;

    private final Clock clock;
    /** What a full stream does: EVICT trims unread entries past the cap; SAFE trims none and holds publishers back. */
    private final io.stargazer.bus.TrimPolicy policy;
    private final long intervalMillis;
    private final long maxlen;
    private final ToLongFunction<String> length;
    private final Function<String, List<GroupInfo>> groups;
    private final java.util.concurrent.Executor executor;
    private final ConcurrentHashMap<String, State> states = new ConcurrentHashMap<>();
    private final AtomicLong warnings = new AtomicLong();

    private static final class State {
        final AtomicLong nextCheck = new AtomicLong();
        /** The clock's time of the last publish or check. */
        volatile long lastUsed;
        volatile boolean high;
    }

    BacklogMonitor(Clock clock, long intervalMillis, long maxlen, ToLongFunction<String> length,
            Function<String, List<GroupInfo>> groups, java.util.concurrent.Executor executor) {
        this(clock, intervalMillis, maxlen, length, groups, executor, io.stargazer.bus.TrimPolicy.EVICT);
    }

    BacklogMonitor(Clock clock, long intervalMillis, long maxlen, ToLongFunction<String> length,
            Function<String, List<GroupInfo>> groups, java.util.concurrent.Executor executor, io.stargazer.bus.TrimPolicy policy) {
        this.policy = policy;
        this.clock = clock;
        this.intervalMillis = intervalMillis;
        this.maxlen = maxlen;
        this.length = length;
        this.groups = groups;
        this.executor = executor;
    }

    /** Called on every publish: one map lookup and one clock read unless a check is due. */
    void published(String stream) {
        State s = states.computeIfAbsent(stream, k -> new State());
        long now = clock.millis();
        s.lastUsed = now;
        long due = s.nextCheck.get();
        if (now >= due && s.nextCheck.compareAndSet(due, now + intervalMillis)) {
            executor.execute(() -> check(stream, s));
        }
    }

    /** Warnings logged so far: one per episode of high backlog. */
    long warnings() {
        return warnings.get();
    }

    /** Runs one check now (also used by tests); returns whether the stream is at risk. */
    boolean check(String stream) {
        State s = states.computeIfAbsent(stream, k -> new State());
        s.lastUsed = clock.millis();
        return check(stream, s);
    }

    /** Forgets the streams not published to or checked for {@code idleMillis}, except those at risk; how many. */
    int forgetIdle(long idleMillis) {
        long now = clock.millis();
        int forgotten = 0;
        for (String stream : List.copyOf(states.keySet())) {
            if (states.computeIfPresent(stream, (k, s) -> !s.high && now - s.lastUsed >= idleMillis ? null : s) == null) {
                forgotten++;
            }
        }
        return forgotten;
    }

    /** Streams it holds state for. */
    int size() {
        return states.size();
    }

    private boolean check(String stream, State s) {
        try {
            long len = length.applyAsLong(stream);
            List<GroupInfo> gs = groups.apply(stream);
            GroupInfo worst = null;
            for (GroupInfo g : gs) {
                if (worst == null || g.pending() > worst.pending()) worst = g;
            }
            long pending = worst == null ? 0 : worst.pending();
            boolean high = len > maxlen * 8 / 10 || pending > PENDING_THRESHOLD;
            if (high && !s.high) {
                warnings.incrementAndGet();
                log.atWarn().addKeyValue("stream", stream).addKeyValue("group", worst == null ? null : worst.name())
                        .addKeyValue("length", len).addKeyValue("pending", pending).addKeyValue("maxlen", maxlen)
                        .log(worst == null
                                // No group: a stream that never had one is trimmed to its cap under either policy
                                // (StreamGuard), and readers without a group (XREAD) that fall behind miss entries; one
                                // whose groups this process saw and lost is held full instead (StreamGuard's own WARN).
                                ? "Stream near its cap and it has no consumer group: one that never had a group is trimmed "
                                        + "to its cap, read or not; one whose groups were lost is held full instead, and "
                                        + "publishing to it waits or is refused (SG_BACKPRESSURE)"
                                : policy == io.stargazer.bus.TrimPolicy.EVICT
                                ? "Stream backlog high: eviction risk (SG_TRIM_POLICY=evict trims entries past maxlen, read or not)"
                                : "Stream backlog high: nothing unread is trimmed (SG_TRIM_POLICY=safe); publishing to it waits "
                                        + "or is refused (SG_BACKPRESSURE) once it is full");
            } else if (!high && s.high) {
                log.atInfo().addKeyValue("stream", stream).addKeyValue("length", len).addKeyValue("pending", pending)
                        .addKeyValue("maxlen", maxlen).log("Stream backlog back to normal");
            }
            s.high = high;
            return high;
        } catch (RuntimeException e) {
            log.atDebug().addKeyValue("stream", stream).setCause(e).log("Stream backlog check failed");
            return s.high;
        }
    }
}
