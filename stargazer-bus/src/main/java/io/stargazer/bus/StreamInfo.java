package io.stargazer.bus;

/**
 * What {@code XINFO STREAM} says of a stream.
 *
 * @param length       entries in the stream
 * @param groups       consumer groups on it
 * @param firstEntryId id of the oldest entry, or {@code null} when empty
 * @param lastEntryId  id of the newest entry ever added ({@code 0-0} when none)
 * @param entriesAdded entries ever added, trimmed ones included: a counter to compute rates from; {@code null}
 *                     where the server does not report it (Redis before 7.0)
 */
public record StreamInfo(String stream, long length, long groups, String firstEntryId, String lastEntryId, Long entriesAdded) {
}
