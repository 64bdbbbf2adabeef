package io.stargazer.bus;

/**
 * What {@link DeadLetters#replay} did.
 *
 * @param matched         dead letters selected
 * @param replayed        put back on their source stream by this call (0 on a dry run)
 * @param alreadyReplayed put back by an earlier, interrupted replay: only removed from the dead-letter stream now
 * @param skipped         not replayable, left in place: no {@code source_stream} field (written by another tool), or
 *                        one of {@code foreignSource}
 * @param foreignSource   of {@code skipped}, those whose {@code source_stream} is not the stream of the dead-letter stream
 *                        that holds them (a dead letter of {@code S + suffix} goes back only to {@code S})
 * @param dryRun          nothing was written
 */
public record ReplayResult(long matched, long replayed, long alreadyReplayed, long skipped, long foreignSource, boolean dryRun) {

    /** A result with no dead letter naming a foreign source stream. */
    public ReplayResult(long matched, long replayed, long alreadyReplayed, long skipped, boolean dryRun) {
        this(matched, replayed, alreadyReplayed, skipped, 0, dryRun);
    }

    /** Those of {@link #skipped} without a {@code source_stream} field. */
    public long withoutSource() {
        return skipped - foreignSource;
    }
}
