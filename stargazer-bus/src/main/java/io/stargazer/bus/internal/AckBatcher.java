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
 * behind a blocking read. A failed XACK leaves its entries pending: they are delivered again (at least once, never
 * lost). Thread-safe; replies complete on a Redis I/O thread, where only the next XACK is sent.
 */
final class AckBatcher {
    private static final Logger log = LoggerFactory.getLogger(AckBatcher.class);
    private static final int MAX_IDS = 1000;

    private final RedisClusterAsyncCommands<String, byte[]> redis;
    private final String stream;
    private final String group;
    private final AtomicInteger outstanding = new AtomicInteger();
    /** Ids queued or on the wire: a read of the consumer's own pending list must not hand them out again meanwhile. */
    private final java.util.Set<String> unconfirmed = java.util.concurrent.ConcurrentHashMap.newKeySet();
    private final BatchingDrain<String> drain;

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
        if (error != null) {
            log.atWarn().addKeyValue("stream", stream).addKeyValue("group", group).addKeyValue("count", ids.size())
                    .log("Acknowledgement failed; the entries stay pending and will be delivered again: " + error.getMessage());
        }
        outstanding.addAndGet(-ids.size());
        ids.forEach(unconfirmed::remove);
        drain.sent();
    }

    /** Whether an acknowledgement of {@code id} is queued or on the wire (its entry may still look pending in Redis). */
    boolean acknowledging(String id) {
        return unconfirmed.contains(id);
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
