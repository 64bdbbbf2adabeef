package io.stargazer.bus.internal;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.Test;

class StreamIdsTest {
    @Test
    void comparesAsNumbersNotText() {
        assertThat(StreamIds.compare("9-0", "10-0")).isNegative();
        assertThat(StreamIds.compare("10-2", "10-10")).isNegative();
        assertThat(StreamIds.compare("10-2", "10-2")).isZero();
        assertThat(StreamIds.compare("1700000000000", "1700000000000-0")).isZero();
        assertThat(StreamIds.max("5-1", "5-0")).isEqualTo("5-1");
        assertThat(StreamIds.max(null, "5-0")).isEqualTo("5-0");
    }
}
