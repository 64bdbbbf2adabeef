package io.stargazer.bus.internal;

import static org.assertj.core.api.Assertions.assertThat;

import io.stargazer.bus.BusConnectionException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

/**
 * A publish waiting behind a retry (RetryLanes) is let go when the retry settles, unless its deadline has passed:
 * then it fails as not sent and is never handed to the publisher, even when the timer has not failed it yet (its tick
 * is up to 100 ms away, later on a loaded machine). Found by the review of the lanes: the release looked only at
 * whether the future was done, and a publish past its deadline was written.
 */
class RetryLanesTest {
    @Test
    void aWaitingPublishPastItsDeadlineIsFailedNotSentWhenTheRetrySettles() {
        RetryLanes lanes = new RetryLanes(100);
        RetryLanes.Retry retry = lanes.retry("s", new CompletableFuture<>());
        assertThat(lanes.hold(retry, new RuntimeException("its first try failed"), () -> { })).isTrue();
        AtomicInteger sent = new AtomicInteger();
        CompletableFuture<String> late = lanes.offer("s", RetryLanes.NOW, System.nanoTime() - TimeUnit.MILLISECONDS.toNanos(200), () -> 0,
                () -> {
                    sent.incrementAndGet();
                    return CompletableFuture.completedFuture("1-1");
                });
        CompletableFuture<String> inTime = lanes.offer("s", RetryLanes.NOW, System.nanoTime() + TimeUnit.SECONDS.toNanos(60), () -> 0,
                () -> {
                    sent.incrementAndGet();
                    return CompletableFuture.completedFuture("1-2");
                });
        assertThat(late).isNotNull().isNotDone();

        lanes.settled(retry); // stored: what waits behind it goes on

        assertThat(late).isCompletedExceptionally();
        assertThat(late.handle((id, e) -> e instanceof CompletionException c ? c.getCause() : e).join())
                .isInstanceOf(BusConnectionException.class).hasMessageContaining("nothing was written");
        assertThat(inTime).isCompletedWithValue("1-2");
        assertThat(sent).as("publishes handed to the publisher").hasValue(1);
    }

    /**
     * A retry held while the bus closes is either swept by close() or refused: held after close() went over the lanes,
     * nothing would ever try or fail it, and its caller would wait for ever (found by the review of the lanes).
     */
    @Test
    void aRetryHeldAsTheLanesCloseIsRefusedNotLeftWaiting() {
        RetryLanes lanes = new RetryLanes(100);
        RetryLanes.Retry retry = lanes.retry("s", new CompletableFuture<>());
        lanes.beforeLane = lanes::close; // close() runs after hold() saw the lanes open, before it makes the lane

        boolean held = lanes.hold(retry, new RuntimeException("its first try failed"), () -> { });

        assertThat(held).as("held after the close: never answered").isFalse();
        assertThat(lanes.size()).as("lanes left").isZero();
        CompletableFuture<String> after = lanes.offer("s", RetryLanes.NOW, System.nanoTime() + TimeUnit.SECONDS.toNanos(60), () -> 0,
                () -> CompletableFuture.completedFuture("1-1"));
        assertThat(after).as("a publish made now waits behind nothing").isNull();
    }
}
