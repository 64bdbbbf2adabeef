package io.stargazer.bus.internal;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** Per-channel order without Redis: one at a time per key, stream-id order among waiting tasks, keys in parallel. */
@Timeout(30)
class LanesTest {
    private final ExecutorService pool = new HandlerPool(4, "lanes-test");

    @AfterEach
    void stop() {
        pool.shutdownNow();
    }

    @Test
    void oneKeyRunsOneAtATimeAndWaitsForTheStage() {
        Lanes lanes = new Lanes(pool);
        CompletableFuture<Void> first = new CompletableFuture<>();
        List<String> order = Collections.synchronizedList(new ArrayList<>());
        lanes.dispatch("c", "1-0", () -> { order.add("1-0"); return first; });
        lanes.dispatch("c", "2-0", () -> { order.add("2-0"); return null; });
        org.awaitility.Awaitility.await().atMost(5, TimeUnit.SECONDS).until(() -> order.size() == 1);
        assertThat(order).containsExactly("1-0"); // 2-0 cannot start: 1-0's stage is not complete
        first.complete(null);
        org.awaitility.Awaitility.await().atMost(5, TimeUnit.SECONDS).until(() -> order.size() == 2);
        assertThat(order).containsExactly("1-0", "2-0");
        org.awaitility.Awaitility.await().atMost(5, TimeUnit.SECONDS).until(() -> lanes.busyKeys() == 0);
    }

    @Test
    void anOlderEntryArrivingLateGoesAheadOfNewerOnesStillWaiting() {
        Lanes lanes = new Lanes(pool);
        CompletableFuture<Void> running = new CompletableFuture<>();
        List<String> order = Collections.synchronizedList(new ArrayList<>());
        lanes.dispatch("c", "5-0", () -> { order.add("5-0"); return running; });
        org.awaitility.Awaitility.await().atMost(5, TimeUnit.SECONDS).until(() -> order.size() == 1);
        lanes.dispatch("c", "9-0", () -> { order.add("9-0"); return null; });
        lanes.dispatch("c", "10-0", () -> { order.add("10-0"); return null; });
        lanes.dispatch("c", "7-3", () -> { order.add("7-3"); return null; }); // taken over from a dead consumer
        running.complete(null);
        org.awaitility.Awaitility.await().atMost(5, TimeUnit.SECONDS).until(() -> order.size() == 4);
        assertThat(order).containsExactly("5-0", "7-3", "9-0", "10-0"); // numeric order: 9 before 10
    }

    @Test
    void differentKeysRunInParallelAndAThrowingTaskDoesNotWedgeItsLane() {
        Lanes lanes = new Lanes(pool);
        CompletableFuture<Void> blockA = new CompletableFuture<>();
        AtomicInteger ran = new AtomicInteger();
        lanes.dispatch("a", "1-0", () -> blockA);
        lanes.dispatch("b", "2-0", () -> { ran.incrementAndGet(); throw new IllegalStateException("boom"); });
        lanes.dispatch("b", "3-0", () -> { ran.incrementAndGet(); return null; });
        lanes.dispatch(null, "4-0", () -> { ran.incrementAndGet(); return null; });
        org.awaitility.Awaitility.await().atMost(5, TimeUnit.SECONDS).until(() -> ran.get() == 3);
        assertThat(lanes.busyKeys()).isEqualTo(1); // only "a", still waiting for its stage
        blockA.complete(null);
        org.awaitility.Awaitility.await().atMost(5, TimeUnit.SECONDS).until(() -> lanes.busyKeys() == 0);
    }
}
