package io.stargazer.bus;

/**
 * What {@code XINFO STREAM} says of a stream.
 *
 * @param length       entries in the stream
 * @param groups       consumer groups on it
 * @param firstEntryId id of the oldest entry, or {@code null} when empty
 * @param lastEntryId  id of the newest entry ever added ({@code 0-0} when none)
 */
public record StreamInfo(String stream, long length, long groups, String firstEntryId, String lastEntryId) {
}
