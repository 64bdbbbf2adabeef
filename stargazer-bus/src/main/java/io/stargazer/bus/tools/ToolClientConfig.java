package io.stargazer.bus.tools;

import io.stargazer.bus.BusConfig;
import io.stargazer.bus.ConfigException;
import io.stargazer.bus.internal.Settings;
import java.time.Duration;
import java.util.Objects;

/**
 * How a worker's {@link ToolClient} waits for replies. Immutable, made by {@link #builder()} (every setting has a
 * default); each builder method checks its value when it is set and refuses a bad one with a
 * {@link ConfigException} naming the setting and the value.
 *
 * <table>
 *   <caption>Settings</caption>
 *   <tr><th>builder method</th><th>default</th><th>accepted</th><th>meaning</th></tr>
 *   <tr><td>{@code defaultTimeout}</td><td>{@link #DEFAULT_CALL_TIMEOUT} (30 s)</td><td>&gt; 0, at most {@link ToolClient#MAX_TIMEOUT} (1 day)</td>
 *       <td>timeout of the calls that give none</td></tr>
 *   <tr><td>{@code replyStreamMaxlen}</td><td>{@value #DEFAULT_REPLY_STREAM_MAXLEN}</td><td>&gt; 0</td>
 *       <td>most entries the reply stream keeps: replies already read are trimmed away at each maintenance tick; if
 *       the reader falls this far behind, the oldest unread replies are dropped (their calls time out)</td></tr>
 *   <tr><td>{@code replyTtl}</td><td>{@link #DEFAULT_REPLY_TTL} (60 s)</td><td>at least {@link #MIN_REPLY_TTL} (1 s); above {@link #MAX_DURATION} lowered to it</td>
 *       <td>expiry of the reply stream past the latest deadline a call may have, refreshed while the client lives
 *       (every third of it, at most every second), so a worker that dies without closing leaves nothing behind for
 *       longer; keep it above the tools service's {@code lateReplyLimit} (30 s) plus the clocks' difference</td></tr>
 *   <tr><td>{@code blockTimeout}</td><td>{@link #DEFAULT_BLOCK_TIMEOUT} (1 s)</td>
 *       <td>&gt; 0, at most {@link #MAX_BLOCK_TIMEOUT} (5 s)</td>
 *       <td>BLOCK of each read; bounds how late the expiry refresh and trimming can run</td></tr>
 *   <tr><td>{@code readBatchSize}</td><td>{@value #DEFAULT_READ_BATCH_SIZE}</td><td>&gt; 0</td>
 *       <td>COUNT of each read</td></tr>
 * </table>
 *
 * <p>A replyTtl longer than {@link #MAX_DURATION} (100 years), such as {@code Duration.ofSeconds(Long.MAX_VALUE)} for
 * "forever", is accepted and taken as {@link #MAX_DURATION}, as the bus's durations are; the getter returns it. The
 * timeouts keep their bounds: one above its maximum is refused, since a call or read that long is a mistake.
 */
public final class ToolClientConfig {
    public static final Duration DEFAULT_CALL_TIMEOUT = Duration.ofSeconds(30);
    public static final long DEFAULT_REPLY_STREAM_MAXLEN = 10_000;
    public static final Duration DEFAULT_REPLY_TTL = Duration.ofSeconds(60);
    public static final Duration MIN_REPLY_TTL = Duration.ofSeconds(1);
    /**
     * The longest replyTtl: 100 years ({@link BusConfig#MAX_DURATION}). A longer one is accepted and taken as this: the
     * client counts it in milliseconds, which "forever" overflows.
     */
    public static final Duration MAX_DURATION = BusConfig.MAX_DURATION;
    public static final Duration DEFAULT_BLOCK_TIMEOUT = Duration.ofSeconds(1);
    /** Lettuce's command timeout is 10 s: a blocking read must return well before it. */
    public static final Duration MAX_BLOCK_TIMEOUT = Duration.ofSeconds(5);
    public static final int DEFAULT_READ_BATCH_SIZE = 256;

    private static final ToolClientConfig DEFAULTS = builder().build();

    private final Duration defaultTimeout;
    private final long replyStreamMaxlen;
    private final Duration replyTtl;
    private final Duration blockTimeout;
    private final int readBatchSize;

    /** Every value was checked by the builder's setter when it was set. */
    private ToolClientConfig(Builder b) {
        this.defaultTimeout = b.defaultTimeout;
        this.replyStreamMaxlen = b.replyStreamMaxlen;
        this.replyTtl = b.replyTtl;
        this.blockTimeout = b.blockTimeout;
        this.readBatchSize = b.readBatchSize;
    }

    public static ToolClientConfig defaults() {
        return DEFAULTS;
    }

    public static Builder builder() {
        return new Builder();
    }

    /** A builder holding every setting of this config, to change some of them. */
    public Builder toBuilder() {
        Builder b = new Builder();
        b.defaultTimeout = defaultTimeout;
        b.replyStreamMaxlen = replyStreamMaxlen;
        b.replyTtl = replyTtl;
        b.blockTimeout = blockTimeout;
        b.readBatchSize = readBatchSize;
        return b;
    }

    public Duration defaultTimeout() { return defaultTimeout; }
    public long replyStreamMaxlen() { return replyStreamMaxlen; }
    public Duration replyTtl() { return replyTtl; }
    public Duration blockTimeout() { return blockTimeout; }
    public int readBatchSize() { return readBatchSize; }

    @Override
    public boolean equals(Object o) {
        return o instanceof ToolClientConfig c && defaultTimeout.equals(c.defaultTimeout) && replyStreamMaxlen == c.replyStreamMaxlen
                && replyTtl.equals(c.replyTtl) && blockTimeout.equals(c.blockTimeout) && readBatchSize == c.readBatchSize;
    }

    @Override
    public int hashCode() {
        return Objects.hash(defaultTimeout, replyStreamMaxlen, replyTtl, blockTimeout, readBatchSize);
    }

    @Override
    public String toString() {
        return "ToolClientConfig{defaultTimeout=" + defaultTimeout + ", replyStreamMaxlen=" + replyStreamMaxlen + ", replyTtl="
                + replyTtl + ", blockTimeout=" + blockTimeout + ", readBatchSize=" + readBatchSize + "}";
    }

    /** Collects settings, starting from the defaults; each setter refuses a bad value at once, naming it. */
    public static final class Builder {
        private Duration defaultTimeout = DEFAULT_CALL_TIMEOUT;
        private long replyStreamMaxlen = DEFAULT_REPLY_STREAM_MAXLEN;
        private Duration replyTtl = DEFAULT_REPLY_TTL;
        private Duration blockTimeout = DEFAULT_BLOCK_TIMEOUT;
        private int readBatchSize = DEFAULT_READ_BATCH_SIZE;

        private Builder() {
        }

        public Builder defaultTimeout(Duration v) {
            if (Settings.positive("defaultTimeout", v).compareTo(ToolClient.MAX_TIMEOUT) > 0) {
                throw new ConfigException("defaultTimeout", "'" + v + "' is longer than " + ToolClient.MAX_TIMEOUT);
            }
            this.defaultTimeout = v;
            return this;
        }

        public Builder replyStreamMaxlen(long v) {
            if (v <= 0) throw new ConfigException("replyStreamMaxlen", "'" + v + "' must be greater than zero");
            this.replyStreamMaxlen = v;
            return this;
        }

        public Builder replyTtl(Duration v) {
            Settings.positive("replyTtl", v);
            if (v.compareTo(MIN_REPLY_TTL) < 0) throw new ConfigException("replyTtl", "'" + v + "' must be at least 1 s");
            this.replyTtl = Settings.positiveSaturated("replyTtl", v, MAX_DURATION);
            return this;
        }

        public Builder blockTimeout(Duration v) {
            Settings.positive("blockTimeout", v);
            if (v.compareTo(MAX_BLOCK_TIMEOUT) > 0) {
                throw new ConfigException("blockTimeout", "'" + v + "' must be at most " + MAX_BLOCK_TIMEOUT);
            }
            this.blockTimeout = v;
            return this;
        }

        public Builder readBatchSize(int v) { this.readBatchSize = Settings.positive("readBatchSize", v); return this; }

        public ToolClientConfig build() {
            return new ToolClientConfig(this);
        }
    }
}
