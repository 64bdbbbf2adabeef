package io.stargazer.bus.internal;

import java.util.List;
import java.util.Queue;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.Executor;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Consumer;
import java.util.function.Function;

/**
 * The one batching loop of the bus (publishing, acknowledging): whatever queues up while earlier batches are on the
 * wire goes out as the next batch, with at most {@code maxInFlight} batches outstanding. Items are taken in queue
 * order and batches sent in the order they are formed, by one drain at a time (a work-in-progress counter, so
 * {@link #offer} never blocks and never loses a wake-up).
 *
 * <p>Threads: {@link #offer} and {@link #sent} from any thread. With a {@code loop} executor every batch is formed
 * and sent on it (see {@link StreamPublisher} for why the publisher needs that); without one, on whichever thread
 * found work to do. The sender must call {@link #sent()} exactly once per batch, when its reply came (or failed).
 */
final class BatchingDrain<T> {
    private final Queue<T> queue = new ConcurrentLinkedQueue<>();
    private final AtomicInteger wip = new AtomicInteger();
    private final AtomicInteger inFlight = new AtomicInteger();
    private final int maxInFlight;
    private final Executor loop;
    private final java.util.function.BooleanSupplier inLoop;
    private final Function<Queue<T>, List<T>> take;
    private final Consumer<List<T>> send;

    /**
     * @param loop   the one thread batches are formed and sent on, or null for any thread
     * @param inLoop whether the caller is on {@code loop} (ignored without one)
     * @param take   forms the next batch from the queue (polling it); an empty list when there is nothing to send
     * @param send   sends a batch; calls {@link #sent()} when it is answered
     */
    BatchingDrain(int maxInFlight, Executor loop, java.util.function.BooleanSupplier inLoop, Function<Queue<T>, List<T>> take,
            Consumer<List<T>> send) {
        this.maxInFlight = maxInFlight;
        this.loop = loop;
        this.inLoop = inLoop;
        this.take = take;
        this.send = send;
    }

    void offer(T item) {
        queue.offer(item);
        if (inFlight.get() >= maxInFlight) {
            // Every slot is taken: the next sent() drains, as it looks at the queue after freeing its slot (the two
            // threads each write, then read what the other writes, so one of them sees the other). Scheduling a drain
            // here would only wake the loop to find no slot free: a task and, on an idle loop, an eventfd write per
            // offer, on the publishing thread.
            return;
        }
        drain();
    }

    /** A batch was answered: frees its slot and sends what queued meanwhile. */
    void sent() {
        inFlight.decrementAndGet();
        if (!queue.isEmpty()) {
            drain(); // an offer made after this check drains by itself, and finds the slot free
        }
    }

    /** The waiting items, for a caller that expires them (they are skipped by {@code take} once settled). */
    Queue<T> queue() {
        return queue;
    }

    /** Nothing queued, nothing in flight, no drain running. */
    boolean idle() {
        return queue.isEmpty() && inFlight.get() == 0 && wip.get() == 0;
    }

    int inFlight() {
        return inFlight.get();
    }

    void drain() {
        if (wip.getAndIncrement() != 0) {
            return; // a drain is scheduled or running: it will see this work
        }
        if (loop == null || inLoop.getAsBoolean()) {
            drainLoop();
        } else {
            try {
                loop.execute(this::drainLoop);
            } catch (java.util.concurrent.RejectedExecutionException e) {
                // The loop has shut down: the bus is closing, and has waited, within the publish timeout, for what it
                // accepted to be answered (RedisEventBus.close); what is still queued cannot be sent any more. Thrown on,
                // it would reach a caller of sent() before it had told the publishers of the batch just answered, and
                // leave every later drain refused as "already running".
                wip.set(0);
            }
        }
    }

    private void drainLoop() {
        int missed = 1;
        for (;;) {
            while (inFlight.get() < maxInFlight) {
                List<T> batch = take.apply(queue);
                if (batch.isEmpty()) {
                    break;
                }
                inFlight.incrementAndGet();
                send.accept(batch);
            }
            missed = wip.addAndGet(-missed);
            if (missed == 0) {
                return;
            }
        }
    }
}
