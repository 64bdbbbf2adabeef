package io.stargazer.bus;

import java.util.concurrent.CompletionStage;

/**
 * Handles deliveries and finishes later. Called like {@link MessageHandler} (on a handler thread, may block,
 * per-channel order), but the delivery counts as in flight until the returned stage completes: normally means
 * ack, exceptionally means nack. The next entry of the same channel waits for that completion.
 */
@FunctionalInterface
public interface AsyncMessageHandler {
    CompletionStage<?> handle(Delivery delivery);
}
