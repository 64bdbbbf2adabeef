// One measured figure of the run.
package io.stargazer.bench;

/**
 * One figure: {@code figure} names what was measured (the table row), {@code impl} who did it (the column).
 * {@code limitName}/{@code limitValue} are the server's own figure it is compared with, when one applies (0 if not).
 * {@code sample}: the rounds of an alternated comparison ({@code value} is then their median), or null for a figure
 * measured once.
 */
record Result(String section, String figure, String impl, double value, String unit, String limitName, double limitValue,
              String note, Sample sample) {
    static final String STARGAZER = "stargazer";
    static final String SPRING = "spring-data-redis";
    static final String REDISSON = "redisson";
    static final String PYTHON = "python-seed";
    static final String SERVER = "redis-benchmark";

    Result(String section, String figure, String impl, double value, String unit, String limitName, double limitValue,
           String note) {
        this(section, figure, impl, value, unit, limitName, limitValue, note, null);
    }

    Double ratio() {
        return limitValue > 0 ? value / limitValue : null;
    }

    /** The cell: "median (min–max)" for an alternated figure, else the value. */
    String cell() {
        if (sample == null || sample.rounds() < 2) return Report.num(value, unit);
        return Report.num(value, unit) + " (" + Report.num(sample.min(), unit) + "–" + Report.num(sample.max(), unit) + ")";
    }
}
