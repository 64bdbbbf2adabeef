package io.stargazer.bus;

import io.stargazer.bus.internal.Settings;
import java.net.InetAddress;
import java.time.Clock;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * How one node uses the bus: its topology, role and identity, and the publishing limits. Immutable, made by
 * {@link #builder()} (every setting has a default) or {@link #fromEnvironment(Map)} (the {@code SG_*} variables of a
 * map the caller gives; nothing else reads the environment). Each builder method checks its value when it is set and
 * refuses a bad one with a {@link ConfigException} naming the setting (its variable when it has one) and the value.
 *
 * <table>
 *   <caption>Settings</caption>
 *   <tr><th>builder method</th><th>variable</th><th>default</th><th>accepted</th><th>meaning</th></tr>
 *   <tr><td>{@code topology}</td><td>{@code SG_INBOUND_STREAM} ... (see {@link Topology})</td>
 *       <td>{@link #DEFAULT_TOPOLOGY}</td><td>not null</td><td>stream and group names</td></tr>
 *   <tr><td>{@code role}</td><td>{@code SG_NODE_ROLE}</td><td>{@link #DEFAULT_ROLE} ({@code standalone})</td>
 *       <td>gateway, worker, standalone, tools, relay</td><td>which groups {@link EventBus#ensureStreams()} creates</td></tr>
 *   <tr><td>{@code nodeId}</td><td>{@code SG_NODE_ID}</td><td>{@link #defaultNodeId()}: host name and pid</td>
 *       <td>no white space or control characters</td><td>consumer name in every group, worker id of its reply stream</td></tr>
 *   <tr><td>{@code platforms}</td><td>{@code SG_PLATFORMS}</td><td>{@link #DEFAULT_PLATFORMS}</td>
 *       <td>letters, digits, {@code -}, {@code _}</td><td>the gateway platforms to provision</td></tr>
 *   <tr><td>{@code streamMaxlen}</td><td>{@code SG_STREAM_MAXLEN}</td><td>{@value #DEFAULT_STREAM_MAXLEN}</td>
 *       <td>&ge; 0; below {@value #MIN_STREAM_MAXLEN} raised to it</td><td>approximate cap of each stream</td></tr>
 *   <tr><td>{@code maxEnvelopeBytes}</td><td>{@code SG_MAX_ENVELOPE_BYTES}</td><td>{@value #DEFAULT_MAX_ENVELOPE_BYTES}</td>
 *       <td>&gt; 0</td><td>largest encoded envelope accepted for publishing</td></tr>
 *   <tr><td>{@code backlogCheckInterval}</td><td>{@code SG_BACKLOG_CHECK_MS}</td>
 *       <td>{@link #DEFAULT_BACKLOG_CHECK_INTERVAL} (5 s)</td><td>&gt; 0; above {@link #MAX_DURATION} lowered to it</td>
 *       <td>how often, at most, one stream's backlog is checked while it is published to</td></tr>
 *   <tr><td>{@code publishBatchMax}</td><td></td><td>{@value #DEFAULT_PUBLISH_BATCH_MAX}</td><td>&gt; 0</td>
 *       <td>most entries one coalesced server-side publish carries</td></tr>
 *   <tr><td>{@code clock}</td><td></td><td>{@link #DEFAULT_CLOCK} (system UTC)</td><td>not null</td>
 *       <td>wall-clock time for deadlines written on the wire and checks (tests inject a fixed one)</td></tr>
 *   <tr><td>{@code trimPolicy}</td><td>{@code SG_TRIM_POLICY}</td><td>{@link #DEFAULT_TRIM_POLICY} ({@code safe})</td>
 *       <td>safe, evict</td><td>SAFE: never trim what a group has not acknowledged; EVICT: the original's MAXLEN</td></tr>
 *   <tr><td>{@code backpressure}</td><td>{@code SG_BACKPRESSURE}</td><td>{@link #DEFAULT_BACKPRESSURE} ({@code block})</td>
 *       <td>block, reject</td><td>what publishing to a full SAFE stream does</td></tr>
 *   <tr><td>{@code backpressureTimeout}</td><td>{@code SG_BACKPRESSURE_TIMEOUT_MS}</td>
 *       <td>{@link #DEFAULT_BACKPRESSURE_TIMEOUT} (10 s)</td><td>&gt; 0; above {@link #MAX_DURATION} lowered to it</td>
 *       <td>how long a BLOCKed publish waits for room before it fails</td></tr>
 *   <tr><td>{@code publishTimeout}</td><td>{@code SG_PUBLISH_TIMEOUT_MS}</td><td>{@link #DEFAULT_PUBLISH_TIMEOUT} (10 s)</td>
 *       <td>&gt; 0; above {@link #MAX_DURATION} lowered to it</td><td>how long a publish may take, counted from the call (waiting for room and in the queue
 *       included)</td></tr>
 *   <tr><td>{@code publishQueueLimit}</td><td>{@code SG_PUBLISH_QUEUE_LIMIT}</td>
 *       <td>{@value #DEFAULT_PUBLISH_QUEUE_LIMIT}</td><td>&gt; 0</td>
 *       <td>most publishes waiting per stream to be sent; past it a publish fails at once</td></tr>
 *   <tr><td>{@code blockingPublishConnections}</td><td>{@code SG_BLOCKING_PUBLISH_CONNECTIONS}</td>
 *       <td>{@value #DEFAULT_BLOCKING_PUBLISH_CONNECTIONS}</td><td>&ge; 0</td>
 *       <td>connections of their own that blocking publishes use, each written and read on the publishing thread
 *       (a single server over plain TCP; 0: every publish goes through the shared connection); the blocking publishes
 *       to one stream made at the same moment go out together on one of them. A blocking publish that finds none
 *       free, carries a dedupe key or retries goes through the shared connection (docs/reliability.md)</td></tr>
 *   <tr><td>{@code deadPeerTimeout}</td><td>{@code SG_DEAD_PEER_TIMEOUT_MS}</td>
 *       <td>{@link #DEFAULT_DEAD_PEER_TIMEOUT} (5 s)</td><td>&gt; 0; above {@link #MAX_DURATION} lowered to it</td>
 *       <td>a connection that answers nothing for this long is taken as dead and replaced</td></tr>
 *   <tr><td>{@code dedupeWindow}</td><td>{@code SG_DEDUPE_WINDOW_MS}</td>
 *       <td>{@link #DEFAULT_DEDUPE_WINDOW} (10 min)</td><td>{@link #MIN_DEDUPE_WINDOW} (1 ms) to {@link #MAX_DEDUPE_WINDOW} (365 days), whole milliseconds</td>
 *       <td>how long a publish's dedupe key is remembered (at least this, at most twice this: docs/once.md): a second publish with it adds nothing; every publisher of a stream must use the same window</td></tr>
 *   <tr><td>{@code serverCode}</td><td>{@code SG_SERVER_CODE}</td><td>{@link #DEFAULT_SERVER_CODE} ({@code auto})</td>
 *       <td>auto, functions, scripts</td><td>run the bus's server-side logic as the {@code stargazer} functions library
 *       (FCALL, Redis 7+, loaded by {@code stargazer provision}) or as scripts (EVAL); auto: functions when the
 *       library is loaded at this version (docs/functions.md); functions is refused with {@code SG_TRIM_POLICY=evict}</td></tr>
 *   <tr><td>{@code publishVia}</td><td>{@code SG_PUBLISH_VIA}</td><td>{@link #DEFAULT_PUBLISH_VIA} ({@code direct})</td>
 *       <td>direct, relay</td><td>relay: every write to a stream another role reads goes to this node's outbox
 *       ({@link Topology#outboxFor}) and the relay adds it to its target, so the role's ACL user needs no write on
 *       shared streams (docs/functions.md, "Relay mode"); a publish then completes with the outbox entry's id</td></tr>
 * </table>
 *
 * <p>Durations read from variables are whole milliseconds. A duration longer than {@link #MAX_DURATION} (100 years), such
 * as {@code Duration.ofSeconds(Long.MAX_VALUE)} for "forever", is accepted and taken as {@link #MAX_DURATION}; the
 * getters return it ({@code dedupeWindow} excepted, whose bounds are stated). The README's Settings table lists the
 * same variables.
 */
public final class BusConfig {

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
    public static final String ENV_BLOCKING_PUBLISH_CONNECTIONS = "SG_BLOCKING_PUBLISH_CONNECTIONS";
    public static final String ENV_DEAD_PEER_TIMEOUT_MS = "SG_DEAD_PEER_TIMEOUT_MS";
    public static final String ENV_DEDUPE_WINDOW_MS = "SG_DEDUPE_WINDOW_MS";
    public static final String ENV_SERVER_CODE = "SG_SERVER_CODE";
    public static final String ENV_PUBLISH_VIA = "SG_PUBLISH_VIA";

    public static final Topology DEFAULT_TOPOLOGY = Topology.defaults();
    public static final NodeRole DEFAULT_ROLE = NodeRole.STANDALONE;
    public static final List<String> DEFAULT_PLATFORMS = List.of("discord", "matrix", "webchat");
    public static final long DEFAULT_STREAM_MAXLEN = 100_000;
    /** The floor of {@code streamMaxlen}: a tiny cap with approximate trimming would evict nearly everything. */
    public static final long MIN_STREAM_MAXLEN = 1000;
    public static final int DEFAULT_MAX_ENVELOPE_BYTES = 1 << 20;
    public static final Duration DEFAULT_BACKLOG_CHECK_INTERVAL = Duration.ofSeconds(5);
    public static final int DEFAULT_PUBLISH_BATCH_MAX = 256;
    public static final Clock DEFAULT_CLOCK = Clock.systemUTC();
    public static final TrimPolicy DEFAULT_TRIM_POLICY = TrimPolicy.SAFE;
    public static final Backpressure DEFAULT_BACKPRESSURE = Backpressure.BLOCK;
    public static final Duration DEFAULT_BACKPRESSURE_TIMEOUT = Duration.ofSeconds(10);
    public static final Duration DEFAULT_PUBLISH_TIMEOUT = Duration.ofSeconds(10);
    public static final int DEFAULT_PUBLISH_QUEUE_LIMIT = 10_000;
    /**
     * One per publishing thread for up to 16 threads. Fewer help little: while any thread's publish waits on the shared
     * connection, the order guard sends every blocking publish to that stream the shared way (docs/benchmarks.md).
     */
    public static final int DEFAULT_BLOCKING_PUBLISH_CONNECTIONS = 16;
    public static final Duration DEFAULT_DEAD_PEER_TIMEOUT = Duration.ofSeconds(5);
    public static final Duration DEFAULT_DEDUPE_WINDOW = Duration.ofMinutes(10);
    /** The shortest {@code dedupeWindow}: the scripts count it in whole milliseconds, and divide by it. */
    public static final Duration MIN_DEDUPE_WINDOW = Duration.ofMillis(1);
    /**
     * The longest {@code dedupeWindow}. The scripts compute periods and expiry times from it in Lua numbers (doubles),
     * exact below 2^53 ms; a week keeps far below that, and a key remembered for up to two weeks is more than any retry needs.
     */
    public static final Duration MAX_DEDUPE_WINDOW = Duration.ofDays(365);
    /**
     * The longest value of a duration setting ({@code dedupeWindow} has bounds of its own): 100 years. A longer one,
     * such as {@code Duration.ofSeconds(Long.MAX_VALUE)} for "forever", is accepted and taken as this, so that no
     * deadline computed from it (in nanoseconds from now) overflows.
     */
    public static final Duration MAX_DURATION = Duration.ofDays(36_500);
    public static final ServerCodeMode DEFAULT_SERVER_CODE = ServerCodeMode.AUTO;
    public static final PublishVia DEFAULT_PUBLISH_VIA = PublishVia.DIRECT;

    private final Topology topology;
    private final NodeRole role;
    private final String nodeId;
    private final List<String> platforms;
    private final long streamMaxlen;
    private final int maxEnvelopeBytes;
    private final Duration backlogCheckInterval;
    private final int publishBatchMax;
    private final Clock clock;
    private final TrimPolicy trimPolicy;
    private final Backpressure backpressure;
    private final Duration backpressureTimeout;
    private final Duration publishTimeout;
    private final int publishQueueLimit;
    private final int blockingPublishConnections;
    private final Duration deadPeerTimeout;
    private final Duration dedupeWindow;
    private final ServerCodeMode serverCode;
    private final PublishVia publishVia;

    /** Every value was checked by the builder's setter when it was set. */
    private BusConfig(Builder b) {
        this.topology = b.topology;
        this.role = b.role;
        this.nodeId = b.nodeId == null ? defaultNodeId() : b.nodeId;
        this.platforms = b.platforms;
        this.streamMaxlen = b.streamMaxlen;
        this.maxEnvelopeBytes = b.maxEnvelopeBytes;
        this.backlogCheckInterval = b.backlogCheckInterval;
        this.publishBatchMax = b.publishBatchMax;
        this.clock = b.clock;
        this.trimPolicy = b.trimPolicy;
        this.backpressure = b.backpressure;
        this.backpressureTimeout = b.backpressureTimeout;
        this.publishTimeout = b.publishTimeout;
        this.publishQueueLimit = b.publishQueueLimit;
        this.blockingPublishConnections = b.blockingPublishConnections;
        this.deadPeerTimeout = b.deadPeerTimeout;
        this.dedupeWindow = b.dedupeWindow;
        this.serverCode = b.serverCode;
        this.publishVia = b.publishVia;
    }

    public static Builder builder() {
        return new Builder();
    }

    /** A builder holding every setting of this config, to change some of them. */
    public Builder toBuilder() {
        Builder b = new Builder();
        b.topology = topology;
        b.role = role;
        b.nodeId = nodeId;
        b.platforms = platforms;
        b.streamMaxlen = streamMaxlen;
        b.maxEnvelopeBytes = maxEnvelopeBytes;
        b.backlogCheckInterval = backlogCheckInterval;
        b.publishBatchMax = publishBatchMax;
        b.clock = clock;
        b.trimPolicy = trimPolicy;
        b.backpressure = backpressure;
        b.backpressureTimeout = backpressureTimeout;
        b.publishTimeout = publishTimeout;
        b.publishQueueLimit = publishQueueLimit;
        b.blockingPublishConnections = blockingPublishConnections;
        b.deadPeerTimeout = deadPeerTimeout;
        b.dedupeWindow = dedupeWindow;
        b.serverCode = serverCode;
        b.publishVia = publishVia;
        return b;
    }

    /** {@link #fromEnvironment(Map)} of the process environment. */
    public static BusConfig fromEnvironment() {
        return fromEnvironment(System.getenv());
    }

    /** Reads the {@code SG_*} settings of {@code env} (the table above, and {@link Topology}'s); unset ones take their defaults. */
    public static BusConfig fromEnvironment(Map<String, String> env) {
        return builder().fromEnvironment(env).build();
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

    public Topology topology() { return topology; }
    public NodeRole role() { return role; }
    public String nodeId() { return nodeId; }
    public List<String> platforms() { return platforms; }
    public long streamMaxlen() { return streamMaxlen; }
    public int maxEnvelopeBytes() { return maxEnvelopeBytes; }
    public Duration backlogCheckInterval() { return backlogCheckInterval; }
    public int publishBatchMax() { return publishBatchMax; }
    public Clock clock() { return clock; }
    public TrimPolicy trimPolicy() { return trimPolicy; }
    public Backpressure backpressure() { return backpressure; }
    public Duration backpressureTimeout() { return backpressureTimeout; }
    public Duration publishTimeout() { return publishTimeout; }
    public int publishQueueLimit() { return publishQueueLimit; }
    public int blockingPublishConnections() { return blockingPublishConnections; }
    public Duration deadPeerTimeout() { return deadPeerTimeout; }
    public Duration dedupeWindow() { return dedupeWindow; }
    public ServerCodeMode serverCode() { return serverCode; }
    public PublishVia publishVia() { return publishVia; }

    @Override
    public boolean equals(Object o) {
        return o instanceof BusConfig c && topology.equals(c.topology) && role == c.role && nodeId.equals(c.nodeId)
                && platforms.equals(c.platforms) && streamMaxlen == c.streamMaxlen && maxEnvelopeBytes == c.maxEnvelopeBytes
                && backlogCheckInterval.equals(c.backlogCheckInterval) && publishBatchMax == c.publishBatchMax
                && clock.equals(c.clock) && trimPolicy == c.trimPolicy && backpressure == c.backpressure
                && backpressureTimeout.equals(c.backpressureTimeout) && publishTimeout.equals(c.publishTimeout)
                && publishQueueLimit == c.publishQueueLimit && blockingPublishConnections == c.blockingPublishConnections
                && deadPeerTimeout.equals(c.deadPeerTimeout)
                && dedupeWindow.equals(c.dedupeWindow) && serverCode == c.serverCode && publishVia == c.publishVia;
    }

    @Override
    public int hashCode() {
        return Objects.hash(topology, role, nodeId, platforms, streamMaxlen, maxEnvelopeBytes, backlogCheckInterval,
                publishBatchMax, clock, trimPolicy, backpressure, backpressureTimeout, publishTimeout, publishQueueLimit,
                blockingPublishConnections, deadPeerTimeout, dedupeWindow, serverCode, publishVia);
    }

    @Override
    public String toString() {
        return "BusConfig{topology=" + topology + ", role=" + role.wireName() + ", nodeId=" + nodeId + ", platforms=" + platforms
                + ", streamMaxlen=" + streamMaxlen + ", maxEnvelopeBytes=" + maxEnvelopeBytes + ", backlogCheckInterval="
                + backlogCheckInterval + ", publishBatchMax=" + publishBatchMax + ", clock=" + clock + ", trimPolicy=" + trimPolicy
                + ", backpressure=" + backpressure + ", backpressureTimeout=" + backpressureTimeout + ", publishTimeout="
                + publishTimeout + ", publishQueueLimit=" + publishQueueLimit
                + ", blockingPublishConnections=" + blockingPublishConnections + ", deadPeerTimeout=" + deadPeerTimeout + ", dedupeWindow=" + dedupeWindow
                + ", serverCode=" + serverCode + ", publishVia=" + publishVia.wireName() + "}";
    }

    /** Collects settings, starting from the defaults; each setter refuses a bad value at once, naming it. */
    public static final class Builder {
        private Topology topology = DEFAULT_TOPOLOGY;
        private NodeRole role = DEFAULT_ROLE;
        private String nodeId;
        private List<String> platforms = DEFAULT_PLATFORMS;
        private long streamMaxlen = DEFAULT_STREAM_MAXLEN;
        private int maxEnvelopeBytes = DEFAULT_MAX_ENVELOPE_BYTES;
        private Duration backlogCheckInterval = DEFAULT_BACKLOG_CHECK_INTERVAL;
        private int publishBatchMax = DEFAULT_PUBLISH_BATCH_MAX;
        private Clock clock = DEFAULT_CLOCK;
        private TrimPolicy trimPolicy = DEFAULT_TRIM_POLICY;
        private Backpressure backpressure = DEFAULT_BACKPRESSURE;
        private Duration backpressureTimeout = DEFAULT_BACKPRESSURE_TIMEOUT;
        private Duration publishTimeout = DEFAULT_PUBLISH_TIMEOUT;
        private int publishQueueLimit = DEFAULT_PUBLISH_QUEUE_LIMIT;
        private int blockingPublishConnections = DEFAULT_BLOCKING_PUBLISH_CONNECTIONS;
        private Duration deadPeerTimeout = DEFAULT_DEAD_PEER_TIMEOUT;
        private Duration dedupeWindow = DEFAULT_DEDUPE_WINDOW;
        private ServerCodeMode serverCode = DEFAULT_SERVER_CODE;
        private PublishVia publishVia = DEFAULT_PUBLISH_VIA;

        private Builder() {
        }

        /**
         * Takes the {@code SG_*} settings present in {@code env}, the topology's names included; settings absent (or blank) in
         * {@code env} keep their current value.
         */
        public Builder fromEnvironment(Map<String, String> env) {
            topology(topology.toBuilder().fromEnvironment(env).build());
            String v;
            if ((v = Settings.env(env, ENV_NODE_ROLE)) != null) role(NodeRole.parse(ENV_NODE_ROLE, v));
            if ((v = Settings.env(env, ENV_NODE_ID)) != null) nodeId(v);
            if ((v = Settings.env(env, ENV_PLATFORMS)) != null) platforms(parsePlatforms(v));
            if ((v = Settings.env(env, ENV_STREAM_MAXLEN)) != null) streamMaxlen(Settings.parseLong(ENV_STREAM_MAXLEN, v));
            if ((v = Settings.env(env, ENV_MAX_ENVELOPE_BYTES)) != null) maxEnvelopeBytes(Settings.parseInt(ENV_MAX_ENVELOPE_BYTES, v));
            if ((v = Settings.env(env, ENV_BACKLOG_CHECK_MS)) != null) backlogCheckInterval(Settings.parseMillis(ENV_BACKLOG_CHECK_MS, v));
            if ((v = Settings.env(env, ENV_TRIM_POLICY)) != null) trimPolicy(TrimPolicy.parse(ENV_TRIM_POLICY, v));
            if ((v = Settings.env(env, ENV_BACKPRESSURE)) != null) backpressure(Backpressure.parse(ENV_BACKPRESSURE, v));
            if ((v = Settings.env(env, ENV_BACKPRESSURE_TIMEOUT_MS)) != null) {
                backpressureTimeout(Settings.parseMillis(ENV_BACKPRESSURE_TIMEOUT_MS, v));
            }
            if ((v = Settings.env(env, ENV_PUBLISH_TIMEOUT_MS)) != null) publishTimeout(Settings.parseMillis(ENV_PUBLISH_TIMEOUT_MS, v));
            if ((v = Settings.env(env, ENV_PUBLISH_QUEUE_LIMIT)) != null) publishQueueLimit(Settings.parseInt(ENV_PUBLISH_QUEUE_LIMIT, v));
            if ((v = Settings.env(env, ENV_BLOCKING_PUBLISH_CONNECTIONS)) != null) {
                blockingPublishConnections(Settings.parseInt(ENV_BLOCKING_PUBLISH_CONNECTIONS, v));
            }
            if ((v = Settings.env(env, ENV_DEAD_PEER_TIMEOUT_MS)) != null) deadPeerTimeout(Settings.parseMillis(ENV_DEAD_PEER_TIMEOUT_MS, v));
            if ((v = Settings.env(env, ENV_DEDUPE_WINDOW_MS)) != null) dedupeWindow(Settings.parseMillis(ENV_DEDUPE_WINDOW_MS, v));
            if ((v = Settings.env(env, ENV_SERVER_CODE)) != null) serverCode(ServerCodeMode.parse(ENV_SERVER_CODE, v));
            if ((v = Settings.env(env, ENV_PUBLISH_VIA)) != null) publishVia(PublishVia.parse(ENV_PUBLISH_VIA, v));
            return this;
        }

        public Builder topology(Topology v) { this.topology = Settings.present("topology", v); return this; }
        public Builder role(NodeRole v) { this.role = Settings.present(ENV_NODE_ROLE, v); return this; }
        public Builder nodeId(String v) { this.nodeId = Topology.checkName(ENV_NODE_ID, v); return this; }

        public Builder platforms(List<String> v) {
            for (String p : Settings.present(ENV_PLATFORMS, v)) Topology.checkPlatform(ENV_PLATFORMS, p);
            this.platforms = List.copyOf(v);
            return this;
        }

        /**
         * The approximate cap of each stream. As in the original, a value below {@value #MIN_STREAM_MAXLEN} is raised
         * to it; a negative one is refused.
         */
        public Builder streamMaxlen(long v) {
            if (v < 0) throw new ConfigException(ENV_STREAM_MAXLEN, "'" + v + "' must not be negative");
            this.streamMaxlen = Math.max(MIN_STREAM_MAXLEN, v);
            return this;
        }

        public Builder maxEnvelopeBytes(int v) { this.maxEnvelopeBytes = Settings.positive(ENV_MAX_ENVELOPE_BYTES, v); return this; }
        public Builder backlogCheckInterval(Duration v) { this.backlogCheckInterval = Settings.positiveSaturated(ENV_BACKLOG_CHECK_MS, v, MAX_DURATION); return this; }
        public Builder publishBatchMax(int v) { this.publishBatchMax = Settings.positive("publishBatchMax", v); return this; }
        public Builder clock(Clock v) { this.clock = Settings.present("clock", v); return this; }
        public Builder trimPolicy(TrimPolicy v) { this.trimPolicy = Settings.present(ENV_TRIM_POLICY, v); return this; }
        public Builder backpressure(Backpressure v) { this.backpressure = Settings.present(ENV_BACKPRESSURE, v); return this; }
        public Builder backpressureTimeout(Duration v) { this.backpressureTimeout = Settings.positiveSaturated(ENV_BACKPRESSURE_TIMEOUT_MS, v, MAX_DURATION); return this; }
        public Builder publishTimeout(Duration v) { this.publishTimeout = Settings.positiveSaturated(ENV_PUBLISH_TIMEOUT_MS, v, MAX_DURATION); return this; }
        public Builder publishQueueLimit(int v) { this.publishQueueLimit = Settings.positive(ENV_PUBLISH_QUEUE_LIMIT, v); return this; }
        public Builder blockingPublishConnections(int v) {
            this.blockingPublishConnections = Settings.notNegative(ENV_BLOCKING_PUBLISH_CONNECTIONS, v);
            return this;
        }
        public Builder deadPeerTimeout(Duration v) { this.deadPeerTimeout = Settings.positiveSaturated(ENV_DEAD_PEER_TIMEOUT_MS, v, MAX_DURATION); return this; }
        public Builder dedupeWindow(Duration v) {
            Settings.between(ENV_DEDUPE_WINDOW_MS, v, MIN_DEDUPE_WINDOW, MAX_DEDUPE_WINDOW);
            // The scripts (and other languages' publishers, docs/once.md) count it in whole milliseconds: a fraction would
            // be dropped there while this config reported it, and publishers of one stream must agree on the window.
            if (v.toNanos() % 1_000_000 != 0) {
                throw new ConfigException(ENV_DEDUPE_WINDOW_MS, "'" + v + "' must be a whole number of milliseconds");
            }
            this.dedupeWindow = v;
            return this;
        }
        public Builder serverCode(ServerCodeMode v) { this.serverCode = Settings.present(ENV_SERVER_CODE, v); return this; }
        public Builder publishVia(PublishVia v) { this.publishVia = Settings.present(ENV_PUBLISH_VIA, v); return this; }

        /** The config; the node id, when not set, is {@link #defaultNodeId()}. */
        public BusConfig build() {
            if (serverCode == ServerCodeMode.FUNCTIONS && trimPolicy == TrimPolicy.EVICT) {
                // The functions never trim what a group has not acknowledged, so they cannot keep an EVICT stream at its cap.
                throw new ConfigException(ENV_SERVER_CODE, "'functions' cannot be used with " + ENV_TRIM_POLICY
                        + "=evict: the functions trim only what every group acknowledged (use auto or scripts)");
            }
            return new BusConfig(this);
        }
    }
}
