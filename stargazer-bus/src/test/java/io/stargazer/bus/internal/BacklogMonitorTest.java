package io.stargazer.bus.internal;

import static org.assertj.core.api.Assertions.assertThat;

import io.stargazer.bus.GroupInfo;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneId;
import java.time.ZoneOffset;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import org.junit.jupiter.api.Test;

// The backlog monitor without Redis: one check per interval per stream, one warning per episode, and the state of a
// stream nobody publishes to any more is dropped unless the stream is at risk.
class BacklogMonitorTest {

    /** A clock tests move by hand. */
    private static final class ManualClock extends Clock {
        volatile long millis;

        @Override public ZoneId getZone() { return ZoneOffset.UTC; }
        @Override public Clock withZone(ZoneId zone) { return this; }
        @Override public Instant instant() { return Instant.ofEpochMilli(millis); }
        @Override public long millis() { return millis; }
    }

    private final ManualClock clock = new ManualClock();
    private final Map<String, Long> lengths = new ConcurrentHashMap<>();
    private final BacklogMonitor monitor = new BacklogMonitor(clock, 1000, 100, s -> lengths.getOrDefault(s, 0L),
            s -> List.<GroupInfo>of(), Runnable::run);

    @Test
    void aStreamIsCheckedAtMostOncePerIntervalAndWarnedOncePerEpisode() {
        lengths.put("s", 90L); // over 80 % of 100
        monitor.published("s");
        assertThat(monitor.warnings()).isEqualTo(1);
        clock.millis += 999;
        monitor.published("s"); // within the interval: no check
        assertThat(monitor.warnings()).isEqualTo(1);
        lengths.put("s", 10L);
        clock.millis += 1;
        monitor.published("s"); // checked: back to normal
        lengths.put("s", 95L);
        clock.millis += 1000;
        monitor.published("s"); // a second episode
        assertThat(monitor.warnings()).isEqualTo(2);
    }

    @Test
    void idleStreamsAreForgottenUnlessAtRisk() {
        for (int i = 0; i < 100; i++) monitor.published("quiet-" + i);
        lengths.put("full", 99L);
        monitor.published("full");
        assertThat(monitor.size()).isEqualTo(101);

        clock.millis += Duration.ofMinutes(4).toMillis();
        monitor.published("quiet-0");
        assertThat(monitor.forgetIdle(Duration.ofMinutes(5).toMillis())).isZero();

        clock.millis += Duration.ofMinutes(1).toMillis();
        assertThat(monitor.forgetIdle(Duration.ofMinutes(5).toMillis())).isEqualTo(99);
        assertThat(monitor.size()).isEqualTo(2); // quiet-0 was published to a minute ago; full is at risk

        lengths.put("full", 0L);
        assertThat(monitor.check("full")).isFalse();
        clock.millis += Duration.ofMinutes(5).toMillis();
        assertThat(monitor.forgetIdle(Duration.ofMinutes(5).toMillis())).isEqualTo(2);
        assertThat(monitor.size()).isZero();
    }
}
