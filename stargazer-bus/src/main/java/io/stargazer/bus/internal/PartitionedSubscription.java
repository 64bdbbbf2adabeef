package io.stargazer.bus.internal;

import io.stargazer.bus.Subscription;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Function;

/**
 * One {@link Subscription} over the per-partition subscriptions of a partitioned inbound stream: what
 * {@code EventBus.subscribeInbound} returns. It adds no thread of its own; each part keeps its handlers, and its reader
 * (on a single server the parts share one, {@link PartitionReader}).
 */
public final class PartitionedSubscription implements Subscription {
    private final String stream;
    private final List<Subscription> parts;

    private PartitionedSubscription(String stream, List<Subscription> parts) {
        this.stream = stream;
        this.parts = List.copyOf(parts);
    }

    /**
     * Subscribes to each stream in turn; if one fails, closes those already started and rethrows. A single stream
     * is returned as its own subscription, unwrapped.
     */
    public static Subscription start(String baseName, List<String> streams, Function<String, Subscription> subscribe) {
        List<Subscription> started = new ArrayList<>();
        try {
            for (String s : streams) {
                started.add(subscribe.apply(s));
            }
        } catch (RuntimeException e) {
            for (Subscription s : started) {
                try {
                    s.close();
                } catch (RuntimeException suppressed) {
                    e.addSuppressed(suppressed);
                }
            }
            throw e;
        }
        return started.size() == 1 ? started.get(0) : new PartitionedSubscription(baseName, started);
    }

    /** FAILED if any part failed, else RECONNECTING, else STARTING, else PAUSED if any is; STOPPED once all are; else RUNNING. */
    @Override
    public State state() {
        boolean starting = false;
        boolean reconnecting = false;
        boolean paused = false;
        boolean allStopped = true;
        for (Subscription s : parts) {
            State st = s.state();
            if (st == State.FAILED) return State.FAILED;
            reconnecting |= st == State.RECONNECTING;
            starting |= st == State.STARTING;
            paused |= st == State.PAUSED;
            allStopped &= st == State.STOPPED;
        }
        if (reconnecting) return State.RECONNECTING;
        if (starting) return State.STARTING;
        if (paused) return State.PAUSED;
        return allStopped ? State.STOPPED : State.RUNNING;
    }

    /** The failure of a failed part, else of a reconnecting one, else the last any part recovered from; may be null. */
    @Override
    public Throwable failure() {
        Throwable any = null;
        for (State wanted : new State[] {State.FAILED, State.RECONNECTING}) {
            for (Subscription s : parts) {
                if (s.state() == wanted && s.failure() != null) return s.failure();
            }
        }
        for (Subscription s : parts) {
            if (s.failure() != null) any = s.failure();
        }
        return any;
    }

    @Override public String stream() { return stream; }
    @Override public String group() { return parts.get(0).group(); }
    @Override public String consumerName() { return parts.get(0).consumerName(); }
    @Override public List<Subscription> partitions() { return parts; }

    @Override
    public Stats stats() {
        long delivered = 0, acknowledged = 0, redelivered = 0, deadLettered = 0, failed = 0, inFlight = 0;
        for (Subscription s : parts) {
            Stats t = s.stats();
            delivered += t.delivered();
            acknowledged += t.acknowledged();
            redelivered += t.redelivered();
            deadLettered += t.deadLettered();
            failed += t.failed();
            inFlight += t.inFlight();
        }
        return new Stats(delivered, acknowledged, redelivered, deadLettered, failed, inFlight);
    }

    @Override
    public void close() {
        closeAll(null);
    }

    @Override
    public void close(Duration timeout) {
        closeAll(timeout);
    }

    /** Closes the parts side by side, so closing takes one part's close time, not the sum. */
    private void closeAll(Duration timeout) {
        List<Thread> closers = new ArrayList<>();
        for (Subscription s : parts) {
            Thread t = new Thread(() -> {
                if (timeout == null) s.close();
                else s.close(timeout);
            }, "stargazer-close-" + s.stream());
            t.start();
            closers.add(t);
        }
        for (Thread t : closers) {
            try {
                t.join();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return;
            }
        }
    }

    @Override
    public String toString() {
        return "PartitionedSubscription{" + stream + ", " + parts.size() + " partitions, " + state() + "}";
    }
}
