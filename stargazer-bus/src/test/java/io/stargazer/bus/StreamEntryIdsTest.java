package io.stargazer.bus;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.Test;

class StreamEntryIdsTest {

    @Test
    void idsCompareAsPairsOfNumbersNotAsText() {
        assertThat(StreamEntry.compareIds("9-0", "10-0")).isNegative();
        assertThat(StreamEntry.compareIds("10-2", "10-10")).isNegative();
        assertThat(StreamEntry.compareIds("10-10", "10-2")).isPositive();
        assertThat(StreamEntry.compareIds("10-0", "10")).isZero();
        assertThat(StreamEntry.compareIds("18446744073709551615-1", "1-1")).isPositive();
    }
}
