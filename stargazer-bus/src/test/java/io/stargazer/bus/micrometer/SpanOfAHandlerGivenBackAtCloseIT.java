// Promise (tracing): a process span ends once, also for an asynchronous handler close() gave back unfinished.
package io.stargazer.bus.micrometer;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.micrometer.observation.Observation;
import io.micrometer.observation.ObservationHandler;
import io.micrometer.observation.ObservationRegistry;
import io.stargazer.bus.Envelope;
import io.stargazer.bus.EventBus;
import io.stargazer.bus.NodeRole;
import io.stargazer.bus.Subscription;
import io.stargazer.bus.testing.TestRedis;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * An asynchronous handler whose stage has not completed when close() gives its entry back (close timeout, then the
 * interrupt, which reaches no thread of it): its delivery has ended for the bus, so its process observation must end
 * too, with an error. Left open, the span is never exported and a meter handler's long task timer
 * (stargazer.bus.process.active) counts it forever.
 */
@Timeout(120)
class SpanOfAHandlerGivenBackAtCloseIT {
    @Test
    void theProcessObservationOfAHandlerGivenBackAtCloseIsStopped() {
        AtomicInteger started = new AtomicInteger();
        AtomicInteger stopped = new AtomicInteger();
        ObservationRegistry registry = ObservationRegistry.create();
        registry.observationConfig().observationHandler(new ObservationHandler<>() {
            @Override public boolean supportsContext(Observation.Context c) { return c instanceof BusProcessContext; }
            @Override public void onStart(Observation.Context c) { started.incrementAndGet(); }
            @Override public void onStop(Observation.Context c) { stopped.incrementAndGet(); }
        });
        try (EventBus bus = TestRedis.bus(NodeRole.STANDALONE)) {
            BusObservations.install(bus, registry);
            String in = bus.topology().inboundStream();
            Subscription s = bus.subscribeAsync(bus.consumer(in, "g").closeTimeout(Duration.ofMillis(200)).build(),
                    d -> new CompletableFuture<Void>()); // never completes
            bus.publish(in, Envelope.of("channel_id", "c", "content", "x"));
            await().atMost(Duration.ofSeconds(20)).until(() -> started.get() == 1);
            s.close();
            assertThat(stopped.get()).as("process observations stopped after close() gave the entry back").isEqualTo(started.get());
        }
    }
}
