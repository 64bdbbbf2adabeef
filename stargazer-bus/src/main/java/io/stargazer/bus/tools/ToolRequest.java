package io.stargazer.bus.tools;

/**
 * The request a tool is running for, as {@link ToolService#currentRequest()} shows it on the tool thread.
 *
 * @param requestId     the caller's {@code request_id}: the same on every delivery of one call, so a tool can use it
 *                      as an idempotency key
 * @param tool          the tool's name
 * @param traceId       the request's {@code trace_id}, for logs (may be null)
 * @param deliveryCount 1 on the first delivery; more when another tools instance took the request over (it may
 *                      already have run, fully or in part)
 * @param deadlineMs    the request's {@code deadline_ms} (Unix milliseconds), or 0 when it has none
 */
public record ToolRequest(String requestId, String tool, String traceId, long deliveryCount, long deadlineMs) {
}
