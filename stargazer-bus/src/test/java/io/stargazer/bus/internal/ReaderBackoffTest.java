package io.stargazer.bus.internal;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import java.time.Duration;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.slf4j.LoggerFactory;

/**
 * A reader whose turns fail (Redis away) tries again after a backoff that doubles from 100 ms, and never waits more
 * than a second between tries: that is how soon after Redis is back its subscription reads again. Before, the backoff
 * grew to 5 s, and subscriptions came back 2.9–3.1 s after a 3 s outage while publishing was back in 0.6 s (helper-99,
 * Redis 6.2). The turns here fail before touching a connection, so no server is needed: what is tested is the loop's
 * cadence, not Redis.
 */
@Timeout(value = 1, unit = TimeUnit.MINUTES)
class ReaderBackoffTest {
    @Test
    void failedTurnsAreTriedAgainAtLeastOnceASecond() throws Exception {
        List<Long> turns = new CopyOnWriteArrayList<>();
        ReaderLoop loop = new ReaderLoop(null, "reader-backoff-test", true, "Test reader",
                LoggerFactory.getLogger(ReaderBackoffTest.class), conn -> {
                    turns.add(System.nanoTime());
                    throw new IllegalStateException("Redis is away (test)");
                });
        loop.start();
        try {
            // 100, 200, 400, 800 ms, then the cap: the ninth turn comes about 5.5 s after the first (before: 11.3 s).
            await().atMost(Duration.ofSeconds(30)).until(() -> turns.size() >= 9);
        } finally {
            loop.stop(2000);
        }
        long longestGapMillis = 0;
        for (int i = 1; i < 9; i++) {
            longestGapMillis = Math.max(longestGapMillis, TimeUnit.NANOSECONDS.toMillis(turns.get(i) - turns.get(i - 1)));
        }
        assertThat(longestGapMillis).as("the longest wait between two failed turns, ms (cap %d)", ReaderLoop.MAX_BACKOFF_MS)
                .isLessThan(2000);
    }
}
