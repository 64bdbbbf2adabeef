// The operator commands: streams, publish, tail (they talk to a running system's Redis and never start one), provision
// (loads the functions library and creates the topology's streams and groups) and acl (prints least-privilege ACL users
// for the environment's topology).
package io.stargazer.node;

import io.stargazer.bus.acl.AclRules;
import io.stargazer.bus.BusConfig;
import io.stargazer.bus.ConfigException;
import io.stargazer.bus.Envelope;
import io.stargazer.bus.EventBus;
import io.stargazer.bus.PublishOptions;
import io.stargazer.bus.NodeRole;
import io.stargazer.bus.RedisUrl;
import io.stargazer.bus.StreamEntry;
import io.stargazer.bus.StreamInfo;
import io.stargazer.bus.Topology;
import io.stargazer.node.EnvironmentDefaults.FromEnv;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.ParentCommand;
import picocli.CommandLine.Spec;

/** Holder of the operator subcommands of {@link Main}. */
final class OperatorCommands {
    private OperatorCommands() {
    }

    /** The settings every command that talks to Redis takes. */
    static final class ConnectionOptions {
        @FromEnv(RedisUrl.ENV_REDIS_URL)
        @Option(names = "--redis-url", paramLabel = "URL", description = "Redis server (REDIS_URL); standalone, gateway, worker, tools and relay start an embedded one without it, "
                + "the other commands need it")
        String redisUrl;

        @Option(names = "--node-id", paramLabel = "ID", description = "This process's consumer name (SG_NODE_ID; default host-pid)")
        String nodeId;
    }

    /** An operator command that talks to Redis. */
    abstract static class RedisCommand implements Callable<Integer> {
        @ParentCommand Main main;
        @Spec CommandSpec spec;
        @Mixin ConnectionOptions connection;

        /** Connects for an operator tool: a server must be named, these never start one. */
        EventBus connect() {
            return OperatorCommands.connect(main, spec, connection);
        }
    }

    /** What every command that talks to Redis connects with, whichever command it sits under. */
    static EventBus connect(Main main, CommandSpec spec, ConnectionOptions connection) {
        return connect(main, spec, connection, null, null, io.stargazer.bus.ServerCodeMode.AUTO);
    }

    /**
     * {@link #connect(Main, CommandSpec, ConnectionOptions)} to {@code url} instead when not null, a bad one named as
     * {@code urlOption}; {@code code} other than AUTO overrides SG_SERVER_CODE.
     */
    static EventBus connect(Main main, CommandSpec spec, ConnectionOptions connection, String url, String urlOption,
            io.stargazer.bus.ServerCodeMode code) {
        String text = url != null ? url : connection.redisUrl;
        if (text == null) {
            throw new ConfigException(RedisUrl.ENV_REDIS_URL, "not set; give --redis-url or set REDIS_URL to the server the node printed");
        }
        RedisUrl parsed = RedisUrl.parse(url != null ? urlOption : EnvironmentDefaults.source(spec, "--redis-url"), text).withEnvironment(main.env);
        // The flag's own name on a bad value: BusConfig would name SG_NODE_ID, which the operator did not set.
        if (connection.nodeId != null) Topology.checkName("--node-id", connection.nodeId);
        BusConfig.Builder cfg = BusConfig.fromEnvironment(main.env).toBuilder().role(NodeRole.GATEWAY);
        cfg.nodeId(connection.nodeId != null ? connection.nodeId : "stargazer-cli-" + ProcessHandle.current().pid());
        if (code != io.stargazer.bus.ServerCodeMode.AUTO) cfg.serverCode(code);
        return EventBus.connect(parsed, cfg.build());
    }

    /**
     * {@code inbound}, {@code outbound:<platform>}, {@code tools}, or a stream name as is. {@code inbound} is every
     * partition, with SG_INBOUND_PARTITIONS_ALSO those of the other count too (a partition-count change: docs/cluster.md).
     * A bad name is refused naming {@code typedAs}, the argument or flag the operator typed it as (STREAM, --stream,
     * --to), not the topology's own word for it ("platform", "stream").
     */
    static List<String> resolveStreams(EventBus bus, String name, String typedAs) {
        Topology t = bus.topology();
        if ("inbound".equals(name)) return StreamsReport.inboundStreams(t);
        if ("tools".equals(name)) return List.of(t.toolsStream());
        try {
            if (name.startsWith("outbound:")) return List.of(t.outboundStream(name.substring("outbound:".length())));
            return List.of(Topology.checkName("stream", name));
        } catch (ConfigException bad) {
            throw new ConfigException(typedAs, bad.reason());
        }
    }

    @Command(name = "streams", mixinStandardHelpOptions = true,
            description = {"Streams, groups and consumers with length, pending, lag and dead letters.",
                    "A stream that does not exist shows as '-'; one that could not be read (Redis out of reach, a paused "
                            + "cluster primary, refused) as 'could not be read: <reason>', named on stderr too, and the exit "
                            + "code is then 1 (the report is printed all the same)."})
    static final class Streams extends RedisCommand {

        @Option(names = "--json", description = "Print JSON instead of a table")
        boolean json;

        @Option(names = "--stream", paramLabel = "NAME", description = "Also show this stream (repeatable)")
        List<String> extra = new ArrayList<>();

        @Override
        public Integer call() {
            // As `dead list STREAM` does: a name Redis would take but no topology can hold is a typo, not an empty stream.
            for (String s : extra) Topology.checkName("--stream", s);
            try (EventBus bus = connect()) {
                List<Map<String, Object>> rows = StreamsReport.collect(bus, StreamsReport.streams(bus, bus.config().platforms(), extra));
                for (Map<String, Object> row : rows) flagNotAStream(bus, row);
                // In every row, not around them: the JSON stays the array of rows that scripts already read.
                Map<String, Object> library = StreamsReport.library(bus);
                for (Map<String, Object> row : rows) row.put("library", library);
                main.out.print(json ? NodeJson.write(rows) + "\n"
                        : StreamsReport.table(rows) + StreamsReport.libraryLine(library, bus.serverVersion()) + "\n");
                main.out.flush();
                List<Map<String, Object>> unreadable = StreamsReport.unreadable(rows);
                for (Map<String, Object> row : unreadable) {
                    spec.commandLine().getErr().println("stargazer: " + row.get("stream") + ": could not be read: " + row.get("error"));
                }
                if (!unreadable.isEmpty()) return Main.FAILED;
            }
            return 0;
        }

        /**
         * XINFO STREAM, which the count comes from, fails the same for a key of another type as for none: a dead-letter
         * stream counted 0 is looked at once more, for the operator to see why dead list skips it.
         */
        private void flagNotAStream(EventBus bus, Map<String, Object> row) {
            if (!Long.valueOf(0).equals(row.get("dead_letters"))) return;
            String dead = (String) row.get("dead_letter_stream");
            if (bus.deadLetters().notStreams(List.of(dead)).isEmpty()) return;
            row.put("dead_letter_stream_not_a_stream", true);
            DeadCommands.DeadCommand.warnNotAStream(spec, dead, "dead list skips it");
        }
    }

    @Command(name = "acl", mixinStandardHelpOptions = true,
            description = "Prints Redis ACL rules (ACL SETUSER lines, or an ACL file with --file) for each node role under "
                    + "the current topology: each user may run only the commands, on only the keys, its role uses. "
                    + "Users get no password: set one with ACL SETUSER <user> ><password> (see docs/security.md).")
    static final class Acl implements Callable<Integer> {
        @ParentCommand Main main;

        @Option(names = "--file", description = "Print an ACL file (aclfile) instead of ACL SETUSER commands")
        boolean file;

        @Option(names = "--platform", paramLabel = "NAME", description = "A gateway platform (repeatable; default SG_PLATFORMS)")
        List<String> platforms;

        @Option(names = "--worker-id", paramLabel = "ID",
                description = "A worker id whose tools reply stream the rules name exactly (repeatable; default: any)")
        List<String> workerIds;

        @Option(names = "--server-version", paramLabel = "VERSION", description = "The Redis version the rules are for (default 7.0)")
        String serverVersion = "7.0.0";

        @Option(names = "--compatibility", description = "Also allow EVAL/EVALSHA on each role's keys: for services that run "
                + "their own Lua, or a server without the stargazer library (docs/security.md says what this gives up)")
        boolean compatibility;

        @Option(names = "--relay", description = "Relay mode's rules (default: SG_PUBLISH_VIA): each role writes only its own "
                + "outbox, and sg-relay alone writes the shared streams (docs/functions.md)")
        boolean relay;

        @Option(names = "--also-partitions", paramLabel = "N", description = "While SG_INBOUND_PARTITIONS changes: also name the "
                + "inbound streams under N partitions (repeatable), so processes on the old and the new count both run "
                + "(docs/cluster.md, \"Changing N safely\")")
        List<Integer> alsoPartitions;

        @Override
        public Integer call() {
            BusConfig cfg = BusConfig.fromEnvironment(main.env);
            List<String> ps = platforms == null ? cfg.platforms() : platforms;
            boolean relayMode = relay || cfg.publishVia() == io.stargazer.bus.PublishVia.RELAY;
            AclRules.Builder b = AclRules.builder(cfg.topology()).compatibility(compatibility)
                    .publishVia(relayMode ? io.stargazer.bus.PublishVia.RELAY : io.stargazer.bus.PublishVia.DIRECT);
            // The library names its settings (SG_PLATFORMS, SG_NODE_ID...); a value typed after a flag is refused naming the flag.
            if (platforms != null) byFlag(BusConfig.ENV_PLATFORMS, "--platform", () -> b.platforms(ps));
            else b.platforms(ps);
            byFlag(AclRules.SERVER_VERSION, "--server-version", () -> b.serverVersion(serverVersion));
            if (workerIds != null) byFlag(BusConfig.ENV_NODE_ID, "--worker-id", () -> b.workerIds(workerIds));
            if (alsoPartitions != null) {
                for (int n : alsoPartitions) byFlag(Topology.ENV_INBOUND_PARTITIONS_ALSO, "--also-partitions", () -> b.alsoInboundPartitions(n));
            }
            for (String p : ps) b.gateway("sg-gateway-" + p, null, p);
            b.worker("sg-worker", null).tools("sg-tools", null).monitor("sg-monitor", null).operator("sg-operator", null);
            if (relayMode) b.relay("sg-relay", null);
            AclRules rules = b.build();
            main.out.print(file ? rules.aclFile() : rules.setUserCommands());
            main.out.flush();
            return 0;
        }
    }

    /** Runs {@code step}; its refusal of {@code setting} is named after {@code flag}, which gave the value. */
    private static <T> T byFlag(String setting, String flag, java.util.function.Supplier<T> step) {
        try {
            return step.get();
        } catch (ConfigException e) {
            if (!setting.equals(e.setting())) throw e;
            throw new ConfigException(flag, e.reason());
        }
    }

    @Command(name = "provision", mixinStandardHelpOptions = true,
            description = "Run once with an administrator's URL: loads (or replaces) the stargazer functions library (Redis 7+) "
                    + "and creates every stream and consumer group of the topology; prints what it did. Running it again "
                    + "changes nothing and says so (docs/functions.md).")
    static final class Provision extends RedisCommand {
        @Option(names = "--url", paramLabel = "URL", description = "The administrator's Redis URL (default --redis-url / REDIS_URL)")
        String url;

        @Override
        public Integer call() {
            // Scripts for its own few commands: the library it is about to load may be missing or old.
            try (EventBus bus = OperatorCommands.connect(main, spec, connection, url, "--url", io.stargazer.bus.ServerCodeMode.SCRIPTS)) {
                io.stargazer.bus.Provisioning.Result r = io.stargazer.bus.Provisioning.provision(bus);
                for (String a : r.actions()) main.out.println(a);
                main.out.println(r.changed() ? "provisioned" : "nothing to do: already provisioned");
                main.out.flush();
            }
            return 0;
        }
    }

    @Command(name = "publish", mixinStandardHelpOptions = true,
            description = "Publishes one envelope given as JSON (bytes as {\"$bytes\": \"<base64>\"}); prints the entry id.")
    static final class Publish extends RedisCommand {

        @Option(names = "--to", paramLabel = "TARGET", defaultValue = "inbound",
                description = "inbound (default), outbound:<platform>, tools, or a stream name")
        String to;

        @Parameters(paramLabel = "JSON", description = "The envelope as a JSON object, or - to read it from stdin")
        String envelope;

        @Option(names = "--dedupe-key", paramLabel = "KEY",
                description = "Publish at most once per KEY within the dedupe window (SG_DEDUPE_WINDOW_MS); prints the first entry's id "
                        + "when KEY was already used (with SG_PUBLISH_VIA=relay: the new outbox entry's id, the relay adding "
                        + "nothing to the stream); retried when the outcome is unknown (docs/once.md)")
        String dedupeKey;

        @Override
        public Integer call() throws IOException {
            String text = "-".equals(envelope) ? new String(System.in.readAllBytes(), StandardCharsets.UTF_8) : envelope;
            Envelope e;
            try {
                e = NodeJson.toEnvelope(text);
            } catch (IllegalArgumentException ex) {
                throw new ConfigException("JSON", ex.getMessage());
            }
            PublishOptions options = dedupeKey == null ? PublishOptions.NONE
                    : byFlag("dedupeKey", "--dedupe-key", () -> PublishOptions.builder().dedupeKey(dedupeKey).maxAttempts(5).build());
            try (EventBus bus = connect()) {
                String id;
                if ("inbound".equals(to)) {
                    id = bus.publishInbound(e, options);
                } else {
                    id = bus.publish(resolveStreams(bus, to, "--to").get(0), e, options);
                }
                main.out.println(id);
            }
            return 0;
        }
    }

    /**
     * Where to start following {@code stream} without --from-start: its last entry, read from XINFO STREAM. A stream
     * with no entry (or none yet) starts at 0: all it will get is new. When XINFO STREAM fails on a stream that has
     * entries (an ACL user without it), the command ends saying so instead of printing the whole stream, which is what
     * starting at 0 did there (and XREAD cannot poll from "$", which never moves).
     */
    private static String lastId(EventBus bus, String stream) {
        java.util.Optional<StreamInfo> info = bus.streamInfo(stream);
        if (info.isPresent()) return info.get().lastEntryId();
        if (bus.read(stream, "0", 1).isEmpty()) return "0";
        throw new io.stargazer.bus.StargazerException("tail: could not read where " + stream
                + " ends (XINFO STREAM failed); give --from-start to print it from its first entry");
    }

    @Command(name = "tail", mixinStandardHelpOptions = true,
            description = "Follows a stream without a consumer group, printing one JSON line per entry (bytes as base64).")
    static final class Tail extends RedisCommand {

        @Parameters(paramLabel = "STREAM", description = "inbound, outbound:<platform>, tools, or a stream name")
        String stream;

        @Option(names = "--from-start", description = "Print the entries already in the stream first")
        boolean fromStart;

        @Option(names = {"-n", "--count"}, paramLabel = "N", description = "Exit after N entries")
        Integer count;

        @Override
        public Integer call() throws InterruptedException {
            if (count != null && count <= 0) throw new ConfigException("--count", "'" + count + "' must be greater than zero");
            try (EventBus bus = connect()) {
                Map<String, String> cursors = new LinkedHashMap<>();
                for (String s : resolveStreams(bus, stream, "STREAM")) {
                    cursors.put(s, fromStart ? "0" : lastId(bus, s));
                }
                long printed = 0;
                while (true) {
                    boolean any = false;
                    for (Map.Entry<String, String> c : cursors.entrySet()) {
                        for (StreamEntry e : bus.read(c.getKey(), c.getValue(), 100)) {
                            any = true;
                            c.setValue(e.id());
                            Map<String, Object> line = new LinkedHashMap<>();
                            line.put("stream", c.getKey());
                            line.put("id", e.id());
                            if (e.envelope() != null) {
                                line.put("envelope", e.envelope());
                            } else {
                                line.put("malformed", e.malformed());
                            }
                            main.out.println(NodeJson.write(line));
                            if (count != null && ++printed >= count) {
                                main.out.flush();
                                return 0;
                            }
                        }
                    }
                    main.out.flush();
                    if (!any) {
                        // No blocking read without a group on the shared connection: poll gently instead.
                        Thread.sleep(200);
                    }
                }
            }
        }
    }
}
