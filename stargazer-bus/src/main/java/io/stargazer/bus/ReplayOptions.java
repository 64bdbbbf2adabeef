package io.stargazer.bus;

import java.time.Duration;

/**
 * How {@link DeadLetters#replay} runs. Immutable; {@link #builder()} checks each value as it is set and names the bad one.
 *
 * <table>
 *   <caption>Options</caption>
 *   <tr><th>builder method</th><th>default</th><th>meaning</th></tr>
 *   <tr><td>{@code ratePerSecond}</td><td>0 (as fast as Redis takes them)</td><td>at most this many entries put back per second</td></tr>
 *   <tr><td>{@code dryRun}</td><td>false</td><td>only count what would be replayed; write nothing</td></tr>
 *   <tr><td>{@code dedupeWindow}</td><td>{@link #DEFAULT_DEDUPE_WINDOW}</td><td>how long Redis remembers that a dead
 *       letter was put back (key {@code replay:<dead stream>:<id>} in the source stream's slot): a replay interrupted
 *       between putting an entry back and removing its dead letter, and run again within this time, does not put it
 *       back twice</td></tr>
 * </table>
 */
public final class ReplayOptions {
    public static final Duration DEFAULT_DEDUPE_WINDOW = Duration.ofHours(24);
    public static final ReplayOptions DEFAULTS = builder().build();

    private final int ratePerSecond;
    private final boolean dryRun;
    private final Duration dedupeWindow;

    private ReplayOptions(Builder b) {
        this.ratePerSecond = b.ratePerSecond;
        this.dryRun = b.dryRun;
        this.dedupeWindow = b.dedupeWindow;
    }

    public static Builder builder() {
        return new Builder();
    }

    /** Entries per second, 0 for no limit. */
    public int ratePerSecond() { return ratePerSecond; }

    public boolean dryRun() { return dryRun; }

    public Duration dedupeWindow() { return dedupeWindow; }

    @Override
    public String toString() {
        return "ReplayOptions{ratePerSecond=" + ratePerSecond + ", dryRun=" + dryRun + ", dedupeWindow=" + dedupeWindow + "}";
    }

    public static final class Builder {
        private int ratePerSecond;
        private boolean dryRun;
        private Duration dedupeWindow = DEFAULT_DEDUPE_WINDOW;

        private Builder() {
        }

        public Builder ratePerSecond(int n) {
            if (n < 0) throw new ConfigException("ratePerSecond", "'" + n + "' must be 0 (no limit) or more");
            this.ratePerSecond = n;
            return this;
        }

        public Builder dryRun(boolean dryRun) {
            this.dryRun = dryRun;
            return this;
        }

        public Builder dedupeWindow(Duration window) {
            if (window == null || window.toMillis() < 1) {
                throw new ConfigException("dedupeWindow", "'" + window + "' must be at least 1 ms");
            }
            this.dedupeWindow = window;
            return this;
        }

        public ReplayOptions build() {
            return new ReplayOptions(this);
        }
    }
}
