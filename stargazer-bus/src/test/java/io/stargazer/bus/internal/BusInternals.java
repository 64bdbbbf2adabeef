package io.stargazer.bus.internal;

import io.stargazer.bus.EventBus;
import java.time.Duration;

/**
 * Test-only view into a bus made by {@link EventBus#connect}: the counters and housekeeping steps that tests check
 * directly. It lives with the tests, in the implementation's package, so the implementation keeps these methods
 * package-private and the library's API does not grow for them.
 */
public final class BusInternals {
    private BusInternals() {
    }

    private static RedisEventBus impl(EventBus bus) {
        return (RedisEventBus) bus;
    }

    /** Drops what the bus keeps for streams not published to for {@code idle}; how many publishers. */
    public static int forgetIdleStreams(EventBus bus, Duration idle) {
        return impl(bus).forgetIdleStreams(idle);
    }

    /** Streams the backlog monitor holds state for. */
    public static int backlogStreamCount(EventBus bus) {
        return impl(bus).backlogStreamCount();
    }

    /** Streams the bus holds a publisher for. */
    public static int publisherCount(EventBus bus) {
        return impl(bus).publisherCount();
    }

    /** Runs one backlog check now; true when the stream is at eviction risk. */
    public static boolean checkBacklog(EventBus bus, String stream) {
        return impl(bus).checkBacklog(stream);
    }

    /** High-backlog episodes warned about so far. */
    public static long backlogWarnings(EventBus bus) {
        return impl(bus).backlogWarnings();
    }

    /** The stream's publishes waiting in this process (held while it is full, or queued, in a span too), not yet written. */
    public static int waiting(EventBus bus, String stream) {
        return impl(bus).guard().waiting(stream);
    }

    /** What the bus knows of the stream's length and its trim checks, for a failing test's message. */
    public static String trimState(EventBus bus, String stream) {
        return impl(bus).guard().describe(stream);
    }

    /** {@link RawEntry#parseReadByStream}: the ids of each stream's entries, by stream. */
    public static java.util.Map<String, java.util.List<String>> idsByStream(Object reply) {
        java.util.Map<String, java.util.List<String>> out = new java.util.TreeMap<>();
        RawEntry.parseReadByStream(reply).forEach((k, v) -> out.put(k, v.stream().map(RawEntry::id).toList()));
        return out;
    }
}
