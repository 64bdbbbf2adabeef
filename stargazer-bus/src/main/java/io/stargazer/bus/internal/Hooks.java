package io.stargazer.bus.internal;

import io.stargazer.bus.Subscription;

/** Two metrics observers as one (a bus bound to two registries, e.g. the node's and an application's). */
final class Hooks {
    private Hooks() {
    }

    static BusHooks both(BusHooks a, BusHooks b) {
        return new BusHooks() {
            @Override public void published(String stream, long nanos, Throwable error) { a.published(stream, nanos, error); b.published(stream, nanos, error); }
            @Override public void backpressureWaited(String stream, long nanos, boolean gotRoom) {
                a.backpressureWaited(stream, nanos, gotRoom);
                b.backpressureWaited(stream, nanos, gotRoom);
            }
            @Override public void handled(Subscription s, long nanos, Throwable error) { a.handled(s, nanos, error); b.handled(s, nanos, error); }
            @Override public void subscribed(Subscription s) { a.subscribed(s); b.subscribed(s); }
            @Override public void unsubscribed(Subscription s) { a.unsubscribed(s); b.unsubscribed(s); }
            @Override public void toolCalled(String tool, String outcome, long nanos) { a.toolCalled(tool, outcome, nanos); b.toolCalled(tool, outcome, nanos); }
        };
    }
}
