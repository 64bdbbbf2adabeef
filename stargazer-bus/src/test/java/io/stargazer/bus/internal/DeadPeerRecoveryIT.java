package io.stargazer.bus.internal;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.stargazer.bus.testing.OwnServer;
import io.stargazer.bus.testing.RedisFaults;
import io.stargazer.testing.CapturedStderr;
import java.time.Duration;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * "Redis connection answers again" is logged when a PING on the replaced connection is answered, not when the PING
 * outstanding at the replacement ends: found by testers from outside, who saw the line about 8 s after "answered nothing
 * within the dead-peer timeout; replacing it" while the server was still SIGSTOPped (the kernel accepts the new TCP
 * connection for the stopped process; the old PING, sent again on it, then timed out, and a PING that had ended at all
 * counted as answered).
 */
@Timeout(value = 2, unit = TimeUnit.MINUTES)
class DeadPeerRecoveryIT {
    @RegisterExtension
    static final OwnServer redis = new OwnServer();

    private static final String REPLACED = "answered nothing within the dead-peer timeout";
    private static final String ANSWERS = "Redis connection answers again";

    @Test
    void answersAgainIsLoggedOnlyOnceTheServerAnswers() throws Exception {
        Duration deadPeer = Duration.ofSeconds(1);
        ScheduledExecutorService timer = Executors.newSingleThreadScheduledExecutor();
        try (CapturedStderr log = new CapturedStderr(); Redis r = Redis.connect(redis.url(), "dead-peer-recovery", deadPeer)) {
            ConnectionHealth health = r.health(deadPeer);
            timer.scheduleWithFixedDelay(health::check, 0, health.intervalMillis(), TimeUnit.MILLISECONDS);
            try (RedisFaults.Fault paused = RedisFaults.pause(redis.process())) {
                await().atMost(Duration.ofSeconds(10)).until(() -> log.text().contains(REPLACED));
                // Longer than the command timeout (10 s) of the PING outstanding when the connection was replaced.
                await().during(Duration.ofSeconds(Redis.COMMAND_TIMEOUT.toSeconds() + 3)).atMost(Duration.ofSeconds(30))
                        .until(() -> !log.text().contains(ANSWERS));
            }
            await().atMost(Duration.ofSeconds(15)).until(() -> log.text().split(ANSWERS, -1).length == 2);
            assertThat(r.sharedSync().ping()).isEqualTo("PONG");
        } finally {
            timer.shutdownNow();
        }
    }
}
