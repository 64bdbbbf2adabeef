package io.stargazer.bus.internal;

import java.util.ArrayDeque;
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
    private final Map<String, Waiting<Task>> lanes = new HashMap<>();

    private record Task(String entryId, Supplier<CompletionStage<?>> body) implements Waiting.HasId {
    }

    /**
     * The tasks waiting in one lane, oldest entry first. Entries nearly always arrive in id order (a read returns them
     * so), so those wait in a plain queue, each checked only against the newest before it; the few that arrive older
     * than that (taken over, read again, retried) wait apart in a heap. Taking the oldest compares the two heads. A
     * single heap of everything cost a handful of id comparisons per task taken: 15 % of a worker's CPU in the round
     * trip's profile (bench/profile-notes.md).
     */
    static final class Waiting<T extends Waiting.HasId> {
        interface HasId {
            String entryId();
        }

        /** Ascending ids: each one added here is newer than the one before it. */
        private final ArrayDeque<T> inOrder = new ArrayDeque<>(4);
        /** Those older than {@link #inOrder}'s newest when they came; null until one does. */
        private PriorityQueue<T> late;

        void add(T t) {
            T newest = inOrder.peekLast();
            if (newest == null || StreamIds.compare(newest.entryId(), t.entryId()) < 0) {
                inOrder.addLast(t);
            } else {
                if (late == null) late = new PriorityQueue<>(2, java.util.Comparator.<T, String>comparing(HasId::entryId, StreamIds.ORDER));
                late.add(t);
            }
        }

        /** The oldest waiting, or null. */
        T peek() {
            return lateFirst() ? late.peek() : inOrder.peekFirst();
        }

        /** Takes the oldest waiting, or null. */
        T poll() {
            return lateFirst() ? late.poll() : inOrder.pollFirst();
        }

        int size() {
            return inOrder.size() + (late == null ? 0 : late.size());
        }

        private boolean lateFirst() {
            T l = late == null ? null : late.peek();
            if (l == null) return false;
            T o = inOrder.peekFirst();
            return o == null || StreamIds.compare(l.entryId(), o.entryId()) < 0;
        }
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
            Waiting<Task> waiting = lanes.get(key);
            if (waiting != null) {
                waiting.add(task);
                return;
            }
            lanes.put(key, new Waiting<>());
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
            Waiting<Task> q = lanes.get(key);
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
            Waiting<Task> q = lanes.get(key);
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
            Waiting<Task> waiting = lanes.get(key);
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
