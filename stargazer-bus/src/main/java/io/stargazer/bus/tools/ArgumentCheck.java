package io.stargazer.bus.tools;

import java.util.Map;

/**
 * Checks a tool's arguments before the tool runs. Throwing {@link IllegalArgumentException} answers
 * {@code bad_arguments} with its message, and the tool does not run.
 *
 * <p><b>Threading:</b> called on the tool thread that then runs the tool; it should be quick and not block.
 */
@FunctionalInterface
public interface ArgumentCheck {
    void check(Map<String, Object> args) throws IllegalArgumentException;
}
