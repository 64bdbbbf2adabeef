package io.stargazer.bus;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.stargazer.bus.testing.TestRedis;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import org.junit.jupiter.api.Test;

// Smoke test: what a gateway publishes inbound, a worker subscription receives, decoded, and acknowledges.
class PublishConsumeSmokeIT {
    @Test
    void inboundEnvelopeReachesWorkerAndIsAcknowledged() {
        try (EventBus bus = TestRedis.bus(NodeRole.STANDALONE)) {
            bus.ensureStreams();
            Topology t = bus.topology();
            List<Delivery> got = new CopyOnWriteArrayList<>();
            Subscription sub = bus.subscribe(bus.consumer(t.inboundStream(), t.workerGroup()).build(), got::add);
            for (int i = 0; i < 100; i++) {
                bus.publishInbound(Envelope.of("platform", "webchat", "channel_id", "c-" + (i % 7), "content", "hi " + i));
            }
            await().atMost(Duration.ofSeconds(10)).until(() -> got.size() == 100);
            await().atMost(Duration.ofSeconds(10)).until(() -> bus.pendingCount(t.inboundStream(), t.workerGroup()) == 0);
            assertThat(got).extracting(d -> d.envelope().content()).contains("hi 0", "hi 99");
            assertThat(got.get(0).deliveryCount()).isEqualTo(1);
            assertThat(got.get(0).envelope().traceId()).hasSize(32);
            assertThat(sub.state()).isEqualTo(Subscription.State.RUNNING);
            sub.close();
            assertThat(sub.state()).isEqualTo(Subscription.State.STOPPED);
        }
    }
}
