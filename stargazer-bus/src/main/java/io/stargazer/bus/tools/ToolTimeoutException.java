package io.stargazer.bus.tools;

import java.time.Duration;

/**
 * A tool call that got no result in time: either no reply came before the caller's timeout, or the tools service
 * answered {@code timeout} because the request's deadline had passed before it could run.
 */
public class ToolTimeoutException extends ToolException {
    private final Duration waited;
    private final boolean answered;

    public ToolTimeoutException(String tool, String requestId, Duration waited, boolean answered, String errorMessage,
                                String message) {
        super(tool, requestId, TIMEOUT, errorMessage, message);
        this.waited = waited;
        this.answered = answered;
    }

    /** How long the caller waited, from the call to the timeout (or to the service's {@code timeout} answer). */
    public Duration waited() {
        return waited;
    }

    /** True when the tools service answered {@code timeout}; false when no answer came at all. */
    public boolean answered() {
        return answered;
    }
}
