// One measured figure of the run.
package io.stargazer.bench;

/**
 * One figure: {@code figure} names what was measured (the table row), {@code impl} who did it (the column).
 * {@code limitName}/{@code limitValue} are the server's own figure it is compared with, when one applies (0 if not).
 */
record Result(String section, String figure, String impl, double value, String unit, String limitName, double limitValue,
              String note) {
    static final String STARGAZER = "stargazer";
    static final String SPRING = "spring-data-redis";
    static final String REDISSON = "redisson";
    static final String PYTHON = "python-seed";
    static final String SERVER = "redis-benchmark";

    Double ratio() {
        return limitValue > 0 ? value / limitValue : null;
    }
}
