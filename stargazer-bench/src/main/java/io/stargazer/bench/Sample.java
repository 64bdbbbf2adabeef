// One contender's figures over the rounds of an alternated comparison: the median, with the min and max beside it.
package io.stargazer.bench;

import java.util.Arrays;
import java.util.Locale;

/** {@code values} in the order measured (round 1 first); a PASS or MISS is decided on {@link #median()}. */
record Sample(double[] values) {
    static Sample of(double... values) {
        if (values.length == 0) throw new IllegalArgumentException("a sample needs at least one value");
        return new Sample(values.clone());
    }

    /** The middle value; with an even count the lower of the two middle ones (a value that was measured). */
    double median() {
        double[] s = values.clone();
        Arrays.sort(s);
        return s[(s.length - 1) / 2];
    }

    double min() {
        return Arrays.stream(values).min().orElseThrow();
    }

    double max() {
        return Arrays.stream(values).max().orElseThrow();
    }

    int rounds() {
        return values.length;
    }

    /** "median (min–max)" in the unit's format. */
    String describe(String unit) {
        if (values.length == 1) return Report.num(values[0], unit);
        return String.format(Locale.ROOT, "%s (%s–%s)", Report.num(median(), unit), Report.num(min(), unit), Report.num(max(), unit));
    }
}
