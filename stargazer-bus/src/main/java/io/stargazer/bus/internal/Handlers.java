package io.stargazer.bus.internal;

import io.stargazer.bus.AsyncMessageHandler;
import io.stargazer.bus.MessageHandler;
import java.util.concurrent.CompletableFuture;

/** Adapts a blocking handler to the asynchronous shape the consumer runs. */
final class Handlers {
    private Handlers() {
    }

    static AsyncMessageHandler async(MessageHandler handler) {
        return delivery -> {
            try {
                handler.handle(delivery);
                return CompletableFuture.completedFuture(null);
            } catch (Exception e) {
                // An Error (OutOfMemoryError, StackOverflowError) is not the entry's failure: it propagates.
                return CompletableFuture.failedFuture(e);
            }
        };
    }
}
