package io.stargazer.bus;

import java.net.InetAddress;
import java.time.Clock;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * How one node uses the bus: its topology, role and identity, and the publishing limits. Immutable; the
 * builder checks each value as it is set and names the bad one. {@link #fromEnvironment} reads the
 * {@code SG_*} variables.
 *
 * @param topology             stream and group names
 * @param role                 decides which consumer groups {@link EventBus#ensureStreams()} creates
 * @param nodeId               this process's stable name: consumer name in every group, worker id of its reply stream
 * @param platforms            the gateway platforms to provision (default discord, matrix, webchat)
 * @param streamMaxlen         approximate cap of each stream (default 100 000; values below 1000 are raised to 1000)
 * @param maxEnvelopeBytes     largest encoded envelope accepted for publishing (default 1 MiB)
 * @param backlogCheckInterval how often, at most, one stream's backlog is checked while it is published to
 * @param publishBatchMax      most entries one coalesced server-side publish batch carries
 * @param clock                time source for checks and deadlines (tests inject a fixed one)
 * @param trimPolicy           SAFE (default: never trim what a group has not acknowledged) or EVICT (the original's MAXLEN)
 * @param backpressure         what publishing to a full SAFE stream does: BLOCK (default) or REJECT
 * @param backpressureTimeout  how long a BLOCKed publish waits for room before it fails
 * @param publishTimeout       how long a publish may take, counted from the call: it completes (stored, or failed)
 *                             within this time, waiting for room and in the queue included
 * @param publishQueueLimit    most publishes waiting per stream to be sent; past it a publish fails at once
 * @param deadPeerTimeout      a connection that answers nothing for this long is taken as dead and replaced
 */
public record BusConfig(
        Topology topology,
        NodeRole role,
        String nodeId,
        List<String> platforms,
        long streamMaxlen,
        int maxEnvelopeBytes,
        Duration backlogCheckInterval,
        int publishBatchMax,
        Clock clock,
        TrimPolicy trimPolicy,
        Backpressure backpressure,
        Duration backpressureTimeout,
        Duration publishTimeout,
        int publishQueueLimit,
        Duration deadPeerTimeout) {

    public static final String ENV_NODE_ROLE = "SG_NODE_ROLE";
    public static final String ENV_NODE_ID = "SG_NODE_ID";
    public static final String ENV_PLATFORMS = "SG_PLATFORMS";
    public static final String ENV_STREAM_MAXLEN = "SG_STREAM_MAXLEN";
    public static final String ENV_MAX_ENVELOPE_BYTES = "SG_MAX_ENVELOPE_BYTES";
    public static final String ENV_BACKLOG_CHECK_MS = "SG_BACKLOG_CHECK_MS";
    public static final String ENV_TRIM_POLICY = "SG_TRIM_POLICY";
    public static final String ENV_BACKPRESSURE = "SG_BACKPRESSURE";
    public static final String ENV_BACKPRESSURE_TIMEOUT_MS = "SG_BACKPRESSURE_TIMEOUT_MS";
    public static final String ENV_PUBLISH_TIMEOUT_MS = "SG_PUBLISH_TIMEOUT_MS";
    public static final String ENV_PUBLISH_QUEUE_LIMIT = "SG_PUBLISH_QUEUE_LIMIT";
    public static final String ENV_DEAD_PEER_TIMEOUT_MS = "SG_DEAD_PEER_TIMEOUT_MS";

    public static final Duration DEFAULT_PUBLISH_TIMEOUT = Duration.ofSeconds(10);
    public static final int DEFAULT_PUBLISH_QUEUE_LIMIT = 10_000;
    public static final Duration DEFAULT_DEAD_PEER_TIMEOUT = Duration.ofSeconds(5);

    public static final long MIN_STREAM_MAXLEN = 1000;
    public static final List<String> DEFAULT_PLATFORMS = List.of("discord", "matrix", "webchat");

    public BusConfig {
        if (topology == null) throw new ConfigException("topology", "must be set");
        if (role == null) throw new ConfigException(ENV_NODE_ROLE, "must be set");
        Topology.checkName(ENV_NODE_ID, nodeId);
        platforms = List.copyOf(platforms);
        for (String p : platforms) Topology.checkPlatform(ENV_PLATFORMS, p);
        if (streamMaxlen < MIN_STREAM_MAXLEN) {
            throw new ConfigException(ENV_STREAM_MAXLEN, "'" + streamMaxlen + "' is below the floor of " + MIN_STREAM_MAXLEN);
        }
        Settings.positive(ENV_MAX_ENVELOPE_BYTES, maxEnvelopeBytes);
        Settings.positive(ENV_BACKLOG_CHECK_MS, backlogCheckInterval);
        Settings.positive("publishBatchMax", publishBatchMax);
        if (clock == null) throw new ConfigException("clock", "must be set");
        if (trimPolicy == null) throw new ConfigException(ENV_TRIM_POLICY, "must be set");
        if (backpressure == null) throw new ConfigException(ENV_BACKPRESSURE, "must be set");
        Settings.positive(ENV_BACKPRESSURE_TIMEOUT_MS, backpressureTimeout);
        Settings.positive(ENV_PUBLISH_TIMEOUT_MS, publishTimeout);
        Settings.positive(ENV_PUBLISH_QUEUE_LIMIT, publishQueueLimit);
        Settings.positive(ENV_DEAD_PEER_TIMEOUT_MS, deadPeerTimeout);
    }

    public static Builder builder() {
        return new Builder();
    }

    public Builder toBuilder() {
        return new Builder().topology(topology).role(role).nodeId(nodeId).platforms(platforms).streamMaxlen(streamMaxlen)
                .maxEnvelopeBytes(maxEnvelopeBytes).backlogCheckInterval(backlogCheckInterval)
                .publishBatchMax(publishBatchMax).clock(clock).trimPolicy(trimPolicy).backpressure(backpressure)
                .backpressureTimeout(backpressureTimeout).publishTimeout(publishTimeout).publishQueueLimit(publishQueueLimit)
                .deadPeerTimeout(deadPeerTimeout);
    }

    public static BusConfig fromEnvironment() {
        return fromEnvironment(System.getenv());
    }

    /** Reads {@code SG_*} settings from {@code env}; unset ones take their defaults. */
    public static BusConfig fromEnvironment(Map<String, String> env) {
        Builder b = builder().topology(Topology.fromEnvironment(env));
        if (env.containsKey(ENV_NODE_ROLE)) b.role(NodeRole.parse(ENV_NODE_ROLE, env.get(ENV_NODE_ROLE)));
        if (env.containsKey(ENV_NODE_ID)) b.nodeId(env.get(ENV_NODE_ID));
        if (env.containsKey(ENV_PLATFORMS)) b.platforms(parsePlatforms(env.get(ENV_PLATFORMS)));
        if (env.containsKey(ENV_STREAM_MAXLEN)) b.streamMaxlen(Settings.parseLong(ENV_STREAM_MAXLEN, env.get(ENV_STREAM_MAXLEN)));
        if (env.containsKey(ENV_MAX_ENVELOPE_BYTES)) {
            b.maxEnvelopeBytes(Settings.parseInt(ENV_MAX_ENVELOPE_BYTES, env.get(ENV_MAX_ENVELOPE_BYTES)));
        }
        if (env.containsKey(ENV_BACKLOG_CHECK_MS)) {
            b.backlogCheckInterval(Settings.parseMillis(ENV_BACKLOG_CHECK_MS, env.get(ENV_BACKLOG_CHECK_MS)));
        }
        if (env.containsKey(ENV_TRIM_POLICY)) b.trimPolicy(TrimPolicy.parse(ENV_TRIM_POLICY, env.get(ENV_TRIM_POLICY)));
        if (env.containsKey(ENV_BACKPRESSURE)) b.backpressure(Backpressure.parse(ENV_BACKPRESSURE, env.get(ENV_BACKPRESSURE)));
        if (env.containsKey(ENV_BACKPRESSURE_TIMEOUT_MS)) {
            b.backpressureTimeout(Settings.parseMillis(ENV_BACKPRESSURE_TIMEOUT_MS, env.get(ENV_BACKPRESSURE_TIMEOUT_MS)));
        }
        if (env.containsKey(ENV_PUBLISH_TIMEOUT_MS)) {
            b.publishTimeout(Settings.parseMillis(ENV_PUBLISH_TIMEOUT_MS, env.get(ENV_PUBLISH_TIMEOUT_MS)));
        }
        if (env.containsKey(ENV_PUBLISH_QUEUE_LIMIT)) {
            b.publishQueueLimit(Settings.parseInt(ENV_PUBLISH_QUEUE_LIMIT, env.get(ENV_PUBLISH_QUEUE_LIMIT)));
        }
        if (env.containsKey(ENV_DEAD_PEER_TIMEOUT_MS)) {
            b.deadPeerTimeout(Settings.parseMillis(ENV_DEAD_PEER_TIMEOUT_MS, env.get(ENV_DEAD_PEER_TIMEOUT_MS)));
        }
        return b.build();
    }

    /** {@code "discord, matrix"} to a checked list; empty items are refused. */
    public static List<String> parsePlatforms(String csv) {
        List<String> out = new ArrayList<>();
        for (String p : csv.split(",", -1)) {
            out.add(Topology.checkPlatform(ENV_PLATFORMS, p.trim()));
        }
        return out;
    }

    /** Host name and process id: unique per process on a host, stable for its life. */
    public static String defaultNodeId() {
        String host;
        try {
            host = InetAddress.getLocalHost().getHostName();
        } catch (Exception e) {
            host = "node";
        }
        host = host.replaceAll("[^A-Za-z0-9_.-]", "_");
        return host + "-" + ProcessHandle.current().pid();
    }

    /** Collects settings; each setter refuses a bad value at once, naming it. */
    public static final class Builder {
        private Topology topology = Topology.defaults();
        private NodeRole role = NodeRole.STANDALONE;
        private String nodeId;
        private List<String> platforms = DEFAULT_PLATFORMS;
        private long streamMaxlen = 100_000;
        private int maxEnvelopeBytes = 1 << 20;
        private Duration backlogCheckInterval = Duration.ofSeconds(5);
        private int publishBatchMax = 256;
        private Clock clock = Clock.systemUTC();
        private TrimPolicy trimPolicy = TrimPolicy.SAFE;
        private Backpressure backpressure = Backpressure.BLOCK;
        private Duration backpressureTimeout = Duration.ofSeconds(10);
        private Duration publishTimeout = DEFAULT_PUBLISH_TIMEOUT;
        private int publishQueueLimit = DEFAULT_PUBLISH_QUEUE_LIMIT;
        private Duration deadPeerTimeout = DEFAULT_DEAD_PEER_TIMEOUT;

        private Builder() {
        }

        public Builder topology(Topology v) { this.topology = v; return this; }
        public Builder role(NodeRole v) { this.role = v; return this; }
        public Builder nodeId(String v) { this.nodeId = Topology.checkName(ENV_NODE_ID, v); return this; }

        public Builder platforms(List<String> v) {
            for (String p : v) Topology.checkPlatform(ENV_PLATFORMS, p);
            this.platforms = List.copyOf(v);
            return this;
        }

        /**
         * The approximate cap of each stream. As in the original, a value below 1000 is raised to 1000 (a tiny
         * cap with approximate trimming would evict nearly everything); a negative one is refused.
         */
        public Builder streamMaxlen(long v) {
            if (v < 0) throw new ConfigException(ENV_STREAM_MAXLEN, "'" + v + "' must not be negative");
            this.streamMaxlen = Math.max(MIN_STREAM_MAXLEN, v);
            return this;
        }

        public Builder maxEnvelopeBytes(int v) { this.maxEnvelopeBytes = Settings.positive(ENV_MAX_ENVELOPE_BYTES, v); return this; }
        public Builder backlogCheckInterval(Duration v) { this.backlogCheckInterval = Settings.positive(ENV_BACKLOG_CHECK_MS, v); return this; }
        public Builder publishBatchMax(int v) { this.publishBatchMax = Settings.positive("publishBatchMax", v); return this; }

        public Builder clock(Clock v) {
            if (v == null) throw new ConfigException("clock", "must be set");
            this.clock = v;
            return this;
        }

        public Builder trimPolicy(TrimPolicy v) {
            if (v == null) throw new ConfigException(ENV_TRIM_POLICY, "must be set");
            this.trimPolicy = v;
            return this;
        }

        public Builder backpressure(Backpressure v) {
            if (v == null) throw new ConfigException(ENV_BACKPRESSURE, "must be set");
            this.backpressure = v;
            return this;
        }

        public Builder backpressureTimeout(Duration v) {
            this.backpressureTimeout = Settings.positive(ENV_BACKPRESSURE_TIMEOUT_MS, v);
            return this;
        }

        public Builder publishTimeout(Duration v) { this.publishTimeout = Settings.positive(ENV_PUBLISH_TIMEOUT_MS, v); return this; }
        public Builder publishQueueLimit(int v) { this.publishQueueLimit = Settings.positive(ENV_PUBLISH_QUEUE_LIMIT, v); return this; }
        public Builder deadPeerTimeout(Duration v) { this.deadPeerTimeout = Settings.positive(ENV_DEAD_PEER_TIMEOUT_MS, v); return this; }

        public BusConfig build() {
            return new BusConfig(topology, role, nodeId == null ? defaultNodeId() : nodeId, platforms, streamMaxlen,
                    maxEnvelopeBytes, backlogCheckInterval, publishBatchMax, clock, trimPolicy, backpressure, backpressureTimeout,
                    publishTimeout, publishQueueLimit, deadPeerTimeout);
        }
    }
}
