package io.stargazer.bus;

import java.time.Duration;
import java.util.List;

/**
 * A running consumer of one stream with one group. Its state can be read at any time; it never stops silently:
 * after a lost connection, a restarted server or a deleted group it reports {@link State#RECONNECTING}, recovers
 * with backoff and returns to {@link State#RUNNING}.
 */
public interface Subscription extends AutoCloseable {

    enum State {
        /** Reading its own pending entries again, then new ones. */
        STARTING,
        RUNNING,
        /**
         * The group is paused ({@link EventBus#pause}): takes no new entries, finishes what it holds, and goes back to
         * RUNNING within a second of the resume.
         */
        PAUSED,
        /** Redis is unreachable or the group was lost; retrying with backoff. */
        RECONNECTING,
        /** Closed by the application. */
        STOPPED,
        /** Stopped by an error it cannot recover from (for example NOPERM); see {@link #failure()}. */
        FAILED
    }

    State state();

    /** The error that made the subscription {@link State#FAILED}, or the last one it is recovering from; may be null. */
    Throwable failure();

    String stream();

    String group();

    String consumerName();

    /** The per-partition subscriptions of {@link EventBus#subscribeInbound}; just this one for any other subscription. */
    default List<Subscription> partitions() {
        return List.of(this);
    }

    /** Counters since start. */
    Stats stats();

    /**
     * Stops reading, waits up to the configured close timeout for in-flight handlers (asynchronous ones until their
     * stage completes; meanwhile their entries stay this consumer's), flushes acknowledgements, and leaves entries that
     * did not finish pending in the group for other consumers to take over. Handlers still running after the timeout
     * are interrupted; their entries, and those read and never started, are given back with the delivery not counted,
     * so neither an interrupt nor a close dead-letters an entry.
     */
    @Override
    void close();

    /** {@link #close()} with an explicit time limit for in-flight handlers. */
    void close(Duration timeout);

    /**
     * @param delivered    deliveries handed to the handler (including redeliveries)
     * @param acknowledged entries acknowledged by this subscription: their {@code XACK} queued, so it counts one whose
     *                     {@code XACK} failed for want of Redis and is kept to be sent again (a process that ends before
     *                     Redis answers leaves such an entry pending: see docs/reliability.md)
     * @param redelivered  deliveries with a delivery count above 1
     * @param deadLettered entries moved to the dead-letter stream
     * @param failed       handler failures and nacks
     * @param inFlight     deliveries handed out and not yet settled
     */
    record Stats(long delivered, long acknowledged, long redelivered, long deadLettered, long failed, long inFlight) {
    }
}
