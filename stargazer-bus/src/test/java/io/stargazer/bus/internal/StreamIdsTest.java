package io.stargazer.bus.internal;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.Combinators;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;
import org.junit.jupiter.api.Test;

class StreamIdsTest {
    @Test
    void comparesAsNumbersNotText() {
        assertThat(StreamIds.compare("9-0", "10-0")).isNegative();
        assertThat(StreamIds.compare("10-2", "10-10")).isNegative();
        assertThat(StreamIds.compare("10-2", "10-2")).isZero();
        assertThat(StreamIds.compare("1700000000000", "1700000000000-0")).isZero();
        assertThat(StreamIds.compare("18446744073709551615-0", "9223372036854775808-0")).isPositive();
        assertThat(StreamIds.max("5-1", "5-0")).isEqualTo("5-1");
        assertThat(StreamIds.max(null, "5-0")).isEqualTo("5-0");
        assertThat(StreamIds.millis("1700000000123-7")).isEqualTo(1_700_000_000_123L);
    }

    @Test
    void refusesWhatIsNotAnId() {
        assertThatThrownBy(() -> StreamIds.compare("5-x", "5-0")).isInstanceOf(NumberFormatException.class).hasMessageContaining("5-x");
        assertThatThrownBy(() -> StreamIds.compare("$", "5-0")).isInstanceOf(NumberFormatException.class);
    }

    /** The digit-by-digit comparison agrees with comparing the parsed (ms, seq) pairs as unsigned longs. */
    @Property(tries = 2000)
    void agreesWithParsing(@ForAll("ids") String a, @ForAll("ids") String b) {
        assertThat(Integer.signum(StreamIds.compare(a, b))).isEqualTo(Integer.signum(parsed(a, b)));
        assertThat(Integer.signum(StreamIds.compare(b, a))).isEqualTo(-Integer.signum(parsed(a, b)));
    }

    private static int parsed(String a, String b) {
        long[] x = parts(a);
        long[] y = parts(b);
        int c = Long.compareUnsigned(x[0], y[0]);
        return c != 0 ? c : Long.compareUnsigned(x[1], y[1]);
    }

    private static long[] parts(String id) {
        int d = id.indexOf('-');
        return d < 0 ? new long[] {Long.parseUnsignedLong(id), 0}
                : new long[] {Long.parseUnsignedLong(id.substring(0, d)), Long.parseUnsignedLong(id.substring(d + 1))};
    }

    @Provide
    Arbitrary<String> ids() {
        // Small values so that equal parts are common; any unsigned long; sometimes leading zeros or no seq.
        Arbitrary<String> number = Arbitraries.oneOf(Arbitraries.longs().between(0, 20).map(n -> Long.toString(n)),
                Arbitraries.longs().map(n -> Long.toUnsignedString(n)),
                Arbitraries.longs().between(0, 999).map(n -> "00" + n));
        return Arbitraries.oneOf(
                Combinators.combine(number, number).as((ms, seq) -> ms + "-" + seq),
                number);
    }
}
