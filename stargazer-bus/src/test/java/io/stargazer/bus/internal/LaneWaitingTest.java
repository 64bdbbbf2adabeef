package io.stargazer.bus.internal;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.ArrayList;
import java.util.List;
import java.util.PriorityQueue;
import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;
import net.jqwik.api.Tuple;
import org.junit.jupiter.api.Test;

/** A lane's waiting tasks come out oldest entry first, however they went in: the same as one heap of them all. */
class LaneWaitingTest {
    private record Id(String entryId) implements Lanes.Waiting.HasId {
    }

    @Test
    void anEntryOlderThanTheNewestWaitingComesOutInItsPlace() {
        Lanes.Waiting<Id> w = new Lanes.Waiting<>();
        for (String id : List.of("5-0", "9-0", "10-0", "7-3", "9-1", "1-0")) w.add(new Id(id));
        assertThat(w.size()).isEqualTo(6);
        assertThat(w.peek().entryId()).isEqualTo("1-0");
        List<String> out = new ArrayList<>();
        for (Id t; (t = w.poll()) != null; ) out.add(t.entryId());
        assertThat(out).containsExactly("1-0", "5-0", "7-3", "9-0", "9-1", "10-0");
        assertThat(w.size()).isZero();
        assertThat(w.peek()).isNull();
    }

    /**
     * Any mix of adds (ids mostly rising, some older, some repeated) and takes gives what a heap of all of them gives.
     * An op is an id to add, or null to take one.
     */
    @Property(tries = 1000)
    void takesWhatOneHeapWouldTake(@ForAll("ops") List<String> ops) {
        Lanes.Waiting<Id> w = new Lanes.Waiting<>();
        PriorityQueue<String> heap = new PriorityQueue<>(StreamIds.ORDER);
        for (String op : ops) {
            if (op == null) {
                Id got = w.poll();
                String want = heap.poll();
                assertThat(got == null ? null : got.entryId()).isEqualTo(want);
            } else {
                w.add(new Id(op));
                heap.add(op);
            }
            assertThat(w.size()).isEqualTo(heap.size());
            Id head = w.peek();
            assertThat(head == null ? null : head.entryId()).isEqualTo(heap.peek());
        }
    }

    @Provide
    Arbitrary<List<String>> ops() {
        Arbitrary<String> rising = Arbitraries.integers().between(0, 40).map(i -> "" + (100 + i) + "-" + (i % 3));
        Arbitrary<String> old = Arbitraries.integers().between(0, 99).map(i -> i + "-" + (i % 2));
        return Arbitraries.frequencyOf(Tuple.of(6, rising), Tuple.of(1, old)).injectNull(0.4).list().ofMaxSize(60);
    }
}
