package io.stargazer.bus;

import io.stargazer.bus.internal.Settings;
import java.time.Duration;
import java.util.Map;
import java.util.Objects;

/**
 * How one subscription consumes: which stream and group, under which consumer name, and its limits. Immutable, made
 * by {@link #builder(String, String)} or, preset for a node, {@link EventBus#consumer(String, String)}. Each builder
 * method checks its value when it is set and refuses a bad one with a {@link ConfigException} naming the setting
 * (its variable when it has one) and the value; {@link Builder#build()} checks what depends on two settings. The
 * environment is read only by {@link Builder#fromEnvironment(Map)}, when the caller asks.
 *
 * <table>
 *   <caption>Settings</caption>
 *   <tr><th>builder method</th><th>variable</th><th>default</th><th>accepted</th><th>meaning</th></tr>
 *   <tr><td>{@code stream}, {@code group}</td><td></td><td>(required)</td><td>no white space or control characters</td>
 *       <td>the stream to read and the group to read it with (created at {@code $} if missing)</td></tr>
 *   <tr><td>{@code consumerName}</td><td>{@code SG_NODE_ID}</td><td>{@link BusConfig#defaultNodeId()}</td>
 *       <td>no white space or control characters</td><td>this consumer's name in the group</td></tr>
 *   <tr><td>{@code claimIdle}</td><td>{@code SG_CLAIM_IDLE_MS}</td><td>{@link #DEFAULT_CLAIM_IDLE} (30 s)</td><td>&gt; 0; above {@link #MAX_DURATION} lowered to it</td>
 *       <td>how long an entry must sit unacknowledged with another consumer before this one takes it over</td></tr>
 *   <tr><td>{@code maxDeliveries}</td><td>{@code SG_MAX_DELIVERIES}</td><td>{@value #DEFAULT_MAX_DELIVERIES}</td>
 *       <td>&gt; 0</td><td>deliveries an entry gets before it is dead-lettered</td></tr>
 *   <tr><td>{@code batchSize}</td><td>{@code SG_CONSUMER_BATCH_SIZE}</td><td>{@value #DEFAULT_BATCH_SIZE}</td><td>&gt; 0</td>
 *       <td>COUNT of each read</td></tr>
 *   <tr><td>{@code maxInFlight}</td><td>{@code SG_CONSUMER_MAX_IN_FLIGHT}</td><td>{@value #DEFAULT_MAX_IN_FLIGHT}</td>
 *       <td>&gt; 0</td><td>most deliveries handed out and not yet settled; reading pauses while it is reached</td></tr>
 *   <tr><td>{@code concurrency}</td><td>{@code SG_CONSUMER_CONCURRENCY}</td><td>{@value #DEFAULT_CONCURRENCY}</td>
 *       <td>&gt; 0</td><td>handler threads: how many channels are handled at once. Started as needed; fast
 *       handlers run one after another on one thread, and a delivery that waits longer than a millisecond behind busy
 *       threads brings in another</td></tr>
 *   <tr><td>{@code blockTimeout}</td><td></td><td>{@link #DEFAULT_BLOCK_TIMEOUT} (2 s)</td>
 *       <td>&gt; 0, at most {@link #MAX_BLOCK_TIMEOUT} (5 s)</td><td>BLOCK of each read</td></tr>
 *   <tr><td>{@code retryBackoff}</td><td>{@code SG_RETRY_BACKOFF_MS}</td><td>{@link #DEFAULT_RETRY_BACKOFF} (1 s)</td>
 *       <td>&gt; 0, at most maxRetryBackoff; above {@link #MAX_DURATION} lowered to it</td><td>delay before the second delivery of a failed entry; doubles per delivery</td></tr>
 *   <tr><td>{@code maxRetryBackoff}</td><td>{@code SG_MAX_RETRY_BACKOFF_MS}</td>
 *       <td>{@link #DEFAULT_MAX_RETRY_BACKOFF} (60 s)</td><td>&gt; 0; above {@link #MAX_DURATION} lowered to it</td><td>the longest redelivery delay</td></tr>
 *   <tr><td>{@code manualAck}</td><td></td><td>{@value #DEFAULT_MANUAL_ACK}</td><td></td>
 *       <td>true: a handler that returns does not acknowledge; the application calls {@link Delivery#ack()}</td></tr>
 *   <tr><td>{@code closeTimeout}</td><td></td><td>{@link #DEFAULT_CLOSE_TIMEOUT} (10 s)</td><td>&gt; 0; above {@link #MAX_DURATION} lowered to it</td>
 *       <td>how long {@link Subscription#close()} waits for in-flight handlers; those still running are
 *       interrupted, and their entries given back (left pending, the delivery not counted)</td></tr>
 *   <tr><td>{@code consumerIdleLimit}</td><td></td><td>{@link #DEFAULT_CONSUMER_IDLE_LIMIT} (1 h)</td><td>&gt; 0; above {@link #MAX_DURATION} lowered to it</td>
 *       <td>consumers of the group idle longer than this with nothing pending are removed</td></tr>
 *   <tr><td>{@code deadLetterStream}</td><td></td><td>the stream + {@link Topology#DEFAULT_DEAD_LETTER_SUFFIX}
 *       (the node's: its topology's suffix)</td><td>a name other than the stream's</td>
 *       <td>where poison and malformed entries go</td></tr>
 *   <tr><td>{@code retryOrder}</td><td>{@code SG_RETRY_ORDER}</td><td>{@link #DEFAULT_RETRY_ORDER} ({@code ordered})</td>
 *       <td>ordered, unordered</td><td>whether a failed entry's channel waits for its retry</td></tr>
 * </table>
 *
 * <p>Durations read from variables are whole milliseconds. A duration longer than {@link #MAX_DURATION} (100 years), such
 * as {@code Duration.ofSeconds(Long.MAX_VALUE)} for "forever" (a claimIdle that never takes over, a closeTimeout that
 * waits for every handler), is accepted and taken as {@link #MAX_DURATION}; the getters return it. The README's
 * Settings table lists the same variables.
 */
public final class ConsumerConfig {

    public static final String ENV_CLAIM_IDLE_MS = "SG_CLAIM_IDLE_MS";
    public static final String ENV_MAX_DELIVERIES = "SG_MAX_DELIVERIES";
    public static final String ENV_BATCH_SIZE = "SG_CONSUMER_BATCH_SIZE";
    public static final String ENV_MAX_IN_FLIGHT = "SG_CONSUMER_MAX_IN_FLIGHT";
    public static final String ENV_CONCURRENCY = "SG_CONSUMER_CONCURRENCY";
    public static final String ENV_RETRY_BACKOFF_MS = "SG_RETRY_BACKOFF_MS";
    public static final String ENV_MAX_RETRY_BACKOFF_MS = "SG_MAX_RETRY_BACKOFF_MS";
    public static final String ENV_RETRY_ORDER = "SG_RETRY_ORDER";

    public static final Duration DEFAULT_CLAIM_IDLE = Duration.ofSeconds(30);
    public static final int DEFAULT_MAX_DELIVERIES = 5;
    public static final int DEFAULT_BATCH_SIZE = 128;
    public static final int DEFAULT_MAX_IN_FLIGHT = 1024;
    public static final int DEFAULT_CONCURRENCY = 16;
    public static final Duration DEFAULT_BLOCK_TIMEOUT = Duration.ofSeconds(2);
    /** Reads wait at most this long, well inside the 10 s command timeout, so a dead connection is noticed. */
    public static final Duration MAX_BLOCK_TIMEOUT = Duration.ofSeconds(5);
    public static final Duration DEFAULT_RETRY_BACKOFF = Duration.ofSeconds(1);
    public static final Duration DEFAULT_MAX_RETRY_BACKOFF = Duration.ofMinutes(1);
    public static final boolean DEFAULT_MANUAL_ACK = false;
    public static final Duration DEFAULT_CLOSE_TIMEOUT = Duration.ofSeconds(10);
    public static final Duration DEFAULT_CONSUMER_IDLE_LIMIT = Duration.ofHours(1);
    public static final RetryOrder DEFAULT_RETRY_ORDER = RetryOrder.ORDERED;
    /**
     * The longest value of a duration setting but {@code blockTimeout}: 100 years ({@link BusConfig#MAX_DURATION}). A
     * longer one, such as {@code Duration.ofSeconds(Long.MAX_VALUE)} for "forever", is accepted and taken as this.
     */
    public static final Duration MAX_DURATION = BusConfig.MAX_DURATION;

    private final String stream;
    private final String group;
    private final String consumerName;
    private final Duration claimIdle;
    private final int maxDeliveries;
    private final int batchSize;
    private final int maxInFlight;
    private final int concurrency;
    private final Duration blockTimeout;
    private final Duration retryBackoff;
    private final Duration maxRetryBackoff;
    private final boolean manualAck;
    private final Duration closeTimeout;
    private final Duration consumerIdleLimit;
    private final String deadLetterStream;
    private final RetryOrder retryOrder;

    /** Every value was checked by the builder's setter when it was set, the pairs by {@link Builder#build()}. */
    private ConsumerConfig(Builder b, String consumerName, String deadLetterStream) {
        this.stream = b.stream;
        this.group = b.group;
        this.consumerName = consumerName;
        this.claimIdle = b.claimIdle;
        this.maxDeliveries = b.maxDeliveries;
        this.batchSize = b.batchSize;
        this.maxInFlight = b.maxInFlight;
        this.concurrency = b.concurrency;
        this.blockTimeout = b.blockTimeout;
        this.retryBackoff = b.retryBackoff;
        this.maxRetryBackoff = b.maxRetryBackoff;
        this.manualAck = b.manualAck;
        this.closeTimeout = b.closeTimeout;
        this.consumerIdleLimit = b.consumerIdleLimit;
        this.deadLetterStream = deadLetterStream;
        this.retryOrder = b.retryOrder;
    }

    /** A builder for {@code stream}/{@code group} with the defaults of the table above. */
    public static Builder builder(String stream, String group) {
        return new Builder(stream, group);
    }

    /** A builder holding every setting of this config, to change some of them. */
    public Builder toBuilder() {
        Builder b = new Builder(stream, group);
        b.consumerName = consumerName;
        b.claimIdle = claimIdle;
        b.maxDeliveries = maxDeliveries;
        b.batchSize = batchSize;
        b.maxInFlight = maxInFlight;
        b.concurrency = concurrency;
        b.blockTimeout = blockTimeout;
        b.retryBackoff = retryBackoff;
        b.maxRetryBackoff = maxRetryBackoff;
        b.manualAck = manualAck;
        b.closeTimeout = closeTimeout;
        b.consumerIdleLimit = consumerIdleLimit;
        b.deadLetterStream = deadLetterStream;
        b.retryOrder = retryOrder;
        return b;
    }

    public String stream() { return stream; }
    public String group() { return group; }
    public String consumerName() { return consumerName; }
    public Duration claimIdle() { return claimIdle; }
    public int maxDeliveries() { return maxDeliveries; }
    public int batchSize() { return batchSize; }
    public int maxInFlight() { return maxInFlight; }
    public int concurrency() { return concurrency; }
    public Duration blockTimeout() { return blockTimeout; }
    public Duration retryBackoff() { return retryBackoff; }
    public Duration maxRetryBackoff() { return maxRetryBackoff; }
    public boolean manualAck() { return manualAck; }
    public Duration closeTimeout() { return closeTimeout; }
    public Duration consumerIdleLimit() { return consumerIdleLimit; }
    public String deadLetterStream() { return deadLetterStream; }
    public RetryOrder retryOrder() { return retryOrder; }

    @Override
    public boolean equals(Object o) {
        return o instanceof ConsumerConfig c && stream.equals(c.stream) && group.equals(c.group)
                && consumerName.equals(c.consumerName) && claimIdle.equals(c.claimIdle) && maxDeliveries == c.maxDeliveries
                && batchSize == c.batchSize && maxInFlight == c.maxInFlight && concurrency == c.concurrency
                && blockTimeout.equals(c.blockTimeout) && retryBackoff.equals(c.retryBackoff)
                && maxRetryBackoff.equals(c.maxRetryBackoff) && manualAck == c.manualAck && closeTimeout.equals(c.closeTimeout)
                && consumerIdleLimit.equals(c.consumerIdleLimit) && deadLetterStream.equals(c.deadLetterStream)
                && retryOrder == c.retryOrder;
    }

    @Override
    public int hashCode() {
        return Objects.hash(stream, group, consumerName, claimIdle, maxDeliveries, batchSize, maxInFlight, concurrency,
                blockTimeout, retryBackoff, maxRetryBackoff, manualAck, closeTimeout, consumerIdleLimit, deadLetterStream,
                retryOrder);
    }

    @Override
    public String toString() {
        return "ConsumerConfig{stream=" + stream + ", group=" + group + ", consumerName=" + consumerName + ", claimIdle="
                + claimIdle + ", maxDeliveries=" + maxDeliveries + ", batchSize=" + batchSize + ", maxInFlight=" + maxInFlight
                + ", concurrency=" + concurrency + ", blockTimeout=" + blockTimeout + ", retryBackoff=" + retryBackoff
                + ", maxRetryBackoff=" + maxRetryBackoff + ", manualAck=" + manualAck + ", closeTimeout=" + closeTimeout
                + ", consumerIdleLimit=" + consumerIdleLimit + ", deadLetterStream=" + deadLetterStream + ", retryOrder="
                + retryOrder + "}";
    }

    /** Collects settings, starting from the defaults; each setter refuses a bad value at once, naming it. */
    public static final class Builder {
        private final String stream;
        private final String group;
        private String consumerName;
        private Duration claimIdle = DEFAULT_CLAIM_IDLE;
        private int maxDeliveries = DEFAULT_MAX_DELIVERIES;
        private int batchSize = DEFAULT_BATCH_SIZE;
        private int maxInFlight = DEFAULT_MAX_IN_FLIGHT;
        private int concurrency = DEFAULT_CONCURRENCY;
        private Duration blockTimeout = DEFAULT_BLOCK_TIMEOUT;
        private Duration retryBackoff = DEFAULT_RETRY_BACKOFF;
        private Duration maxRetryBackoff = DEFAULT_MAX_RETRY_BACKOFF;
        private boolean manualAck = DEFAULT_MANUAL_ACK;
        private Duration closeTimeout = DEFAULT_CLOSE_TIMEOUT;
        private Duration consumerIdleLimit = DEFAULT_CONSUMER_IDLE_LIMIT;
        private String deadLetterStream;
        private RetryOrder retryOrder = DEFAULT_RETRY_ORDER;

        private Builder(String stream, String group) {
            this.stream = Topology.checkName("stream", stream);
            this.group = Topology.checkName("group", group);
        }

        /** Takes the {@code SG_*} consumer settings present in {@code env}; the others (and blank ones) keep their current value. */
        public Builder fromEnvironment(Map<String, String> env) {
            String v;
            if ((v = Settings.env(env, BusConfig.ENV_NODE_ID)) != null) consumerName(v);
            if ((v = Settings.env(env, ENV_CLAIM_IDLE_MS)) != null) claimIdle(Settings.parseMillis(ENV_CLAIM_IDLE_MS, v));
            if ((v = Settings.env(env, ENV_MAX_DELIVERIES)) != null) maxDeliveries(Settings.parseInt(ENV_MAX_DELIVERIES, v));
            if ((v = Settings.env(env, ENV_BATCH_SIZE)) != null) batchSize(Settings.parseInt(ENV_BATCH_SIZE, v));
            if ((v = Settings.env(env, ENV_MAX_IN_FLIGHT)) != null) maxInFlight(Settings.parseInt(ENV_MAX_IN_FLIGHT, v));
            if ((v = Settings.env(env, ENV_CONCURRENCY)) != null) concurrency(Settings.parseInt(ENV_CONCURRENCY, v));
            if ((v = Settings.env(env, ENV_RETRY_BACKOFF_MS)) != null) retryBackoff(Settings.parseMillis(ENV_RETRY_BACKOFF_MS, v));
            if ((v = Settings.env(env, ENV_MAX_RETRY_BACKOFF_MS)) != null) maxRetryBackoff(Settings.parseMillis(ENV_MAX_RETRY_BACKOFF_MS, v));
            if ((v = Settings.env(env, ENV_RETRY_ORDER)) != null) retryOrder(RetryOrder.parse(ENV_RETRY_ORDER, v));
            return this;
        }

        /** {@link #fromEnvironment(Map)} of the process environment. */
        public Builder fromEnvironment() {
            return fromEnvironment(System.getenv());
        }

        public Builder consumerName(String v) { this.consumerName = Topology.checkName(BusConfig.ENV_NODE_ID, v); return this; }
        public Builder claimIdle(Duration v) { this.claimIdle = Settings.positiveSaturated(ENV_CLAIM_IDLE_MS, v, MAX_DURATION); return this; }
        public Builder maxDeliveries(int v) { this.maxDeliveries = Settings.positive(ENV_MAX_DELIVERIES, v); return this; }
        public Builder batchSize(int v) { this.batchSize = Settings.positive(ENV_BATCH_SIZE, v); return this; }
        public Builder maxInFlight(int v) { this.maxInFlight = Settings.positive(ENV_MAX_IN_FLIGHT, v); return this; }
        public Builder concurrency(int v) { this.concurrency = Settings.positive(ENV_CONCURRENCY, v); return this; }

        public Builder blockTimeout(Duration v) {
            Settings.positive("blockTimeout", v);
            if (v.compareTo(MAX_BLOCK_TIMEOUT) > 0) {
                throw new ConfigException("blockTimeout", "'" + v + "' must be at most " + MAX_BLOCK_TIMEOUT.toSeconds() + " s");
            }
            this.blockTimeout = v;
            return this;
        }

        public Builder retryBackoff(Duration v) { this.retryBackoff = Settings.positiveSaturated(ENV_RETRY_BACKOFF_MS, v, MAX_DURATION); return this; }
        public Builder maxRetryBackoff(Duration v) { this.maxRetryBackoff = Settings.positiveSaturated(ENV_MAX_RETRY_BACKOFF_MS, v, MAX_DURATION); return this; }
        public Builder manualAck(boolean v) { this.manualAck = v; return this; }
        public Builder closeTimeout(Duration v) { this.closeTimeout = Settings.positiveSaturated("closeTimeout", v, MAX_DURATION); return this; }
        public Builder consumerIdleLimit(Duration v) { this.consumerIdleLimit = Settings.positiveSaturated("consumerIdleLimit", v, MAX_DURATION); return this; }
        public Builder deadLetterStream(String v) { this.deadLetterStream = Topology.checkName("deadLetterStream", v); return this; }
        public Builder retryOrder(RetryOrder v) { this.retryOrder = Settings.present(ENV_RETRY_ORDER, v); return this; }

        /**
         * The config; refuses a dead-letter stream equal to the stream it serves, and a retryBackoff longer than
         * maxRetryBackoff (the first retry would already wait longer than the cap promises).
         */
        public ConsumerConfig build() {
            if (retryBackoff.compareTo(maxRetryBackoff) > 0) {
                throw new ConfigException(ENV_RETRY_BACKOFF_MS, "retryBackoff " + retryBackoff.toMillis() + " ms is longer than maxRetryBackoff ("
                        + ENV_MAX_RETRY_BACKOFF_MS + ") " + maxRetryBackoff.toMillis() + " ms; it must be at most that");
            }
            String dead = deadLetterStream == null ? stream + Topology.DEFAULT_DEAD_LETTER_SUFFIX : deadLetterStream;
            if (dead.equals(stream)) {
                throw new ConfigException("deadLetterStream", "'" + dead + "' must differ from the stream it serves");
            }
            return new ConsumerConfig(this, consumerName == null ? BusConfig.defaultNodeId() : consumerName, dead);
        }
    }
}
