package io.stargazer.bus.internal;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.stargazer.bus.Envelope;
import io.stargazer.bus.EventBus;
import io.stargazer.bus.NodeRole;
import io.stargazer.bus.Subscription;
import io.stargazer.bus.Topology;
import io.stargazer.bus.TrimPolicy;
import io.stargazer.bus.testing.TestRedis;
import io.stargazer.testing.CapturedStderr;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Warnings say what happened (found by testers from outside): a consumer whose group was deleted said "lost Redis;
 * reconnecting: NOGROUP"; and the backlog warning said "eviction risk" under SG_TRIM_POLICY=safe, where nothing unread
 * is trimmed.
 */
@Timeout(value = 2, unit = TimeUnit.MINUTES)
class HonestWarningsIT {

    @Test
    void aDeletedGroupIsLoggedAsALostGroupNotALostConnection() {
        try (CapturedStderr err = new CapturedStderr(); EventBus bus = TestRedis.bus(NodeRole.STANDALONE)) {
            bus.ensureStreams();
            Topology t = bus.topology();
            Subscription sub = bus.subscribe(bus.consumer(t.inboundStream(), t.workerGroup()).build(), d -> { });
            await().atMost(Duration.ofSeconds(10)).until(() -> sub.state() == Subscription.State.RUNNING);
            bus.deleteGroup(t.inboundStream(), t.workerGroup());
            await().atMost(Duration.ofSeconds(15)).until(() -> err.text().contains("lost its consumer group (NOGROUP)"));
            assertThat(err.text()).doesNotContain("lost Redis; reconnecting: NOGROUP");
            sub.close();
        }
    }

    @Test
    void theBacklogWarningSaysWhatTheTrimPolicyDoes() {
        for (TrimPolicy policy : TrimPolicy.values()) {
            try (CapturedStderr err = new CapturedStderr();
                    EventBus bus = TestRedis.bus(TestRedis.config(NodeRole.STANDALONE).trimPolicy(policy).streamMaxlen(1000).build())) {
                String stream = bus.topology().inboundStream();
                bus.ensureGroup(stream, bus.topology().workerGroup());
                for (int i = 0; i < 900; i++) bus.publish(stream, Envelope.of("channel_id", "c", "content", "x" + i));
                assertThat(BusInternals.checkBacklog(bus, stream)).isTrue();
                String warning = err.text().lines().filter(l -> l.contains("Stream backlog high")).findFirst().orElseThrow();
                if (policy == TrimPolicy.SAFE) {
                    assertThat(warning).doesNotContain("eviction").contains("nothing unread is trimmed");
                } else {
                    assertThat(warning).contains("eviction risk");
                }

                // A stream without a group is trimmed to its cap under either policy: nothing unread is held, and
                // publishing to it is not held up (before, under SAFE the warning said it would be).
                String loose = bus.topology().outboundStream("nogroup");
                for (int i = 0; i < 900; i++) bus.publish(loose, Envelope.of("channel_id", "c", "content", "x" + i));
                assertThat(BusInternals.checkBacklog(bus, loose)).isTrue();
                String looseWarning = err.text().lines().filter(l -> l.contains("stream=" + loose)).findFirst().orElseThrow();
                assertThat(looseWarning).contains("no consumer group").contains("one that never had a group is trimmed to its cap")
                        .doesNotContain("nothing unread is trimmed");
            }
        }
    }
}
