package io.stargazer.bus;

/**
 * What {@code XINFO GROUPS} says of one consumer group.
 *
 * @param pending         entries delivered to the group and not yet acknowledged
 * @param lastDeliveredId the group's read position
 * @param lag             entries not yet delivered to the group; {@code null} where the server does not report it
 *                        (Redis before 7.0, or after trimming that makes it unknowable)
 */
public record GroupInfo(String name, long consumers, long pending, String lastDeliveredId, Long lag) {
}
