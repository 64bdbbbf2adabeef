package io.stargazer.bus.testing;

import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.function.Supplier;
import java.util.stream.Collectors;

/**
 * Records what became of publishes a test issued while it injected a fault: when each was called, when its
 * future completed, and with which id or error. Thread-safe; tests read it on their own thread to assert.
 */
public final class PublishLog {
    /** One completed publish; times are System.nanoTime(). */
    public record Outcome(int seq, long calledAt, long doneAt, String id, Throwable error) {
        public boolean stored() {
            return error == null;
        }

        public long millis() {
            return (doneAt - calledAt) / 1_000_000;
        }
    }

    private final Map<Integer, Long> called = new ConcurrentHashMap<>();
    private final Map<Integer, Outcome> done = new ConcurrentHashMap<>();

    /** Calls {@code publish} now and records its outcome; a publish that throws instead of failing its future counts as failed. */
    public CompletableFuture<String> publish(int seq, Supplier<CompletableFuture<String>> publish) {
        long at = System.nanoTime();
        called.put(seq, at);
        CompletableFuture<String> f;
        try {
            f = publish.get();
        } catch (RuntimeException e) {
            f = CompletableFuture.failedFuture(e);
        }
        f.whenComplete((id, e) -> done.put(seq, new Outcome(seq, at, System.nanoTime(), id, e == null ? null : unwrap(e))));
        return f;
    }

    public int issued() {
        return called.size();
    }

    /** Issued and not completed yet. */
    public int pending() {
        return called.size() - done.size();
    }

    public boolean allDone() {
        return done.size() == called.size();
    }

    public List<Outcome> outcomes() {
        return new ArrayList<>(done.values());
    }

    /** Seqs whose publish completed successfully (Redis answered with an id). */
    public Set<Integer> stored() {
        return done.values().stream().filter(Outcome::stored).map(Outcome::seq).collect(Collectors.toCollection(TreeSet::new));
    }

    /** Seqs of successful publishes called at or after {@code nanoTime}. */
    public Set<Integer> storedCalledSince(long nanoTime) {
        return done.values().stream().filter(o -> o.stored() && o.calledAt() >= nanoTime).map(Outcome::seq)
                .collect(Collectors.toCollection(TreeSet::new));
    }

    /** "n 200, median 2003 ms, p90 2010 ms, max 2041 ms" of the outcomes' call-to-completion times. */
    public static String distribution(Collection<Outcome> outcomes) {
        List<Long> ms = outcomes.stream().map(Outcome::millis).sorted().toList();
        if (ms.isEmpty()) return "n 0";
        return "n " + ms.size() + ", median " + ms.get(ms.size() / 2) + " ms, p90 " + ms.get((int) (ms.size() * 0.9)) + " ms, max "
                + ms.get(ms.size() - 1) + " ms";
    }

    /** "BusConnectionException x 198, PublishOutcomeUnknownException x 2" of the failed outcomes. */
    public static String errorKinds(Collection<Outcome> outcomes) {
        return outcomes.stream().filter(o -> !o.stored())
                .collect(Collectors.groupingBy(o -> o.error().getClass().getSimpleName(), java.util.TreeMap::new, Collectors.counting()))
                .entrySet().stream().map(e -> e.getKey() + " x " + e.getValue()).collect(Collectors.joining(", "));
    }

    private static Throwable unwrap(Throwable e) {
        while ((e instanceof CompletionException || e instanceof ExecutionException) && e.getCause() != null) {
            e = e.getCause();
        }
        return e;
    }
}
