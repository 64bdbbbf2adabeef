package io.stargazer.bus;

/**
 * One entry of a dead-letter stream, as {@link DeadLetters} lists it: where it came from, why it died, and its envelope.
 *
 * @param deadStream   the dead-letter stream holding it
 * @param id           its id in that stream (what {@code replay_of} names after a replay)
 * @param sourceStream the stream it was read from ({@code source_stream}), or null when the writer did not say
 * @param sourceId     its id there ({@code source_id}), or null
 * @param group        the group that gave up on it ({@code group}), or null
 * @param error        why ({@code error}): the handler's last failure, or why it could not be decoded
 * @param deliveries   how often it was delivered ({@code deliveries}), 0 when unknown
 * @param deadAtMs     when it was dead-lettered, Unix ms ({@code dead_at_ms}, else the time in its id)
 * @param replayOf     the dead-letter id it was itself replayed from earlier ({@code replay_of}), or null
 * @param envelope     the decoded envelope, or null when the entry is malformed
 * @param malformed    why the envelope could not be decoded, or null
 */
public record DeadLetter(String deadStream, String id, String sourceStream, String sourceId, String group, String error,
        long deliveries, long deadAtMs, String replayOf, Envelope envelope, String malformed) {

    /**
     * {@code <id>@<deadStream>}: this dead letter alone, for {@link DeadLetterFilter.Builder#ids}, where its id alone
     * would also select an entry of another dead-letter stream stored in the same millisecond. A list's cursors have this
     * form too.
     */
    public String ref() {
        return id + "@" + deadStream;
    }
}
