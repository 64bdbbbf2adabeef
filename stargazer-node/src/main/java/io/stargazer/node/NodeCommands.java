// The commands that run node parts: standalone, gateway, worker and tools. Each resolves its settings (flag, else
// SG_* variable, else default: picocli with EnvironmentDefaults), starts a Node and waits until it is stopped.
package io.stargazer.node;

import io.stargazer.bus.ConfigException;
import io.stargazer.bus.NodeRole;
import io.stargazer.bus.RedisUrl;
import io.stargazer.bus.Topology;
import io.stargazer.bus.tools.ToolClient;
import io.stargazer.node.EnvironmentDefaults.FromEnv;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParentCommand;
import picocli.CommandLine.Spec;

/** Holder of the server subcommands of {@link Main}; {@link #runNode} is what they share. */
final class NodeCommands {
    /** The node's logger: what a signal does is part of the node's story. */
    private static final org.slf4j.Logger log = org.slf4j.LoggerFactory.getLogger(Node.class);

    private NodeCommands() {
    }

    /** The settings of the commands that run node parts. */
    static final class ServerOptions {
        @Mixin
        OperatorCommands.ConnectionOptions connection;

        @FromEnv("SG_HTTP_HOST")
        @Option(names = "--http-host", paramLabel = "HOST", defaultValue = "127.0.0.1",
                description = "Address the HTTP server binds (SG_HTTP_HOST; default 127.0.0.1)")
        String httpHost;

        /** Null when neither given nor set: each command has its own default. */
        @FromEnv("SG_HTTP_PORT")
        @Option(names = "--http-port", paramLabel = "PORT", description = "HTTP port, 0 for a free one, -1 for none (SG_HTTP_PORT)")
        Integer httpPort;

        @FromEnv("SG_DASHBOARD_HOST")
        @Option(names = "--dashboard-host", paramLabel = "HOST", defaultValue = "127.0.0.1",
                description = "Serve the dashboard, its API and /metrics on their own address (SG_DASHBOARD_HOST; default 127.0.0.1)")
        String dashboardHost;

        @FromEnv("SG_DASHBOARD_PORT")
        @Option(names = "--dashboard-port", paramLabel = "PORT", defaultValue = "-1",
                description = "Port of the dashboard's own listener, 0 for a free one; -1 serves it on the main HTTP server "
                        + "(SG_DASHBOARD_PORT; default -1). Its password comes only from SG_DASHBOARD_PASSWORD.")
        int dashboardPort;

        @FromEnv("SG_DATA_DIR")
        @Option(names = "--data-dir", paramLabel = "DIR", defaultValue = "data/redis",
                description = "Embedded Redis data directory (SG_DATA_DIR; default ./data/redis)")
        String dataDir;

        @FromEnv("SG_REDIS_PORT")
        @Option(names = "--redis-port", paramLabel = "PORT", defaultValue = "0",
                description = "Embedded Redis port, 0 for a free one (SG_REDIS_PORT; default 0)")
        int redisPort;

        @FromEnv("SG_WORKER_HANDLER")
        @Option(names = "--handler", paramLabel = "NAME", defaultValue = "echo",
                description = "Worker handler: echo, tools, or a class name (SG_WORKER_HANDLER; default echo)")
        String handler;

        @FromEnv("SG_TOOL_TIMEOUT_MS")
        @Option(names = "--tool-timeout-ms", paramLabel = "MS", defaultValue = "10000",
                description = "How long the tools handler waits for a tool (SG_TOOL_TIMEOUT_MS; default 10000)")
        int toolTimeoutMs;
    }

    private static int port(CommandSpec spec, String option, int value, int min) {
        if (value < min || value > 65535) {
            throw new ConfigException(EnvironmentDefaults.source(spec, option), "'" + value + "' is not a port");
        }
        return value;
    }

    /**
     * A name, an IPv4 address, or an IPv6 address (with a zone; in brackets or not, as the JDK takes either), as a
     * listener binds it: no scheme, port, path or space.
     */
    private static final String IPV6 = "[0-9A-Fa-f.]*:[0-9A-Fa-f:.]*(%[A-Za-z0-9_.-]+)?";
    private static final java.util.regex.Pattern BIND_HOST = java.util.regex.Pattern.compile(
            "[A-Za-z0-9_.-]+|" + IPV6 + "|\\[" + IPV6 + "\\]");

    /**
     * Refuses an address no listener can bind, before anything starts: found by the HTTP server's bind, it failed the
     * start after every part had started, as "cannot serve HTTP on no such host:8080: null" (exit code 1). A name that
     * merely does not resolve is left to the bind, whose message names it.
     */
    private static String host(CommandSpec spec, String option, String value) {
        if (!BIND_HOST.matcher(value).matches()) {
            throw new ConfigException(EnvironmentDefaults.source(spec, option), "'" + DeadLetterView.printable(value)
                    + "' is not a host name or an IP address to listen on");
        }
        return value;
    }

    /** Checks what picocli cannot, starts the node, and returns when it has stopped (SIGTERM, Ctrl-C). */
    static int runNode(Main main, CommandSpec spec, ServerOptions o, NodeRole role, Node.Parts parts, int defaultHttpPort)
            throws InterruptedException {
        int httpPort = port(spec, "--http-port", o.httpPort != null ? o.httpPort : defaultHttpPort, -1);
        int redisPort = port(spec, "--redis-port", o.redisPort, 0);
        if (o.toolTimeoutMs <= 0) {
            throw new ConfigException(EnvironmentDefaults.source(spec, "--tool-timeout-ms"), "'" + o.toolTimeoutMs
                    + "' must be greater than zero");
        }
        // A call refuses a longer timeout: every tool command would fail, be retried and end as a dead letter.
        if (o.toolTimeoutMs > ToolClient.MAX_TIMEOUT.toMillis()) {
            throw new ConfigException(EnvironmentDefaults.source(spec, "--tool-timeout-ms"), "'" + o.toolTimeoutMs
                    + "' must be at most " + ToolClient.MAX_TIMEOUT.toMillis() + " (one day, the longest a tool call waits)");
        }
        String nodeId = o.connection.nodeId;
        if (nodeId != null) Topology.checkName("--node-id", nodeId);
        int dashboardPort = port(spec, "--dashboard-port", o.dashboardPort, -1);
        // Only where a listener uses it: a worker without HTTP does not care what SG_HTTP_HOST says.
        if (httpPort >= 0) host(spec, "--http-host", o.httpHost);
        if (dashboardPort >= 0) host(spec, "--dashboard-host", o.dashboardHost);
        if (httpPort > 0 && dashboardPort == httpPort && o.dashboardHost.equals(o.httpHost)) {
            // The second bind would fail once every part had started; -1 is what puts the dashboard on the main server.
            throw new ConfigException(EnvironmentDefaults.source(spec, "--dashboard-port"), "'" + dashboardPort + "' is also the HTTP port ("
                    + EnvironmentDefaults.source(spec, "--http-port") + ") on " + o.httpHost + ": the dashboard's own listener needs a port "
                    + "of its own; -1 serves the dashboard on the HTTP server");
        }
        // Only from the environment, never a flag: a flag would show in `ps`.
        Node.Dashboard dashboard = new Node.Dashboard(o.dashboardHost, dashboardPort, main.env("SG_DASHBOARD_PASSWORD"));
        RedisUrl url = o.connection.redisUrl == null ? null
                : RedisUrl.parse(EnvironmentDefaults.source(spec, "--redis-url"), o.connection.redisUrl).withEnvironment(main.env);
        Node.Settings s = new Node.Settings(role, parts, url, nodeId, Path.of(o.dataDir).toAbsolutePath(), redisPort,
                o.httpHost, httpPort, o.handler, Duration.ofMillis(o.toolTimeoutMs), main.env, dashboard);
        // The signals are taken before the node starts: Node.start logs "Node running; Ctrl-C or SIGTERM stops it
        // gracefully" as its last step, and a SIGTERM between that line and handlers installed after the start went to
        // the JVM's default handler, which stopped the node through the shutdown hook and exited 143 (MainCliTest).
        Stop stop = new Stop();
        Thread hook = new Thread(stop::exiting, "stargazer-shutdown");
        Runtime.getRuntime().addShutdownHook(hook);
        Runnable restoreTerm = stopOnSignal("TERM", stop);
        Runnable restoreInt = stopOnSignal("INT", stop);
        try {
            Node node = Node.start(s);
            stop.started(node);
            node.awaitStop();
        } finally {
            // A node run in-process (a test's) leaves the JVM's signals and hooks as it found them.
            restoreTerm.run();
            restoreInt.run();
            removeQuietly(hook);
        }
        return 0;
    }

    private static void removeQuietly(Thread hook) {
        try {
            Runtime.getRuntime().removeShutdownHook(hook);
        } catch (IllegalStateException exiting) {
            // the JVM is exiting already: the hook runs, and finds no node to close
        }
    }

    /**
     * What SIGTERM and SIGINT do, and the JVM's exit: a signal stops the node here rather than through the JVM's
     * shutdown, which would end the process with 143 (130) after a clean stop (systemd and container runtimes would
     * count that graceful stop as a failure); the command then returns 0. A signal while the node starts stops it once
     * started (its parts are not closed under a start still adding them); a second one then ends the process at once,
     * through the JVM's own handler (143 or 130), for a start that hangs. An exit of the JVM (that second signal, a
     * SIGHUP) closes a node that has started; one still starting is left to the JVM-exit reaper of its embedded Redis,
     * which the node takes over only once started ({@link Node#handOverRedis}), so no redis-server outlives the process.
     *
     * <p>Thread-safe: the JVM's signal thread calls {@link #signal}, the command's thread {@link #started}, the shutdown
     * hook {@link #exiting}; one lock orders them.
     */
    private static final class Stop {
        private Node node;
        private boolean asked;
        private boolean exiting;

        /** Returns false when the signal is left to the JVM's own handler (a second one while the node starts). */
        boolean signal(String name) {
            Node n;
            synchronized (this) {
                if (node == null && asked) return false;
                asked = true;
                n = node;
            }
            if (n == null) {
                log.atInfo().log("SIG" + name + " while the node starts: it stops once started (SIG" + name
                        + " again ends it now)");
            } else {
                // Not on the signal's thread: close() waits for handlers, and a second signal must still be taken.
                Thread t = new Thread(n::close, "stargazer-sig" + name.toLowerCase(java.util.Locale.ROOT));
                t.setDaemon(true);
                t.start();
            }
            return true;
        }

        void started(Node n) {
            boolean stopNow;
            synchronized (this) {
                // The JVM is exiting already: its embedded Redis stays the reaper's, and the process ends.
                if (exiting) return;
                node = n;
                n.handOverRedis();
                stopNow = asked;
            }
            if (stopNow) n.close();
        }

        /** The shutdown hook: closes a node that has started. */
        void exiting() {
            Node n;
            synchronized (this) {
                exiting = true;
                n = node;
            }
            if (n != null) n.close();
        }
    }

    /**
     * Hands signal {@code name} to {@code stop}. With {@code -Xrs} the JVM takes no signal and nothing here is
     * installed: SIGTERM then ends the process at once, without a graceful stop. Returns what puts the signal's
     * previous handler back.
     */
    @SuppressWarnings("restriction")
    private static Runnable stopOnSignal(String name, Stop stop) {
        sun.misc.Signal signal = new sun.misc.Signal(name);
        // Null for the instant between the handler's install and the call's return: a second signal then ends the
        // process as the JVM's handler would.
        java.util.concurrent.atomic.AtomicReference<sun.misc.SignalHandler> previous = new java.util.concurrent.atomic.AtomicReference<>();
        try {
            previous.set(sun.misc.Signal.handle(signal, sig -> {
                if (stop.signal(name)) return;
                sun.misc.SignalHandler p = previous.get();
                if (p != null) {
                    try {
                        p.handle(sig);
                        return;
                    } catch (UnsupportedOperationException nativeHandler) {
                        // The JVM's default action, which Java cannot run: its exit status below.
                    }
                }
                Runtime.getRuntime().exit(128 + sig.getNumber());
            }));
            return () -> sun.misc.Signal.handle(signal, previous.get());
        } catch (IllegalArgumentException e) {
            return () -> { }; // the JVM keeps the signal (-Xrs)
        }
    }

    /** What every server command is: its options, and the role and parts it runs. */
    abstract static class ServerCommand implements Callable<Integer> {
        @ParentCommand Main main;
        @Spec CommandSpec spec;
        @Mixin ServerOptions options;
        private final NodeRole role;
        private final Node.Parts parts;
        private final int defaultHttpPort;

        ServerCommand(NodeRole role, Node.Parts parts, int defaultHttpPort) {
            this.role = role;
            this.parts = parts;
            this.defaultHttpPort = defaultHttpPort;
        }

        @Override
        public Integer call() throws Exception {
            return runNode(main, spec, options, role, parts, defaultHttpPort);
        }
    }

    @Command(name = "standalone", mixinStandardHelpOptions = true,
            description = "Web chat gateway, worker and tools service in one process.")
    static final class Standalone extends ServerCommand {
        Standalone() {
            super(NodeRole.STANDALONE, new Node.Parts(true, true, true), 8080);
        }
    }

    @Command(name = "gateway", mixinStandardHelpOptions = true, description = "A platform gateway (the web chat).")
    static final class Gateway extends ServerCommand {
        @FromEnv("SG_GATEWAY_PLATFORM")
        @Option(names = "--platform", paramLabel = "NAME", defaultValue = "webchat",
                description = "The platform to serve (SG_GATEWAY_PLATFORM; only webchat)")
        String platform;

        Gateway() {
            super(NodeRole.GATEWAY, new Node.Parts(true, false, false), 8080);
        }

        @Override
        public Integer call() throws Exception {
            if (!"webchat".equals(platform)) {
                throw new ConfigException(EnvironmentDefaults.source(spec, "--platform"),
                        "'" + platform + "' is not a platform this node has a gateway for (webchat)");
            }
            return super.call();
        }
    }

    @Command(name = "worker", mixinStandardHelpOptions = true,
            description = "Consumes the inbound stream and answers through the handler (no HTTP unless --http-port).")
    static final class WorkerCommand extends ServerCommand {
        WorkerCommand() {
            super(NodeRole.WORKER, new Node.Parts(false, true, false), -1);
        }
    }

    @Command(name = "relay", mixinStandardHelpOptions = true,
            description = "Relay mode's trusted writer (SG_PUBLISH_VIA=relay): moves every outbox entry to its target stream "
                    + "(no HTTP unless --http-port).")
    static final class RelayCommand extends ServerCommand {
        RelayCommand() {
            super(NodeRole.RELAY, new Node.Parts(false, false, false, true), -1);
        }
    }

    @Command(name = "tools", mixinStandardHelpOptions = true,
            description = "The tools service: runs tool requests from the tools stream (no HTTP unless --http-port).")
    static final class ToolsCommand extends ServerCommand {
        ToolsCommand() {
            super(NodeRole.TOOLS, new Node.Parts(false, false, true), -1);
        }
    }
}
