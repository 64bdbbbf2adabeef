package io.stargazer.bus;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.stargazer.bus.testing.TestRedis;
import io.stargazer.embedded.RedisServerProcess;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * A subscription closed during a long outage ends its reader before close() returns. The reader backs off between
 * reconnects, doubling up to 5 s; before, that wait ignored the stop, so a reader asleep in it outlived close()'s wait
 * for it (BLOCK plus 1 s), and the bus's close, which now waits for a reader still running (it may owe a give-back),
 * would have waited out the rest of the backoff.
 */
@Timeout(value = 1, unit = TimeUnit.MINUTES)
class CloseDuringOutageIT {
    @Test
    void aSubscriptionClosedWhileItsReaderBacksOffFromADeadServerEndsItsReader() {
        try (RedisServerProcess server = RedisServerProcess.builder().start()) {
            Topology t = TestRedis.topology();
            try (EventBus bus = EventBus.connect(RedisUrl.parse(server.url()), BusConfig.builder().topology(t).role(NodeRole.WORKER).build())) {
                String stream = t.inboundStream();
                bus.ensureGroup(stream, t.workerGroup());
                Subscription sub = bus.subscribe(ConsumerConfig.builder(stream, t.workerGroup()).consumerName("w")
                        .blockTimeout(Duration.ofMillis(500)).build(), d -> { });
                await().atMost(Duration.ofSeconds(10)).until(() -> sub.state() == Subscription.State.RUNNING);
                server.kill();
                // Down long enough for the backoff to have grown past close()'s wait for the reader (1.5 s here):
                // 0.1 + 0.2 + 0.4 + 0.8 + 1.6 s of failed reconnects, then 3.2 s asleep.
                await().pollDelay(Duration.ofSeconds(4)).atMost(Duration.ofSeconds(10))
                        .until(() -> sub.state() == Subscription.State.RECONNECTING);
                sub.close();
                assertThat(Thread.getAllStackTraces().keySet()).as("the reader's thread, once close() returned")
                        .noneMatch(th -> th.isAlive() && th.getName().equals("stargazer-reader-" + stream));
            }
        }
    }
}
