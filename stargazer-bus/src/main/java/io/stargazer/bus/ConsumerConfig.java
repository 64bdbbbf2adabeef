package io.stargazer.bus;

import java.time.Duration;
import java.util.Map;

/**
 * How one subscription consumes: which stream and group, under which consumer name, and its limits. Immutable;
 * the builder checks each value as it is set and names the bad one. {@link Builder#fromEnvironment} reads
 * {@code SG_NODE_ID}, {@code SG_CLAIM_IDLE_MS}, {@code SG_MAX_DELIVERIES} and the other {@code SG_CONSUMER_*}
 * variables.
 *
 * @param stream            the stream to read
 * @param group             the consumer group to read with (created at {@code $} if missing)
 * @param consumerName      this consumer's name in the group (default {@code SG_NODE_ID}, else host name and pid)
 * @param claimIdle         how long an entry must sit unacknowledged with another consumer before this one takes it over
 * @param maxDeliveries     deliveries an entry gets before it is dead-lettered
 * @param batchSize         COUNT of each read
 * @param maxInFlight       most deliveries handed out and not yet settled; reading pauses while it is reached
 * @param concurrency       handler threads: how many channels are handled at once
 * @param blockTimeout      BLOCK of each read: how long one read waits for new entries
 * @param retryBackoff      delay before the second delivery of a failed entry; doubles per delivery up to maxRetryBackoff
 * @param maxRetryBackoff   the longest redelivery delay
 * @param manualAck         when true, a handler that returns does not acknowledge; the application calls ack()
 * @param closeTimeout      how long close() waits for in-flight handlers
 * @param consumerIdleLimit consumers of the group idle longer than this with nothing pending are removed
 * @param deadLetterStream  where poison and malformed entries go (default: the stream plus the topology's suffix)
 * @param retryOrder        ORDERED (default): a failed entry's channel waits for its retry; UNORDERED: it goes on
 */
public record ConsumerConfig(
        String stream,
        String group,
        String consumerName,
        Duration claimIdle,
        int maxDeliveries,
        int batchSize,
        int maxInFlight,
        int concurrency,
        Duration blockTimeout,
        Duration retryBackoff,
        Duration maxRetryBackoff,
        boolean manualAck,
        Duration closeTimeout,
        Duration consumerIdleLimit,
        String deadLetterStream,
        RetryOrder retryOrder) {

    public static final String ENV_CLAIM_IDLE_MS = "SG_CLAIM_IDLE_MS";
    public static final String ENV_MAX_DELIVERIES = "SG_MAX_DELIVERIES";
    public static final String ENV_BATCH_SIZE = "SG_CONSUMER_BATCH_SIZE";
    public static final String ENV_MAX_IN_FLIGHT = "SG_CONSUMER_MAX_IN_FLIGHT";
    public static final String ENV_CONCURRENCY = "SG_CONSUMER_CONCURRENCY";
    public static final String ENV_RETRY_BACKOFF_MS = "SG_RETRY_BACKOFF_MS";
    public static final String ENV_MAX_RETRY_BACKOFF_MS = "SG_MAX_RETRY_BACKOFF_MS";
    public static final String ENV_RETRY_ORDER = "SG_RETRY_ORDER";

    public ConsumerConfig {
        Topology.checkName("stream", stream);
        Topology.checkName("group", group);
        Topology.checkName(BusConfig.ENV_NODE_ID, consumerName);
        Settings.positive(ENV_CLAIM_IDLE_MS, claimIdle);
        Settings.positive(ENV_MAX_DELIVERIES, maxDeliveries);
        Settings.positive(ENV_BATCH_SIZE, batchSize);
        Settings.positive(ENV_MAX_IN_FLIGHT, maxInFlight);
        Settings.positive(ENV_CONCURRENCY, concurrency);
        checkBlockTimeout(blockTimeout);
        Settings.positive(ENV_RETRY_BACKOFF_MS, retryBackoff);
        Settings.positive(ENV_MAX_RETRY_BACKOFF_MS, maxRetryBackoff);
        Settings.positive("closeTimeout", closeTimeout);
        Settings.positive("consumerIdleLimit", consumerIdleLimit);
        Topology.checkName("deadLetterStream", deadLetterStream);
        if (retryOrder == null) throw new ConfigException(ENV_RETRY_ORDER, "must be set");
        if (deadLetterStream.equals(stream)) {
            throw new ConfigException("deadLetterStream", "'" + deadLetterStream + "' must differ from the stream it serves");
        }
    }

    /** Reads wait at most 5 s, well inside the 10 s command timeout, so a dead connection is noticed. */
    private static Duration checkBlockTimeout(Duration v) {
        Settings.positive("blockTimeout", v);
        if (v.compareTo(Duration.ofSeconds(5)) > 0) {
            throw new ConfigException("blockTimeout", "'" + v + "' must be at most 5 s");
        }
        return v;
    }

    /** A builder for {@code stream}/{@code group}, dead-lettering to {@code stream + ":dead"}. */
    public static Builder builder(String stream, String group) {
        return new Builder(stream, group);
    }

    public Builder toBuilder() {
        return new Builder(stream, group).consumerName(consumerName).claimIdle(claimIdle).maxDeliveries(maxDeliveries)
                .batchSize(batchSize).maxInFlight(maxInFlight).concurrency(concurrency).blockTimeout(blockTimeout)
                .retryBackoff(retryBackoff).maxRetryBackoff(maxRetryBackoff).manualAck(manualAck).closeTimeout(closeTimeout)
                .consumerIdleLimit(consumerIdleLimit).deadLetterStream(deadLetterStream).retryOrder(retryOrder);
    }

    /** Collects settings; each setter refuses a bad value at once, naming it. */
    public static final class Builder {
        private final String stream;
        private final String group;
        private String consumerName;
        private Duration claimIdle = Duration.ofSeconds(30);
        private int maxDeliveries = 5;
        private int batchSize = 128;
        private int maxInFlight = 1024;
        private int concurrency = 16;
        private Duration blockTimeout = Duration.ofSeconds(2);
        private Duration retryBackoff = Duration.ofSeconds(1);
        private Duration maxRetryBackoff = Duration.ofMinutes(1);
        private boolean manualAck;
        private Duration closeTimeout = Duration.ofSeconds(10);
        private Duration consumerIdleLimit = Duration.ofHours(1);
        private String deadLetterStream;
        private RetryOrder retryOrder = RetryOrder.ORDERED;

        private Builder(String stream, String group) {
            this.stream = Topology.checkName("stream", stream);
            this.group = Topology.checkName("group", group);
        }

        /** Takes the {@code SG_*} consumer settings present in {@code env}. */
        public Builder fromEnvironment(Map<String, String> env) {
            if (env.containsKey(BusConfig.ENV_NODE_ID)) consumerName(env.get(BusConfig.ENV_NODE_ID));
            if (env.containsKey(ENV_CLAIM_IDLE_MS)) claimIdle(Settings.parseMillis(ENV_CLAIM_IDLE_MS, env.get(ENV_CLAIM_IDLE_MS)));
            if (env.containsKey(ENV_MAX_DELIVERIES)) maxDeliveries(Settings.parseInt(ENV_MAX_DELIVERIES, env.get(ENV_MAX_DELIVERIES)));
            if (env.containsKey(ENV_BATCH_SIZE)) batchSize(Settings.parseInt(ENV_BATCH_SIZE, env.get(ENV_BATCH_SIZE)));
            if (env.containsKey(ENV_MAX_IN_FLIGHT)) maxInFlight(Settings.parseInt(ENV_MAX_IN_FLIGHT, env.get(ENV_MAX_IN_FLIGHT)));
            if (env.containsKey(ENV_CONCURRENCY)) concurrency(Settings.parseInt(ENV_CONCURRENCY, env.get(ENV_CONCURRENCY)));
            if (env.containsKey(ENV_RETRY_BACKOFF_MS)) {
                retryBackoff(Settings.parseMillis(ENV_RETRY_BACKOFF_MS, env.get(ENV_RETRY_BACKOFF_MS)));
            }
            if (env.containsKey(ENV_MAX_RETRY_BACKOFF_MS)) {
                maxRetryBackoff(Settings.parseMillis(ENV_MAX_RETRY_BACKOFF_MS, env.get(ENV_MAX_RETRY_BACKOFF_MS)));
            }
            if (env.containsKey(ENV_RETRY_ORDER)) retryOrder(RetryOrder.parse(ENV_RETRY_ORDER, env.get(ENV_RETRY_ORDER)));
            return this;
        }

        public Builder fromEnvironment() {
            return fromEnvironment(System.getenv());
        }

        public Builder consumerName(String v) { this.consumerName = Topology.checkName(BusConfig.ENV_NODE_ID, v); return this; }
        public Builder claimIdle(Duration v) { this.claimIdle = Settings.positive(ENV_CLAIM_IDLE_MS, v); return this; }
        public Builder maxDeliveries(int v) { this.maxDeliveries = Settings.positive(ENV_MAX_DELIVERIES, v); return this; }
        public Builder batchSize(int v) { this.batchSize = Settings.positive(ENV_BATCH_SIZE, v); return this; }
        public Builder maxInFlight(int v) { this.maxInFlight = Settings.positive(ENV_MAX_IN_FLIGHT, v); return this; }
        public Builder concurrency(int v) { this.concurrency = Settings.positive(ENV_CONCURRENCY, v); return this; }
        public Builder blockTimeout(Duration v) { this.blockTimeout = checkBlockTimeout(v); return this; }
        public Builder retryBackoff(Duration v) { this.retryBackoff = Settings.positive(ENV_RETRY_BACKOFF_MS, v); return this; }
        public Builder maxRetryBackoff(Duration v) { this.maxRetryBackoff = Settings.positive(ENV_MAX_RETRY_BACKOFF_MS, v); return this; }
        public Builder manualAck(boolean v) { this.manualAck = v; return this; }
        public Builder closeTimeout(Duration v) { this.closeTimeout = Settings.positive("closeTimeout", v); return this; }
        public Builder consumerIdleLimit(Duration v) { this.consumerIdleLimit = Settings.positive("consumerIdleLimit", v); return this; }
        public Builder deadLetterStream(String v) { this.deadLetterStream = Topology.checkName("deadLetterStream", v); return this; }

        public Builder retryOrder(RetryOrder v) {
            if (v == null) throw new ConfigException(ENV_RETRY_ORDER, "must be set");
            this.retryOrder = v;
            return this;
        }

        public ConsumerConfig build() {
            return new ConsumerConfig(stream, group, consumerName == null ? BusConfig.defaultNodeId() : consumerName, claimIdle,
                    maxDeliveries, batchSize, maxInFlight, concurrency, blockTimeout, retryBackoff, maxRetryBackoff, manualAck,
                    closeTimeout, consumerIdleLimit, deadLetterStream == null ? stream + ":dead" : deadLetterStream, retryOrder);
        }
    }
}
