// Promise (SAFE trimming): a trim check that fails while the stream may be at its cap is said at WARN, once until one
// succeeds, with what the bus knows of the stream. Before, every failed check was logged at DEBUG only: a stream at its
// cap whose checks failed went on growing (or, with Redis out of memory, its publishes failed) and the log said nothing
// (BusAcceptanceFunctionsIT's out-of-memory test failed once in CI so, and its output could not tell why).
package io.stargazer.bus.internal;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.lettuce.core.AclSetuserArgs;
import io.lettuce.core.protocol.CommandType;
import io.stargazer.bus.BusConfig;
import io.stargazer.bus.Envelope;
import io.stargazer.bus.EventBus;
import io.stargazer.bus.NodeRole;
import io.stargazer.bus.Topology;
import io.stargazer.bus.TrimPolicy;
import io.stargazer.bus.testing.RawRedis;
import io.stargazer.bus.testing.TestRedis;
import io.stargazer.testing.CapturedStderr;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

@Timeout(value = 2, unit = TimeUnit.MINUTES)
class TrimCheckFailureIT {
    private static final String WARNING = "Trim check failed while the stream may be at its cap";

    private static List<String> warnings(CapturedStderr err) {
        return err.text().lines().filter(l -> l.contains(WARNING)).toList();
    }

    /** Checks of the stream completed so far, failed ones included. */
    private static long checksDone(EventBus bus, String stream) {
        return ((RedisEventBus) bus).guard().state(stream).checksDone;
    }

    @Test
    void aTrimCheckFailingAtTheCapIsWarnedOnceWithTheStreamsState() {
        Topology t = TestRedis.topology();
        String stream = t.inboundStream();
        // A user that may publish but not run XINFO, which the trim check's script calls: every check fails (refused by ACL).
        String user = "no-xinfo-" + TestRedis.namespace();
        try (RawRedis raw = new RawRedis(TestRedis.url())) {
            raw.sync().aclSetuser(user, AclSetuserArgs.Builder.on().addPassword("pw").allKeys().allChannels().allCommands()
                    .removeCommand(CommandType.XINFO));
            raw.sync().xgroupCreate(io.lettuce.core.XReadArgs.StreamOffset.from(RawRedis.utf8(stream), "0"), RawRedis.utf8(t.workerGroup()),
                    io.lettuce.core.XGroupCreateArgs.Builder.mkstream());
            try (CapturedStderr err = new CapturedStderr();
                    EventBus bus = EventBus.connect(TestRedis.url().withCredentials(user, "pw"), BusConfig.builder().topology(t)
                            .role(NodeRole.GATEWAY).nodeId("g").streamMaxlen(1000).trimPolicy(TrimPolicy.SAFE).build())) {
                for (int i = 0; i < 1000; i++) bus.publishInbound(Envelope.of("channel_id", "c", "seq", i));
                // Logged as the failed check completes, on a Redis I/O thread: waited for.
                await().atMost(Duration.ofSeconds(30)).until(() -> !warnings(err).isEmpty());
                assertThat(warnings(err).get(0)).contains("stream=" + stream).contains("hasGroups=true").contains("lastCheckFailure=")
                        .doesNotContain("lastCheckFailure=none");
                // Every publish from here on starts a check, which fails as well: none of them is warned about again.
                long done = checksDone(bus, stream);
                for (int i = 0; i < 200; i++) bus.publishInbound(Envelope.of("channel_id", "c", "seq", 1000 + i));
                await().atMost(Duration.ofSeconds(30)).until(() -> checksDone(bus, stream) >= done + 5);
                assertThat(warnings(err)).as("one warning until a check succeeds").hasSize(1);
                assertThat(BusInternals.trimState(bus, stream)).doesNotContain("lastCheckFailure=none");
            } finally {
                raw.sync().aclDeluser(user);
            }
        }
    }
}
