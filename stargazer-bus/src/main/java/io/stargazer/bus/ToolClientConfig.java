package io.stargazer.bus;

import java.time.Duration;

/**
 * How a worker's {@link ToolClient} waits for replies. Immutable; the builder checks each value as it is set and
 * names the bad one.
 *
 * @param defaultTimeout   timeout of the calls that give none
 * @param replyStreamMaxlen most entries the reply stream keeps: replies already read are trimmed away at each
 *                          maintenance tick; if the reader falls this far behind, the oldest unread replies are
 *                          dropped (their calls time out)
 * @param replyTtl          expiry of the reply stream, refreshed while the client lives (every third of it, at most
 *                          every second), so a worker that dies without closing leaves nothing behind for longer
 * @param blockTimeout      BLOCK of each read; bounds how late the expiry refresh and trimming can run
 * @param readBatchSize     COUNT of each read
 */
public record ToolClientConfig(
        Duration defaultTimeout,
        long replyStreamMaxlen,
        Duration replyTtl,
        Duration blockTimeout,
        int readBatchSize) {

    /** Lettuce's command timeout is 10 s: a blocking read must return well before it. */
    static final Duration MAX_BLOCK = Duration.ofSeconds(5);

    public ToolClientConfig {
        Settings.positive("defaultTimeout", defaultTimeout);
        if (replyStreamMaxlen <= 0) throw new ConfigException("replyStreamMaxlen", "'" + replyStreamMaxlen + "' must be greater than zero");
        Settings.positive("replyTtl", replyTtl);
        if (replyTtl.toMillis() < 1000) throw new ConfigException("replyTtl", "'" + replyTtl + "' must be at least 1 s");
        Settings.positive("blockTimeout", blockTimeout);
        if (blockTimeout.compareTo(MAX_BLOCK) > 0) {
            throw new ConfigException("blockTimeout", "'" + blockTimeout + "' must be at most " + MAX_BLOCK);
        }
        Settings.positive("readBatchSize", readBatchSize);
    }

    public static ToolClientConfig defaults() {
        return builder().build();
    }

    public static Builder builder() {
        return new Builder();
    }

    public Builder toBuilder() {
        return new Builder().defaultTimeout(defaultTimeout).replyStreamMaxlen(replyStreamMaxlen).replyTtl(replyTtl)
                .blockTimeout(blockTimeout).readBatchSize(readBatchSize);
    }

    /** Collects settings; each setter refuses a bad value at once, naming it. */
    public static final class Builder {
        private Duration defaultTimeout = Duration.ofSeconds(30);
        private long replyStreamMaxlen = 10_000;
        private Duration replyTtl = Duration.ofSeconds(60);
        private Duration blockTimeout = Duration.ofSeconds(1);
        private int readBatchSize = 256;

        private Builder() {
        }

        public Builder defaultTimeout(Duration v) { this.defaultTimeout = Settings.positive("defaultTimeout", v); return this; }

        public Builder replyStreamMaxlen(long v) {
            if (v <= 0) throw new ConfigException("replyStreamMaxlen", "'" + v + "' must be greater than zero");
            this.replyStreamMaxlen = v;
            return this;
        }

        public Builder replyTtl(Duration v) {
            Settings.positive("replyTtl", v);
            if (v.toMillis() < 1000) throw new ConfigException("replyTtl", "'" + v + "' must be at least 1 s");
            this.replyTtl = v;
            return this;
        }

        public Builder blockTimeout(Duration v) {
            Settings.positive("blockTimeout", v);
            if (v.compareTo(MAX_BLOCK) > 0) throw new ConfigException("blockTimeout", "'" + v + "' must be at most " + MAX_BLOCK);
            this.blockTimeout = v;
            return this;
        }

        public Builder readBatchSize(int v) { this.readBatchSize = Settings.positive("readBatchSize", v); return this; }

        public ToolClientConfig build() {
            return new ToolClientConfig(defaultTimeout, replyStreamMaxlen, replyTtl, blockTimeout, readBatchSize);
        }
    }
}
