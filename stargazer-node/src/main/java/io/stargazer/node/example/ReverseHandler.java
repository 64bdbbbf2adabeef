// An example of a custom worker handler, documented in docs/node.md: answers with the message reversed.
package io.stargazer.node.example;

import io.stargazer.bus.Envelope;
import io.stargazer.node.WorkerHandler;

/**
 * Answers each message with its text reversed, and with a typing indicator first to show {@code send}.
 * Run it with {@code stargazer standalone --handler io.stargazer.node.example.ReverseHandler}.
 * Stateless, so thread-safe; it does not block.
 */
public final class ReverseHandler implements WorkerHandler {
    @Override
    public void handle(Envelope inbound, Context context) {
        String text = inbound.content() == null ? "" : inbound.content();
        context.send(Envelope.of("type", "typing"));
        context.reply(new StringBuilder(text).reverse().toString());
    }
}
