package io.stargazer.bus.internal;

import io.stargazer.bus.BusConnectionException;
import io.stargazer.bus.PublishQueueFullException;
import io.stargazer.bus.StargazerException;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.IntSupplier;
import java.util.function.Supplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Keeps a retrying publish ({@link io.stargazer.bus.PublishOptions#maxAttempts}) in its place among this process's
 * publishes to its stream. A later try is a new command, sent after a backoff: sent as it comes, it would be stored
 * after whatever was published to the stream meanwhile. So from the moment one of its tries fails and it is to be
 * tried again, its stream has a lane: later publishes to the stream wait in it, in the order they were made, and go on
 * when the retry settles (stored, or failed for good). Retrying publishes of one stream are tried again in the order
 * they were made, one at a time: each when its backoff has passed and every one made before it has settled.
 *
 * <p>A stream with no retry waiting has no lane, and a publish costs one map lookup here. The publishes waiting in a
 * lane count against SG_PUBLISH_QUEUE_LIMIT with the stream's queued and held ones, and each still ends by its own
 * deadline ({@link #expire}); a retrying publish waiting for its turn has not begun a try, so it has none. What was
 * handed to the stream's publisher before the failure was known (in flight with the try that failed) is not called
 * back: it may be stored before the retry. {@code Delivery.reply}'s one-step answers do not wait in a lane.
 *
 * <p>The lane's lock is taken last: nothing is called while it is held, so futures completed under other locks (a
 * held publish failed under its stream's) may call in here.
 */
final class RetryLanes {
    private static final Logger log = LoggerFactory.getLogger(RetryLanes.class);
    /** {@link #offer}'s place for a publish made now. */
    static final long NOW = 0;

    private final ConcurrentHashMap<String, Lane> lanes = new ConcurrentHashMap<>();
    /** Places in publishing order, across streams: a retrying publish takes its place when it is made. */
    private final AtomicLong places = new AtomicLong();
    private final int queueLimit;
    private volatile boolean closed;

    RetryLanes(int queueLimit) {
        this.queueLimit = queueLimit;
    }

    private static final class Lane {
        final String stream;
        /** By place: retries and waiting publishes, guarded by the lane. */
        final TreeMap<Long, Object> items = new TreeMap<>();
        int waiting;
        /** One thread at a time lets the head go, so that what it lets go reaches the publisher in order. */
        boolean pumping;
        /** Emptied and dropped from the map: a publish that finds it so looks again. */
        boolean removed;

        Lane(String stream) {
            this.stream = stream;
        }
    }

    /** A publish waiting in a lane. */
    private record Waiting(CompletableFuture<String> future, long deadline, boolean expires, Supplier<CompletableFuture<String>> send) {
        void release() {
            if (future.isDone()) return; // failed at its deadline, or cancelled by its caller
            if (expires && deadline - System.nanoTime() <= 0) {
                // Its deadline passed before the timer's next tick: failed as the tick would have, never written.
                future.completeExceptionally(new BusConnectionException("publishing: not sent within the publish timeout "
                        + "(SG_PUBLISH_TIMEOUT_MS), waiting behind an earlier publish to the stream that was being retried: nothing was written", null));
                return;
            }
            CompletableFuture<String> sent;
            try {
                sent = send.get();
            } catch (RuntimeException e) {
                sent = CompletableFuture.failedFuture(e);
            }
            sent.whenComplete((id, e) -> {
                if (e != null) future.completeExceptionally(e);
                else future.complete(id);
            });
        }
    }

    /** A retrying publish: its place, and once a try failed, its lane until it settles. Fields guarded by the lane. */
    static final class Retry {
        final String stream;
        final long place;
        final CompletableFuture<String> result;
        private Lane lane;
        private Runnable next;
        private Throwable lastOutcome;
        private boolean due;
        private boolean trying;

        private Retry(String stream, long place, CompletableFuture<String> result) {
            this.stream = stream;
            this.place = place;
            this.result = result;
        }
    }

    /** A retrying publish to {@code stream} made now, answered through {@code result}. */
    Retry retry(String stream, CompletableFuture<String> result) {
        return new Retry(stream, places.incrementAndGet(), result);
    }

    /**
     * Queues a publish behind a retry of its stream: null when the stream has none, to be sent now. {@code place}:
     * {@link #NOW}, or a retrying publish's own for its first try. {@code deadline} (System.nanoTime) fails it as not sent
     * unless it is a retrying publish's. {@code elsewhere}: the stream's publishes queued or held, counted against the
     * limit with these. {@code send} sends it when its turn comes.
     */
    CompletableFuture<String> offer(String stream, long place, long deadline, IntSupplier elsewhere, Supplier<CompletableFuture<String>> send) {
        for (;;) {
            Lane lane = lanes.get(stream);
            if (lane == null) return null;
            int outside = elsewhere.getAsInt(); // before the lock: it takes the guard's
            boolean head;
            CompletableFuture<String> f = new CompletableFuture<>();
            synchronized (lane) {
                if (lane.removed) continue;
                if (lane.waiting + outside >= queueLimit) {
                    return CompletableFuture.failedFuture(new PublishQueueFullException(stream, queueLimit));
                }
                long at = place == NOW ? places.incrementAndGet() : place;
                lane.items.put(at, new Waiting(f, deadline, place == NOW, send));
                lane.waiting++;
                head = lane.items.firstKey() == at;
            }
            // A retrying publish made before the retry that holds the lane may reach it only now: nothing else lets it go.
            if (head) pump(lane);
            return f;
        }
    }

    /**
     * A try of {@code r} failed and {@code next} tries again: holds its stream's later publishes until it settles. False
     * once the bus closed: nothing will try it again.
     */
    boolean hold(Retry r, Throwable outcome, Runnable next) {
        for (;;) {
            if (closed) return false;
            Runnable seam = beforeLane;
            if (seam != null) seam.run();
            Lane lane = r.lane != null ? r.lane : lanes.computeIfAbsent(r.stream, Lane::new);
            synchronized (lane) {
                if (lane.removed) {
                    if (r.lane != null) return false; // closed meanwhile
                    continue;
                }
                if (closed) {
                    // close() set the flag after the check above and may have gone over the lanes before this one
                    // was made: held now, the retry would never be answered. close() sweeps a lane it still sees.
                    if (lane.items.isEmpty() && lanes.remove(lane.stream, lane)) lane.removed = true;
                    return false;
                }
                r.lane = lane;
                r.lastOutcome = outcome;
                r.next = next;
                r.due = false;
                r.trying = false;
                lane.items.put(r.place, r);
                return true;
            }
        }
    }

    /** Its backoff has passed: tried now, or as soon as every retry made before it has settled. */
    void due(Retry r) {
        Lane lane = r.lane;
        synchronized (lane) {
            if (lane.items.get(r.place) != r) return;
            r.due = true;
        }
        pump(lane);
    }

    /** {@code r} is stored or failed for good: what waits behind it goes on. */
    void settled(Retry r) {
        Lane lane = r.lane;
        if (lane == null) return;
        synchronized (lane) {
            if (!lane.items.remove(r.place, r)) return;
        }
        pump(lane);
    }

    /** Lets the lane's head go: waiting publishes up to the first retry, which is tried if it is due; drops an empty lane. */
    private void pump(Lane lane) {
        synchronized (lane) {
            if (lane.pumping) return; // that thread looks at the head again before it stops
            lane.pumping = true;
        }
        for (;;) {
            Runnable go;
            synchronized (lane) {
                Map.Entry<Long, Object> head = lane.items.firstEntry();
                if (head == null) {
                    lane.removed = true;
                    lanes.remove(lane.stream, lane);
                    lane.pumping = false;
                    return;
                }
                if (head.getValue() instanceof Retry r) {
                    if (!r.due || r.trying) {
                        lane.pumping = false;
                        return;
                    }
                    r.trying = true;
                    go = r.next;
                } else {
                    lane.items.pollFirstEntry();
                    lane.waiting--;
                    go = ((Waiting) head.getValue())::release;
                }
            }
            try {
                go.run();
            } catch (RuntimeException e) {
                log.atWarn().addKeyValue("stream", lane.stream).setCause(e).log("Letting a publish go behind a retry failed");
            }
        }
    }

    /** Fails the waiting publishes whose deadline has passed, as not sent (the timer, every tick). */
    void expire(long now) {
        for (Lane lane : lanes.values()) {
            List<Waiting> over = new ArrayList<>();
            Throwable cause = null;
            synchronized (lane) {
                // Every one is looked at: a retrying publish's first try, with no deadline, may wait among them.
                for (Iterator<Object> it = lane.items.values().iterator(); it.hasNext(); ) {
                    Object item = it.next();
                    if (item instanceof Retry r && cause == null) cause = r.lastOutcome;
                    if (item instanceof Waiting w && w.expires && w.deadline - now <= 0) {
                        it.remove();
                        lane.waiting--;
                        over.add(w);
                    }
                }
            }
            for (Waiting w : over) {
                w.future.completeExceptionally(new BusConnectionException("publishing to stream '" + lane.stream + "': not sent within "
                        + "the publish timeout (SG_PUBLISH_TIMEOUT_MS), waiting behind an earlier publish to the stream that is being "
                        + "retried (PublishOptions.maxAttempts): nothing was written", cause));
            }
        }
    }

    /**
     * The bus is closing: a retry waiting for its next try fails with its last try's outcome, a publish waiting behind
     * it as not sent. A try in flight is answered by its own outcome.
     */
    void close() {
        closed = true;
        for (Lane lane : lanes.values()) {
            List<Retry> retries = new ArrayList<>();
            List<Waiting> waiting = new ArrayList<>();
            synchronized (lane) {
                for (Object item : lane.items.values()) {
                    if (item instanceof Retry r) {
                        if (!r.trying) retries.add(r);
                    } else {
                        waiting.add((Waiting) item);
                    }
                }
                lane.items.clear();
                lane.waiting = 0;
                lane.removed = true;
                lanes.remove(lane.stream, lane);
            }
            for (Retry r : retries) r.result.completeExceptionally(r.lastOutcome);
            for (Waiting w : waiting) {
                w.future.completeExceptionally(closedBehindARetry(lane.stream));
            }
        }
    }

    static StargazerException closedBehindARetry(String stream) {
        return new StargazerException("the bus is closed; the publish to '" + stream
                + "' waited behind an earlier publish being retried: nothing was written");
    }

    /**
     * Test seam, null in production: run by {@link #hold} between its check of {@link #close()} and finding the lane, so
     * a test can close the lanes right there, an interleaving otherwise too narrow to reproduce (RetryLanesTest).
     */
    volatile Runnable beforeLane;

    /** Streams with a lane (tests). */
    int size() {
        return lanes.size();
    }
}
