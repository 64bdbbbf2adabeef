package io.stargazer.bus;

import java.util.List;

/**
 * One page of {@link DeadLetters#list}: the entries, oldest first across the dead-letter streams, and where the next page
 * starts ({@link DeadLetterFilter.Builder#after(String)}), or null when there is no more.
 *
 * @param notStreams the dead-letter streams whose name holds a key of another type (a stray {@code SET}): skipped, so
 *                   the others' dead letters are still listed, and named here so that the caller can say so
 */
public record DeadLetterPage(List<DeadLetter> entries, String next, List<String> notStreams) {
    public DeadLetterPage {
        entries = List.copyOf(entries);
        notStreams = List.copyOf(notStreams);
    }

    /** A page of streams that are all streams. */
    public DeadLetterPage(List<DeadLetter> entries, String next) {
        this(entries, next, List.of());
    }
}
