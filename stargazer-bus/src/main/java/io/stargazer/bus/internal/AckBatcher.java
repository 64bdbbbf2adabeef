package io.stargazer.bus.internal;

import io.lettuce.core.cluster.api.async.RedisClusterAsyncCommands;
import java.util.ArrayList;
import java.util.List;
import java.util.Queue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Acknowledges entries of one stream and group in batches ({@link BatchingDrain}): one {@code XACK} carries every id
 * that queued while the previous one was on the wire. Runs on the shared connection, so acknowledging never waits
 * behind a blocking read. An XACK that fails because Redis could not take it (a lost connection, a paused server) is
 * kept and sent again ({@link #resendFailed}): its handler ran, and forgetting it made the consumer's next read of its
 * own pending list run it a second time. So is one a cluster redirected past Lettuce's redirects (MOVED, ASK, TRYAGAIN
 * during a slot migration: {@link Failures#TRANSIENT_CODES}): it ran nowhere, and goes to the slot's owner once the
 * nodes agree on it (the cluster client follows the redirect, and re-reads the topology). One refused for another reason leaves its entries pending: delivered again,
 * at least once, never lost. Thread-safe; replies complete on a Redis I/O thread, where only the next XACK is sent.
 */
final class AckBatcher {
    private static final Logger log = LoggerFactory.getLogger(AckBatcher.class);
    private static final int MAX_IDS = 1000;
    /**
     * Failed acknowledgements kept to be sent again. They are entries this consumer's handlers finished, so about
     * maxInFlight of them per outage; the bound only guards a misuse. Past it they are dropped: delivered again.
     */
    static final int MAX_FAILED = 100_000;

    private final RedisClusterAsyncCommands<String, byte[]> redis;
    private final String stream;
    private final String group;
    private final AtomicInteger outstanding = new AtomicInteger();
    /** Ids queued or on the wire: a read of the consumer's own pending list must not hand them out again meanwhile. */
    private final java.util.Set<String> unconfirmed = java.util.concurrent.ConcurrentHashMap.newKeySet();
    private final BatchingDrain<String> drain;
    /** Ids whose XACK failed for want of Redis: still {@link #acknowledging}, sent again by {@link #resendFailed}. */
    private final java.util.Set<String> failed = java.util.concurrent.ConcurrentHashMap.newKeySet();
    /** A kept acknowledgement's WARN at most once a second: an outage fails one batch per refresh beat and reconnect. */
    private final LogLimit keptWarnings = new LogLimit(java.time.Duration.ofSeconds(1));

    AckBatcher(RedisClusterAsyncCommands<String, byte[]> redis, String stream, String group) {
        this.redis = redis;
        this.stream = stream;
        this.group = group;
        this.drain = new BatchingDrain<>(1, null, () -> true, AckBatcher::take, this::send);
    }

    void ack(String id) {
        outstanding.incrementAndGet();
        unconfirmed.add(id);
        drain.offer(id);
    }

    private static List<String> take(Queue<String> queue) {
        List<String> ids = new ArrayList<>();
        String id;
        while (ids.size() < MAX_IDS && (id = queue.poll()) != null) {
            ids.add(id);
        }
        return ids;
    }

    private void send(List<String> ids) {
        try {
            redis.xack(stream, group, ids.toArray(String[]::new)).whenComplete((n, e) -> done(ids, e));
        } catch (RuntimeException e) {
            done(ids, e);
        }
    }

    private void done(List<String> ids, Throwable error) {
        if (error == null) {
            ids.forEach(unconfirmed::remove);
        } else if (Failures.isInfrastructure(Redis.translate(error, "XACK"))) {
            int dropped = 0;
            for (String id : ids) {
                if (failed.size() < MAX_FAILED) {
                    failed.add(id);
                } else {
                    unconfirmed.remove(id);
                    dropped++;
                }
            }
            long notLogged = keptWarnings.take(dropped > 0);
            if (notLogged >= 0) {
                log.atWarn().addKeyValue("stream", stream).addKeyValue("group", group).addKeyValue("count", ids.size())
                        .log("Acknowledgement failed; sent again once Redis answers" + (dropped > 0 ? " (" + dropped
                                + " past the limit of " + MAX_FAILED + " kept were dropped: they will be delivered again)" : "") + ": "
                                + error.getMessage() + LogLimit.more(notLogged, "failed XACK batches"));
            } else {
                log.atDebug().addKeyValue("stream", stream).addKeyValue("count", ids.size()).log("Acknowledgement failed again: " + error.getMessage());
            }
        } else {
            ids.forEach(unconfirmed::remove);
            log.atWarn().addKeyValue("stream", stream).addKeyValue("group", group).addKeyValue("count", ids.size())
                    .log("Acknowledgement failed; the entries stay pending and will be delivered again: " + error.getMessage());
        }
        outstanding.addAndGet(-ids.size());
        drain.sent();
    }

    /**
     * Sends again the acknowledgements that failed for want of Redis: before the consumer reads its own pending list
     * after a reconnect (which must not hand them out again) and on every refresh beat. One that fails again is kept.
     */
    void resendFailed() {
        // Each id once per call: the ones taken out first, then sent. While the client refuses commands at once (no
        // connection), an XACK fails within drain.offer and done() puts its ids back; iterating the live set then met
        // them again, and the bus's timer thread (which also runs the dead-peer check and publish deadlines) spun here
        // for the whole outage, logging tens of thousands of WARNs a second (tests from outside, helper-93).
        // Counted outstanding before it leaves the failed set, so idle() and flush() never see it in neither; queued all
        // before one drain, so a refusal costs one failed XACK per 1 000 ids, not one per id.
        List<String> ids = new ArrayList<>(failed.size());
        for (var it = failed.iterator(); it.hasNext();) {
            String id = it.next();
            outstanding.incrementAndGet();
            it.remove();
            ids.add(id);
        }
        if (ids.isEmpty()) return;
        drain.queue().addAll(ids);
        drain.drain();
    }

    /** Acknowledgements that failed and wait to be sent again (tests). */
    int failedCount() {
        return failed.size();
    }

    /**
     * Whether an acknowledgement of {@code id} is queued, on the wire, or failed and waiting to be sent again (its entry
     * may still look pending in Redis).
     */
    boolean acknowledging(String id) {
        return unconfirmed.contains(id);
    }

    /** Whether no acknowledgement is queued, on the wire, or waiting to be sent again. */
    boolean idle() {
        return outstanding.get() == 0 && failed.isEmpty();
    }

    /** Waits until every acknowledgement queued so far has been answered (or failed); false on timeout. */
    boolean flush(long timeout, TimeUnit unit) {
        long deadline = System.nanoTime() + unit.toNanos(timeout);
        while (outstanding.get() > 0) {
            if (System.nanoTime() - deadline > 0) {
                return false;
            }
            drain.drain();
            try {
                Thread.sleep(1);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return false;
            }
        }
        return true;
    }
}
