package io.stargazer.bus;

import java.util.List;

/**
 * One page of {@link DeadLetters#list}: the entries, oldest first across the dead-letter streams, and where the next page
 * starts ({@link DeadLetterFilter.Builder#after(String)}), or null when there is no more.
 */
public record DeadLetterPage(List<DeadLetter> entries, String next) {
    public DeadLetterPage {
        entries = List.copyOf(entries);
    }
}
