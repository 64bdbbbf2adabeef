// Blocking publishes to one stream made at the same moment go out together: one write, by one of their callers.
package io.stargazer.bus.internal;

import io.stargazer.bus.PublishOutcomeUnknownException;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ConcurrentLinkedDeque;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.locks.LockSupport;

/**
 * The blocking publishes to one stream that go on a connection of their own ({@link CallerConnections}), combined: the
 * publishes waiting at the same moment are written at once, pipelined (one plain XADD each, {@link StreamPublisher}'s
 * {@code sendOwn}), by one of their callers, the writer, which hands each of the others its outcome.
 *
 * <p>Why: with a connection per publishing thread, sixteen threads publishing at once are sixteen commands, each read and
 * answered on its own by the server; where the server's system calls are dear (a virtual machine), that costs it
 * several times what the same entries cost in one batch, and the publishers wait for it. Combined, the server gets a
 * batch per round trip, and no publish crosses to Lettuce's event loop and back. Measured: 16 threads, the bus and
 * Spring Data Redis alternated in one JVM, 5 rounds, two JVMs: ×1.26 and ×1.28 of Spring against ×0.98 and ×1.05
 * with a connection per thread (bench/profile-notes.md).
 *
 * <p>Up to {@link #WRITERS} batches are on the wire at once, each on its writer's connection: while one writer waits for
 * its answer and then wakes its batch's callers (a system call each), the next batch is already written, so the server
 * is not left idle between batches. Measured: 16 threads, `ProfileMain pub16-alternated` (the bus and Spring Data Redis
 * alternated in one JVM), 7 JVMs each, one writer (the code before) 98 400–105 300 msg/s (median 101 200), two
 * 104 600–110 600 (107 700), Spring about 85 000 (bench/profile-notes.md, stop 52, an AMD machine). Four rather than
 * two: on an Intel machine, where a system call and a wake-up cost less and the chain of one batch (write, wait,
 * read, wake its callers) is what bounds the publishers, two writers made 83 300–88 500 msg/s and four 89 800–96 700
 * (4 JVMs each, alternated; Spring Data Redis 82 600–91 800 in the same JVMs); six and eight made no more than four
 * (82 900–88 900; bench/profile-notes.md, stop 55).
 *
 * <p>Order: a caller's publish completes before its next one is made, so combining publishes of different threads
 * cannot reorder what one thread publishes, and the batches on the wire at one moment hold publishes of different
 * threads, none of which has returned: nothing one thread published can be overtaken by the same thread's next. Whether
 * a publish may go this way at all (nothing of the stream unanswered on the shared connection) is checked by the writer
 * for each batch ({@link Send}), so a batch is never written after something of its stream that is still on the wire
 * there.
 *
 * <p>Threads: none of its own. A writer is a caller that found one of the {@link #WRITERS} roles free; it writes and
 * reads on its own thread (its connection's selector) for as long as its own publish is not answered, or until it finds
 * nothing waiting, its publish being in another writer's batch (it then waits for that answer like any caller). It
 * leaves the role, wakes the first still waiting, which takes it, and only then wakes its batch's callers; every caller
 * that leaves does the same if a role is free, and parks are capped ({@link #MAX_PARK_NANOS}), so no publish waits on a
 * wake-up nobody sends. The others park until their outcome is set or a role is theirs. A publish still waiting at its
 * deadline leaves the queue unwritten ({@link #EXPIRED}: it fails as not sent); one taken into a batch waits for that
 * batch, whose deadline is its earliest publish's.
 */
final class CallerBatches {
    /** Nothing of it reached the server: the publish goes the shared way. */
    static final Object NOT_SENT = new Object();
    /** Its deadline passed before it was written: it fails as not sent. */
    static final Object EXPIRED = new Object();
    /** Batches on the wire at once, each on its writer's own connection. */
    static final int WRITERS = 4;
    /** The longest one park of a waiting caller, a bound on what a missed wake-up could cost. */
    static final long MAX_PARK_NANOS = 5_000_000;

    /** A blocking publish waiting to be written. */
    static final class Blocked {
        final byte[] payload;
        final byte[] traceId;
        final List<String> trimArgs;
        final byte[][] trace;
        final long deadline;
        final Thread caller = Thread.currentThread();
        /** The entry's id, the RuntimeException to fail with, or {@link #NOT_SENT}; null while undecided. */
        volatile Object outcome;

        Blocked(byte[] payload, byte[] traceId, List<String> trimArgs, byte[][] trace, long deadline) {
            this.payload = payload;
            this.traceId = traceId;
            this.trimArgs = trimArgs;
            this.trace = trace;
            this.deadline = deadline;
        }
    }

    /** Writes one batch, on the writer's thread. */
    interface Send {
        /**
         * Writes {@code batch} in one write, its deadline {@code deadline}, and puts each publish's outcome in
         * {@code outcomes} (the id, {@link #NOT_SENT}, or an exception); throws to fail them all with it.
         */
        void send(List<Blocked> batch, long deadline, Object[] outcomes);
    }

    private final String stream;
    private final int maxBatch;
    private final long maxBatchBytes;
    private final Send send;
    /** Waiting to be written, in arrival order. */
    private final ConcurrentLinkedDeque<Blocked> waiting = new ConcurrentLinkedDeque<>();
    /** Callers that are writers now, at most {@link #maxWriters}. */
    private final AtomicInteger writers = new AtomicInteger();
    private final int maxWriters;

    /**
     * {@code maxBatch}: 1 writes each publish alone. {@code maxWriters}: how many batches may be on the wire at once, each
     * on its writer's connection.
     */
    CallerBatches(String stream, int maxBatch, long maxBatchBytes, int maxWriters, Send send) {
        this.stream = stream;
        this.maxWriters = Math.max(1, maxWriters);
        this.maxBatch = Math.max(1, maxBatch);
        this.maxBatchBytes = maxBatchBytes;
        this.send = send;
    }

    /**
     * Writes {@code me} (with whatever else waits) and returns its outcome: an id, an exception, {@link #NOT_SENT}, or
     * {@link #EXPIRED}. An interrupt is kept, not acted on.
     */
    Object publish(Blocked me) {
        // Made before a role is taken: an Error between taking it and the try below would keep the role for ever.
        List<Thread> answered = new ArrayList<>();
        waiting.add(me);
        boolean interrupted = false;
        try {
            boolean mayWrite = true;
            while (true) {
                Object outcome = me.outcome;
                if (outcome != null) return outcome;
                if (mayWrite && becomeWriter()) {
                    boolean left = false;
                    try {
                        while (me.outcome == null) {
                            if (!writeNext(answered)) {
                                // Nothing waiting and this one not answered: another writer has it in its batch. It
                                // waits for that answer as any caller does (trying to write again would spin).
                                if (writers.get() > 1) break;
                                // Alone, it would be lost: cannot happen while every batch taken gets its outcomes; if
                                // it ever did, waiting on would be for ever.
                                if (me.outcome == null) {
                                    me.outcome = new PublishOutcomeUnknownException(stream, "publishing to stream '" + stream
                                            + "': lost track of the publish: the entry may or may not be stored", null);
                                }
                            }
                            if (me.outcome == null) wake(answered);
                        }
                        left = true;
                    } finally {
                        // An Error out of writeNext: this caller gets it, so its publish must not be written after all;
                        // if another writer has it (in its batch, or about to put it back), its outcome is waited for,
                        // so that it is not written after the caller was told of the Error.
                        if (!left && me.outcome == null && !waiting.remove(me)) awaitOutcome(me);
                        writers.decrementAndGet();
                    }
                    mayWrite = me.outcome != null; // else in another writer's batch: park until it is answered
                    continue;
                }
                mayWrite = true;
                long left = me.deadline - System.nanoTime();
                if (left <= 0 && waiting.remove(me)) return EXPIRED;
                // Past its deadline but taken into a batch: that batch's deadline is no later, so it ends soon. The park
                // is capped so that a wake-up missed for any reason costs a few milliseconds, not the publish timeout.
                LockSupport.parkNanos(this, Math.min(Math.max(left, 100_000), MAX_PARK_NANOS));
                interrupted |= Thread.interrupted(); // cleared, or every park would return at once
            }
        } finally {
            // Whichever way this caller leaves (answered, expired, as a writer), the first still waiting must not be left
            // parked with a role free: it takes it. That first, then the callers of this writer's last batch: waking each
            // costs this thread a system call, and the connection carries nothing until the next writer has written.
            if (writers.get() < maxWriters) {
                Blocked next = waiting.peekFirst();
                if (next != null) LockSupport.unpark(next.caller);
            }
            wake(answered);
            if (interrupted) Thread.currentThread().interrupt();
        }
    }

    /** Until the writer that has {@code me} sets its outcome (its batch has a deadline); an interrupt is kept. */
    private static void awaitOutcome(Blocked me) {
        boolean interrupted = false;
        while (me.outcome == null) {
            LockSupport.parkNanos(me, MAX_PARK_NANOS);
            interrupted |= Thread.interrupted();
        }
        if (interrupted) Thread.currentThread().interrupt();
    }

    private boolean becomeWriter() {
        for (int w = writers.get(); w < maxWriters; w = writers.get()) {
            if (writers.compareAndSet(w, w + 1)) return true;
        }
        return false;
    }

    private static void wake(List<Thread> callers) {
        for (Thread t : callers) LockSupport.unpark(t);
        callers.clear();
    }

    /**
     * As the writer: the waiting publishes that fit one batch, written, their outcomes set and their callers (but
     * this one) added to {@code answered}, to be woken; those already past their deadline are not written
     * ({@link #EXPIRED}). False when nothing was waiting.
     */
    private boolean writeNext(List<Thread> answered) {
        List<Blocked> batch = new ArrayList<>();
        List<Blocked> expired = new ArrayList<>();
        Object[] outcomes = null;
        Error failed = null;
        try {
            long now = System.nanoTime();
            long bytes = 0;
            Blocked first = null;
            while (batch.size() < maxBatch) {
                Blocked next = waiting.pollFirst();
                if (next == null) break;
                if (next.deadline - now <= 0) {
                    expired.add(next);
                    continue;
                }
                // Each publish is an XADD of its own, so publishes with other options or trace fields may share a batch.
                if (first != null && bytes + next.payload.length > maxBatchBytes) {
                    // Back at the head; another writer may have taken later ones meanwhile, which changes only the order
                    // between threads (each has one publish here at most), never a thread's own.
                    waiting.addFirst(next);
                    break;
                }
                if (first == null) first = next;
                batch.add(next);
                bytes += next.payload.length;
            }
            if (batch.isEmpty()) return !expired.isEmpty();
            long deadline = first.deadline;
            for (Blocked b : batch) if (b.deadline - deadline < 0) deadline = b.deadline;
            outcomes = new Object[batch.size()];
            try {
                send.send(batch, deadline, outcomes);
            } catch (RuntimeException e) {
                java.util.Arrays.fill(outcomes, e);
            }
            return true;
        } catch (Error e) {
            failed = e;
            throw e;
        } finally {
            // Every publish taken gets an outcome, whatever happened: its caller parks until it has one.
            Thread me = Thread.currentThread();
            for (Blocked b : expired) {
                b.outcome = EXPIRED;
                if (b.caller != me) answered.add(b.caller);
            }
            for (int i = 0; i < batch.size(); i++) {
                Blocked b = batch.get(i);
                Object o = outcomes == null ? null : outcomes[i];
                b.outcome = o != null ? o : new PublishOutcomeUnknownException(stream, "publishing to stream '" + stream
                        + "': the thread writing it failed (" + failed + "): the entry may or may not be stored", failed);
                if (b.caller != me) answered.add(b.caller);
            }
        }
    }
}
