package io.stargazer.bus.internal;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.Semaphore;
import org.junit.jupiter.api.Test;

/** Blocking publishes combined by their callers, without Redis: each batch answered when the test says. */
class CallerBatchesTest {
    /** Batches sent, in order; each waits until its number is released, then answers each publish with its text. */
    private final List<List<String>> sent = new CopyOnWriteArrayList<>();
    private final Map<Integer, Semaphore> answers = new ConcurrentHashMap<>();
    private final CallerBatches.Send send = (batch, deadline, outcomes) -> {
        int n;
        synchronized (sent) {
            n = sent.size();
            sent.add(batch.stream().map(b -> new String(b.payload, StandardCharsets.UTF_8)).toList());
        }
        answers.computeIfAbsent(n, k -> new Semaphore(0)).acquireUninterruptibly();
        for (int i = 0; i < outcomes.length; i++) outcomes[i] = "id-" + new String(batch.get(i).payload, StandardCharsets.UTF_8);
    };
    /** Two writers: the smallest case of a caller whose publish is in another writer's batch. */
    private final CallerBatches batches = new CallerBatches("s", 100, 1 << 20, 2, send);
    private final Map<String, Object> outcomes = new ConcurrentHashMap<>();

    private Thread publisher(String text) {
        return publisher(batches, text);
    }

    private Thread publisher(CallerBatches to, String text) {
        Thread t = new Thread(() -> outcomes.put(text, to.publish(new CallerBatches.Blocked(
                text.getBytes(StandardCharsets.UTF_8), new byte[0], List.of(), null, System.nanoTime() + 30_000_000_000L))), text);
        t.setDaemon(true); // a failed test leaves no thread behind waiting for an answer
        t.start();
        return t;
    }

    private void answer(int batch) {
        answers.computeIfAbsent(batch, k -> new Semaphore(0)).release();
    }

    /**
     * Two batches on the wire; the next writer takes everything waiting, the last caller's publish included; that caller,
     * woken meanwhile (its parks are capped), finds a writer's role free and nothing to write, and waits for the batch
     * that has it instead of failing it as lost ("lost track of the publish" before it did).
     */
    @Test
    void aWriterWhosePublishIsInTheOtherWritersBatchWaitsForThatAnswer() throws Exception {
        Thread a = publisher("a");
        await().atMost(Duration.ofSeconds(5)).until(() -> sent.size() == 1);
        Thread b = publisher("b");
        await().atMost(Duration.ofSeconds(5)).until(() -> sent.size() == 2); // the second writer, its own batch
        Thread c = publisher("c");
        await().atMost(Duration.ofSeconds(5)).until(() -> c.getState() == Thread.State.TIMED_WAITING); // queued first
        Thread d = publisher("d");
        await().atMost(Duration.ofSeconds(5)).until(() -> d.getState() == Thread.State.TIMED_WAITING);
        answer(0); // a leaves and wakes c, which takes c and d (or d, waking first, takes the role and both)
        await().atMost(Duration.ofSeconds(5)).until(() -> sent.size() == 3);
        assertThat(sent.get(2)).containsExactly("c", "d");
        answer(1); // b leaves: a role is free, and the other of c and d, at its next capped wake-up, takes it and finds nothing
        a.join(5_000);
        b.join(5_000);
        await("c and d unanswered while the batch that has them is on the wire").during(Duration.ofMillis(100))
                .atMost(Duration.ofSeconds(5)).until(() -> !outcomes.containsKey("c") && !outcomes.containsKey("d"));
        answer(2);
        for (Thread t : List.of(a, b, c, d)) t.join(5_000);
        assertThat(outcomes).containsExactlyInAnyOrderEntriesOf(Map.of("a", "id-a", "b", "id-b", "c", "id-c", "d", "id-d"));
        assertThat(sent).hasSize(3);
    }

    /**
     * As the bus makes them: up to {@link CallerBatches#WRITERS} batches on the wire at once, each its own writer's, and
     * not one more; a publish made meanwhile waits, and goes out with whatever else waits once a batch is answered.
     */
    @Test
    void asManyBatchesAsThereAreWritersGoOnTheWireAndNoMore() throws Exception {
        CallerBatches bus = new CallerBatches("s", 100, 1 << 20, CallerBatches.WRITERS, send);
        List<Thread> writers = new java.util.ArrayList<>();
        for (int k = 0; k < CallerBatches.WRITERS; k++) {
            writers.add(publisher(bus, "w" + k));
            int made = k + 1;
            await().atMost(Duration.ofSeconds(5)).until(() -> sent.size() == made);
        }
        Thread x = publisher(bus, "x");
        Thread y = publisher(bus, "y");
        await().atMost(Duration.ofSeconds(5)).until(() -> x.getState() == Thread.State.TIMED_WAITING && y.getState() == Thread.State.TIMED_WAITING);
        await("no batch beyond the writers' while theirs are on the wire").during(Duration.ofMillis(100)).atMost(Duration.ofSeconds(5))
                .until(() -> sent.size() == CallerBatches.WRITERS);
        answer(0);
        await().atMost(Duration.ofSeconds(5)).until(() -> sent.size() == CallerBatches.WRITERS + 1);
        assertThat(sent.get(CallerBatches.WRITERS)).containsExactlyInAnyOrder("x", "y");
        for (int k = 1; k <= CallerBatches.WRITERS; k++) answer(k);
        for (Thread t : writers) t.join(5_000);
        x.join(5_000);
        y.join(5_000);
        assertThat(outcomes).hasSize(CallerBatches.WRITERS + 2).allSatisfy((text, id) -> assertThat(id).isEqualTo("id-" + text));
        assertThat(CallerBatches.WRITERS).as("more than one batch on the wire, or there is nothing to test").isGreaterThan(1);
    }
}
