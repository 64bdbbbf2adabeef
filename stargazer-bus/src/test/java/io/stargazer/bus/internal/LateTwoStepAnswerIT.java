// Promise (close): a handler given back at close() that answers later, the two-step way, acknowledges its entry.
package io.stargazer.bus.internal;

import static io.stargazer.testing.RawRedis.b;
import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.lettuce.core.Range;
import io.micrometer.observation.ObservationRegistry;
import io.stargazer.bus.ConsumerConfig;
import io.stargazer.bus.Envelope;
import io.stargazer.bus.EventBus;
import io.stargazer.bus.NodeRole;
import io.stargazer.bus.Subscription;
import io.stargazer.bus.Topology;
import io.stargazer.bus.micrometer.BusObservations;
import io.stargazer.bus.testing.Closer;
import io.stargazer.bus.testing.RawRedis;
import io.stargazer.bus.testing.TestRedis;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * A handler close() gave back while it ran and that answers afterwards, the bus still open, has its entry acknowledged
 * (so it is not run again on the consumer that takes it over) also when the answer goes the two-step way (tracing on,
 * a stream at its SAFE cap, across cluster slots). Before, answerLate stored the answer and dropped the step's
 * "not acknowledged yet": the entry stayed pending and its handler ran a second time on its taker.
 */
@Timeout(value = 2, unit = TimeUnit.MINUTES)
class LateTwoStepAnswerIT {
    private final Closer closer = new Closer();

    @AfterEach
    void closeAll() throws Exception {
        closer.close();
    }

    @Test
    void aLateTwoStepAnswerOfAHandlerGivenBackAtCloseAcknowledgesItsEntry() throws Exception {
        EventBus bus = closer.add(TestRedis.bus(NodeRole.STANDALONE));
        ObservationRegistry registry = ObservationRegistry.create();
        registry.observationConfig().observationHandler(ctx -> true);
        BusObservations.install(bus, registry); // answers now go the two-step way (publish with the key, then XACK)
        Topology t = bus.topology();
        String in = t.inboundStream();
        String out = t.outboundStream("webchat");
        CompletableFuture<io.stargazer.bus.Delivery> running = new CompletableFuture<>();
        Subscription sub = bus.subscribeAsync(ConsumerConfig.builder(in, t.workerGroup()).consumerName("c").maxDeliveries(1)
                .manualAck(true).closeTimeout(Duration.ofMillis(300)).build(), d -> {
                    running.complete(d);
                    return new CompletableFuture<Void>(); // settles the delivery itself, later
                });
        String id = bus.publishInbound(Envelope.of("platform", "webchat", "channel_id", "c", "content", "a"));
        io.stargazer.bus.Delivery d = running.get(20, TimeUnit.SECONDS);
        sub.close();
        try (RawRedis raw = new RawRedis(TestRedis.url())) {
            assertThat(raw.sync().xpending(b(in), b(t.workerGroup()), Range.create(id, id), io.lettuce.core.Limit.from(1)))
                    .as("given back when close() returns").hasSize(1);
            assertThat(d.reply(out, Envelope.of("platform", "webchat", "channel_id", "c", "content", "answer")))
                    .succeedsWithin(Duration.ofSeconds(10));
            assertThat(raw.xlen(out)).as("the answer is stored").isEqualTo(1);
            await("acknowledged once it was answered").atMost(Duration.ofSeconds(10))
                    .until(() -> raw.sync().xpending(b(in), b(t.workerGroup())).getCount() == 0);
        }
    }
}
