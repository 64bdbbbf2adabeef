package io.stargazer.bus;

/**
 * What {@link DeadLetters#replay} did.
 *
 * @param matched         dead letters selected
 * @param replayed        put back on their source stream by this call (0 on a dry run)
 * @param alreadyReplayed put back by an earlier, interrupted replay: only removed from the dead-letter stream now
 * @param skipped         not replayable: no {@code source_stream} field (written by another tool)
 * @param dryRun          nothing was written
 */
public record ReplayResult(long matched, long replayed, long alreadyReplayed, long skipped, boolean dryRun) {
}
