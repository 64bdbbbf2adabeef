package io.stargazer.bus;

/**
 * One entry read with {@link EventBus#read}: its id and decoded envelope, or, when the entry does not follow the
 * wire format, no envelope and the reason.
 *
 * @param id        the stream entry id, for example {@code 1700000000000-0}
 * @param envelope  the decoded envelope, or {@code null} when malformed
 * @param malformed why the entry could not be decoded, or {@code null}
 */
public record StreamEntry(String id, Envelope envelope, String malformed) {
}
