package io.stargazer.node.web;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.Test;

class StreamIdOrderTest {

    @Test
    void idsCompareAsPairsOfNumbersNotAsText() {
        assertThat(StreamIdOrder.compare("9-0", "10-0")).isNegative();
        assertThat(StreamIdOrder.compare("10-2", "10-10")).isNegative();
        assertThat(StreamIdOrder.compare("10-10", "10-2")).isPositive();
        assertThat(StreamIdOrder.compare("10-0", "10")).isZero();
        assertThat(StreamIdOrder.compare("18446744073709551615-1", "1-1")).isPositive();
    }
}
