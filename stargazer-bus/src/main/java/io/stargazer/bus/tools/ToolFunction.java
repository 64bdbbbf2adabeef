package io.stargazer.bus.tools;

import io.stargazer.bus.Envelope;
import java.util.Map;

/**
 * The body of one tool: from its arguments to its result.
 *
 * <p><b>Threading:</b> called on one of the tools service's tool threads (at most
 * {@link ToolServiceConfig#maxConcurrent()} at once, across all tools), never on a Redis I/O thread; it may block
 * (call a model, an HTTP service, a database). It may be called concurrently with itself.
 *
 * <p>The arguments are the request's {@code args} map as decoded from the wire (String, Long, BigInteger, Double,
 * Boolean, byte[], List, Map, null); unmodifiable. The result may be any value an {@link Envelope} can carry,
 * including {@code byte[]} (images, audio) and nested lists and maps, up to the bus's envelope size limit.
 *
 * <p>Throwing {@link IllegalArgumentException} answers {@code bad_arguments} with its message; any other exception
 * answers {@code tool_failed} with its message.
 *
 * <p><b>At least once:</b> if the tools instance running a call dies before its reply is stored, another instance
 * runs the call again after the claim time. A tool with side effects should use the request id
 * ({@link ToolService#currentRequest()}, on the tool thread) to notice a repeat; see {@link ToolService}.
 */
@FunctionalInterface
public interface ToolFunction {
    Object apply(Map<String, Object> args) throws Exception;
}
