// The plug-in point of the worker: what it does with each inbound envelope.
package io.stargazer.node;

import io.stargazer.bus.Envelope;
import io.stargazer.bus.EventBus;
import io.stargazer.bus.tools.ToolClient;

/**
 * Handles one inbound envelope in the worker and answers through {@link Context}.
 *
 * <p>Built-ins: {@code echo} ({@link EchoHandler}) and {@code tools} (slash commands, {@link ToolsCommandHandler}). A custom handler is a public
 * class with a public no-argument constructor, named by its class name:
 * {@code java -cp stargazer.jar:my-handler.jar io.stargazer.node.Main worker --handler com.example.MyHandler}
 * (or {@code SG_WORKER_HANDLER}). See {@link io.stargazer.node.example.ReverseHandler}.
 *
 * <p><b>Threading:</b> {@link #handle} runs on one of the inbound subscription's handler threads (up to
 * {@code SG_CONSUMER_CONCURRENCY} at once, one at a time per {@code channel_id}, in stream order), never on a Redis
 * I/O thread, so it may block: call a model, a database or a tool. Returning acknowledges the entry; throwing makes
 * the bus deliver it again after a backoff and dead-letter it after {@code SG_MAX_DELIVERIES} attempts, so a handler
 * that may run twice for one entry should be idempotent. One instance serves every thread: keep it thread-safe.
 */
@FunctionalInterface
public interface WorkerHandler {

    void handle(Envelope inbound, Context context) throws Exception;

    /** What a handler can do while handling one envelope. Used only on the thread that called {@link #handle}. */
    interface Context {
        /**
         * The answer: publishes a {@code type "message"} answer with {@code content} to the inbound envelope's
         * platform, with its {@code channel_id}, {@code trace_id} and routing members ({@code gateway_id}) copied, and
         * acknowledges the inbound entry in the same step (Delivery.reply), waiting until Redis has stored it. Sent
         * once, even when the entry is handled again after a crash. Call it once; use {@link #send} for other messages.
         */
        void reply(String content);

        /**
         * Publishes {@code outbound} to the inbound envelope's platform; {@code platform}, {@code channel_id},
         * {@code trace_id} and the routing members are copied from the inbound envelope where {@code outbound} has
         * none. Waits until Redis has stored it. Each message carries a dedupe key made of the entry and its place among
         * this handling's messages, so an entry handled again sends nothing it already sent (for a handler that sends
         * the same messages in the same order).
         */
        void send(Envelope outbound);

        /** The bus, for anything else (other streams, diagnostics). */
        EventBus bus();

        /**
         * This worker's client of the tools service (made on first use, shared by every handler thread, closed with
         * the worker): {@code context.tools().callBlocking("calc", Map.of("expression", "1+2"), Duration.ofSeconds(5))}.
         */
        ToolClient tools();
    }
}
