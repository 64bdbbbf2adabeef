package io.stargazer.bus.internal;

import java.util.HashMap;
import java.util.Map;
import java.util.PriorityQueue;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.Executor;
import java.util.concurrent.RejectedExecutionException;
import java.util.function.Supplier;

/**
 * Per-channel order for a pool of handler threads: tasks with the same key run one at a time (a task's completion
 * stage must complete before the next of its key starts), different keys in parallel. Within a key, waiting tasks
 * start in stream-id order, not arrival order: an older entry that arrives late (taken over from a dead consumer,
 * read again after a reconnect, or retried without holding its lane) goes ahead of newer ones still waiting. Tasks
 * with a {@code null} key have no order to keep and run as soon as a thread is free.
 *
 * <p>Thread-safe: {@link #dispatch} is called from the reader thread, the retry timer and completion stages.
 */
final class Lanes {
    private static final org.slf4j.Logger log = org.slf4j.LoggerFactory.getLogger(Lanes.class);
    private final Executor pool;
    /** Keys with a task running; the queue holds the tasks waiting behind it, oldest entry first. */
    private final Map<String, PriorityQueue<Task>> lanes = new HashMap<>();

    private record Task(String entryId, Supplier<CompletionStage<?>> body) {
    }

    Lanes(Executor pool) {
        this.pool = pool;
    }

    /** Runs {@code body} for entry {@code entryId} in {@code key}'s lane; throws RejectedExecutionException once the pool is shut down. */
    void dispatch(String key, String entryId, Supplier<CompletionStage<?>> body) {
        Task task = new Task(entryId, body);
        if (key == null) {
            pool.execute(() -> start(null, task));
            return;
        }
        synchronized (lanes) {
            PriorityQueue<Task> waiting = lanes.get(key);
            if (waiting != null) {
                waiting.add(task);
                return;
            }
            lanes.put(key, new PriorityQueue<>(2, (a, b) -> StreamIds.compare(a.entryId, b.entryId)));
        }
        try {
            pool.execute(() -> start(key, task));
        } catch (RejectedExecutionException e) {
            synchronized (lanes) {
                lanes.remove(key);
            }
            throw e;
        }
    }

    /** Tasks waiting behind {@code key}'s running one (diagnostics and tests). */
    int waiting(String key) {
        synchronized (lanes) {
            PriorityQueue<Task> q = lanes.get(key);
            return q == null ? 0 : q.size();
        }
    }

    /**
     * Whether a task for an entry older than {@code entryId} waits in {@code key}'s lane: a retry that kept the lane
     * yields to it rather than run ahead of it.
     */
    boolean olderWaiting(String key, String entryId) {
        if (key == null) return false;
        synchronized (lanes) {
            PriorityQueue<Task> q = lanes.get(key);
            Task head = q == null ? null : q.peek();
            return head != null && StreamIds.compare(head.entryId, entryId) < 0;
        }
    }

    /** Keys with a task running or waiting (diagnostics and tests). */
    int busyKeys() {
        synchronized (lanes) {
            return lanes.size();
        }
    }

    private void start(String key, Task task) {
        CompletionStage<?> stage = null;
        try {
            stage = task.body.get();
        } catch (RuntimeException e) {
            // A body settles its own failures: one that throws is a bug, worth a line, not a wedged lane.
            log.atWarn().addKeyValue("stream_msg_id", task.entryId).setCause(e).log("A handler task threw; its lane goes on");
        } finally {
            // A body settles its own failures; whatever it threw (an Error is rethrown), the lane must move on.
            if (key != null) {
                if (stage == null) {
                    next(key);
                } else {
                    stage.whenComplete((r, e) -> next(key));
                }
            }
        }
    }

    private void next(String key) {
        Task task;
        synchronized (lanes) {
            PriorityQueue<Task> waiting = lanes.get(key);
            task = waiting == null ? null : waiting.poll();
            if (task == null) {
                lanes.remove(key);
                return;
            }
        }
        try {
            pool.execute(() -> start(key, task));
        } catch (RejectedExecutionException e) {
            synchronized (lanes) {
                lanes.remove(key); // shutting down: what is left stays pending in Redis
            }
        }
    }
}
