package io.stargazer.bus;

/**
 * What {@code XINFO CONSUMERS} says of one consumer of a group.
 *
 * @param pending    entries delivered to it and not yet acknowledged
 * @param idleMillis time since it last read or claimed
 */
public record ConsumerInfo(String name, long pending, long idleMillis) {
}
