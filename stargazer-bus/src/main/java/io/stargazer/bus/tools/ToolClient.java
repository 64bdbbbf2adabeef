package io.stargazer.bus.tools;

import io.stargazer.bus.EventBus;
import io.stargazer.bus.StargazerException;
import io.stargazer.bus.Topology;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.CompletableFuture;

/**
 * The worker side of tool calls: asks the tools service to run a tool and waits for its answer, over Redis Streams
 * as {@code shared/wire-format.md} specifies ("Tools request / reply").
 *
 * <p>One per worker process: every call is published to the tools stream with {@code reply_to} set to this worker's
 * reply stream ({@link Topology#toolsReplyStream} of the bus's node id), and one reader thread on a connection of its
 * own reads that stream and completes the waiting call whose {@code request_id} the reply carries, however many calls
 * are in flight. A reply that matches no waiting call (it came after its call timed out) is dropped and counted in
 * {@link Stats#lateReplies()}. Creating a second client for the same reply stream in one process is refused.
 *
 * <p>The reply stream does not leak: replies already read are trimmed away, the stream is capped at
 * {@link ToolClientConfig#replyStreamMaxlen()}, and its expiry is refreshed while the client lives, to
 * {@link ToolClientConfig#replyTtl()} past the latest deadline a call may have, so it disappears soon after a worker
 * dies without closing, yet never before an answer a tools service may still send (an answer to a stream that is gone
 * would make it again, without an expiry; docs/tools.md).
 *
 * <p><b>Threading:</b> every method may be called from any thread. A returned future completes on the client's
 * reader thread (a reply) or its timer thread (a timeout): dependent stages must not block — use the
 * {@code *Async} stage methods for heavy work.
 *
 * <pre>{@code
 * try (ToolClient tools = ToolClient.create(bus)) {
 *     Object now = tools.callBlocking("clock", Map.of("zone", "Europe/Paris"), Duration.ofSeconds(5));
 *     tools.call("calc", Map.of("expression", "(1.5 + 2) * 4"), Duration.ofSeconds(5))
 *          .thenAccept(result -> System.out.println(result));   // 14
 * }
 * }</pre>
 */
public interface ToolClient extends AutoCloseable {
    /**
     * The longest timeout a call takes (one day): the reply stream is kept that long past a call's deadline, and a
     * deadline must fit in a Unix time in milliseconds.
     */
    Duration MAX_TIMEOUT = Duration.ofDays(1);

    /** A client with the default settings, reading {@code topology.toolsReplyStream(bus.config().nodeId())}. */
    static ToolClient create(EventBus bus) {
        return create(bus, ToolClientConfig.defaults());
    }

    /**
     * A client reading {@code topology.toolsReplyStream(bus.config().nodeId())}; requests are published through
     * {@code bus}. The reply stream is read on a connection of the bus's own (a blocking read of a stream no group
     * reads, which the {@link EventBus} interface does not offer), so {@code bus} must be one {@link EventBus#connect}
     * made; anything else is refused with {@link IllegalArgumentException}.
     */
    static ToolClient create(EventBus bus, ToolClientConfig config) {
        return io.stargazer.bus.internal.BusFactory.toolClient(bus, config);
    }

    /**
     * Calls {@code tool} with {@code args}. The future completes with the result as decoded from the wire (String,
     * Long, BigInteger, Double, Boolean, byte[], List, Map or null), or exceptionally with {@link ToolException}
     * (the tools service's error, its {@code type} and {@code message}), {@link ToolTimeoutException} (no answer
     * within {@code timeout}), or another {@link StargazerException} when the request was not published (nothing was
     * written: publishing it again is safe). A publish that got no answer (written, outcome unknown: a paused or cut-off
     * Redis) does not fail the call: the request may be stored and answered, so the call waits for its reply until
     * {@code timeout}, then fails with {@link ToolTimeoutException} saying the publish had no answer; a
     * {@code timeout} that is not positive or is over {@link #MAX_TIMEOUT} fails it with {@link IllegalArgumentException}.
     * The request's {@code deadline_ms} is now plus {@code timeout}: the tools service skips it once that has passed.
     */
    CompletableFuture<Object> call(String tool, Map<String, ?> args, Duration timeout);

    /** As {@link #call(String, Map, Duration)}, with the request's {@code trace_id} (a new one when null). */
    CompletableFuture<Object> call(String tool, Map<String, ?> args, Duration timeout, String traceId);

    /** As {@link #call(String, Map, Duration)} with {@link ToolClientConfig#defaultTimeout()}. */
    default CompletableFuture<Object> call(String tool, Map<String, ?> args) {
        return call(tool, args, config().defaultTimeout());
    }

    /**
     * Calls and waits: returns the result, or throws {@link ToolException} / {@link ToolTimeoutException} (or
     * another {@link StargazerException} when the request was not published, as for {@link #call}). An interrupt abandons the call
     * and throws {@link StargazerException} with the thread's interrupt flag set.
     */
    Object callBlocking(String tool, Map<String, ?> args, Duration timeout);

    /** This worker's reply stream. */
    String replyStream();

    ToolClientConfig config();

    /** Counters since creation. */
    Stats stats();

    /**
     * Fails the calls still in flight at once ({@code StargazerException} "the tool client closed before tool ...
     * answered") and stops the reader. The reply stream is left to expire, not deleted: an answer may still come until
     * {@link ToolClientConfig#replyTtl()} past the last call's deadline, and an answer to a deleted stream would make it
     * again without an expiry. Waits for Redis (the reader to stop, the stream's last expiry to be set) at most the
     * bus's {@link io.stargazer.bus.BusConfig#deadPeerTimeout()} in all, also while Redis is paused or unreachable.
     * Idempotent. The bus's {@code close()} closes its tool clients still open, after its subscriptions.
     */
    @Override
    void close();

    /**
     * @param calls       calls made
     * @param completed   calls that returned a result
     * @param failed      calls that ended with an error other than a timeout (tool errors, publish failures, close)
     * @param timedOut    calls that timed out, waiting here or as answered by the tools service
     * @param lateReplies replies that matched no waiting call (they came after their call timed out) or could not
     *                    be decoded; dropped
     * @param inFlight    calls waiting for their reply now
     */
    record Stats(long calls, long completed, long failed, long timedOut, long lateReplies, long inFlight) {
    }
}
