package io.stargazer.bus.spring.autoconfigure;

import io.stargazer.bus.Backpressure;
import io.stargazer.bus.BusConfig;
import io.stargazer.bus.ConfigException;
import io.stargazer.bus.ConsumerConfig;
import io.stargazer.bus.NodeRole;
import io.stargazer.bus.RetryOrder;
import io.stargazer.bus.Topology;
import io.stargazer.bus.TrimPolicy;
import io.stargazer.bus.tools.ToolClientConfig;
import io.stargazer.bus.tools.ToolServiceConfig;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.function.Supplier;
import java.util.function.Consumer;
import org.springframework.beans.factory.InitializingBean;
import org.springframework.boot.context.properties.ConfigurationProperties;

/**
 * {@code stargazer.bus.*}: what the {@code SG_*} variables set (BusConfig, Topology, ConsumerConfig; their javadoc
 * tables give each setting's meaning and range). Unset properties keep the library's defaults; a bad value fails the
 * start-up with the property's name. Durations take Spring's forms ({@code 500ms}, {@code 10s}); one longer than 100
 * years ({@code BusConfig.MAX_DURATION}) is taken as 100 years, as by the builders.
 */
@ConfigurationProperties(prefix = StargazerBusProperties.PREFIX)
public class StargazerBusProperties implements InitializingBean {
    public static final String PREFIX = "stargazer.bus";

    /**
     * Redis to connect to, as REDIS_URL: redis://[user[:password]@]host[:port][/db], rediss:// for TLS; several
     * host:port separated by commas, or ?cluster=true, for a Redis Cluster.
     */
    private String url = "redis://localhost:6379";
    /** PEM file of the CA certificate(s) to trust for rediss:// instead of the JVM's trust store (SG_REDIS_CA_FILE). */
    private String caFile;
    /** Certificate verification for rediss:// (SG_REDIS_TLS_VERIFY): full (the default) or none (logged as a warning). */
    private String tlsVerify;
    /** Redis Cluster through Lettuce's cluster client, also for a one-host url (SG_REDIS_CLUSTER). */
    private Boolean cluster;
    /** What this process does (SG_NODE_ROLE): which groups ensure-streams creates. */
    private NodeRole role;
    /** This process's consumer name (SG_NODE_ID); default host name and process id. */
    private String nodeId;
    /** Chat platforms with an outbound stream each (SG_PLATFORMS). */
    private List<String> platforms;
    /** Approximate cap of each stream (SG_STREAM_MAXLEN); at least 1000. */
    private Long streamMaxlen;
    /** Largest encoded envelope accepted (SG_MAX_ENVELOPE_BYTES). */
    private Integer maxEnvelopeBytes;
    /** How often, at most, one stream's backlog is checked while it is published to (SG_BACKLOG_CHECK_MS). */
    private Duration backlogCheckInterval;
    /** What happens at a stream's cap (SG_TRIM_POLICY): safe or evict. */
    private TrimPolicy trimPolicy;
    /** A publish to a full stream under the safe policy (SG_BACKPRESSURE): block or reject. */
    private Backpressure backpressure;
    /** How long a publish waits for room (SG_BACKPRESSURE_TIMEOUT_MS). */
    private Duration backpressureTimeout;
    /** Time a publish has to be stored (SG_PUBLISH_TIMEOUT_MS). */
    private Duration publishTimeout;
    /** Publishes queued per stream at most (SG_PUBLISH_QUEUE_LIMIT). */
    private Integer publishQueueLimit;
    /** Connections of their own for blocking publishes, 0 for none (SG_BLOCKING_PUBLISH_CONNECTIONS). */
    private Integer blockingPublishConnections;
    /** A connection that answers nothing for this long is replaced (SG_DEAD_PEER_TIMEOUT_MS). */
    private Duration deadPeerTimeout;
    /** How long a publish's dedupe key is remembered (SG_DEDUPE_WINDOW_MS): 1 ms to 365 days. */
    private Duration dedupeWindow;
    /** Server-side logic as the stargazer functions library or as scripts (SG_SERVER_CODE): auto, functions, scripts. */
    private io.stargazer.bus.ServerCodeMode serverCode;
    /** How shared streams are written (SG_PUBLISH_VIA): direct, or relay (through this node's outbox and the relay). */
    private io.stargazer.bus.PublishVia publishVia;
    /** Whether to create the role's streams and groups at start-up (EventBus.ensureStreams). */
    private boolean ensureStreams = true;

    private final TopologyProperties topology = new TopologyProperties();
    private final ConsumerProperties consumer = new ConsumerProperties();
    private final ToolsProperties tools = new ToolsProperties();

    /** Stream and group names (SG_* names of Topology). */
    public static class TopologyProperties {
        /**
         * Prefix for every default stream and group name (Topology.Builder.namespace; no SG_* variable), e.g. "staging"
         * gives staging:sg:stream:inbound. Names set here explicitly are taken as given.
         */
        private String namespace;
        /** SG_INBOUND_STREAM. */
        private String inboundStream;
        /** Partitions of the inbound stream (SG_INBOUND_PARTITIONS). */
        private Integer inboundPartitions;
        /**
         * Relay mode, while inbound-partitions changes: the other count, 1 to 1024, whose inbound streams a relay on this
         * bus also writes (SG_INBOUND_PARTITIONS_ALSO); unset (the default) for none. See docs/cluster.md, "Changing N safely".
         */
        private Integer inboundPartitionsAlso;
        /** SG_OUTBOUND_STREAM_PREFIX. */
        private String outboundStreamPrefix;
        /** SG_WORKER_GROUP. */
        private String workerGroup;
        /** SG_GATEWAY_GROUP_PREFIX. */
        private String gatewayGroupPrefix;
        /** SG_TOOLS_STREAM. */
        private String toolsStream;
        /** SG_TOOLS_GROUP. */
        private String toolsGroup;
        /** SG_TOOLS_REPLY_STREAM_PREFIX. */
        private String toolsReplyStreamPrefix;
        /** SG_DEAD_LETTER_SUFFIX. */
        private String deadLetterSuffix;
        /** SG_OUTBOX_PREFIX (relay mode). */
        private String outboxPrefix;
        /** SG_RELAY_GROUP (relay mode). */
        private String relayGroup;

        public String getNamespace() { return namespace; }
        public void setNamespace(String v) { namespace = v; }
        public String getInboundStream() { return inboundStream; }
        public void setInboundStream(String v) { inboundStream = v; }
        public Integer getInboundPartitions() { return inboundPartitions; }
        public void setInboundPartitions(Integer v) { inboundPartitions = v; }
        public Integer getInboundPartitionsAlso() { return inboundPartitionsAlso; }
        public void setInboundPartitionsAlso(Integer v) { inboundPartitionsAlso = v; }
        public String getOutboundStreamPrefix() { return outboundStreamPrefix; }
        public void setOutboundStreamPrefix(String v) { outboundStreamPrefix = v; }
        public String getWorkerGroup() { return workerGroup; }
        public void setWorkerGroup(String v) { workerGroup = v; }
        public String getGatewayGroupPrefix() { return gatewayGroupPrefix; }
        public void setGatewayGroupPrefix(String v) { gatewayGroupPrefix = v; }
        public String getToolsStream() { return toolsStream; }
        public void setToolsStream(String v) { toolsStream = v; }
        public String getToolsGroup() { return toolsGroup; }
        public void setToolsGroup(String v) { toolsGroup = v; }
        public String getToolsReplyStreamPrefix() { return toolsReplyStreamPrefix; }
        public void setToolsReplyStreamPrefix(String v) { toolsReplyStreamPrefix = v; }
        public String getDeadLetterSuffix() { return deadLetterSuffix; }
        public void setDeadLetterSuffix(String v) { deadLetterSuffix = v; }
        public String getOutboxPrefix() { return outboxPrefix; }
        public void setOutboxPrefix(String v) { outboxPrefix = v; }
        public String getRelayGroup() { return relayGroup; }
        public void setRelayGroup(String v) { relayGroup = v; }
    }

    /**
     * Defaults of every @StargazerListener subscription (SG_* names of ConsumerConfig); an annotation may override some.
     * The tools service's subscription takes them too, but consumer-name (the service then sets its own in-flight, batch
     * and concurrency).
     */
    public static class ConsumerProperties {
        /**
         * Base of every @StargazerListener's consumer name in its group (two listeners of one stream and group are
         * consumer-name:listener-id); no white space or control characters; default the node id. The tools service has
         * its own (tools.service.consumer-name).
         */
        private String consumerName;
        /** Entries idle this long with a dead consumer are taken over (SG_CLAIM_IDLE_MS). */
        private Duration claimIdle;
        /** Deliveries before an entry is dead-lettered (SG_MAX_DELIVERIES). */
        private Integer maxDeliveries;
        /** Entries read per call (SG_CONSUMER_BATCH_SIZE). */
        private Integer batchSize;
        /** Unsettled deliveries at most (SG_CONSUMER_MAX_IN_FLIGHT). */
        private Integer maxInFlight;
        /** Handler threads (SG_CONSUMER_CONCURRENCY). */
        private Integer concurrency;
        /** Longest blocking read (ConsumerConfig.blockTimeout; no SG_* variable). */
        private Duration blockTimeout;
        /** First retry backoff (SG_RETRY_BACKOFF_MS). */
        private Duration retryBackoff;
        /** Longest retry backoff (SG_MAX_RETRY_BACKOFF_MS). */
        private Duration maxRetryBackoff;
        /** Whether a failed entry holds its channel's later entries (SG_RETRY_ORDER): ordered or unordered. */
        private RetryOrder retryOrder;
        /** How long stopping waits for in-flight handlers; what is left stays pending (ConsumerConfig.closeTimeout; no SG_* variable). */
        private Duration closeTimeout;

        public String getConsumerName() { return consumerName; }
        public void setConsumerName(String v) { consumerName = v; }
        public Duration getClaimIdle() { return claimIdle; }
        public void setClaimIdle(Duration v) { claimIdle = v; }
        public Integer getMaxDeliveries() { return maxDeliveries; }
        public void setMaxDeliveries(Integer v) { maxDeliveries = v; }
        public Integer getBatchSize() { return batchSize; }
        public void setBatchSize(Integer v) { batchSize = v; }
        public Integer getMaxInFlight() { return maxInFlight; }
        public void setMaxInFlight(Integer v) { maxInFlight = v; }
        public Integer getConcurrency() { return concurrency; }
        public void setConcurrency(Integer v) { concurrency = v; }
        public Duration getBlockTimeout() { return blockTimeout; }
        public void setBlockTimeout(Duration v) { blockTimeout = v; }
        public Duration getRetryBackoff() { return retryBackoff; }
        public void setRetryBackoff(Duration v) { retryBackoff = v; }
        public Duration getMaxRetryBackoff() { return maxRetryBackoff; }
        public void setMaxRetryBackoff(Duration v) { maxRetryBackoff = v; }
        public RetryOrder getRetryOrder() { return retryOrder; }
        public void setRetryOrder(RetryOrder v) { retryOrder = v; }
        public Duration getCloseTimeout() { return closeTimeout; }
        public void setCloseTimeout(Duration v) { closeTimeout = v; }

        /** Applies the set properties to {@code b}; a refused value throws naming its property. */
        public ConsumerConfig.Builder applyTo(ConsumerConfig.Builder b) {
            String p = PREFIX + ".consumer.";
            set(p + "claim-idle", claimIdle, b::claimIdle);
            set(p + "max-deliveries", maxDeliveries, b::maxDeliveries);
            set(p + "batch-size", batchSize, b::batchSize);
            set(p + "max-in-flight", maxInFlight, b::maxInFlight);
            set(p + "concurrency", concurrency, b::concurrency);
            set(p + "block-timeout", blockTimeout, b::blockTimeout);
            set(p + "retry-backoff", retryBackoff, b::retryBackoff);
            set(p + "max-retry-backoff", maxRetryBackoff, b::maxRetryBackoff);
            set(p + "retry-order", retryOrder, b::retryOrder);
            set(p + "close-timeout", closeTimeout, b::closeTimeout);
            build(b::build); // the settings checked together (retry-backoff at most max-retry-backoff), named as properties
            return b;
        }

        /**
         * A listener's settings: {@link #applyTo} and consumer-name, which is not the tools service's (the service's
         * default name is the node id, whatever the listeners are called).
         */
        public ConsumerConfig.Builder applyToListener(ConsumerConfig.Builder b) {
            set(PREFIX + ".consumer.consumer-name", consumerName, b::consumerName);
            return applyTo(b);
        }
    }

    /** The tools client and service (ToolClientConfig, ToolServiceConfig; their javadoc tables give each setting's range). */
    public static class ToolsProperties {
        private final ClientProperties client = new ClientProperties();
        private final ServiceProperties service = new ServiceProperties();

        public ClientProperties getClient() { return client; }
        public ServiceProperties getService() { return service; }
    }

    /** How the ToolClient waits for replies (ToolClientConfig). */
    public static class ClientProperties {
        /** Timeout of the calls that give none; at most 1d, default 30s. */
        private Duration defaultTimeout;
        /** Most entries the reply stream keeps; default 10000. */
        private Long replyStreamMaxlen;
        /** Expiry of the reply stream past the latest call deadline, refreshed while the client lives; at least 1s, default 60s. */
        private Duration replyTtl;
        /** BLOCK of each reply read; at most 5s, default 1s. */
        private Duration blockTimeout;
        /** COUNT of each reply read; default 256. */
        private Integer readBatchSize;

        public Duration getDefaultTimeout() { return defaultTimeout; }
        public void setDefaultTimeout(Duration v) { defaultTimeout = v; }
        public Long getReplyStreamMaxlen() { return replyStreamMaxlen; }
        public void setReplyStreamMaxlen(Long v) { replyStreamMaxlen = v; }
        public Duration getReplyTtl() { return replyTtl; }
        public void setReplyTtl(Duration v) { replyTtl = v; }
        public Duration getBlockTimeout() { return blockTimeout; }
        public void setBlockTimeout(Duration v) { blockTimeout = v; }
        public Integer getReadBatchSize() { return readBatchSize; }
        public void setReadBatchSize(Integer v) { readBatchSize = v; }

        /** The client configuration these properties describe; a refused value throws naming its property. */
        public ToolClientConfig toConfig() {
            ToolClientConfig.Builder b = ToolClientConfig.builder();
            String p = PREFIX + ".tools.client.";
            set(p + "default-timeout", defaultTimeout, b::defaultTimeout);
            set(p + "reply-stream-maxlen", replyStreamMaxlen, b::replyStreamMaxlen);
            set(p + "reply-ttl", replyTtl, b::replyTtl);
            set(p + "block-timeout", blockTimeout, b::blockTimeout);
            set(p + "read-batch-size", readBatchSize, b::readBatchSize);
            return b.build();
        }
    }

    /** How the ToolService takes requests (ToolServiceConfig); its subscription also takes stargazer.bus.consumer.*. */
    public static class ServiceProperties {
        /** Tools running at once in this instance (its tool threads); default 16. */
        private Integer maxConcurrent;
        /** Accepted requests waiting for a tool thread; default 64. */
        private Integer maxQueued;
        /** Requests read beyond the room, answered overloaded; 0 never answers overloaded; default 16. */
        private Integer readAhead;
        /** This instance's consumer name in the tools group; default the bus's node id. */
        private String consumerName;
        /** How long a request may sit with a dead instance before another takes it over; default the consumer's. */
        private Duration claimIdle;
        /** How long closing waits for running tools; default 10s. */
        private Duration closeTimeout;
        /** How long past a request's deadline it may still be answered; later it is acknowledged unanswered; default 30s. */
        private Duration lateReplyLimit;
        /**
         * Whether the tools service starts reading once the application context has started; false leaves it stopped
         * until its start() (it is a SmartLifecycle); default true.
         */
        private boolean autoStartup = true;

        public Integer getMaxConcurrent() { return maxConcurrent; }
        public void setMaxConcurrent(Integer v) { maxConcurrent = v; }
        public Integer getMaxQueued() { return maxQueued; }
        public void setMaxQueued(Integer v) { maxQueued = v; }
        public Integer getReadAhead() { return readAhead; }
        public void setReadAhead(Integer v) { readAhead = v; }
        public String getConsumerName() { return consumerName; }
        public void setConsumerName(String v) { consumerName = v; }
        public Duration getClaimIdle() { return claimIdle; }
        public void setClaimIdle(Duration v) { claimIdle = v; }
        public Duration getCloseTimeout() { return closeTimeout; }
        public void setCloseTimeout(Duration v) { closeTimeout = v; }
        public Duration getLateReplyLimit() { return lateReplyLimit; }
        public void setLateReplyLimit(Duration v) { lateReplyLimit = v; }
        public boolean isAutoStartup() { return autoStartup; }
        public void setAutoStartup(boolean v) { autoStartup = v; }
    }

    /**
     * The tools service configuration these properties describe, its subscription taking the
     * {@code stargazer.bus.consumer.*} settings (as the node's takes the SG_* consumer variables); a refused value throws
     * naming its property.
     */
    public ToolServiceConfig toToolServiceConfig() {
        ServiceProperties sp = tools.service;
        ToolServiceConfig.Builder b = ToolServiceConfig.builder();
        String p = PREFIX + ".tools.service.";
        set(p + "max-concurrent", sp.maxConcurrent, b::maxConcurrent);
        set(p + "max-queued", sp.maxQueued, b::maxQueued);
        set(p + "read-ahead", sp.readAhead, b::readAhead);
        set(p + "consumer-name", sp.consumerName, b::consumerName);
        set(p + "claim-idle", sp.claimIdle, b::claimIdle);
        set(p + "close-timeout", sp.closeTimeout, b::closeTimeout);
        set(p + "late-reply-limit", sp.lateReplyLimit, b::lateReplyLimit);
        return b.consumer(consumer::applyTo).build();
    }

    /** The bus configuration these properties describe; a refused value throws naming its property. */
    public BusConfig toBusConfig() {
        BusConfig.Builder b = BusConfig.builder();
        String p = PREFIX + ".";
        Topology.Builder t = Topology.builder();
        String tp = p + "topology.";
        set(tp + "namespace", topology.namespace, t::namespace);
        set(tp + "inbound-stream", topology.inboundStream, t::inboundStream);
        set(tp + "inbound-partitions", topology.inboundPartitions, t::inboundPartitions);
        set(tp + "inbound-partitions-also", topology.inboundPartitionsAlso, t::alsoInboundPartitions);
        set(tp + "outbound-stream-prefix", topology.outboundStreamPrefix, t::outboundStreamPrefix);
        set(tp + "worker-group", topology.workerGroup, t::workerGroup);
        set(tp + "gateway-group-prefix", topology.gatewayGroupPrefix, t::gatewayGroupPrefix);
        set(tp + "tools-stream", topology.toolsStream, t::toolsStream);
        set(tp + "tools-group", topology.toolsGroup, t::toolsGroup);
        set(tp + "tools-reply-stream-prefix", topology.toolsReplyStreamPrefix, t::toolsReplyStreamPrefix);
        set(tp + "dead-letter-suffix", topology.deadLetterSuffix, t::deadLetterSuffix);
        set(tp + "outbox-prefix", topology.outboxPrefix, t::outboxPrefix);
        set(tp + "relay-group", topology.relayGroup, t::relayGroup);
        b.topology(build(t::build));
        set(p + "role", role, b::role);
        set(p + "node-id", nodeId, b::nodeId);
        set(p + "platforms", platforms, b::platforms);
        set(p + "stream-maxlen", streamMaxlen, b::streamMaxlen);
        set(p + "max-envelope-bytes", maxEnvelopeBytes, b::maxEnvelopeBytes);
        set(p + "backlog-check-interval", backlogCheckInterval, b::backlogCheckInterval);
        set(p + "trim-policy", trimPolicy, b::trimPolicy);
        set(p + "backpressure", backpressure, b::backpressure);
        set(p + "backpressure-timeout", backpressureTimeout, b::backpressureTimeout);
        set(p + "publish-timeout", publishTimeout, b::publishTimeout);
        set(p + "publish-queue-limit", publishQueueLimit, b::publishQueueLimit);
        set(p + "blocking-publish-connections", blockingPublishConnections, b::blockingPublishConnections);
        set(p + "dead-peer-timeout", deadPeerTimeout, b::deadPeerTimeout);
        set(p + "dedupe-window", dedupeWindow, b::dedupeWindow);
        set(p + "server-code", serverCode, b::serverCode);
        set(p + "publish-via", publishVia, b::publishVia);
        return build(b::build);
    }

    /**
     * The server {@code url} names, with {@code ca-file}, {@code tls-verify} and {@code cluster} applied by the library's
     * own check of SG_REDIS_CA_FILE, SG_REDIS_TLS_VERIFY and SG_REDIS_CLUSTER (RedisUrl.withEnvironment), so the
     * properties accept and refuse what the variables do; a refused value throws naming its property.
     */
    public io.stargazer.bus.RedisUrl toRedisUrl() {
        io.stargazer.bus.RedisUrl parsed;
        try {
            parsed = io.stargazer.bus.RedisUrl.parse(url);
        } catch (RuntimeException e) {
            throw new IllegalArgumentException("Invalid value for property '" + PREFIX + ".url': " + e.getMessage(), e);
        }
        Map<String, String> settings = new java.util.HashMap<>();
        if (caFile != null) settings.put(io.stargazer.bus.RedisUrl.ENV_CA_FILE, caFile);
        if (tlsVerify != null) settings.put(io.stargazer.bus.RedisUrl.ENV_TLS_VERIFY, tlsVerify);
        if (cluster != null) settings.put(io.stargazer.bus.RedisUrl.ENV_REDIS_CLUSTER, cluster.toString());
        return build(() -> parsed.withEnvironment(settings));
    }

    /** The property each {@code SG_*} setting of BusConfig and Topology comes from here. */
    private static final Map<String, String> PROPERTY_OF_SETTING = Map.ofEntries(
            Map.entry(BusConfig.ENV_NODE_ROLE, "role"), Map.entry(BusConfig.ENV_NODE_ID, "node-id"),
            Map.entry(BusConfig.ENV_PLATFORMS, "platforms"), Map.entry(BusConfig.ENV_STREAM_MAXLEN, "stream-maxlen"),
            Map.entry(BusConfig.ENV_MAX_ENVELOPE_BYTES, "max-envelope-bytes"),
            Map.entry(BusConfig.ENV_BACKLOG_CHECK_MS, "backlog-check-interval"), Map.entry(BusConfig.ENV_TRIM_POLICY, "trim-policy"),
            Map.entry(BusConfig.ENV_BACKPRESSURE, "backpressure"), Map.entry(BusConfig.ENV_BACKPRESSURE_TIMEOUT_MS, "backpressure-timeout"),
            Map.entry(BusConfig.ENV_PUBLISH_TIMEOUT_MS, "publish-timeout"), Map.entry(BusConfig.ENV_PUBLISH_QUEUE_LIMIT, "publish-queue-limit"),
            Map.entry(BusConfig.ENV_BLOCKING_PUBLISH_CONNECTIONS, "blocking-publish-connections"),
            Map.entry(BusConfig.ENV_DEAD_PEER_TIMEOUT_MS, "dead-peer-timeout"), Map.entry(BusConfig.ENV_DEDUPE_WINDOW_MS, "dedupe-window"),
            Map.entry(BusConfig.ENV_SERVER_CODE, "server-code"), Map.entry(BusConfig.ENV_PUBLISH_VIA, "publish-via"),
            Map.entry(ConsumerConfig.ENV_RETRY_BACKOFF_MS, "consumer.retry-backoff"),
            Map.entry(io.stargazer.bus.RedisUrl.ENV_CA_FILE, "ca-file"), Map.entry(io.stargazer.bus.RedisUrl.ENV_TLS_VERIFY, "tls-verify"),
            Map.entry(io.stargazer.bus.RedisUrl.ENV_REDIS_CLUSTER, "cluster"),
            Map.entry(Topology.ENV_INBOUND_STREAM, "topology.inbound-stream"),
            Map.entry(Topology.ENV_INBOUND_PARTITIONS, "topology.inbound-partitions"),
            Map.entry(Topology.ENV_INBOUND_PARTITIONS_ALSO, "topology.inbound-partitions-also"),
            Map.entry(Topology.ENV_OUTBOUND_STREAM_PREFIX, "topology.outbound-stream-prefix"),
            Map.entry(Topology.ENV_WORKER_GROUP, "topology.worker-group"),
            Map.entry(Topology.ENV_GATEWAY_GROUP_PREFIX, "topology.gateway-group-prefix"),
            Map.entry(Topology.ENV_TOOLS_STREAM, "topology.tools-stream"), Map.entry(Topology.ENV_TOOLS_GROUP, "topology.tools-group"),
            Map.entry(Topology.ENV_TOOLS_REPLY_STREAM_PREFIX, "topology.tools-reply-stream-prefix"),
            Map.entry(Topology.ENV_DEAD_LETTER_SUFFIX, "topology.dead-letter-suffix"),
            Map.entry(Topology.ENV_OUTBOX_PREFIX, "topology.outbox-prefix"), Map.entry(Topology.ENV_RELAY_GROUP, "topology.relay-group"));

    /**
     * A build() that checks settings together: its refusal names an {@code SG_*} variable, which a Spring application
     * never set, so it is rethrown naming the property.
     */
    private static <T> T build(Supplier<T> build) {
        try {
            return build.get();
        } catch (ConfigException e) {
            String property = PROPERTY_OF_SETTING.get(e.setting());
            if (property == null) throw new IllegalArgumentException("Invalid " + PREFIX + ".* properties: " + e.getMessage(), e);
            throw new IllegalArgumentException("Invalid value for property '" + PREFIX + "." + property + "': " + e.getMessage(), e);
        }
    }

    /** One setter call; the library's refusal (naming the SG_* variable) is rethrown naming the property. */
    static <T> void set(String property, T value, Consumer<T> setter) {
        if (value == null) return;
        try {
            setter.accept(value);
        } catch (RuntimeException e) {
            throw new IllegalArgumentException("Invalid value for property '" + property + "': " + e.getMessage(), e);
        }
    }

    /**
     * Once bound: the consumer properties are otherwise built only when a listener or the tools service starts, so a
     * bad one would let an application with no listener, or only {@code autoStartup = false} ones, start without
     * complaint and fail later, at {@code start(id)}.
     */
    @Override
    public void afterPropertiesSet() {
        consumer.applyToListener(ConsumerConfig.builder("stargazer-check", "stargazer-check"));
    }

    public String getUrl() { return url; }
    public void setUrl(String v) { url = v; }
    public String getCaFile() { return caFile; }
    public void setCaFile(String v) { caFile = v; }
    public String getTlsVerify() { return tlsVerify; }
    public void setTlsVerify(String v) { tlsVerify = v; }
    public Boolean getCluster() { return cluster; }
    public void setCluster(Boolean v) { cluster = v; }
    public NodeRole getRole() { return role; }
    public void setRole(NodeRole v) { role = v; }
    public String getNodeId() { return nodeId; }
    public void setNodeId(String v) { nodeId = v; }
    public List<String> getPlatforms() { return platforms; }
    public void setPlatforms(List<String> v) { platforms = v; }
    public Long getStreamMaxlen() { return streamMaxlen; }
    public void setStreamMaxlen(Long v) { streamMaxlen = v; }
    public Integer getMaxEnvelopeBytes() { return maxEnvelopeBytes; }
    public void setMaxEnvelopeBytes(Integer v) { maxEnvelopeBytes = v; }
    public Duration getBacklogCheckInterval() { return backlogCheckInterval; }
    public void setBacklogCheckInterval(Duration v) { backlogCheckInterval = v; }
    public TrimPolicy getTrimPolicy() { return trimPolicy; }
    public void setTrimPolicy(TrimPolicy v) { trimPolicy = v; }
    public Backpressure getBackpressure() { return backpressure; }
    public void setBackpressure(Backpressure v) { backpressure = v; }
    public Duration getBackpressureTimeout() { return backpressureTimeout; }
    public void setBackpressureTimeout(Duration v) { backpressureTimeout = v; }
    public Duration getPublishTimeout() { return publishTimeout; }
    public void setPublishTimeout(Duration v) { publishTimeout = v; }
    public Integer getPublishQueueLimit() { return publishQueueLimit; }
    public void setPublishQueueLimit(Integer v) { publishQueueLimit = v; }
    public Integer getBlockingPublishConnections() { return blockingPublishConnections; }
    public void setBlockingPublishConnections(Integer v) { blockingPublishConnections = v; }
    public Duration getDeadPeerTimeout() { return deadPeerTimeout; }
    public void setDeadPeerTimeout(Duration v) { deadPeerTimeout = v; }
    public Duration getDedupeWindow() { return dedupeWindow; }
    public void setDedupeWindow(Duration v) { dedupeWindow = v; }
    public io.stargazer.bus.ServerCodeMode getServerCode() { return serverCode; }
    public void setServerCode(io.stargazer.bus.ServerCodeMode v) { serverCode = v; }
    public io.stargazer.bus.PublishVia getPublishVia() { return publishVia; }
    public void setPublishVia(io.stargazer.bus.PublishVia v) { publishVia = v; }
    public boolean isEnsureStreams() { return ensureStreams; }
    public void setEnsureStreams(boolean v) { ensureStreams = v; }
    public TopologyProperties getTopology() { return topology; }
    public ConsumerProperties getConsumer() { return consumer; }
    public ToolsProperties getTools() { return tools; }
}
