package io.stargazer.bus;

import java.time.Duration;

/**
 * How a {@link ToolService} instance takes requests. Immutable; the builder checks each value as it is set and
 * names the bad one.
 *
 * <p>Room: an instance holds at most {@code maxConcurrent} running plus {@code maxQueued} waiting requests. It reads
 * from the tools stream only while it has room, plus {@code readAhead} requests beyond it; a request read when there
 * is no room is answered {@code overloaded} at once. With {@code readAhead} 0 an instance never answers
 * {@code overloaded}: excess requests wait in the stream for whichever instance has room first (the best spread of
 * load over instances; callers see {@code timeout} instead under sustained overload). Requests held in this
 * instance's queue are not available to other instances, so with slow tools and several instances keep
 * {@code maxQueued} small.
 *
 * @param maxConcurrent tools running at once in this instance (its tool threads)
 * @param maxQueued     accepted requests waiting for a tool thread
 * @param readAhead     requests read beyond the room, to be answered {@code overloaded}
 * @param consumerName  this instance's consumer name in the tools group; null: the bus's node id (or {@code SG_NODE_ID})
 * @param claimIdle     how long a request may sit with a dead instance before another takes it over; null: the
 *                      consumer default ({@code SG_CLAIM_IDLE_MS}, else 30 s)
 * @param closeTimeout  how long {@link ToolService#close()} waits for running tools
 */
public record ToolServiceConfig(
        int maxConcurrent,
        int maxQueued,
        int readAhead,
        String consumerName,
        Duration claimIdle,
        Duration closeTimeout) {

    public ToolServiceConfig {
        Settings.positive("maxConcurrent", maxConcurrent);
        if (maxQueued < 0) throw new ConfigException("maxQueued", "'" + maxQueued + "' must not be negative");
        if (readAhead < 0) throw new ConfigException("readAhead", "'" + readAhead + "' must not be negative");
        if (consumerName != null) Topology.checkName("consumerName", consumerName);
        if (claimIdle != null) Settings.positive("claimIdle", claimIdle);
        Settings.positive("closeTimeout", closeTimeout);
    }

    public static ToolServiceConfig defaults() {
        return builder().build();
    }

    public static Builder builder() {
        return new Builder();
    }

    public Builder toBuilder() {
        Builder b = new Builder().maxConcurrent(maxConcurrent).maxQueued(maxQueued).readAhead(readAhead).closeTimeout(closeTimeout);
        b.consumerName = consumerName;
        b.claimIdle = claimIdle;
        return b;
    }

    /** Collects settings; each setter refuses a bad value at once, naming it. */
    public static final class Builder {
        private int maxConcurrent = 16;
        private int maxQueued = 64;
        private int readAhead = 16;
        private String consumerName;
        private Duration claimIdle;
        private Duration closeTimeout = Duration.ofSeconds(10);

        private Builder() {
        }

        public Builder maxConcurrent(int v) { this.maxConcurrent = Settings.positive("maxConcurrent", v); return this; }

        public Builder maxQueued(int v) {
            if (v < 0) throw new ConfigException("maxQueued", "'" + v + "' must not be negative");
            this.maxQueued = v;
            return this;
        }

        public Builder readAhead(int v) {
            if (v < 0) throw new ConfigException("readAhead", "'" + v + "' must not be negative");
            this.readAhead = v;
            return this;
        }

        public Builder consumerName(String v) { this.consumerName = Topology.checkName("consumerName", v); return this; }
        public Builder claimIdle(Duration v) { this.claimIdle = Settings.positive("claimIdle", v); return this; }
        public Builder closeTimeout(Duration v) { this.closeTimeout = Settings.positive("closeTimeout", v); return this; }

        public ToolServiceConfig build() {
            return new ToolServiceConfig(maxConcurrent, maxQueued, readAhead, consumerName, claimIdle, closeTimeout);
        }
    }
}
