package io.stargazer.bus.internal;

import static org.assertj.core.api.Assertions.assertThat;

import java.time.Duration;
import org.junit.jupiter.api.Test;

/** The one rate limit of the bus's repeated WARNs (handler failures, kept acknowledgements): what it logs and counts. */
class LogLimitTest {
    @Test
    void theFirstIsLoggedThenTheOthersOfTheIntervalAreCountedAndTheNextLineSaysHowMany() {
        LogLimit limit = new LogLimit(Duration.ofHours(1));
        assertThat(limit.take()).as("the first, at once").isZero();
        assertThat(limit.take()).isEqualTo(-1);
        assertThat(limit.take()).isEqualTo(-1);
        assertThat(limit.take(true)).as("a forced one reports the two held back").isEqualTo(2);
        assertThat(limit.take()).as("the interval restarted with the forced one").isEqualTo(-1);
        assertThat(LogLimit.more(1, "failures")).isEqualTo(" (1 more failures since the last warning)");
        assertThat(LogLimit.more(0, "failures")).isEmpty();
    }

    @Test
    void withNoIntervalEveryOneIsLogged() {
        LogLimit limit = new LogLimit(Duration.ZERO);
        for (int i = 0; i < 5; i++) assertThat(limit.take()).isZero();
    }
}
