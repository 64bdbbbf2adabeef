// The default worker handler: answers each message with its own content.
package io.stargazer.node;

import io.stargazer.bus.Envelope;

/** {@code echo}: publishes the inbound {@code content} back to the same platform and channel, as a message. */
public final class EchoHandler implements WorkerHandler {
    @Override
    public void handle(Envelope inbound, Context context) {
        context.reply(inbound.content());
    }
}
