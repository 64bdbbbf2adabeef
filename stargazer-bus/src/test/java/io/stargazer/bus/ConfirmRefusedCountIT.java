// Promise (SG_MAX_DELIVERIES): a handler's failure is counted once, also when Redis refuses the check before its retry.
package io.stargazer.bus;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.stargazer.bus.testing.RawRedis;
import io.stargazer.embedded.RedisServerProcess;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * A handler's failure is counted as a delivery by the ownership check before its retry (Ownership.confirm with its
 * count flag). When that check is refused by Redis (here "ERR Function not found": the library went, and the bus turns
 * to scripts), the retry is tried again uncounted for the refusal, but the handler's own failure must still be counted:
 * the refused check ran nothing. Before, the refusal reset the flag, the failure went uncounted, and the handler saw
 * delivery 1 twice and ran once more than maxDeliveries allows.
 */
@Timeout(value = 2, unit = TimeUnit.MINUTES)
class ConfirmRefusedCountIT {
    private final Topology t = io.stargazer.bus.testing.TestRedis.topology();
    private final BusConfig config = BusConfig.builder().topology(t).role(NodeRole.STANDALONE).nodeId("confirm").build();
    private RedisServerProcess server;
    private RedisUrl url;

    @BeforeEach
    void start() {
        server = RedisServerProcess.builder().appendOnly(false).start();
        url = RedisUrl.parse(server.url());
        Provisioning.provision(url, config);
    }

    @AfterEach
    void stop() {
        server.stop();
    }

    @Test
    void aHandlerFailureIsCountedWhenTheCheckBeforeItsRetryIsRefused() throws Exception {
        try (EventBus bus = EventBus.connect(url, config); RawRedis raw = new RawRedis(url)) {
            assertThat(bus.serverCode()).isEqualTo(ServerCodeMode.FUNCTIONS);
            List<Long> counts = new CopyOnWriteArrayList<>();
            bus.subscribe(bus.consumer(t.inboundStream(), t.workerGroup()).consumerName("w").maxDeliveries(2)
                    .retryBackoff(Duration.ofMillis(300)).build(), d -> {
                counts.add(d.deliveryCount());
                // The library goes before the retry's ownership check: that FCALL is the first one refused.
                if (counts.size() == 1) raw.sync().functionFlush(io.lettuce.core.FlushMode.SYNC);
                throw new IllegalStateException("the handler fails");
            });
            bus.publish(t.inboundStream(), Envelope.of("channel_id", "c", "content", "question"));

            String dead = t.deadLetterStream(t.inboundStream());
            await("dead-lettered").atMost(Duration.ofSeconds(20)).until(() -> raw.sync().exists(RawRedis.b(dead)) == 1);
            assertThat(counts).as("delivery counts the handler saw, maxDeliveries 2").containsExactly(1L, 2L);
        }
    }
}
