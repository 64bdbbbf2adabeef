package io.stargazer.bus.internal;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.ArrayList;
import java.util.List;
import java.util.Queue;
import org.junit.jupiter.api.Test;

/** The batching loop without Redis: what queues while batches are out goes as one, in order, within the in-flight cap. */
class BatchingDrainTest {
    @Test
    void batchesFormFromWhatQueuedWhileTheSlotsWereFullInOrder() {
        List<List<Integer>> sent = new ArrayList<>();
        BatchingDrain<Integer>[] d = new BatchingDrain[1];
        d[0] = new BatchingDrain<>(2, null, () -> true, BatchingDrainTest::takeAll, sent::add);
        d[0].offer(1);
        d[0].offer(2);
        d[0].offer(3);
        d[0].offer(4);
        assertThat(sent).containsExactly(List.of(1), List.of(2)); // two slots, both taken at once
        assertThat(d[0].inFlight()).isEqualTo(2);
        d[0].sent();
        assertThat(sent).containsExactly(List.of(1), List.of(2), List.of(3, 4));
        d[0].sent();
        d[0].sent();
        assertThat(d[0].idle()).isTrue();
    }

    @Test
    void withALoopEveryBatchIsSentOnIt() {
        List<Runnable> loopTasks = new ArrayList<>();
        List<List<Integer>> sent = new ArrayList<>();
        BatchingDrain<Integer> d = new BatchingDrain<>(1, loopTasks::add, () -> false, BatchingDrainTest::takeAll, sent::add);
        d.offer(1);
        d.offer(2);
        assertThat(sent).isEmpty(); // handed to the loop, not sent on the caller's thread
        assertThat(loopTasks).hasSize(1);
        loopTasks.remove(0).run();
        assertThat(sent).containsExactly(List.of(1, 2));
    }

    private static List<Integer> takeAll(Queue<Integer> q) {
        List<Integer> out = new ArrayList<>();
        Integer i;
        while ((i = q.poll()) != null) out.add(i);
        return out;
    }
}
