package io.stargazer.bus.internal;

import java.util.ArrayDeque;
import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.ExecutorService;
import java.util.function.Supplier;

/**
 * Runs tasks on a pool so that tasks with the same key run one at a time in submission order (a task's
 * completion stage must complete before the next of its key starts), while different keys run in parallel.
 * Tasks with a {@code null} key have no order to keep and run as soon as a thread is free.
 */
final class OrderedDispatcher {
    private final ExecutorService pool;
    /** Keys with a task running; the queue holds the tasks waiting behind it. */
    private final Map<String, ArrayDeque<Supplier<CompletionStage<?>>>> lanes = new HashMap<>();

    OrderedDispatcher(ExecutorService pool) {
        this.pool = pool;
    }

    void dispatch(String key, Supplier<CompletionStage<?>> task) {
        if (key == null) {
            pool.execute(() -> task.get());
            return;
        }
        synchronized (lanes) {
            ArrayDeque<Supplier<CompletionStage<?>>> waiting = lanes.get(key);
            if (waiting != null) {
                waiting.add(task);
                return;
            }
            lanes.put(key, new ArrayDeque<>(2));
        }
        pool.execute(() -> run(key, task));
    }

    private void run(String key, Supplier<CompletionStage<?>> task) {
        CompletionStage<?> stage;
        try {
            stage = task.get();
        } catch (RuntimeException e) {
            stage = null; // the task settles its own failures; a throw here must not wedge the lane
        }
        if (stage == null) {
            next(key);
        } else {
            stage.whenComplete((r, e) -> next(key));
        }
    }

    private void next(String key) {
        Supplier<CompletionStage<?>> task;
        synchronized (lanes) {
            ArrayDeque<Supplier<CompletionStage<?>>> waiting = lanes.get(key);
            task = waiting == null ? null : waiting.poll();
            if (task == null) {
                lanes.remove(key);
                return;
            }
        }
        try {
            pool.execute(() -> run(key, task));
        } catch (java.util.concurrent.RejectedExecutionException e) {
            synchronized (lanes) {
                lanes.remove(key); // shutting down: what is left stays pending in Redis
            }
        }
    }
}
