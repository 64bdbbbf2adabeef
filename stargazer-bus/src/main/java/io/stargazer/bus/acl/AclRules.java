package io.stargazer.bus.acl;

import io.stargazer.bus.BusConfig;
import io.stargazer.bus.ConfigException;
import io.stargazer.bus.PublishVia;
import io.stargazer.bus.Topology;
import io.stargazer.bus.internal.ServerVersion;
import io.stargazer.bus.internal.Settings;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Objects;
import java.util.Set;

/**
 * Redis ACL users for each node role under one {@link Topology}: each user may run only the commands the bus code of
 * that role sends, each on only the keys that role uses. What {@code stargazer acl} prints.
 *
 * <p>The rules use Redis 7 selectors and read/write key permissions, so "may append to the inbound stream but not
 * read it" is expressible: a gateway's user may {@code XADD} to the inbound stream and see its metadata (length,
 * groups, pending summary, which the publisher's trim guard needs), but any command that returns entries
 * ({@code XRANGE}, {@code XREAD}, {@code XREADGROUP}, {@code XINFO STREAM}) is refused with {@code NOPERM}, as is
 * every key of another platform and every command the role never sends ({@code DEL}, {@code FLUSHALL},
 * {@code CONFIG}, ...). Redis before 7.0 has neither selectors nor {@code %R~}/{@code %W~}: {@link Builder#build()}
 * refuses a server version below 7.0 instead of handing out rules that would grant more than they say.
 *
 * <p>Capabilities, as the library uses them (see docs/security.md for the command list of each):
 * <ul>
 *   <li>consume a stream with a group: XREADGROUP, XACK, XAUTOCLAIM, XCLAIM, XPENDING, XINFO STREAM/GROUPS/CONSUMERS,
 *       XGROUP CREATE/DELCONSUMER, EXISTS (ACLs cannot name the group: a user that consumes a stream can use any
 *       group on it); EXISTS, read only, on its groups' pause flags ({@code <stream>:paused:*} in the stream's slot,
 *       docs/operating.md), which the operator sets with a user of its own;</li>
 *   <li>publish to a stream: XADD, XTRIM, XLEN, EXISTS with write permission, XINFO GROUPS and XPENDING with read
 *       permission (metadata only), so the SAFE trim guard can run;</li>
 *   <li>the worker's own tools reply stream: XREAD, XADD, XDEL, XTRIM, PEXPIRE and PTTL (its expiry, only ever
 *       lengthened);</li>
 *   <li>server-side logic: FCALL of the named functions of the {@code stargazer} library the role needs (each allowed
 *       by name, {@code +fcall|<function>}), on those keys, and {@code FCALL_RO sg_version} (docs/functions.md); no
 *       EVAL, so no code of the user's own runs on the server. Redis checks every command a function runs against the
 *       caller's rules, so a function can do no more than the user could do directly; each function also refuses keys
 *       of the wrong shape and XADD options that could trim unacknowledged entries. {@link Builder#compatibility}
 *       adds EVAL and EVALSHA on the same keys, for services that run their own scripts (and for a server without the
 *       library, where the bus runs scripts);</li>
 *   <li>connection: HELLO, AUTH, PING, INFO (the server version at connect), SELECT, CLIENT ID/SETNAME and
 *       CLIENT UNBLOCK (to wake the subscription's own blocked read on close).</li>
 * </ul>
 *
 * <p>In relay mode ({@link Builder#publishVia}, docs/functions.md "Relay mode") no gateway, worker or tools user may
 * write a stream another role reads: each publishes only to its own outbox ({@link Topology#outboxFor}), and a
 * {@link Role#RELAY} user, the one trusted writer, consumes the outboxes and holds the publishing rights on the shared
 * streams that the roles hold in direct mode (the same role-to-streams map, {@link Topology#mayRelay}).
 *
 * <p>Passwords are written as {@code #<sha256>}: the generated text never holds a plain-text password. A user
 * built without a password gets none ({@code resetpass}): it cannot log in until an operator sets one.
 */
public final class AclRules {
    /** The setting a refused {@link Builder#serverVersion} names. */
    public static final String SERVER_VERSION = "redis version";

    /** What a user is for. */
    public enum Role {
        /** Publishes inbound, consumes its platforms' outbound streams with their gateway groups. */
        GATEWAY,
        /** Consumes inbound with the worker group, publishes outbound and tool requests, reads its reply stream. */
        WORKER,
        /** Consumes the tools stream with the tools group, publishes replies. */
        TOOLS,
        /** Gateway, worker and tools in one process. */
        STANDALONE,
        /** Read-only diagnostics (dashboard, {@code stargazer streams}): lengths, groups, consumers, pending counts. */
        MONITOR,
        /**
         * What the monitor reads, plus the operator's actions (docs/operating.md): list, replay and purge dead letters
         * (XRANGE, XDEL, XTRIM on dead-letter streams; replay through {@code sg_replay}), pause and resume groups.
         */
        OPERATOR,
        /**
         * Relay mode's trusted writer: consumes every outbox with the relay group and publishes to the streams each
         * outbox's role writes in direct mode (and to the outboxes' dead letters).
         */
        RELAY;

        public String wireName() {
            return name().toLowerCase(Locale.ROOT);
        }
    }

    /**
     * One ACL user.
     *
     * @param name      the ACL user name (the user part of {@code REDIS_URL})
     * @param role      what it is for
     * @param platforms the platforms a gateway serves; empty for other roles
     * @param rules     everything after the user name in {@code ACL SETUSER name ...}, selectors as one element each
     */
    public record User(String name, Role role, List<String> platforms, List<String> rules) {
        public User {
            platforms = List.copyOf(platforms);
            rules = List.copyOf(rules);
        }

        /** The arguments of {@code ACL SETUSER}: the name, then the rules. */
        public List<String> setUserArgs() {
            List<String> args = new ArrayList<>(rules.size() + 1);
            args.add(name);
            args.addAll(rules);
            return args;
        }

        /** The {@code ACL SETUSER} command as typed into {@code redis-cli} (selectors quoted). */
        public String setUserCommand() {
            StringBuilder sb = new StringBuilder("ACL SETUSER ").append(name);
            for (String r : rules) {
                sb.append(' ');
                sb.append(r.indexOf(' ') >= 0 ? "'" + r.replace("\\", "\\\\").replace("'", "\\'") + "'" : r);
            }
            return sb.toString();
        }

        /** The line of an ACL file ({@code aclfile} directive) for this user. */
        public String aclFileLine() {
            return "user " + name + " " + String.join(" ", rules);
        }
    }

    /** The functions of the stargazer library (docs/functions.md) each capability calls. */
    static final List<String> CONSUME_FUNCTIONS = List.of("sg_refresh", "sg_confirm", "sg_delete_idle_consumer", "sg_dead_letter");
    static final List<String> PUBLISH_FUNCTIONS = List.of("sg_publish_batch", "sg_publish_batch_traced", "sg_publish", "sg_trim");
    static final List<String> WORKER_FUNCTIONS = List.of("sg_reply", "sg_reply_stream_init", "sg_reply_stream_maintain");
    static final List<String> TOOLS_FUNCTIONS = List.of("sg_tool_begin", "sg_tool_renew", "sg_tool_keep", "sg_tool_finish");
    static final List<String> OPERATOR_FUNCTIONS = List.of("sg_replay", "sg_pause", "sg_resume");
    /** Relay mode: a role's batches to its outbox; the relay's move of an entry (answer-and-acknowledge). */
    static final List<String> OUTBOX_FUNCTIONS = List.of("sg_outbox");
    static final List<String> RELAY_FUNCTIONS = List.of("sg_reply");

    private final Topology topology;
    private final List<User> users;

    private AclRules(Topology topology, List<User> users) {
        this.topology = topology;
        this.users = List.copyOf(users);
    }

    public static Builder builder(Topology topology) {
        return new Builder(topology);
    }

    /**
     * One user per role with default names and no passwords: {@code sg-gateway-<platform>} for each platform,
     * {@code sg-worker}, {@code sg-tools}, {@code sg-monitor} and {@code sg-operator}.
     */
    public static AclRules defaults(Topology topology, List<String> platforms) {
        Builder b = builder(topology).platforms(platforms);
        for (String p : platforms) b.gateway("sg-gateway-" + p, null, p);
        return b.worker("sg-worker", null).tools("sg-tools", null).monitor("sg-monitor", null).operator("sg-operator", null).build();
    }

    public Topology topology() {
        return topology;
    }

    public List<User> users() {
        return users;
    }

    /** The user of that name; throws {@link IllegalArgumentException} if there is none. */
    public User user(String name) {
        return users.stream().filter(u -> u.name().equals(name)).findFirst()
                .orElseThrow(() -> new IllegalArgumentException("no ACL user named '" + name + "'"));
    }

    /** One {@code ACL SETUSER} command per line, for {@code redis-cli}. */
    public String setUserCommands() {
        StringBuilder sb = new StringBuilder();
        for (User u : users) sb.append(u.setUserCommand()).append('\n');
        return sb.toString();
    }

    /**
     * The users as ACL file lines. An ACL file replaces every user of the server, and Redis adds a {@code default}
     * user with every permission when the file has none: add your admin user and a {@code user default off} line.
     * ACL files have no comment syntax, so nothing else is written.
     */
    public String aclFile() {
        StringBuilder sb = new StringBuilder();
        for (User u : users) sb.append(u.aclFileLine()).append('\n');
        return sb.toString();
    }

    /** Collects users; {@link #build()} derives their rules from the topology. */
    public static final class Builder {
        private final Topology topology;
        private List<String> platforms = BusConfig.DEFAULT_PLATFORMS;
        private List<String> workerIds = List.of();
        private final Set<Integer> alsoPartitions = new java.util.TreeSet<>();
        private boolean compatibility;
        private PublishVia publishVia = BusConfig.DEFAULT_PUBLISH_VIA;
        private int major = 7;
        private int minor = 0;
        private final List<Spec> specs = new ArrayList<>();

        private record Spec(String name, String password, Role role, List<String> platforms) {
        }

        private Builder(Topology topology) {
            this.topology = Objects.requireNonNull(topology, "topology");
        }

        /** The platforms workers publish to (and a standalone node serves); default discord, matrix, webchat. */
        public Builder platforms(List<String> v) {
            for (String p : v) Topology.checkPlatform(BusConfig.ENV_PLATFORMS, p);
            this.platforms = List.copyOf(v);
            return this;
        }

        /**
         * The worker node ids ({@code SG_NODE_ID}) whose tools reply streams may exist. Given, the worker and tools
         * users get exactly those reply streams; empty (the default), every stream under the reply prefix.
         */
        public Builder workerIds(List<String> ids) {
            for (String id : ids) Topology.checkName(BusConfig.ENV_NODE_ID, id);
            this.workerIds = List.copyOf(ids);
            return this;
        }

        /**
         * While {@code SG_INBOUND_PARTITIONS} changes (docs/cluster.md, "Changing N safely"): the inbound streams under
         * {@code count} partitions too, beside the topology's own, wherever the rules name the inbound streams (their
         * publishers, their consumers, the relay, the monitor and the operator). The rules name every inbound stream exactly,
         * so users made for one count refuse (NOPERM) the processes still, or already, on the other; make the users again
         * without it once the old streams are drained.
         */
        public Builder alsoInboundPartitions(int count) {
            if (count < 1 || count > Topology.MAX_INBOUND_PARTITIONS) {
                throw new ConfigException(Topology.ENV_INBOUND_PARTITIONS_ALSO, "'" + count + "' must be between 1 and "
                        + Topology.MAX_INBOUND_PARTITIONS);
            }
            if (count > 1 && (topology.inboundStream().indexOf('{') >= 0 || topology.inboundStream().indexOf('}') >= 0)) {
                throw new ConfigException(Topology.ENV_INBOUND_STREAM, "'" + topology.inboundStream() + "' contains '{' or '}',"
                        + " so it cannot be split into " + count + " partitions");
            }
            alsoPartitions.add(count);
            return this;
        }

        /** The Redis version the rules are for, e.g. {@code 7.0.15}; below 7.0 is refused by {@link #build()}. */
        public Builder serverVersion(String version) {
            ServerVersion v = ServerVersion.parseOrNull(Objects.requireNonNull(version, "version"));
            if (v == null) {
                throw new ConfigException(SERVER_VERSION, "'" + Settings.printable(version) + "' is not a version like 7.0.15");
            }
            major = v.major();
            minor = v.minor();
            return this;
        }

        /**
         * Also allow EVAL and EVALSHA on each role's keys, beside the library's functions: for services that run their own
         * Lua (a Python publisher's dedupe script, docs/once.md) and for a server where the library is not loaded (the bus
         * then runs scripts). What it gives up: a user may run any Lua it likes on its keys, for as long as it likes (an
         * endless loop blocks the server until SCRIPT KILL). Default off.
         */
        public Builder compatibility(boolean v) {
            this.compatibility = v;
            return this;
        }

        /**
         * How the roles publish ({@code SG_PUBLISH_VIA}); default direct. Relay: each gateway, worker and tools user may
         * write only its own outbox, and a {@link #relay} user writes the shared streams for them.
         */
        public Builder publishVia(PublishVia v) {
            this.publishVia = Objects.requireNonNull(v, "publishVia");
            return this;
        }

        /** Relay mode's relay user (refused by {@link #build()} in direct mode, where nothing would feed it). */
        public Builder relay(String user, String password) {
            return add(user, password, Role.RELAY, List.of());
        }

        /** A gateway user for one or more platforms; a null password leaves the user without one. */
        public Builder gateway(String user, String password, String... platforms) {
            if (platforms.length == 0) throw new ConfigException("gateway " + user, "needs at least one platform");
            for (String p : platforms) Topology.checkPlatform(BusConfig.ENV_PLATFORMS, p);
            return add(user, password, Role.GATEWAY, List.of(platforms));
        }

        public Builder worker(String user, String password) {
            return add(user, password, Role.WORKER, List.of());
        }

        public Builder tools(String user, String password) {
            return add(user, password, Role.TOOLS, List.of());
        }

        public Builder standalone(String user, String password) {
            return add(user, password, Role.STANDALONE, List.of());
        }

        public Builder monitor(String user, String password) {
            return add(user, password, Role.MONITOR, List.of());
        }

        public Builder operator(String user, String password) {
            return add(user, password, Role.OPERATOR, List.of());
        }

        private Builder add(String user, String password, Role role, List<String> platforms) {
            checkUserName(user);
            if (specs.stream().anyMatch(s -> s.name.equals(user))) {
                throw new ConfigException("ACL user", "'" + user + "' is given twice");
            }
            if (password != null && password.isEmpty()) {
                throw new ConfigException("password of ACL user " + user, "must not be empty (pass null for none)");
            }
            specs.add(new Spec(user, password, role, platforms));
            return this;
        }

        public AclRules build() {
            if (major < 7) {
                throw new ConfigException("redis version", major + "." + minor + " has no ACL selectors or read/write key "
                        + "permissions; per-role rules need Redis 7.0 or later (on 6.2 run every node as one user)");
            }
            if (publishVia == PublishVia.DIRECT && specs.stream().anyMatch(s -> s.role == Role.RELAY)) {
                throw new ConfigException("ACL user", "a relay user needs relay mode (" + BusConfig.ENV_PUBLISH_VIA + "=relay)");
            }
            List<User> out = new ArrayList<>();
            for (Spec s : specs) {
                out.add(new User(s.name, s.role, s.platforms, rules(s)));
            }
            return new AclRules(topology, out);
        }

        // ---- what each role touches -----------------------------------------------------------------------

        private List<String> rules(Spec s) {
            Set<String> consume = new LinkedHashSet<>();
            Set<String> publish = new LinkedHashSet<>();
            Set<String> privateStreams = new LinkedHashSet<>();
            Topology t = topology;
            switch (s.role) {
                case GATEWAY -> gateway(s.platforms, consume, publish);
                case WORKER -> worker(consume, publish, privateStreams);
                case TOOLS -> tools(consume, publish);
                case STANDALONE -> {
                    gateway(platforms, consume, publish);
                    worker(consume, publish, privateStreams);
                    tools(consume, publish);
                }
                case MONITOR -> {
                    List<String> r = base(s, false);
                    r.add(monitorSelector());
                    r.add(monitorPauseSelector());
                    return r;
                }
                case OPERATOR -> {
                    return operator(s);
                }
                case RELAY -> relayWrites(consume, publish);
            }
            boolean relayMode = publishVia == PublishVia.RELAY;
            Set<String> outboxes = new LinkedHashSet<>();
            if (relayMode && s.role != Role.RELAY) {
                // The role writes only its outbox(es); in-process, a standalone node's relay writes for it.
                for (String o : ownOutboxes(s)) outboxes.add(escape(o));
                if (s.role == Role.STANDALONE) {
                    publish.clear();
                    relayWrites(consume, publish);
                } else {
                    publish.clear();
                }
                publish.addAll(outboxes);
            }
            // A stream both consumed and published (standalone: inbound) gets both capabilities.
            List<String> r = base(s, true);
            if (!consume.isEmpty()) {
                // XINFO STREAM: a consumer whose group was lost re-creates it after the last entry it read, which
                // needs the stream's last id (StreamConsumer.groupStart); it reveals nothing XREADGROUP does not.
                r.add(selector("+xreadgroup +xack +xautoclaim +xclaim +xpending +xinfo|stream +xinfo|groups +xinfo|consumers "
                        + "+xgroup|create +xgroup|delconsumer +exists", "~", new ArrayList<>(consume)));
            }
            // Every consumer reads its group's pause flag (EventBus.pause): a key in each consumed stream's slot.
            r.add(selector("+exists", "%R~", consumed(s).stream().map(c -> escape(Topology.slotKey(c, "paused:")) + "*").toList()));
            if (s.role == Role.GATEWAY || s.role == Role.STANDALONE) {
                // A web chat gateway reads its platform's outbound stream with a group of its own, deletes that group
                // when it stops (or a dead sibling's), and keeps a presence key {its group}:alive (stargazer-node).
                List<String> ps = s.role == Role.GATEWAY ? s.platforms : platforms;
                r.add(selector("+xgroup|destroy", "~", ps.stream().map(p -> escape(t.outboundStream(p))).toList()));
                r.add(selector("+set +exists", "~", ps.stream().map(p -> escape(t.gatewayGroup(p) + ":") + "*" + escape(":alive")).toList()));
            }
            if (!publish.isEmpty()) {
                r.add(selector("+xadd +xtrim +xlen +exists", "%W~", new ArrayList<>(publish)));
                r.add(selector("+xinfo|groups +xpending", "%R~", new ArrayList<>(publish)));
            }
            if (!outboxes.isEmpty()) {
                // Its outbox's relay group, created from the first entry when this role starts before the relay.
                r.add(selector("+xgroup|create", "~", new ArrayList<>(outboxes)));
            }
            if (!privateStreams.isEmpty()) {
                r.add(selector("+xread +xadd +xdel +xtrim +xlen +exists +pexpire +pttl", "~", new ArrayList<>(privateStreams)));
            }
            // The keys that live beside a stream in its slot (docs/once.md): dedupe keys of the streams a role publishes
            // to, and the tools service's run leases and stored replies of its requests.
            Set<String> support = new LinkedHashSet<>();
            for (String p : publish) support.add(beside(p, "dedupe:*"));
            for (String p : privateStreams) support.add(beside(p, "dedupe:*"));
            if (s.role == Role.TOOLS || s.role == Role.STANDALONE) {
                support.add(beside(escape(t.toolsStream()), "run:*"));
                support.add(beside(escape(t.toolsStream()), "result:*"));
            }
            if (!support.isEmpty()) {
                // Dedupe keys are fields of two hashes per stream whose period comes from the server's clock (Dedupe).
                r.add(selector("+get +set +pexpire +del +hget +hmget +hset +pexpireat +unlink +time", "~", new ArrayList<>(support)));
            }
            Set<String> scripted = new LinkedHashSet<>(consume);
            scripted.addAll(publish);
            scripted.addAll(privateStreams);
            scripted.addAll(support);
            List<String> functions = new ArrayList<>();
            if (!consume.isEmpty()) functions.addAll(CONSUME_FUNCTIONS);
            if (!publish.isEmpty()) functions.addAll(PUBLISH_FUNCTIONS);
            if (!outboxes.isEmpty()) functions.addAll(OUTBOX_FUNCTIONS);
            if (s.role == Role.RELAY || (relayMode && s.role == Role.STANDALONE)) functions.addAll(RELAY_FUNCTIONS);
            if (s.role == Role.WORKER || s.role == Role.STANDALONE) functions.addAll(WORKER_FUNCTIONS);
            if (s.role == Role.TOOLS || s.role == Role.STANDALONE) functions.addAll(TOOLS_FUNCTIONS);
            r.add(selector(fcall(functions), "~", new ArrayList<>(scripted)));
            if (compatibility) r.add(selector("+eval +evalsha", "~", new ArrayList<>(scripted)));
            return r;
        }

        /** Read-only, every stream of the topology (including dead letters and every platform). */
        private String monitorSelector() {
            return selector("+xlen +exists +xinfo|stream +xinfo|groups +xinfo|consumers +xpending", "%R~", monitorStreams());
        }

        /**
         * EXISTS on the pause flags beside the monitor's streams: {@code stargazer streams} shows whether each group is
         * paused (before, the monitor was refused there, and every run added to the ACL log).
         */
        private String monitorPauseSelector() {
            return selector("+exists", "%R~", monitorStreams().stream().map(k -> beside(k, "paused:*")).toList());
        }

        /** The key patterns of every stream of the topology, escaped (including dead letters and every platform). */
        private List<String> monitorStreams() {
            Topology t = topology;
            List<String> keys = new ArrayList<>();
            for (String in : inboundStreams()) {
                keys.add(escape(in));
                keys.add(escape(t.deadLetterStream(in)));
            }
            keys.add(escape(t.outboundStreamPrefix() + ":") + "*");
            keys.add(escape(t.toolsStream()));
            keys.add(escape(t.deadLetterStream(t.toolsStream())));
            keys.add(escape(t.toolsReplyStreamPrefix() + ":") + "*");
            if (publishVia == PublishVia.RELAY) {
                for (String o : t.outboxes(platforms)) {
                    keys.add(escape(o));
                    keys.add(escape(t.deadLetterStream(o)));
                }
            }
            return keys;
        }

        /**
         * The monitor's reads; dead letters read, deleted and purged; replays put back on their source streams through
         * sg_replay (with its replay keys); pause flags set and removed through sg_pause / sg_resume.
         */
        private List<String> operator(Spec s) {
            Topology t = topology;
            boolean relayMode = publishVia == PublishVia.RELAY;
            // Relay mode: the outboxes' dead letters (entries the relay refused or could not move) too, and pausing the relay.
            Set<String> sourceSet = new LinkedHashSet<>(t.replaySources(platforms, relayMode));
            sourceSet.addAll(inboundStreams());
            List<String> sources = List.copyOf(sourceSet);
            List<String> dead = sources.stream().map(x -> escape(t.deadLetterStream(x))).toList();
            List<String> src = sources.stream().map(AclRules::escape).toList();
            List<String> pauseKeys = src.stream().map(x -> beside(x, "paused:*")).toList();
            // Direct mode: replays are added to their source streams (sg_replay), which takes XADD on them. Relay mode: to
            // the operator's outbox, which the relay moves on, so the operator writes no stream another role reads.
            List<String> writes = relayMode ? List.of(escape(t.operatorOutbox())) : src;
            List<String> replayKeys = writes.stream().map(x -> beside(x, "replay:*")).toList();
            List<String> r = base(s, false);
            // SCAN (key names only): `stargazer resume inbound` finds pause flags left on another partition count's streams.
            r.add("+scan");
            r.add(monitorSelector());
            r.add(monitorPauseSelector());
            r.add(selector("+xrange +xdel +xtrim +xlen +exists", "~", dead));
            if (relayMode) {
                r.add(selector("+xadd +xtrim +xlen +exists", "%W~", writes));
                r.add(selector("+xinfo|groups +xpending", "%R~", writes));
                r.add(selector("+xgroup|create", "~", writes));
            } else {
                r.add(selector("+xadd", "%W~", writes));
            }
            r.add(selector("+get +set", "~", replayKeys));
            r.add(selector("+set +del +exists", "~", pauseKeys));
            List<String> fkeys = new ArrayList<>(src);
            if (relayMode) fkeys.addAll(writes);
            fkeys.addAll(replayKeys);
            fkeys.addAll(pauseKeys);
            r.add(selector(fcall(OPERATOR_FUNCTIONS), "~", fkeys));
            if (compatibility) r.add(selector("+eval +evalsha", "~", fkeys));
            return r;
        }

        private static String fcall(List<String> functions) {
            return String.join(" ", new LinkedHashSet<>(functions.stream().map(f -> "+fcall|" + f).toList()));
        }

        /**
         * The pattern of keys {@code suffix} beside the streams of {@code streamPattern}, in their cluster slot: a name
         * with a hash tag keeps it ({@code <stream>:<suffix>}), any other becomes the tag ({@code {<stream>}:<suffix>}).
         */
        private static String beside(String streamPattern, String suffix) {
            int open = streamPattern.indexOf('{');
            boolean tagged = open >= 0 && streamPattern.indexOf('}', open + 1) > open + 1;
            return (tagged ? streamPattern : "{" + streamPattern + "}") + ":" + suffix;
        }

        // The sets below hold key patterns, each name escaped so that it matches only itself.

        private void gateway(List<String> ps, Set<String> consume, Set<String> publish) {
            Topology t = topology;
            for (String in : inboundStreams()) publish.add(escape(in));
            for (String p : ps) {
                consume.add(escape(t.outboundStream(p)));
                publish.add(escape(t.deadLetterStream(t.outboundStream(p))));
            }
        }

        private void worker(Set<String> consume, Set<String> publish, Set<String> privateStreams) {
            Topology t = topology;
            for (String in : inboundStreams()) {
                consume.add(escape(in));
                publish.add(escape(t.deadLetterStream(in)));
            }
            for (String p : platforms) publish.add(escape(t.outboundStream(p)));
            publish.add(escape(t.toolsStream()));
            privateStreams.addAll(replyPatterns());
        }

        /**
         * What the relay consumes (every outbox) and publishes to: each role's shared streams, exactly what gateway,
         * worker and tools publish to in direct mode, and the outboxes' dead letters.
         */
        private void relayWrites(Set<String> consume, Set<String> publish) {
            Topology t = topology;
            Set<String> ignored = new LinkedHashSet<>();
            gateway(platforms, ignored, publish);
            worker(ignored, publish, new LinkedHashSet<>());
            tools(ignored, publish);
            for (String o : t.outboxes(platforms)) {
                consume.add(escape(o));
                publish.add(escape(t.deadLetterStream(o)));
                publish.add(escape(o)); // an outbox dead letter the operator puts back goes through the relay too
            }
        }

        /** The topology's inbound streams, then those of each {@link #alsoInboundPartitions} count. */
        private List<String> inboundStreams() {
            Set<String> out = new LinkedHashSet<>(topology.inboundStreams());
            for (int n : alsoPartitions) out.addAll(Topology.partitionNames(topology.inboundStream(), n));
            return List.copyOf(out);
        }

        /** The outboxes a role writes in relay mode (Relaying.outboxes in the library: the same choice). */
        private List<String> ownOutboxes(Spec s) {
            Topology t = topology;
            return switch (s.role) {
                case GATEWAY -> s.platforms.stream().map(t::gatewayOutbox).toList();
                case WORKER -> List.of(t.workerOutbox());
                case TOOLS -> List.of(t.toolsOutbox());
                case STANDALONE -> t.outboxes(platforms);
                default -> List.of();
            };
        }

        /** The streams a role consumes, by name (the pause flags' streams). */
        private List<String> consumed(Spec s) {
            Topology t = topology;
            List<String> out = new ArrayList<>();
            if (s.role == Role.RELAY || (s.role == Role.STANDALONE && publishVia == PublishVia.RELAY)) out.addAll(t.outboxes(platforms));
            if (s.role == Role.WORKER || s.role == Role.STANDALONE) out.addAll(inboundStreams());
            if (s.role == Role.GATEWAY || s.role == Role.STANDALONE) {
                for (String p : s.role == Role.GATEWAY ? s.platforms : platforms) out.add(t.outboundStream(p));
            }
            if (s.role == Role.TOOLS || s.role == Role.STANDALONE) out.add(t.toolsStream());
            return out;
        }

        private void tools(Set<String> consume, Set<String> publish) {
            Topology t = topology;
            consume.add(escape(t.toolsStream()));
            publish.add(escape(t.deadLetterStream(t.toolsStream())));
            // Replies are published through the bus like any stream (with the trim guard), never read here.
            publish.addAll(replyPatterns());
        }

        /** Reply streams: exact per worker id, or everything under the prefix. */
        private List<String> replyPatterns() {
            if (workerIds.isEmpty()) {
                return List.of(escape(topology.toolsReplyStreamPrefix() + ":") + "*");
            }
            return workerIds.stream().map(id -> escape(topology.toolsReplyStream(id))).toList();
        }

        private List<String> base(Spec s, boolean unblock) {
            List<String> r = new ArrayList<>();
            r.add("reset");
            r.add("on");
            if (s.password != null) r.add("#" + sha256(s.password));
            r.add("resetkeys");
            r.add("resetchannels");
            r.add("-@all");
            // HELLO and AUTH at login, INFO server for the version, COMMAND DOCS for the server's features, SELECT for a
            // /db in the URL, CLIENT SETNAME for the node id, CLIENT ID + UNBLOCK to wake a subscription's own blocked
            // read when it closes.
            // FCALL_RO sg_version: which library version the server has (the bus checks it at connect).
            String connect = "+hello +auth +ping +info +command|docs +select +client|id +client|setname +fcall_ro|sg_version";
            if (major > 7 || (major == 7 && minor >= 2)) connect += " +client|setinfo";
            if (unblock) connect += " +client|unblock";
            for (String c : connect.split(" ")) r.add(c);
            return r;
        }

        private static String selector(String commands, String keyPrefix, List<String> keys) {
            StringBuilder sb = new StringBuilder("(").append(commands);
            for (String k : keys) sb.append(' ').append(keyPrefix).append(k);
            return sb.append(')').toString();
        }
    }

    /** A key name as a Redis glob pattern that matches only itself. */
    static String escape(String key) {
        return io.stargazer.bus.internal.RedisGlob.literal(key);
    }

    private static void checkUserName(String user) {
        if (user == null || user.isEmpty()) throw new ConfigException("ACL user", "must not be empty");
        for (int i = 0; i < user.length(); i++) {
            char c = user.charAt(i);
            if (c <= ' ' || c >= 0x7f || c == '(' || c == ')' || c == '\'' || c == '"' || c == '#' || c == '>' || c == '<') {
                throw new ConfigException("ACL user", "'" + Settings.printable(user)
                        + "' must be printable ASCII without spaces, quotes, parentheses, '#', '<' or '>'");
            }
        }
    }

    private static String sha256(String password) {
        try {
            return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(password.getBytes(StandardCharsets.UTF_8)));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("the JVM has no SHA-256", e);
        }
    }

    @Override
    public String toString() {
        return "AclRules" + users.stream().map(u -> u.name() + "/" + u.role().wireName()).toList();
    }
}
