package io.stargazer.bus.internal;

import static org.assertj.core.api.Assertions.assertThat;

import static org.awaitility.Awaitility.await;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Queue;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicLongArray;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

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

    @Test
    void anOfferWhileEverySlotIsTakenWakesNoLoopTheNextAnswerSendsIt() {
        List<Runnable> loopTasks = new ArrayList<>();
        List<List<Integer>> sent = new ArrayList<>();
        BatchingDrain<Integer> d = new BatchingDrain<>(1, loopTasks::add, () -> false, BatchingDrainTest::takeAll, sent::add);
        d.offer(1);
        loopTasks.remove(0).run();
        assertThat(sent).containsExactly(List.of(1));
        d.offer(2);
        d.offer(3);
        assertThat(loopTasks).as("tasks handed to the loop while its one slot is taken").isEmpty();
        d.sent();
        assertThat(loopTasks).hasSize(1);
        loopTasks.remove(0).run();
        assertThat(sent).containsExactly(List.of(1), List.of(2, 3));
    }

    /**
     * The loop shut down (a closing bus) while a batch was out: its answer frees the slot without throwing, so the caller
     * goes on to tell that batch's publishers; what queued stays for the owner's close or deadline to fail.
     */
    @Test
    void aLoopThatHasShutDownRefusesTheDrainAndTheAnswerStillReturns() {
        List<Runnable> loopTasks = new ArrayList<>();
        boolean[] shut = {false};
        java.util.concurrent.Executor loop = task -> {
            if (shut[0]) throw new java.util.concurrent.RejectedExecutionException("event executor terminated");
            loopTasks.add(task);
        };
        List<List<Integer>> sent = new ArrayList<>();
        BatchingDrain<Integer> d = new BatchingDrain<>(1, loop, () -> false, BatchingDrainTest::takeAll, sent::add);
        d.offer(1);
        loopTasks.remove(0).run();
        d.offer(2); // the one slot is taken: left to the answer
        shut[0] = true;
        d.sent();
        d.offer(3);
        assertThat(sent).containsExactly(List.of(1));
        assertThat(d.queue()).containsExactly(2, 3);
        assertThat(d.inFlight()).isZero();
        shut[0] = false; // a drain refused did not leave the next one believing a drain runs
        d.offer(4);
        assertThat(loopTasks).hasSize(1);
        loopTasks.remove(0).run();
        assertThat(sent).containsExactly(List.of(1), List.of(2, 3, 4));
    }

    /**
     * Offers from several threads while answers come on another, each thread waiting for its item to be sent before it
     * offers the next (as a blocking publish does, so that a lost wake-up stalls it instead of being covered by the
     * next offer): every item is sent once, each thread's in its order, and none waits. An offer that finds every slot
     * taken leaves its item to the next answer. With a loop and one slot (a cluster's publisher), a loop and two (a
     * publisher on one server, the span), and no loop (the acknowledgements, drained on whichever thread answers).
     */
    @ParameterizedTest(name = "{0} in flight, loop {1}")
    @CsvSource({"1, true", "2, true", "1, false"})
    void offersRacingAnswersAreAllSentOnceInOrder(int maxInFlight, boolean withLoop) throws Exception {
        int threads = 3;
        int each = 100_000;
        ExecutorService loop = Executors.newSingleThreadExecutor();
        ExecutorService replies = Executors.newSingleThreadExecutor();
        ExecutorService producers = Executors.newFixedThreadPool(threads);
        try {
            Thread loopThread = loop.submit(Thread::currentThread).get();
            Queue<Long> received = new ConcurrentLinkedQueue<>();
            AtomicLongArray sentUpTo = new AtomicLongArray(threads);
            AtomicLong offLoop = new AtomicLong(); // counted, not asserted there: the loop would swallow the failure
            AtomicLong stalled = new AtomicLong();
            BatchingDrain<Long>[] d = new BatchingDrain[1];
            d[0] = new BatchingDrain<>(maxInFlight, withLoop ? loop : null, () -> Thread.currentThread() == loopThread,
                    BatchingDrainTest::takeAll, batch -> {
                if (withLoop && Thread.currentThread() != loopThread) offLoop.incrementAndGet();
                received.addAll(batch);
                for (long v : batch) sentUpTo.set((int) (v >>> 32), (v & 0xffffffffL) + 1);
                replies.execute(d[0]::sent);
            });
            List<java.util.concurrent.Future<?>> done = new ArrayList<>();
            for (int t = 0; t < threads; t++) {
                int id = t;
                done.add(producers.submit(() -> {
                    for (long i = 0; i < each; i++) {
                        d[0].offer((long) id << 32 | i);
                        long giveUp = System.nanoTime() + 5_000_000_000L;
                        while (sentUpTo.get(id) <= i) {
                            if (System.nanoTime() - giveUp > 0) {
                                stalled.incrementAndGet();
                                return;
                            }
                            Thread.onSpinWait();
                        }
                    }
                }));
            }
            for (var f : done) f.get(120, java.util.concurrent.TimeUnit.SECONDS);
            assertThat(stalled.get()).as("threads whose item was never sent").isZero();
            await().atMost(Duration.ofSeconds(10)).until(d[0]::idle);
            long[] next = new long[threads];
            for (long v : received) {
                int t = (int) (v >>> 32);
                assertThat(v & 0xffffffffL).as("thread %d's next item", t).isEqualTo(next[t]);
                next[t]++;
            }
            assertThat(next).containsOnly(each);
            assertThat(offLoop.get()).as("batches sent off the loop").isZero();
        } finally {
            producers.shutdownNow();
            replies.shutdownNow();
            loop.shutdownNow();
        }
    }

    private static <T> List<T> takeAll(Queue<T> q) {
        List<T> out = new ArrayList<>();
        T i;
        while ((i = q.poll()) != null) out.add(i);
        return out;
    }
}
