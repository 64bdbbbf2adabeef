package io.stargazer.bus.internal;

import io.stargazer.bus.Subscription;

/**
 * What the bus tells an observer (the Micrometer binder, io.stargazer.bus.micrometer) as it works: the few events
 * its counters cannot show (how long a publish or a handler took, a publish held by backpressure, a tools call).
 * Counts the subscription already keeps ({@link Subscription#stats()}) are read by the binder at scrape time, not
 * reported here.
 *
 * <p>Public only so that the binder's package, in this module, can implement it; the package is not exported. The
 * default is {@link #NONE}: the bus then takes no timestamps and calls nothing, so a bus without a registry pays one
 * volatile read per publish and per delivery. Every method is called on a bus thread (Redis I/O, handler, timer):
 * it must be quick and never block.
 */
public interface BusHooks {
    BusHooks NONE = new BusHooks() {
    };

    /** A publish to {@code stream} ended after {@code nanos}: stored (error null) or failed. */
    default void published(String stream, long nanos, Throwable error) {
    }

    /**
     * A publish waited for room (SAFE trim policy, BLOCK backpressure) for {@code nanos}; {@code stream} is its
     * destination as the publish meters name it (a tools reply on a caller's own reply_to: {@code {reply_to}}).
     */
    default void backpressureWaited(String stream, long nanos, boolean gotRoom) {
    }

    /** One handler attempt of {@code s} ended after {@code nanos}; {@code error} null when it returned normally. */
    default void handled(Subscription s, long nanos, Throwable error) {
    }

    default void subscribed(Subscription s) {
    }

    default void unsubscribed(Subscription s) {
    }

    /** A tools call ended: {@code outcome} is {@code ok} or the error type ({@code timeout}, {@code tool_failed}, ...). */
    default void toolCalled(String tool, String outcome, long nanos) {
    }
}
