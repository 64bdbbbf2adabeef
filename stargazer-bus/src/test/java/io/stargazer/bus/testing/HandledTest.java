package io.stargazer.bus.testing;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.stargazer.bus.MessageHandler;
import java.util.concurrent.CompletableFuture;
import org.junit.jupiter.api.Test;

// The handler-assertion recorder: an assertion failed on a handler thread reaches the test; a deliberate exception
// (a nack) does not.
class HandledTest {
    @Test
    void anAssertionFailedInAHandlerIsReportedOnTheTestThread() throws Exception {
        Handled handled = new Handled();
        MessageHandler asserting = handled.by(d -> assertThat(1).as("the handler's check").isEqualTo(2));
        Thread handlerThread = new Thread(() -> {
            try {
                asserting.handle(null);
            } catch (Throwable ignored) {
                // the subscription would nack here
            }
        });
        handlerThread.start();
        handlerThread.join(10_000);
        assertThatThrownBy(handled::assertNone).isInstanceOf(AssertionError.class).hasMessageContaining("the handler's check");
        assertThatThrownBy(() -> handled.afterEach(null)).isInstanceOf(AssertionError.class);
        handled.assertNone(); // reported once
    }

    @Test
    void aDeliberateExceptionIsNotAFailure() throws Exception {
        Handled handled = new Handled();
        assertThatThrownBy(() -> handled.by(d -> {
            throw new IllegalStateException("nack me");
        }).handle(null)).isInstanceOf(IllegalStateException.class);
        handled.byAsync(d -> CompletableFuture.failedFuture(new IllegalStateException("nack me"))).handle(null);
        handled.assertNone();
        handled.byAsync(d -> CompletableFuture.failedFuture(new AssertionError("async check"))).handle(null);
        assertThatThrownBy(handled::assertNone).hasMessageContaining("async check");
    }
}
