package io.stargazer.bus.testing;

import io.stargazer.bus.AsyncMessageHandler;
import io.stargazer.bus.MessageHandler;
import java.util.ArrayList;
import java.util.List;
import java.util.Queue;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ConcurrentLinkedQueue;
import org.junit.jupiter.api.extension.AfterEachCallback;
import org.junit.jupiter.api.extension.ExtensionContext;

/**
 * Makes an assertion that fails inside a message handler fail the test. A handler runs on a subscription's threads,
 * where a thrown {@link AssertionError} only nacks the delivery: the test would go on, and maybe pass. Wrap every
 * handler that asserts, and register this as an extension:
 *
 * <pre>{@code
 * @RegisterExtension final Handled handled = new Handled();
 * ...
 * bus.subscribe(config, handled.by(d -> assertThat(d.deliveryCount()).isEqualTo(1)));
 * }</pre>
 *
 * After each test, on the test thread, the first assertion a wrapped handler failed fails the test (the others are
 * attached as suppressed); {@link #assertNone()} checks earlier. Only {@link AssertionError}s are collected: a handler
 * may throw exceptions on purpose, to nack. The delivery is still nacked as before.
 */
public final class Handled implements AfterEachCallback {
    private final Queue<AssertionError> failures = new ConcurrentLinkedQueue<>();

    public MessageHandler by(MessageHandler handler) {
        return delivery -> {
            try {
                handler.handle(delivery);
            } catch (AssertionError e) {
                failures.add(e);
                throw e;
            }
        };
    }

    public AsyncMessageHandler byAsync(AsyncMessageHandler handler) {
        return delivery -> {
            try {
                return handler.handle(delivery).whenComplete((r, e) -> {
                    Throwable cause = e instanceof CompletionException && e.getCause() != null ? e.getCause() : e;
                    if (cause instanceof AssertionError a) failures.add(a);
                });
            } catch (AssertionError e) {
                failures.add(e);
                throw e;
            }
        };
    }

    /** Throws the first assertion a wrapped handler failed so far, if any. */
    public void assertNone() {
        List<AssertionError> all = new ArrayList<>(failures);
        if (all.isEmpty()) {
            return;
        }
        AssertionError first = new AssertionError("a message handler failed an assertion: " + all.get(0).getMessage(), all.get(0));
        for (AssertionError other : all.subList(1, all.size())) first.addSuppressed(other);
        throw first;
    }

    @Override
    public void afterEach(ExtensionContext context) {
        try {
            assertNone();
        } finally {
            failures.clear();
        }
    }
}
