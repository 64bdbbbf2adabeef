package io.stargazer.bus.internal;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.stargazer.bus.ConsumerConfig;
import io.stargazer.bus.Envelope;
import io.stargazer.bus.EventBus;
import io.stargazer.bus.NodeRole;
import io.stargazer.bus.Topology;
import io.stargazer.bus.testing.Closer;
import io.stargazer.bus.testing.TestRedis;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * An attempt that fails outside its handler (here a tracing observer throws as the delivery starts) does not lose
 * the entry: it is let go, stays pending in Redis and is handled after the claim time. Before, it stayed held by
 * its consumer, whose ownership refresh kept anyone from taking it over, and it was never handled.
 */
@Timeout(value = 2, unit = TimeUnit.MINUTES)
class AttemptFailureIT {
    private final Closer closer = new Closer();

    @AfterEach
    void closeAll() throws Exception {
        closer.close();
    }

    @Test
    void anEntryWhoseAttemptFailsOutsideTheHandlerIsHandledAfterTheClaimTime() {
        EventBus bus = closer.add(TestRedis.bus(NodeRole.STANDALONE));
        Topology t = bus.topology();
        AtomicInteger starts = new AtomicInteger();
        ((RedisEventBus) bus).setTracing(tracer(() -> {
            if (starts.incrementAndGet() == 1) throw new IllegalStateException("a tracing observer fails");
        }, () -> { }));
        List<String> handled = new CopyOnWriteArrayList<>();
        closer.add(bus.subscribe(ConsumerConfig.builder(t.inboundStream(), t.workerGroup()).consumerName("c")
                .claimIdle(Duration.ofSeconds(1)).closeTimeout(Duration.ofSeconds(1)).build(),
                d -> handled.add(d.envelope().content())));
        bus.publishInbound(Envelope.of("platform", "webchat", "channel_id", "c", "content", "a"));
        bus.publishInbound(Envelope.of("platform", "webchat", "channel_id", "c", "content", "b"));

        await("both entries handled").atMost(Duration.ofSeconds(30)).until(() -> handled.size() >= 2);
        assertThat(handled).as("a, whose first attempt failed before its handler ran, handled once after its claim")
                .containsExactlyInAnyOrder("a", "b");
    }

    /**
     * An observer that throws as a handling ends (a tracing span's end runs the application's observation handlers):
     * the handler's outcome is known, so the entry is settled by it. Before, the exception vanished in the stage that
     * settles, and the entry, its permit and its channel's ORDERED lane stayed held forever: b never ran.
     */
    @Test
    void anObserverThatThrowsWhenAHandlingEndsDoesNotHoldTheEntryOrItsChannel() {
        EventBus bus = closer.add(TestRedis.bus(NodeRole.STANDALONE));
        Topology t = bus.topology();
        AtomicInteger ends = new AtomicInteger();
        ((RedisEventBus) bus).setTracing(tracer(() -> { }, () -> {
            if (ends.incrementAndGet() == 1) throw new IllegalStateException("a tracing observer fails as the handling ends");
        }));
        List<String> handled = new CopyOnWriteArrayList<>();
        var sub = closer.add(bus.subscribe(ConsumerConfig.builder(t.inboundStream(), t.workerGroup()).consumerName("c")
                .claimIdle(Duration.ofSeconds(1)).closeTimeout(Duration.ofSeconds(1)).build(),
                d -> handled.add(d.envelope().content())));
        bus.publishInbound(Envelope.of("platform", "webchat", "channel_id", "c", "content", "a"));
        bus.publishInbound(Envelope.of("platform", "webchat", "channel_id", "c", "content", "b"));

        await("both acknowledged").atMost(Duration.ofSeconds(30)).until(() -> sub.stats().acknowledged() >= 2);
        assertThat(handled).as("each handled once, a settled by its handler's success").containsExactly("a", "b");
        assertThat(sub.stats().inFlight()).isZero();
    }

    /** A tracer that runs {@code onStart} as a delivery's handling starts and {@code onEnd} as it ends. */
    private static BusTracing tracer(Runnable onStart, Runnable onEnd) {
        return new BusTracing() {
            @Override
            public Send send(String stream, String destination, String traceId) {
                return new Send() {
                    @Override public String traceparent() { return null; }
                    @Override public String tracestate() { return null; }
                    @Override public void end(String id, Throwable error) { }
                };
            }

            @Override
            public Process process(String stream, String group, String entryId, long deliveryCount, String traceparent,
                    String tracestate, String traceId) {
                onStart.run();
                return new Process() {
                    @Override public void closeScope() { }
                    @Override public void end(Throwable error) { onEnd.run(); }
                };
            }

            @Override public Object current() { return null; }
            @Override public Scope restore(Object context) { return () -> { }; }
        };
    }
}
