package io.stargazer.bus;

import io.stargazer.bus.internal.Settings;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.ConcurrentHashMap;
import java.util.regex.Pattern;
import java.util.zip.CRC32;

/**
 * The stream and consumer-group names every Stargazer service agrees on. Built from the {@code SG_*}
 * environment variables (with the original Python module's defaults) or in code; immutable once built, and
 * every name is checked when it is set.
 *
 * <p>With {@code inboundPartitions} N &gt; 1 the inbound stream is split into N streams, each its own key; an
 * envelope goes to partition {@code crc32(utf8(channel_id)) mod N}, a function every language has, so one channel
 * stays in order. Partition i is named {@code INBOUND:{part-i-of-N~k}}: the braces are a Redis Cluster hash tag, and
 * k is the smallest number from 0 up whose tag hashes (CRC16 mod 16384, as the cluster does) into the middle half of
 * the i-th of N equal slot ranges. So on a cluster whose slots are split evenly in order over S shards (what
 * {@code redis-cli --cluster create} does), N partitions land N/S per shard instead of wherever plain names fall;
 * the names are deterministic and a few lines of Python compute them (docs/cluster.md). A new N gives new names.
 *
 * <p>Every name has a default ({@code DEFAULT_*}, the original module's) and a variable ({@code ENV_*}); a name may be
 * anything without white space or control characters ({@link #checkName}); {@code inboundPartitions} is 1 to
 * {@value #MAX_INBOUND_PARTITIONS}, and a partitioned inbound name may not hold a hash tag. Two settings may not name
 * one stream: the inbound stream(s), the tools stream and their dead-letter streams are each a name of their own, none
 * under the outbound or the tools reply prefix, and neither prefix under the other ({@link Builder#build()}). The
 * README's Settings table lists them.
 */
public final class Topology {

    public static final String ENV_INBOUND_STREAM = "SG_INBOUND_STREAM";
    public static final String ENV_OUTBOUND_STREAM_PREFIX = "SG_OUTBOUND_STREAM_PREFIX";
    public static final String ENV_WORKER_GROUP = "SG_WORKER_GROUP";
    public static final String ENV_GATEWAY_GROUP_PREFIX = "SG_GATEWAY_GROUP_PREFIX";
    public static final String ENV_TOOLS_STREAM = "SG_TOOLS_STREAM";
    public static final String ENV_TOOLS_GROUP = "SG_TOOLS_GROUP";
    public static final String ENV_TOOLS_REPLY_STREAM_PREFIX = "SG_TOOLS_REPLY_STREAM_PREFIX";
    public static final String ENV_DEAD_LETTER_SUFFIX = "SG_DEAD_LETTER_SUFFIX";
    public static final String ENV_INBOUND_PARTITIONS = "SG_INBOUND_PARTITIONS";
    public static final String ENV_INBOUND_PARTITIONS_ALSO = "SG_INBOUND_PARTITIONS_ALSO";
    public static final String ENV_OUTBOX_PREFIX = "SG_OUTBOX_PREFIX";
    public static final String ENV_RELAY_GROUP = "SG_RELAY_GROUP";

    public static final String DEFAULT_INBOUND_STREAM = "sg:stream:inbound";
    public static final String DEFAULT_OUTBOUND_STREAM_PREFIX = "sg:stream:outbound";
    public static final String DEFAULT_WORKER_GROUP = "sg:workers";
    public static final String DEFAULT_GATEWAY_GROUP_PREFIX = "sg:gateway";
    public static final String DEFAULT_TOOLS_STREAM = "sg:stream:tools";
    public static final String DEFAULT_TOOLS_GROUP = "sg:tools";
    public static final String DEFAULT_TOOLS_REPLY_STREAM_PREFIX = "sg:tools:reply";
    public static final String DEFAULT_DEAD_LETTER_SUFFIX = ":dead";
    public static final int DEFAULT_INBOUND_PARTITIONS = 1;
    public static final String DEFAULT_OUTBOX_PREFIX = "sg:outbox";
    public static final String DEFAULT_RELAY_GROUP = "sg:relay";
    public static final int MAX_INBOUND_PARTITIONS = 1024;

    private static final Pattern TOKEN = Pattern.compile("[A-Za-z0-9_-]+");
    /** Redis Cluster's hash slots. */
    public static final int CLUSTER_SLOTS = 16384;
    /** Partition names by inbound name and N: computing them takes a short search, publishing must not repeat it. */
    private static final Map<String, List<String>> PARTITION_NAMES = new ConcurrentHashMap<>();

    private final String inboundStream;
    private final String outboundStreamPrefix;
    private final String workerGroup;
    private final String gatewayGroupPrefix;
    private final String toolsStream;
    private final String toolsGroup;
    private final String toolsReplyStreamPrefix;
    private final String deadLetterSuffix;
    private final int inboundPartitions;
    private final int alsoInboundPartitions;
    private final String outboxPrefix;
    private final String relayGroup;
    /**
     * {@link #inboundStreams()}, named once: an inbound publish looks its partition up here, and looking it up in
     * {@link #PARTITION_NAMES} by a key built for each publish took a tenth of a microsecond of each (a profile of the
     * 6-partition row: bench/profile-notes.md).
     */
    private final List<String> inboundStreamNames;

    /** Every name was checked by the builder's setter when it was set, the pair by {@link Builder#build()}. */
    private Topology(Builder b) {
        this.inboundStream = b.inboundStream;
        this.outboundStreamPrefix = b.outboundStreamPrefix;
        this.workerGroup = b.workerGroup;
        this.gatewayGroupPrefix = b.gatewayGroupPrefix;
        this.toolsStream = b.toolsStream;
        this.toolsGroup = b.toolsGroup;
        this.toolsReplyStreamPrefix = b.toolsReplyStreamPrefix;
        this.deadLetterSuffix = b.deadLetterSuffix;
        this.inboundPartitions = b.inboundPartitions;
        this.alsoInboundPartitions = b.alsoInboundPartitions;
        this.outboxPrefix = b.outboxPrefix;
        this.relayGroup = b.relayGroup;
        this.inboundStreamNames = inboundPartitions == 1 ? List.of(inboundStream)
                : PARTITION_NAMES.computeIfAbsent(inboundPartitions + "|" + inboundStream, k -> partitionNames(inboundStream, inboundPartitions));
    }

    /** The inbound stream gateways publish to ({@code SG_INBOUND_STREAM}); its partitions' base name when partitioned. */
    public String inboundStream() { return inboundStream; }
    /** Platform P's answers go to {@code PREFIX:P} ({@code SG_OUTBOUND_STREAM_PREFIX}). */
    public String outboundStreamPrefix() { return outboundStreamPrefix; }
    /** The workers' group on the inbound stream(s) ({@code SG_WORKER_GROUP}). */
    public String workerGroup() { return workerGroup; }
    /** Platform P's gateways read with group {@code PREFIX:P} ({@code SG_GATEWAY_GROUP_PREFIX}). */
    public String gatewayGroupPrefix() { return gatewayGroupPrefix; }
    /** Tool requests ({@code SG_TOOLS_STREAM}). */
    public String toolsStream() { return toolsStream; }
    /** The tools instances' group ({@code SG_TOOLS_GROUP}). */
    public String toolsGroup() { return toolsGroup; }
    /** Worker W's replies come on {@code PREFIX:W} ({@code SG_TOOLS_REPLY_STREAM_PREFIX}). */
    public String toolsReplyStreamPrefix() { return toolsReplyStreamPrefix; }
    /** Stream S's dead letters go to S + suffix ({@code SG_DEAD_LETTER_SUFFIX}). */
    public String deadLetterSuffix() { return deadLetterSuffix; }
    /** How many streams the inbound stream is split into ({@code SG_INBOUND_PARTITIONS}). */
    public int inboundPartitions() { return inboundPartitions; }
    /**
     * Relay mode, while {@code SG_INBOUND_PARTITIONS} changes: the other count, whose inbound streams the relay also moves
     * entries to ({@code SG_INBOUND_PARTITIONS_ALSO}); 0 for none (the default).
     */
    public int alsoInboundPartitions() { return alsoInboundPartitions; }
    /** Relay mode: the outboxes are {@code PREFIX:gateway:P}, {@code PREFIX:worker}, {@code PREFIX:tools} ({@code SG_OUTBOX_PREFIX}). */
    public String outboxPrefix() { return outboxPrefix; }
    /** Relay mode: the relay's group on every outbox ({@code SG_RELAY_GROUP}). */
    public String relayGroup() { return relayGroup; }

    /** The original module's defaults. */
    public static Topology defaults() {
        return builder().build();
    }

    /** Reads the {@code SG_*} variables of the process environment. */
    public static Topology fromEnvironment() {
        return fromEnvironment(System.getenv());
    }

    /** Reads the {@code SG_*} variables of {@code env}; unset variables take the defaults. */
    public static Topology fromEnvironment(Map<String, String> env) {
        return builder().fromEnvironment(env).build();
    }

    public static Builder builder() {
        return new Builder();
    }

    /** A builder holding this topology's names, to change some of them. */
    public Builder toBuilder() {
        Builder b = new Builder();
        b.inboundStream = inboundStream;
        b.outboundStreamPrefix = outboundStreamPrefix;
        b.workerGroup = workerGroup;
        b.gatewayGroupPrefix = gatewayGroupPrefix;
        b.toolsStream = toolsStream;
        b.toolsGroup = toolsGroup;
        b.toolsReplyStreamPrefix = toolsReplyStreamPrefix;
        b.deadLetterSuffix = deadLetterSuffix;
        b.inboundPartitions = inboundPartitions;
        b.alsoInboundPartitions = alsoInboundPartitions;
        b.outboxPrefix = outboxPrefix;
        b.relayGroup = relayGroup;
        return b;
    }

    /** Platform P's outbound stream: {@code PREFIX:P}. */
    public String outboundStream(String platform) {
        return outboundStreamPrefix + ":" + checkPlatform("platform", platform);
    }

    /** Platform P's gateway group: {@code PREFIX:P}. */
    public String gatewayGroup(String platform) {
        return gatewayGroupPrefix + ":" + checkPlatform("platform", platform);
    }

    /**
     * The web chat's platform. Its gateways read its outbound stream each with a group of their own,
     * {@code gatewayGroup("webchat") + ":" + gatewayId} (every gateway must see every answer to find the tab that holds
     * its channel: docs/node.md), never with the shared {@link #gatewayGroup}.
     */
    public static final String WEBCHAT_PLATFORM = "webchat";

    /**
     * Whether platform P's gateways share the group {@link #gatewayGroup}, which provisioning and
     * {@code EventBus.ensureStreams} then create: every platform but {@link #WEBCHAT_PLATFORM}. A shared webchat group
     * would have no reader, and under {@code SG_TRIM_POLICY=safe} a group nobody reads keeps the stream from being
     * trimmed: at its cap every answer would be refused.
     */
    public static boolean hasSharedGatewayGroup(String platform) {
        return !WEBCHAT_PLATFORM.equals(platform);
    }

    /** Worker W's tools reply stream: {@code PREFIX:W}. */
    public String toolsReplyStream(String workerId) {
        return toolsReplyStreamPrefix + ":" + checkName("worker id", workerId);
    }

    // ---- relay mode (BusConfig.publishVia, docs/functions.md "Relay mode") ---------------------------------------
    //
    // One outbox per writer identity, the same identities the ACL users have (io.stargazer.bus.acl.AclRules): a gateway
    // per platform, the workers, the tools service. Per identity and not per role: gateways of two platforms have two
    // users, and one must not be able to trim the other's unrelayed messages. Not per node: the relay would have to
    // discover outboxes (SCAN, which no role may run), and nodes of one user can harm each other anyway.

    /** Platform P's gateways write their shared-stream entries here: {@code PREFIX:gateway:P}. */
    public String gatewayOutbox(String platform) {
        return outboxPrefix + ":gateway:" + checkPlatform("platform", platform);
    }

    /** The workers' outbox: {@code PREFIX:worker}. */
    public String workerOutbox() {
        return outboxPrefix + ":worker";
    }

    /** The tools service's outbox: {@code PREFIX:tools}. */
    public String toolsOutbox() {
        return outboxPrefix + ":tools";
    }

    /**
     * The operator's outbox: {@code PREFIX:operator}. Dead letters replayed in relay mode go through it, so the operator's
     * user needs no write on the streams it puts them back on.
     */
    public String operatorOutbox() {
        return outboxPrefix + ":operator";
    }

    /** Every outbox the relay reads: each platform's gateway outbox, then the workers', the tools service's and the operator's. */
    public List<String> outboxes(List<String> platforms) {
        List<String> out = new ArrayList<>();
        for (String p : platforms) out.add(gatewayOutbox(p));
        out.add(workerOutbox());
        out.add(toolsOutbox());
        out.add(operatorOutbox());
        return out;
    }

    /**
     * Where the operator may put dead letters back ({@code stargazer dead replay}): the streams the bus consumes (inbound,
     * the outbound streams of {@code platforms}, the tools stream) and, in relay mode, the outboxes (an entry the relay
     * could not move).
     */
    public List<String> replaySources(List<String> platforms, boolean relayMode) {
        List<String> out = new ArrayList<>(inboundStreams());
        for (String p : platforms) out.add(outboundStream(p));
        out.add(toolsStream);
        if (relayMode) out.addAll(outboxes(platforms));
        return out;
    }

    /**
     * Who writes which shared stream, as the outbox a write to {@code target} goes through in relay mode: the inbound
     * stream(s) through the gateway outbox of {@code platform} (the envelope's), an outbound stream, the tools stream and
     * the inbound dead letters through the workers' outbox, an outbound stream's dead letters through its platform's
     * gateway outbox, reply streams and the tools dead letters through the tools outbox. Null for any other stream (not
     * shared between roles: written directly). The ACL rules grant each role's publishing on the same streams.
     */
    public String outboxFor(String target, String platform) {
        if (inboundStreams().contains(target)) {
            if (platform == null) {
                throw new ConfigException("platform", "relay mode: an inbound publish needs its platform (which gateway outbox it goes through)");
            }
            return gatewayOutbox(platform);
        }
        if (target.equals(toolsStream)) return workerOutbox();
        for (String in : inboundStreams()) {
            if (target.equals(deadLetterStream(in))) return workerOutbox();
        }
        if (target.equals(deadLetterStream(toolsStream))) return toolsOutbox();
        if (target.startsWith(outboundStreamPrefix + ":")) {
            String rest = target.substring(outboundStreamPrefix.length() + 1);
            // Dead letters first: a suffix without ':' ("-dead") also makes a name that looks like a platform's.
            if (rest.endsWith(deadLetterSuffix)) {
                String p = rest.substring(0, rest.length() - deadLetterSuffix.length());
                if (TOKEN.matcher(p).matches()) return gatewayOutbox(p);
            }
            if (TOKEN.matcher(rest).matches()) return workerOutbox();
        }
        if (target.startsWith(toolsReplyStreamPrefix + ":") && target.length() > toolsReplyStreamPrefix.length() + 1) {
            return toolsOutbox();
        }
        return null;
    }

    /**
     * Whether the relay may add an entry of {@code outbox} to {@code target}: the outbox is one of {@link #outboxes} and
     * {@link #outboxFor} sends writes to {@code target} through it (outbound streams and their dead letters only of
     * {@code platforms}); the operator's outbox to its {@link #replaySources}. What stops a compromised gateway from using
     * the relay to write the outbound streams. The inbound streams are taken under this topology's count and its
     * {@link #alsoInboundPartitions} ({@link #isInboundOfEitherCount}: a gateway outbox to them, the workers' outbox to
     * their dead letters, the operator's outbox to them), so that the relay given the other count moves the entries of
     * processes on the old and on the new count while {@code SG_INBOUND_PARTITIONS} changes; no other count's.
     */
    public boolean mayRelay(String outbox, String target, List<String> platforms) {
        if (!outboxes(platforms).contains(outbox)) return false;
        if (outbox.equals(operatorOutbox())) return replaySources(platforms, true).contains(target) || isInboundOfEitherCount(target);
        String platform = outbox.startsWith(outboxPrefix + ":gateway:") ? outbox.substring(outboxPrefix.length() + 9) : null;
        // While SG_INBOUND_PARTITIONS changes, gateways and workers on the old and the new count run side by side with one
        // relay (docs/cluster.md, "Changing N safely"): the inbound streams of either count are still the role's to write.
        // Only those two: under any count a gateway could make the relay create hundreds of thousands of streams no one reads.
        if (platform != null && isInboundOfEitherCount(target)) return true;
        if (outbox.equals(workerOutbox()) && target.endsWith(deadLetterSuffix)
                && isInboundOfEitherCount(target.substring(0, target.length() - deadLetterSuffix.length()))) {
            return true;
        }
        String via;
        try {
            via = outboxFor(target, platform);
        } catch (ConfigException e) {
            return false; // an inbound target named in an outbox that is not a gateway's
        }
        if (!outbox.equals(via)) return false;
        if (target.startsWith(outboundStreamPrefix + ":")) {
            String rest = target.substring(outboundStreamPrefix.length() + 1);
            return platforms.contains(rest) || platforms.stream().anyMatch(p -> rest.equals(p + deadLetterSuffix));
        }
        return true;
    }

    /**
     * Whether {@code stream} is an inbound stream under this topology's {@link #inboundPartitions} or, when set, its
     * {@link #alsoInboundPartitions}: one of exactly the names {@link #partitionNames} gives for either count.
     */
    public boolean isInboundOfEitherCount(String stream) {
        return inboundStreams().contains(stream) || alsoInboundStreams().contains(stream);
    }

    /**
     * The inbound streams under {@link #alsoInboundPartitions} (as {@link #partitionNames} names them), while
     * {@code SG_INBOUND_PARTITIONS} changes; empty when it is unset or equal to this topology's own count. Their dead
     * letters are listed, replayed and counted beside this count's (DeadLetters.streams(), the node's metrics).
     */
    public List<String> alsoInboundStreams() {
        if (alsoInboundPartitions == 0 || alsoInboundPartitions == inboundPartitions) return List.of();
        return PARTITION_NAMES.computeIfAbsent(alsoInboundPartitions + "|" + inboundStream,
                k -> partitionNames(inboundStream, alsoInboundPartitions));
    }

    /**
     * A key named after {@code stream} that lives in the stream's Redis Cluster slot, {@code <stream or {stream}>:<suffix>}:
     * a stream whose name has a hash tag keeps it; any other stream's whole name becomes the tag, which hashes exactly as
     * the untagged name does. Dedupe keys, replay keys and pause flags are named so (docs/once.md, docs/operating.md).
     */
    public static String slotKey(String stream, String suffix) {
        return (hasHashTag(stream) ? stream : "{" + stream + "}") + ":" + suffix;
    }

    /** Redis Cluster's rule: the text between the first '{' and the first '}' after it, when not empty, is the tag. */
    static boolean hasHashTag(String key) {
        int open = key.indexOf('{');
        if (open < 0) return false;
        int close = key.indexOf('}', open + 1);
        return close > open + 1;
    }

    /** Where entries of {@code stream} that cannot be handled are moved: {@code stream + deadLetterSuffix}. */
    public String deadLetterStream(String stream) {
        return stream + deadLetterSuffix;
    }

    /** Every inbound stream: the one stream, or the N partitions in order (see the class comment for their names). */
    public List<String> inboundStreams() {
        return inboundStreamNames;
    }

    /** The inbound stream an envelope of this channel goes to (the one stream when not partitioned). */
    public String inboundStreamFor(String channelId) {
        if (inboundPartitions == 1) {
            return inboundStream;
        }
        return inboundStreams().get(partitionOf(channelId, inboundPartitions));
    }

    /** The N partition names of {@code inbound}; {@code [inbound]} for N = 1. */
    public static List<String> partitionNames(String inbound, int n) {
        if (n == 1) {
            return List.of(inbound);
        }
        List<String> out = new ArrayList<>(n);
        for (int i = 0; i < n; i++) out.add(partitionName(inbound, i, n));
        return List.copyOf(out);
    }

    /** Partition {@code i} of {@code n} (n &gt; 1) of {@code inbound}: see the class comment. */
    private static String partitionName(String inbound, int i, int n) {
        int lo = i * CLUSTER_SLOTS / n;
        int hi = (i + 1) * CLUSTER_SLOTS / n;
        int margin = (hi - lo) / 4;
        for (int k = 0; ; k++) {
            String tag = "part-" + i + "-of-" + n + "~" + k;
            int slot = slot(tag);
            if (slot >= lo + margin && slot < hi - margin) {
                return inbound + ":{" + tag + "}";
            }
        }
    }

    /**
     * The Redis Cluster hash slot of a key: CRC16 (XMODEM, as Python's {@code binascii.crc_hqx(b, 0)}) of the key,
     * or of its hash tag (the text between the first '{' and the next '}', when not empty), mod 16384; computed by
     * Lettuce, the client that routes the commands.
     */
    public static int slot(String key) {
        return io.lettuce.core.cluster.SlotHash.getSlot(key);
    }

    /** {@code crc32(utf8(channelId)) mod n}; a missing channel id goes to partition 0. */
    public static int partitionOf(String channelId, int n) {
        if (channelId == null || n == 1) {
            return 0;
        }
        CRC32 crc = new CRC32();
        crc.update(channelId.getBytes(StandardCharsets.UTF_8));
        return (int) (crc.getValue() % n);
    }

    /** The group that consumes {@code stream} under this topology, if any: what a consumer re-creates after NOGROUP. */
    public String groupFor(String stream) {
        if (inboundStreams().contains(stream)) return workerGroup;
        if (stream.equals(toolsStream)) return toolsGroup;
        if (stream.equals(workerOutbox()) || stream.equals(toolsOutbox()) || stream.equals(operatorOutbox())) return relayGroup;
        if (stream.startsWith(outboxPrefix + ":gateway:") && TOKEN.matcher(stream.substring(outboxPrefix.length() + 9)).matches()) {
            return relayGroup;
        }
        if (stream.startsWith(outboundStreamPrefix + ":")) {
            String platform = stream.substring(outboundStreamPrefix.length() + 1);
            if (TOKEN.matcher(platform).matches()) return gatewayGroup(platform);
        }
        return null;
    }

    /** Refuses an empty name or one with white space or control characters, naming the setting and the value. */
    public static String checkName(String setting, String value) {
        if (value == null || value.isEmpty()) {
            throw new ConfigException(setting, "must not be empty");
        }
        for (int i = 0; i < value.length(); i++) {
            char c = value.charAt(i);
            if (c > ' ' && c < 0x7f) continue; // printable ASCII, nearly every name: checked on every publish
            if (Character.isWhitespace(c) || Character.isISOControl(c) || Character.isSpaceChar(c)) {
                throw new ConfigException(setting, "'" + Settings.printable(value)
                        + "' contains white space or a control character at position " + i);
            }
        }
        return value;
    }

    /** A platform name is a simple token: letters, digits, {@code -} and {@code _}. */
    public static String checkPlatform(String setting, String platform) {
        if (platform == null || !TOKEN.matcher(platform).matches()) {
            throw new ConfigException(setting, "'" + Settings.printable(String.valueOf(platform))
                    + "' is not a platform name (letters, digits, '-' and '_' only)");
        }
        return platform;
    }

    /** Sets names one by one, starting from the defaults; each setter refuses a bad name at once, naming it. */
    public static final class Builder {
        private String inboundStream = DEFAULT_INBOUND_STREAM;
        private String outboundStreamPrefix = DEFAULT_OUTBOUND_STREAM_PREFIX;
        private String workerGroup = DEFAULT_WORKER_GROUP;
        private String gatewayGroupPrefix = DEFAULT_GATEWAY_GROUP_PREFIX;
        private String toolsStream = DEFAULT_TOOLS_STREAM;
        private String toolsGroup = DEFAULT_TOOLS_GROUP;
        private String toolsReplyStreamPrefix = DEFAULT_TOOLS_REPLY_STREAM_PREFIX;
        private String deadLetterSuffix = DEFAULT_DEAD_LETTER_SUFFIX;
        private int inboundPartitions = DEFAULT_INBOUND_PARTITIONS;
        private int alsoInboundPartitions;
        private String outboxPrefix = DEFAULT_OUTBOX_PREFIX;
        private String relayGroup = DEFAULT_RELAY_GROUP;

        private Builder() {
        }

        /** Takes the {@code SG_*} names present in {@code env}; the others (and blank ones) keep their current value. */
        public Builder fromEnvironment(Map<String, String> env) {
            String v;
            if ((v = Settings.env(env, ENV_INBOUND_STREAM)) != null) inboundStream(v);
            if ((v = Settings.env(env, ENV_OUTBOUND_STREAM_PREFIX)) != null) outboundStreamPrefix(v);
            if ((v = Settings.env(env, ENV_WORKER_GROUP)) != null) workerGroup(v);
            if ((v = Settings.env(env, ENV_GATEWAY_GROUP_PREFIX)) != null) gatewayGroupPrefix(v);
            if ((v = Settings.env(env, ENV_TOOLS_STREAM)) != null) toolsStream(v);
            if ((v = Settings.env(env, ENV_TOOLS_GROUP)) != null) toolsGroup(v);
            if ((v = Settings.env(env, ENV_TOOLS_REPLY_STREAM_PREFIX)) != null) toolsReplyStreamPrefix(v);
            if ((v = Settings.env(env, ENV_DEAD_LETTER_SUFFIX)) != null) deadLetterSuffix(v);
            if ((v = Settings.env(env, ENV_INBOUND_PARTITIONS)) != null) inboundPartitions(Settings.parseInt(ENV_INBOUND_PARTITIONS, v));
            if ((v = Settings.env(env, ENV_INBOUND_PARTITIONS_ALSO)) != null) {
                alsoInboundPartitions(Settings.parseInt(ENV_INBOUND_PARTITIONS_ALSO, v));
            }
            if ((v = Settings.env(env, ENV_OUTBOX_PREFIX)) != null) outboxPrefix(v);
            if ((v = Settings.env(env, ENV_RELAY_GROUP)) != null) relayGroup(v);
            return this;
        }

        public Builder inboundStream(String v) { this.inboundStream = checkName(ENV_INBOUND_STREAM, v); return this; }
        public Builder outboundStreamPrefix(String v) { this.outboundStreamPrefix = checkName(ENV_OUTBOUND_STREAM_PREFIX, v); return this; }
        public Builder workerGroup(String v) { this.workerGroup = checkName(ENV_WORKER_GROUP, v); return this; }
        public Builder gatewayGroupPrefix(String v) { this.gatewayGroupPrefix = checkName(ENV_GATEWAY_GROUP_PREFIX, v); return this; }
        public Builder toolsStream(String v) { this.toolsStream = checkName(ENV_TOOLS_STREAM, v); return this; }
        public Builder toolsGroup(String v) { this.toolsGroup = checkName(ENV_TOOLS_GROUP, v); return this; }
        public Builder toolsReplyStreamPrefix(String v) { this.toolsReplyStreamPrefix = checkName(ENV_TOOLS_REPLY_STREAM_PREFIX, v); return this; }
        public Builder deadLetterSuffix(String v) { this.deadLetterSuffix = checkName(ENV_DEAD_LETTER_SUFFIX, v); return this; }
        public Builder outboxPrefix(String v) { this.outboxPrefix = checkName(ENV_OUTBOX_PREFIX, v); return this; }
        public Builder relayGroup(String v) { this.relayGroup = checkName(ENV_RELAY_GROUP, v); return this; }

        public Builder inboundPartitions(int n) {
            if (n < 1 || n > MAX_INBOUND_PARTITIONS) {
                throw new ConfigException(ENV_INBOUND_PARTITIONS, "'" + n + "' must be between 1 and " + MAX_INBOUND_PARTITIONS);
            }
            this.inboundPartitions = n;
            return this;
        }

        /**
         * Relay mode, while {@code SG_INBOUND_PARTITIONS} changes (docs/cluster.md, "Changing N safely"): the other count,
         * from 1 to {@value #MAX_INBOUND_PARTITIONS}, whose inbound streams the relay also moves gateway entries, worker dead
         * letters and operator replays to; the number given to {@code stargazer acl --also-partitions}. Unset (the default),
         * the relay writes only this topology's inbound streams.
         */
        public Builder alsoInboundPartitions(int n) {
            if (n < 1 || n > MAX_INBOUND_PARTITIONS) {
                throw new ConfigException(ENV_INBOUND_PARTITIONS_ALSO, "'" + n + "' must be between 1 and " + MAX_INBOUND_PARTITIONS);
            }
            this.alsoInboundPartitions = n;
            return this;
        }

        /** Prefixes every name with {@code namespace + ":"}: how tests keep their streams apart on one server. */
        public Builder namespace(String namespace) {
            checkName("namespace", namespace);
            inboundStream = namespace + ":" + inboundStream;
            outboundStreamPrefix = namespace + ":" + outboundStreamPrefix;
            workerGroup = namespace + ":" + workerGroup;
            gatewayGroupPrefix = namespace + ":" + gatewayGroupPrefix;
            toolsStream = namespace + ":" + toolsStream;
            toolsGroup = namespace + ":" + toolsGroup;
            toolsReplyStreamPrefix = namespace + ":" + toolsReplyStreamPrefix;
            outboxPrefix = namespace + ":" + outboxPrefix;
            relayGroup = namespace + ":" + relayGroup;
            return this;
        }

        /**
         * The topology; refuses a hash tag in the inbound name when it is partitioned, an outbox prefix that begins the
         * name of a shared stream (inbound, outbound prefix, tools, tools reply prefix: equal, or it and ':' start it), and
         * one that the outbound or the tools reply prefix and ':' begin (every outbox would be a stream of that prefix),
         * and two settings that name one stream (refuseSharedStreams).
         */
        public Topology build() {
            if (inboundPartitions > 1 && (inboundStream.indexOf('{') >= 0 || inboundStream.indexOf('}') >= 0)) {
                // A hash tag in the base name would put every partition in one slot: partitioning would gain nothing.
                throw new ConfigException(ENV_INBOUND_STREAM, "'" + inboundStream + "' contains '{' or '}', which would pin all "
                        + inboundPartitions + " partitions (" + ENV_INBOUND_PARTITIONS + ") to one cluster slot");
            }
            if (alsoInboundPartitions > 1 && (inboundStream.indexOf('{') >= 0 || inboundStream.indexOf('}') >= 0)) {
                throw new ConfigException(ENV_INBOUND_STREAM, "'" + inboundStream + "' contains '{' or '}', which would pin all "
                        + alsoInboundPartitions + " partitions (" + ENV_INBOUND_PARTITIONS_ALSO + ") to one cluster slot");
            }
            // An outbox is <prefix>:worker, <prefix>:gateway:P, ...: under a prefix that a shared stream's name starts with,
            // an outbox and a stream could be one key, and an answer's dedupe key reply:<stream>:<id> one of the relay's own.
            String[][] names = {{ENV_INBOUND_STREAM, inboundStream}, {ENV_OUTBOUND_STREAM_PREFIX, outboundStreamPrefix},
                    {ENV_TOOLS_STREAM, toolsStream}, {ENV_TOOLS_REPLY_STREAM_PREFIX, toolsReplyStreamPrefix}};
            for (String[] n : names) {
                if (n[1].equals(outboxPrefix) || n[1].startsWith(outboxPrefix + ":")) {
                    throw new ConfigException(ENV_OUTBOX_PREFIX, "'" + outboxPrefix + "' begins " + n[0] + " '" + n[1]
                            + "': the outboxes (" + outboxPrefix + ":worker, " + outboxPrefix + ":gateway:<platform>, ...) must "
                            + "not share names with the streams; choose a prefix no stream name starts with");
                }
            }
            // The reverse overlap: a prefix under a stream prefix makes every outbox one of that prefix's streams, e.g. the
            // webchat gateway's outbox a tools reply stream, which the tools outbox may have the relay write: the relay would
            // then move what the tools identity wrote to the inbound stream as that gateway's.
            String[][] prefixes = {{ENV_OUTBOUND_STREAM_PREFIX, outboundStreamPrefix}, {ENV_TOOLS_REPLY_STREAM_PREFIX, toolsReplyStreamPrefix}};
            for (String[] n : prefixes) {
                if (outboxPrefix.equals(n[1]) || outboxPrefix.startsWith(n[1] + ":")) {
                    throw new ConfigException(ENV_OUTBOX_PREFIX, "'" + outboxPrefix + "' lies under " + n[0] + " '" + n[1]
                            + "': every outbox (" + outboxPrefix + ":worker, " + outboxPrefix + ":gateway:<platform>, ...) would "
                            + "also be a name of " + n[1] + ":<name>; choose a prefix that does not start with '" + n[1] + ":'");
                }
            }
            refusePrefixUnderPrefix(ENV_OUTBOUND_STREAM_PREFIX, outboundStreamPrefix, ENV_TOOLS_REPLY_STREAM_PREFIX, toolsReplyStreamPrefix);
            refusePrefixUnderPrefix(ENV_TOOLS_REPLY_STREAM_PREFIX, toolsReplyStreamPrefix, ENV_OUTBOUND_STREAM_PREFIX, outboundStreamPrefix);
            Topology t = new Topology(this);
            t.refuseSharedStreams();
            return t;
        }

        /**
         * Platform P's outbound stream and worker P's reply stream are both {@code PREFIX:P}: with one prefix under (or
         * equal to) the other, a worker's tool replies would be a platform's answers, or the reverse.
         */
        private static void refusePrefixUnderPrefix(String variable, String prefix, String otherVariable, String other) {
            if (prefix.equals(other) || prefix.startsWith(other + ":")) {
                throw new ConfigException(variable, "'" + prefix + "' " + (prefix.equals(other) ? "is also" : "lies under") + " "
                        + otherVariable + " '" + other + "': the streams " + prefix + ":<name> would be also "
                        + other + ":<name>; give the two prefixes names neither begins the other with");
            }
        }
    }

    /**
     * Refuses two settings that name one stream, naming both variables and the stream: the inbound stream(s) of either
     * count, the tools stream and the dead-letter streams of each are read by different groups (workers, the tools
     * service, an operator's replay), and one under the outbound or the tools reply prefix is a platform's outbound or a
     * worker's reply stream. Two roles would read each other's entries, with nothing said.
     */
    private void refuseSharedStreams() {
        Map<String, String> named = new java.util.HashMap<>();
        List<String[]> streams = new ArrayList<>();
        addInbound(streams, inboundStreams());
        addInbound(streams, alsoInboundStreams());
        streams.add(new String[] {ENV_TOOLS_STREAM, toolsStream});
        int fixed = streams.size();
        for (int i = 0; i < fixed; i++) {
            String[] s = streams.get(i);
            streams.add(new String[] {s[0] + " + " + ENV_DEAD_LETTER_SUFFIX + " '" + deadLetterSuffix + "' (its dead letters)", deadLetterStream(s[1])});
        }
        for (String[] s : streams) {
            String before = named.putIfAbsent(s[1], s[0]);
            if (before != null) {
                throw new ConfigException(settingOf(s[0]), "'" + Settings.printable(s[1]) + "' is named by both " + before + " and " + s[0]
                        + ": one stream would carry the entries of both; give them different names");
            }
            String[][] prefixes = {{ENV_OUTBOUND_STREAM_PREFIX, outboundStreamPrefix, "a platform's outbound stream"},
                    {ENV_TOOLS_REPLY_STREAM_PREFIX, toolsReplyStreamPrefix, "a worker's tool reply stream"}};
            for (String[] p : prefixes) {
                if (s[1].equals(p[1]) || s[1].startsWith(p[1] + ":")) {
                    throw new ConfigException(settingOf(s[0]), "'" + Settings.printable(s[1]) + "' (" + s[0] + ") lies under " + p[0]
                            + " '" + p[1] + "': it would be " + p[2] + " (" + p[1] + ":<name>) or sit among them; choose a name that does not "
                            + "start with '" + p[1] + ":'");
                }
            }
        }
    }

    /** Each of {@code inbound} with the variable that names it, and its partition when it is one. */
    private static void addInbound(List<String[]> streams, List<String> inbound) {
        for (int i = 0; i < inbound.size(); i++) {
            streams.add(new String[] {inbound.size() == 1 ? ENV_INBOUND_STREAM
                    : ENV_INBOUND_STREAM + " (partition " + i + " of " + inbound.size() + ")", inbound.get(i)});
        }
    }

    /** The variable a label of {@link #refuseSharedStreams} starts with: the one the refusal names as its setting. */
    private static String settingOf(String label) {
        int end = label.indexOf(' ');
        return end < 0 ? label : label.substring(0, end);
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof Topology t && inboundStream.equals(t.inboundStream) && outboundStreamPrefix.equals(t.outboundStreamPrefix)
                && workerGroup.equals(t.workerGroup) && gatewayGroupPrefix.equals(t.gatewayGroupPrefix)
                && toolsStream.equals(t.toolsStream) && toolsGroup.equals(t.toolsGroup)
                && toolsReplyStreamPrefix.equals(t.toolsReplyStreamPrefix) && deadLetterSuffix.equals(t.deadLetterSuffix)
                && inboundPartitions == t.inboundPartitions && alsoInboundPartitions == t.alsoInboundPartitions && outboxPrefix.equals(t.outboxPrefix) && relayGroup.equals(t.relayGroup);
    }

    @Override
    public int hashCode() {
        return Objects.hash(inboundStream, outboundStreamPrefix, workerGroup, gatewayGroupPrefix, toolsStream, toolsGroup,
                toolsReplyStreamPrefix, deadLetterSuffix, inboundPartitions, alsoInboundPartitions, outboxPrefix, relayGroup);
    }

    @Override
    public String toString() {
        return "Topology{inbound=" + inboundStream + (inboundPartitions > 1 ? "[" + inboundPartitions + " partitions]" : "")
                + (alsoInboundPartitions > 0 ? "[also " + alsoInboundPartitions + "]" : "")
                + ", outbound=" + outboundStreamPrefix + ":*, workers=" + workerGroup + ", gateways=" + gatewayGroupPrefix
                + ":*, tools=" + toolsStream + "/" + toolsGroup + ", replies=" + toolsReplyStreamPrefix + ":*}";
    }
}
