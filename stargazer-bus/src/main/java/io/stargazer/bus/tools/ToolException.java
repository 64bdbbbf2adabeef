package io.stargazer.bus.tools;

import io.stargazer.bus.StargazerException;

/**
 * A tool call that did not produce a result: the tools service answered with an error, or the call timed out
 * ({@link ToolTimeoutException}). {@link #type()} is the error's {@code type} as the wire format names it.
 */
public class ToolException extends StargazerException {
    /** No tool of that name is registered with the tools service (or the request named none). */
    public static final String UNKNOWN_TOOL = "unknown_tool";
    /** The tool refused its arguments. */
    public static final String BAD_ARGUMENTS = "bad_arguments";
    /** The tool ran and failed, or its result could not be sent back (wrong type, too large). */
    public static final String TOOL_FAILED = "tool_failed";
    /** No answer in time, or the tools service skipped the request because its deadline had passed. */
    public static final String TIMEOUT = "timeout";
    /** The tools instance that read the request had no room for it. */
    public static final String OVERLOADED = "overloaded";

    private final String tool;
    private final String requestId;
    private final String type;
    private final String errorMessage;

    /**
     * @param errorMessage the error's {@code message} as the tools service sent it (or this side's own reason)
     * @param message      the exception message: the error message with the tool, request id and type around it
     */
    public ToolException(String tool, String requestId, String type, String errorMessage, String message) {
        super(message);
        this.tool = tool;
        this.requestId = requestId;
        this.type = type;
        this.errorMessage = errorMessage;
    }

    /** The tool that was called. */
    public String tool() {
        return tool;
    }

    /** The call's {@code request_id} (32 lowercase hex characters). */
    public String requestId() {
        return requestId;
    }

    /**
     * The error type: {@code unknown_tool}, {@code bad_arguments}, {@code tool_failed}, {@code timeout} or
     * {@code overloaded}; a later tools service may send others, which are passed through as they are.
     */
    public String type() {
        return type;
    }

    /** The error's {@code message} exactly as the tools service sent it (or the client's own reason for a timeout). */
    public String errorMessage() {
        return errorMessage;
    }
}
