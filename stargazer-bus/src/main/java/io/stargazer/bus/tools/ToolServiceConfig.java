package io.stargazer.bus.tools;

import io.stargazer.bus.BusConfig;
import io.stargazer.bus.ConfigException;
import io.stargazer.bus.ConsumerConfig;
import io.stargazer.bus.EventBus;
import io.stargazer.bus.Topology;
import io.stargazer.bus.internal.Settings;
import java.time.Duration;
import java.util.Map;
import java.util.Objects;
import java.util.function.UnaryOperator;

/**
 * How a {@link ToolService} instance takes requests. Immutable, made by {@link #builder()} (every setting has a
 * default) or {@link #fromEnvironment(Map)}; each builder method checks its value when it is set and refuses a bad
 * one with a {@link ConfigException} naming the setting and the value.
 *
 * <p>Room: an instance holds at most {@code maxConcurrent} running plus {@code maxQueued} waiting requests. It reads
 * from the tools stream only while it has room, plus {@code readAhead} requests beyond it; a request read when there
 * is no room is answered {@code overloaded} (after its request_id is looked up: a copy of a request running or answered
 * takes no room and is never refused; the refusal is stored as the request's outcome). With {@code readAhead} 0 an instance never answers
 * {@code overloaded}: excess requests wait in the stream for whichever instance has room first (the best spread of
 * load over instances; callers see {@code timeout} instead under sustained overload). Requests held in this
 * instance's queue are not available to other instances, so with slow tools and several instances keep
 * {@code maxQueued} small.
 *
 * <table>
 *   <caption>Settings</caption>
 *   <tr><th>builder method</th><th>default</th><th>accepted</th><th>meaning</th></tr>
 *   <tr><td>{@code maxConcurrent}</td><td>{@value #DEFAULT_MAX_CONCURRENT}</td><td>&gt; 0</td>
 *       <td>tools running at once in this instance (its tool threads)</td></tr>
 *   <tr><td>{@code maxQueued}</td><td>{@value #DEFAULT_MAX_QUEUED}</td><td>&ge; 0</td>
 *       <td>accepted requests waiting for a tool thread</td></tr>
 *   <tr><td>{@code readAhead}</td><td>{@value #DEFAULT_READ_AHEAD}</td><td>&ge; 0</td>
 *       <td>requests read beyond the room, to be answered {@code overloaded}</td></tr>
 *   <tr><td>{@code consumerName}</td><td>none: the bus's node id</td><td>no white space or control characters</td>
 *       <td>this instance's consumer name in the tools group</td></tr>
 *   <tr><td>{@code claimIdle}</td><td>none: the consumer's ({@link ConsumerConfig#DEFAULT_CLAIM_IDLE})</td><td>&gt; 0; above {@link #MAX_DURATION} lowered to it</td>
 *       <td>how long a request may sit with a dead instance before another takes it over</td></tr>
 *   <tr><td>{@code closeTimeout}</td><td>{@link #DEFAULT_CLOSE_TIMEOUT} (10 s)</td><td>&gt; 0; above {@link #MAX_DURATION} lowered to it</td>
 *       <td>how long {@link ToolService#close()} waits for running tools</td></tr>
 *   <tr><td>{@code lateReplyLimit}</td><td>{@link #DEFAULT_LATE_REPLY_LIMIT} (30 s)</td><td>&ge; 0; above {@link #MAX_DURATION} lowered to it</td>
 *       <td>how long after a request's {@code deadline_ms} (by this instance's clock) it may still be answered; later,
 *       the request is acknowledged without an answer ({@link ToolService.Stats#unanswered()}): its caller stopped
 *       waiting long ago, and its reply stream may be gone, which an answer would make again without an expiry.
 *       A {@link ToolClient} keeps its reply stream for its {@link ToolClientConfig#replyTtl() replyTtl} past its last
 *       deadline, so keep this below that, less the clocks' difference (docs/tools.md)</td></tr>
 *   <tr><td>{@code consumer}</td><td>{@link #DEFAULT_CONSUMER}: none</td><td>not null</td>
 *       <td>applied to the tools subscription's {@link ConsumerConfig.Builder} (preset by
 *       {@link EventBus#consumer(String, String)}) before the settings above and the ones the service sets itself
 *       (maxInFlight, batchSize, concurrency, closeTimeout); {@link #fromEnvironment(Map)} makes it read the
 *       {@code SG_*} consumer variables ({@code SG_CLAIM_IDLE_MS}, {@code SG_MAX_DELIVERIES}, ...)</td></tr>
 * </table>
 *
 * <p>A duration longer than {@link #MAX_DURATION} (100 years), such as {@code Duration.ofSeconds(Long.MAX_VALUE)} for
 * "forever" (a closeTimeout that waits for every running tool, a lateReplyLimit that answers however late), is accepted
 * and taken as {@link #MAX_DURATION}, as {@link ConsumerConfig}'s are; the getters return it.
 */
public final class ToolServiceConfig {
    public static final int DEFAULT_MAX_CONCURRENT = 16;
    public static final int DEFAULT_MAX_QUEUED = 64;
    public static final int DEFAULT_READ_AHEAD = 16;
    public static final Duration DEFAULT_CLOSE_TIMEOUT = Duration.ofSeconds(10);
    public static final Duration DEFAULT_LATE_REPLY_LIMIT = Duration.ofSeconds(30);
    public static final UnaryOperator<ConsumerConfig.Builder> DEFAULT_CONSUMER = UnaryOperator.identity();
    /**
     * The longest value of a duration setting: 100 years ({@link BusConfig#MAX_DURATION}). A longer one is accepted and
     * taken as this: the service counts them in milliseconds and nanoseconds, which "forever" overflows.
     */
    public static final Duration MAX_DURATION = BusConfig.MAX_DURATION;

    private static final ToolServiceConfig DEFAULTS = builder().build();

    private final int maxConcurrent;
    private final int maxQueued;
    private final int readAhead;
    private final String consumerName;
    private final Duration claimIdle;
    private final Duration closeTimeout;
    private final Duration lateReplyLimit;
    private final UnaryOperator<ConsumerConfig.Builder> consumer;

    /** Every value was checked by the builder's setter when it was set. */
    private ToolServiceConfig(Builder b) {
        this.maxConcurrent = b.maxConcurrent;
        this.maxQueued = b.maxQueued;
        this.readAhead = b.readAhead;
        this.consumerName = b.consumerName;
        this.claimIdle = b.claimIdle;
        this.closeTimeout = b.closeTimeout;
        this.lateReplyLimit = b.lateReplyLimit;
        this.consumer = b.consumer;
    }

    public static ToolServiceConfig defaults() {
        return DEFAULTS;
    }

    /** The defaults, with the tools subscription taking the {@code SG_*} consumer settings of {@code env}. */
    public static ToolServiceConfig fromEnvironment(Map<String, String> env) {
        Map<String, String> copy = Map.copyOf(env);
        return builder().consumer(b -> b.fromEnvironment(copy)).build();
    }

    /** {@link #fromEnvironment(Map)} of the process environment. */
    public static ToolServiceConfig fromEnvironment() {
        return fromEnvironment(System.getenv());
    }

    public static Builder builder() {
        return new Builder();
    }

    /** A builder holding every setting of this config, to change some of them. */
    public Builder toBuilder() {
        Builder b = new Builder();
        b.maxConcurrent = maxConcurrent;
        b.maxQueued = maxQueued;
        b.readAhead = readAhead;
        b.consumerName = consumerName;
        b.claimIdle = claimIdle;
        b.closeTimeout = closeTimeout;
        b.lateReplyLimit = lateReplyLimit;
        b.consumer = consumer;
        return b;
    }

    public int maxConcurrent() { return maxConcurrent; }
    public int maxQueued() { return maxQueued; }
    public int readAhead() { return readAhead; }
    /** This instance's consumer name in the tools group; null: the bus's node id. */
    public String consumerName() { return consumerName; }
    /** How long a request may sit with a dead instance before another takes it over; null: the consumer's default. */
    public Duration claimIdle() { return claimIdle; }
    public Duration closeTimeout() { return closeTimeout; }
    /** How long past a request's deadline it may still be answered (see the class comment). */
    public Duration lateReplyLimit() { return lateReplyLimit; }
    /** What is applied to the tools subscription's consumer settings first (see the class comment). */
    public UnaryOperator<ConsumerConfig.Builder> consumer() { return consumer; }

    @Override
    public boolean equals(Object o) {
        return o instanceof ToolServiceConfig c && maxConcurrent == c.maxConcurrent && maxQueued == c.maxQueued
                && readAhead == c.readAhead && Objects.equals(consumerName, c.consumerName) && Objects.equals(claimIdle, c.claimIdle)
                && closeTimeout.equals(c.closeTimeout) && lateReplyLimit.equals(c.lateReplyLimit) && consumer.equals(c.consumer);
    }

    @Override
    public int hashCode() {
        return Objects.hash(maxConcurrent, maxQueued, readAhead, consumerName, claimIdle, closeTimeout, lateReplyLimit, consumer);
    }

    @Override
    public String toString() {
        return "ToolServiceConfig{maxConcurrent=" + maxConcurrent + ", maxQueued=" + maxQueued + ", readAhead=" + readAhead
                + ", consumerName=" + consumerName + ", claimIdle=" + claimIdle + ", closeTimeout=" + closeTimeout
                + ", lateReplyLimit=" + lateReplyLimit
                + (consumer == DEFAULT_CONSUMER ? "" : ", consumer=" + consumer) + "}";
    }

    /** Collects settings, starting from the defaults; each setter refuses a bad value at once, naming it. */
    public static final class Builder {
        private int maxConcurrent = DEFAULT_MAX_CONCURRENT;
        private int maxQueued = DEFAULT_MAX_QUEUED;
        private int readAhead = DEFAULT_READ_AHEAD;
        private String consumerName;
        private Duration claimIdle;
        private Duration closeTimeout = DEFAULT_CLOSE_TIMEOUT;
        private Duration lateReplyLimit = DEFAULT_LATE_REPLY_LIMIT;
        private UnaryOperator<ConsumerConfig.Builder> consumer = DEFAULT_CONSUMER;

        private Builder() {
        }

        public Builder maxConcurrent(int v) { this.maxConcurrent = Settings.positive("maxConcurrent", v); return this; }
        public Builder maxQueued(int v) { this.maxQueued = Settings.notNegative("maxQueued", v); return this; }
        public Builder readAhead(int v) { this.readAhead = Settings.notNegative("readAhead", v); return this; }
        public Builder consumerName(String v) { this.consumerName = Topology.checkName("consumerName", v); return this; }
        public Builder claimIdle(Duration v) { this.claimIdle = Settings.positiveSaturated("claimIdle", v, MAX_DURATION); return this; }
        public Builder closeTimeout(Duration v) { this.closeTimeout = Settings.positiveSaturated("closeTimeout", v, MAX_DURATION); return this; }
        public Builder lateReplyLimit(Duration v) { this.lateReplyLimit = Settings.notNegativeSaturated("lateReplyLimit", v, MAX_DURATION); return this; }
        public Builder consumer(UnaryOperator<ConsumerConfig.Builder> v) { this.consumer = Settings.present("consumer", v); return this; }

        public ToolServiceConfig build() {
            return new ToolServiceConfig(this);
        }
    }
}
