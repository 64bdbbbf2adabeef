// Promise (SG_MAX_DELIVERIES): a handler's failure is counted once, also when the check before its retry loses its reply with its connection.
package io.stargazer.bus;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.stargazer.bus.testing.RawRedis;
import io.stargazer.bus.testing.TcpProxy;
import io.stargazer.bus.testing.TestRedis;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The check before a retry (Ownership.confirm) counts the handler's failure as a delivery in Redis. When the shared
 * connection goes silent once that check is on it (here it reaches Redis and its reply is lost; a paused server that
 * runs what it had read when it resumes does the same), the dead-peer check replaces the connection, and Lettuce writes
 * what was unanswered again on the new one: the check ran twice, one failure counted as two deliveries, and with two
 * deliveries allowed the entry was dead-lettered after its first failure, never run a second time.
 */
@Timeout(value = 2, unit = TimeUnit.MINUTES)
class RetryCheckLostReplyIT {

    @Test
    void aFailureIsCountedOnceWhenTheCheckBeforeItsRetryLosesItsReply() {
        Topology t = TestRedis.topology();
        String stream = t.inboundStream();
        String dead = t.deadLetterStream(stream);
        try (TcpProxy proxy = TcpProxy.to(TestRedis.url());
                EventBus bus = EventBus.connect(proxy.url(), BusConfig.builder().topology(t).role(NodeRole.STANDALONE)
                        .nodeId("lost-check").deadPeerTimeout(Duration.ofSeconds(1)).build());
                RawRedis raw = new RawRedis(TestRedis.url())) {
            List<Long> counts = new CopyOnWriteArrayList<>();
            Subscription sub = bus.subscribe(bus.consumer(stream, t.workerGroup()).consumerName("w").maxDeliveries(2)
                    .retryBackoff(Duration.ofMillis(200)).maxRetryBackoff(Duration.ofMillis(200)).claimIdle(Duration.ofSeconds(20))
                    .blockTimeout(Duration.ofMillis(200)).build(), d -> {
                        counts.add(d.deliveryCount());
                        if (counts.size() == 1) throw new IllegalStateException("the handler fails once");
                    });
            // The connection that writes the retry's check (sg_confirm, as a script or a function) runs it and then
            // answers nothing more; the reader's connection goes on working.
            proxy.silenceAfterSending("sg_confirm");
            bus.publish(stream, Envelope.of("channel_id", "c", "content", "question"));

            await("a second run, or a dead letter").atMost(Duration.ofSeconds(30))
                    .until(() -> counts.size() >= 2 || raw.sync().exists(RawRedis.b(dead)) == 1);
            await("settled").atMost(Duration.ofSeconds(30)).until(() -> sub.stats().inFlight() == 0);
            assertThat(proxy.repliesDropped()).as("replies lost on the old connections").isPositive();
            assertThat(counts).as("delivery counts the handler saw, two deliveries allowed").containsExactly(1L, 2L);
            assertThat(raw.sync().exists(RawRedis.b(dead))).as("dead letters").isZero();
        }
    }
}
