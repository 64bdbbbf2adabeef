package io.stargazer.bus.tools;

import io.stargazer.bus.EventBus;
import io.stargazer.bus.ProvisioningException;
import io.stargazer.bus.Subscription;
import io.stargazer.bus.Topology;
import java.util.Optional;

/**
 * The tools side of tool calls: runs the tools of a {@link ToolRegistry} for the requests on the tools stream and
 * answers each on its {@code reply_to} stream, as {@code shared/wire-format.md} specifies ("Tools request / reply").
 * Every instance reads with the one tools consumer group ({@link Topology#toolsGroup()}), so instances share the
 * load; each is a consumer of its own name in it.
 *
 * <p>Every request that can be answered, and whose caller may still be waiting, is answered, never dropped and never
 * crashing the service:
 * <ul>
 *   <li>{@code deadline_ms} already passed when the request is read or when a tool thread picks it up: {@code timeout},
 *       without running the tool;</li>
 *   <li>no such tool, or {@code tool} missing or not text: {@code unknown_tool};</li>
 *   <li>{@code args} not a map, the tool's {@link ArgumentCheck} refused them, or the tool threw
 *       {@link IllegalArgumentException}: {@code bad_arguments};</li>
 *   <li>the tool threw any other exception, or returned a value the wire cannot carry or one larger than the envelope
 *       size limit: {@code tool_failed};</li>
 *   <li>no room in this instance ({@link ToolServiceConfig}): {@code overloaded}.</li>
 * </ul>
 * An {@link Error} thrown while a tool runs ({@link OutOfMemoryError}, {@link StackOverflowError}, ...) is not an
 * answer: nothing is sent, the request stays pending (delivered again, or taken over by another instance), and the
 * Error is rethrown on the tool thread. Nor is a tool interrupted by {@link #close()}: the request is given back,
 * pending and uncounted, for another instance. A request whose {@code deadline_ms} is more than
 * {@link ToolServiceConfig#lateReplyLimit()} behind when its answer is ready is acknowledged without an answer
 * ({@link Stats#unanswered()}): its caller stopped waiting, and its reply stream may be gone (docs/tools.md).
 * A missing or nil {@code args} counts as an empty map. A request without a text {@code request_id} or a usable
 * {@code reply_to} cannot be answered: it is refused as malformed, counted, and after the consumer's allowed
 * deliveries moved to the tools stream's dead-letter stream with the reason (a request that does not decode at all
 * goes there at once).
 *
 * <p><b>At least once.</b> A request is acknowledged only once its reply is stored (or, past the late-reply limit,
 * once it is known not to be answered). If an instance dies while
 * running a tool (or before storing the reply), the request stays pending in the group and another instance takes
 * it over after the claim time ({@link ToolServiceConfig#claimIdle()}) and runs it again: <em>a tool may run twice
 * for one call</em> (the worker sees one answer; a second is dropped as late). While a tool runs, its instance keeps
 * the request's idle time fresh, so a slow tool is not mistaken for a dead instance. A tool with side effects can
 * notice a repeat through the caller's {@code request_id}, the same on every delivery ({@link #currentRequest()}):
 *
 * <pre>{@code
 * .register("send_email", args -> {
 *     ToolRequest req = ToolService.currentRequest().orElseThrow();
 *     // SET NX succeeds for the first run only; the key outlives any redelivery
 *     boolean first = redis.set("sg:tools:done:" + req.requestId(), "1", SetArgs.Builder.nx().ex(86400)) != null;
 *     if (!first) return Map.of("status", "already sent");
 *     mailer.send(args);
 *     return Map.of("status", "sent");
 * })
 * }</pre>
 * ({@link ToolRequest#deliveryCount()} above 1 also says "this may have run before", but not whether it did.)
 *
 * <p><b>Threading:</b> tools run on this instance's tool threads ({@link ToolServiceConfig#maxConcurrent()} of them;
 * they may block); requests are read and answered on the subscription's threads.
 */
public interface ToolService extends AutoCloseable {

    static ToolService start(EventBus bus, ToolRegistry registry) {
        return start(bus, registry, ToolServiceConfig.defaults());
    }

    /**
     * Creates the tools group if needed and starts reading; throws {@link ProvisioningException} when it cannot. Works
     * on any {@link EventBus}: it reads through {@link EventBus#subscribeAsync} and answers through
     * {@link EventBus#publishAsync}.
     */
    static ToolService start(EventBus bus, ToolRegistry registry, ToolServiceConfig config) {
        return io.stargazer.bus.internal.BusFactory.toolService(bus, registry, config);
    }

    /**
     * The request the calling thread is running a tool for: present on a tool thread while a {@link ToolFunction}
     * or {@link ArgumentCheck} runs, empty anywhere else.
     */
    static Optional<ToolRequest> currentRequest() {
        return io.stargazer.bus.internal.BusFactory.currentToolRequest();
    }

    /** The subscription reading the tools stream (state, consumer name, delivery counters). */
    Subscription subscription();

    ToolServiceConfig config();

    Stats stats();

    /**
     * Stops reading, waits up to the close timeout for running tools and their replies, then interrupts the tools
     * still running, and leaves their requests and the rest pending in the group (uncounted) for other instances. A
     * tool deaf to the interrupt keeps its request's lease while it runs, so no other instance runs it beside it; its
     * reply, when it returns, is stored and sent. Idempotent.
     */
    @Override
    void close();

    /**
     * @param received  requests read (including repeats after a takeover)
     * @param succeeded answered with a result
     * @param errors    answered {@code unknown_tool}, {@code bad_arguments} or {@code tool_failed}
     * @param expired   answered {@code timeout} because the deadline had passed
     * @param overloaded answered {@code overloaded}
     * @param malformed refused: no request id or reply stream to answer on
     * @param running   tools running now
     * @param queued    accepted requests waiting for a tool thread now
     * @param unanswered acknowledged without an answer: their deadline had passed by more than
     *                  {@link ToolServiceConfig#lateReplyLimit()} when the answer was ready
     */
    record Stats(long received, long succeeded, long errors, long expired, long overloaded, long malformed, long running,
                 long queued, long unanswered) {
    }
}
