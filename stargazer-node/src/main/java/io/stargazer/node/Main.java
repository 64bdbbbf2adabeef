// The `stargazer` command: runs the node's parts (standalone, gateway, worker, tools) and the operator tools
// (streams, publish, tail). Settings come from flags, then SG_* variables, then defaults.
package io.stargazer.node;

import io.stargazer.bus.BusConfig;
import io.stargazer.bus.ConfigException;
import io.stargazer.bus.Envelope;
import io.stargazer.bus.EventBus;
import io.stargazer.bus.NodeRole;
import io.stargazer.bus.RedisUrl;
import io.stargazer.bus.StreamEntry;
import io.stargazer.bus.StreamInfo;
import io.stargazer.bus.Topology;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.ParentCommand;

/**
 * Entry point. {@link #run} is the whole command line as a function (arguments and environment in, exit code out),
 * so tests run it in-process; {@link #main} adds {@code System.exit}. Every failure the operator can fix (a bad flag,
 * an unreadable setting, an unreachable server) ends as one line on stderr and a non-zero exit code: 2 for usage
 * errors, 1 for the rest.
 */
@Command(name = "stargazer", mixinStandardHelpOptions = true, versionProvider = Main.Version.class,
        description = "The Stargazer node: an event bus on Redis Streams with a web chat, a worker and a tools service.",
        subcommands = {Main.Standalone.class, Main.Gateway.class, Main.WorkerCommand.class, Main.ToolsCommand.class,
                Main.Streams.class, Main.Publish.class, Main.Tail.class, Main.Acl.class, CommandLine.HelpCommand.class})
public final class Main implements Callable<Integer> {
    static final int USAGE = 2;
    static final int FAILED = 1;

    private final Map<String, String> env;
    private final PrintStream out;
    private final PrintStream err;

    Main(Map<String, String> env, PrintStream out, PrintStream err) {
        this.env = env;
        this.out = out;
        this.err = err;
    }

    public static void main(String[] args) {
        System.exit(run(args, System.getenv(), System.out, System.err));
    }

    /** Runs one command line; server commands return only when the node stops. */
    public static int run(String[] args, Map<String, String> env, PrintStream out, PrintStream err) {
        if (args.length > 0 && List.of("streams", "publish", "tail").contains(args[0])) {
            // Operator tools print their own output; only problems should show up from the library's logging.
            System.setProperty("org.slf4j.simpleLogger.defaultLogLevel", "warn");
        }
        Main main = new Main(env, out, err);
        CommandLine cl = new CommandLine(main);
        cl.setOut(new java.io.PrintWriter(out, true));
        cl.setErr(new java.io.PrintWriter(err, true));
        cl.setParameterExceptionHandler((e, a) -> {
            err.println("stargazer: " + oneLine(e.getMessage()) + " (see 'stargazer "
                    + (e.getCommandLine() == cl ? "" : e.getCommandLine().getCommandName() + " ") + "--help')");
            return USAGE;
        });
        cl.setExecutionExceptionHandler((e, c, p) -> {
            err.println("stargazer: " + describe(e));
            return e instanceof ConfigException ? USAGE : FAILED;
        });
        return cl.execute(args);
    }

    @Override
    public Integer call() {
        new CommandLine(this).usage(out);
        return USAGE;
    }

    static String describe(Throwable e) {
        String m = e.getMessage();
        if (m == null || m.isBlank()) {
            m = e.getClass().getSimpleName();
        }
        return oneLine(m);
    }

    static String oneLine(String s) {
        return s.replaceAll("\\s*[\\r\\n]+\\s*", " ").trim();
    }

    // ---- settings -----------------------------------------------------------------------------------------

    String env(String name) {
        String v = env.get(name);
        return v == null || v.isBlank() ? null : v;
    }

    /** Flag, else the variable, else the default. */
    String setting(String flag, String envName, String def) {
        if (flag != null) return flag;
        String v = env(envName);
        return v != null ? v : def;
    }

    int intSetting(Integer flag, String envName, int def) {
        if (flag != null) return flag;
        String v = env(envName);
        if (v == null) return def;
        try {
            return Integer.parseInt(v.trim());
        } catch (NumberFormatException e) {
            throw new ConfigException(envName, "'" + v + "' is not a whole number");
        }
    }

    /** {@code --redis-url}, else {@code REDIS_URL}, else null. */
    RedisUrl redisUrl(String flag) {
        if (flag != null) return RedisUrl.parse("--redis-url", flag);
        String v = env(RedisUrl.ENV_REDIS_URL);
        return v == null ? null : RedisUrl.parse(RedisUrl.ENV_REDIS_URL, v);
    }

    /** The settings every command that talks to Redis takes. */
    static final class ConnectionOptions {
        @Option(names = "--redis-url", paramLabel = "URL", description = "Redis server (REDIS_URL); without it the node starts an embedded one")
        String redisUrl;

        @Option(names = "--node-id", paramLabel = "ID", description = "This process's consumer name (SG_NODE_ID; default host-pid)")
        String nodeId;
    }

    /** The settings of the commands that run node parts. */
    static final class ServerOptions {
        @Mixin
        ConnectionOptions connection;

        @Option(names = "--http-host", paramLabel = "HOST", description = "Address the HTTP server binds (SG_HTTP_HOST; default 127.0.0.1)")
        String httpHost;

        @Option(names = "--http-port", paramLabel = "PORT", description = "HTTP port, 0 for a free one, -1 for none (SG_HTTP_PORT)")
        Integer httpPort;

        @Option(names = "--dashboard-host", paramLabel = "HOST",
                description = "Serve the dashboard, its API and /metrics on their own address (SG_DASHBOARD_HOST; default 127.0.0.1)")
        String dashboardHost;

        @Option(names = "--dashboard-port", paramLabel = "PORT",
                description = "Port of the dashboard's own listener, 0 for a free one; -1 serves it on the main HTTP server "
                        + "(SG_DASHBOARD_PORT; default -1). Its password comes only from SG_DASHBOARD_PASSWORD.")
        Integer dashboardPort;

        @Option(names = "--data-dir", paramLabel = "DIR", description = "Embedded Redis data directory (SG_DATA_DIR; default ./data/redis)")
        String dataDir;

        @Option(names = "--redis-port", paramLabel = "PORT", description = "Embedded Redis port, 0 for a free one (SG_REDIS_PORT; default 0)")
        Integer redisPort;

        @Option(names = "--handler", paramLabel = "NAME", description = "Worker handler: echo, tools, or a class name (SG_WORKER_HANDLER; default echo)")
        String handler;

        @Option(names = "--tool-timeout-ms", paramLabel = "MS", description = "How long the tools handler waits for a tool (SG_TOOL_TIMEOUT_MS; default 10000)")
        Integer toolTimeoutMs;
    }

    int runNode(ServerOptions o, NodeRole role, Node.Parts parts, int defaultHttpPort) throws InterruptedException {
        int httpPort = intSetting(o.httpPort, "SG_HTTP_PORT", defaultHttpPort);
        if (httpPort < -1 || httpPort > 65535) throw new ConfigException(o.httpPort != null ? "--http-port" : "SG_HTTP_PORT", "'" + httpPort + "' is not a port");
        int redisPort = intSetting(o.redisPort, "SG_REDIS_PORT", 0);
        if (redisPort < 0 || redisPort > 65535) throw new ConfigException(o.redisPort != null ? "--redis-port" : "SG_REDIS_PORT", "'" + redisPort + "' is not a port");
        int toolTimeoutMs = intSetting(o.toolTimeoutMs, "SG_TOOL_TIMEOUT_MS", 10_000);
        if (toolTimeoutMs <= 0) throw new ConfigException(o.toolTimeoutMs != null ? "--tool-timeout-ms" : "SG_TOOL_TIMEOUT_MS", "'" + toolTimeoutMs + "' must be greater than zero");
        String handler = setting(o.handler, "SG_WORKER_HANDLER", "echo");
        String nodeId = o.connection.nodeId;
        if (nodeId != null) Topology.checkName("--node-id", nodeId);
        int dashboardPort = intSetting(o.dashboardPort, "SG_DASHBOARD_PORT", -1);
        if (dashboardPort < -1 || dashboardPort > 65535) {
            throw new ConfigException(o.dashboardPort != null ? "--dashboard-port" : "SG_DASHBOARD_PORT", "'" + dashboardPort + "' is not a port");
        }
        String dashboardPassword = env("SG_DASHBOARD_PASSWORD");
        if (dashboardPassword != null && dashboardPassword.isEmpty()) {
            throw new ConfigException("SG_DASHBOARD_PASSWORD", "must not be empty when set");
        }
        Node.Dashboard dashboard = new Node.Dashboard(setting(o.dashboardHost, "SG_DASHBOARD_HOST", "127.0.0.1"), dashboardPort,
                dashboardPassword);
        Node.Settings s = new Node.Settings(role, parts, redisUrl(o.connection.redisUrl), nodeId,
                Path.of(setting(o.dataDir, "SG_DATA_DIR", "data/redis")).toAbsolutePath(), redisPort,
                setting(o.httpHost, "SG_HTTP_HOST", "127.0.0.1"), httpPort, handler, Duration.ofMillis(toolTimeoutMs), env,
                dashboard);
        Node node = Node.start(s);
        Thread hook = new Thread(node::close, "stargazer-shutdown");
        Runtime.getRuntime().addShutdownHook(hook);
        node.awaitStop();
        return 0;
    }

    @Command(name = "standalone", mixinStandardHelpOptions = true,
            description = "Web chat gateway, worker and tools service in one process.")
    static final class Standalone implements Callable<Integer> {
        @ParentCommand Main main;
        @Mixin ServerOptions options;

        @Override
        public Integer call() throws Exception {
            return main.runNode(options, NodeRole.STANDALONE, new Node.Parts(true, true, true), 8080);
        }
    }

    @Command(name = "gateway", mixinStandardHelpOptions = true, description = "A platform gateway (the web chat).")
    static final class Gateway implements Callable<Integer> {
        @ParentCommand Main main;
        @Mixin ServerOptions options;

        @Option(names = "--platform", paramLabel = "NAME", description = "The platform to serve (SG_GATEWAY_PLATFORM; only webchat)")
        String platform;

        @Override
        public Integer call() throws Exception {
            String p = main.setting(platform, "SG_GATEWAY_PLATFORM", "webchat");
            if (!"webchat".equals(p)) {
                throw new ConfigException(platform != null ? "--platform" : "SG_GATEWAY_PLATFORM",
                        "'" + p + "' is not a platform this node has a gateway for (webchat)");
            }
            return main.runNode(options, NodeRole.GATEWAY, new Node.Parts(true, false, false), 8080);
        }
    }

    @Command(name = "worker", mixinStandardHelpOptions = true,
            description = "Consumes the inbound stream and answers through the handler (no HTTP unless --http-port).")
    static final class WorkerCommand implements Callable<Integer> {
        @ParentCommand Main main;
        @Mixin ServerOptions options;

        @Override
        public Integer call() throws Exception {
            return main.runNode(options, NodeRole.WORKER, new Node.Parts(false, true, false), -1);
        }
    }

    @Command(name = "tools", mixinStandardHelpOptions = true,
            description = "The tools service: runs tool requests from the tools stream (no HTTP unless --http-port).")
    static final class ToolsCommand implements Callable<Integer> {
        @ParentCommand Main main;
        @Mixin ServerOptions options;

        @Override
        public Integer call() throws Exception {
            return main.runNode(options, NodeRole.TOOLS, new Node.Parts(false, false, true), -1);
        }
    }

    // ---- operator tools -----------------------------------------------------------------------------------

    /** Connects for an operator tool: a server must be named, these never start one. */
    EventBus connect(ConnectionOptions o) {
        RedisUrl url = redisUrl(o.redisUrl);
        if (url == null) {
            throw new ConfigException(RedisUrl.ENV_REDIS_URL, "not set; give --redis-url or set REDIS_URL to the server the node printed");
        }
        BusConfig.Builder cfg = BusConfig.fromEnvironment(env).toBuilder().role(NodeRole.GATEWAY);
        cfg.nodeId(o.nodeId != null ? o.nodeId : "stargazer-cli-" + ProcessHandle.current().pid());
        return EventBus.connect(url, cfg.build());
    }

    /** {@code inbound}, {@code outbound:<platform>}, {@code tools}, or a stream name as is. */
    static List<String> resolveStreams(EventBus bus, String name) {
        Topology t = bus.topology();
        if ("inbound".equals(name)) return t.inboundStreams();
        if ("tools".equals(name)) return List.of(t.toolsStream());
        if (name.startsWith("outbound:")) return List.of(t.outboundStream(name.substring("outbound:".length())));
        return List.of(Topology.checkName("stream", name));
    }

    @Command(name = "streams", mixinStandardHelpOptions = true,
            description = "Streams, groups and consumers with length, pending, lag and dead letters.")
    static final class Streams implements Callable<Integer> {
        @ParentCommand Main main;
        @Mixin ConnectionOptions connection;

        @Option(names = "--json", description = "Print JSON instead of a table")
        boolean json;

        @Option(names = "--stream", paramLabel = "NAME", description = "Also show this stream (repeatable)")
        List<String> extra = new ArrayList<>();

        @Override
        public Integer call() {
            try (EventBus bus = main.connect(connection)) {
                List<Map<String, Object>> rows = StreamsReport.collect(bus, StreamsReport.streams(bus, bus.config().platforms(), extra));
                main.out.print(json ? NodeJson.write(rows) + "\n" : StreamsReport.table(rows));
                main.out.flush();
            }
            return 0;
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

        @Override
        public Integer call() {
            BusConfig cfg = BusConfig.fromEnvironment(main.env);
            List<String> ps = platforms == null ? cfg.platforms() : platforms;
            io.stargazer.bus.AclRules.Builder b = io.stargazer.bus.AclRules.builder(cfg.topology()).platforms(ps)
                    .serverVersion(serverVersion);
            if (workerIds != null) b.workerIds(workerIds);
            for (String p : ps) b.gateway("sg-gateway-" + p, null, p);
            io.stargazer.bus.AclRules rules = b.worker("sg-worker", null).tools("sg-tools", null).monitor("sg-monitor", null).build();
            main.out.print(file ? rules.aclFile() : rules.setUserCommands());
            main.out.flush();
            return 0;
        }
    }

    @Command(name = "publish", mixinStandardHelpOptions = true,
            description = "Publishes one envelope given as JSON (bytes as {\"$bytes\": \"<base64>\"}); prints the entry id.")
    static final class Publish implements Callable<Integer> {
        @ParentCommand Main main;
        @Mixin ConnectionOptions connection;

        @Option(names = "--to", paramLabel = "TARGET", defaultValue = "inbound",
                description = "inbound (default), outbound:<platform>, tools, or a stream name")
        String to;

        @Parameters(paramLabel = "JSON", description = "The envelope as a JSON object, or - to read it from stdin")
        String envelope;

        @Override
        public Integer call() throws IOException {
            String text = "-".equals(envelope) ? new String(System.in.readAllBytes(), StandardCharsets.UTF_8) : envelope;
            Envelope e;
            try {
                e = NodeJson.toEnvelope(text);
            } catch (IllegalArgumentException ex) {
                throw new ConfigException("JSON", ex.getMessage());
            }
            try (EventBus bus = main.connect(connection)) {
                String id;
                if ("inbound".equals(to)) {
                    id = bus.publishInbound(e);
                } else {
                    List<String> streams = resolveStreams(bus, to);
                    id = bus.publish(streams.get(0), e);
                }
                main.out.println(id);
            }
            return 0;
        }
    }

    @Command(name = "tail", mixinStandardHelpOptions = true,
            description = "Follows a stream without a consumer group, printing one JSON line per entry (bytes as base64).")
    static final class Tail implements Callable<Integer> {
        @ParentCommand Main main;
        @Mixin ConnectionOptions connection;

        @Parameters(paramLabel = "STREAM", description = "inbound, outbound:<platform>, tools, or a stream name")
        String stream;

        @Option(names = "--from-start", description = "Print the entries already in the stream first")
        boolean fromStart;

        @Option(names = {"-n", "--count"}, paramLabel = "N", description = "Exit after N entries")
        Integer count;

        @Override
        public Integer call() throws InterruptedException {
            if (count != null && count <= 0) throw new ConfigException("--count", "'" + count + "' must be greater than zero");
            try (EventBus bus = main.connect(connection)) {
                Map<String, String> cursors = new LinkedHashMap<>();
                for (String s : resolveStreams(bus, stream)) {
                    cursors.put(s, fromStart ? "0" : bus.streamInfo(s).map(StreamInfo::lastEntryId).orElse("0"));
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

    static final class Version implements CommandLine.IVersionProvider {
        @Override
        public String[] getVersion() {
            String v = Main.class.getPackage().getImplementationVersion();
            return new String[] {"stargazer " + (v == null ? "(development build)" : v)};
        }
    }
}
