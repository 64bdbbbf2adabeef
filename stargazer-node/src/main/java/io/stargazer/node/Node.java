// One running node process: Redis (given or embedded), the bus, and the parts its command asked for
// (relay, web chat gateway, worker, tools service, HTTP server), started in order and stopped in reverse.
package io.stargazer.node;

import io.stargazer.bus.BusConfig;
import io.stargazer.bus.ConsumerConfig;
import io.stargazer.bus.EventBus;
import io.stargazer.bus.NodeRole;
import io.stargazer.bus.PublishVia;
import io.stargazer.bus.Relay;
import io.stargazer.bus.RedisUrl;
import io.stargazer.bus.Subscription;
import io.stargazer.bus.tools.ToolRegistry;
import io.stargazer.bus.tools.ToolService;
import io.stargazer.bus.tools.ToolServiceConfig;
import io.stargazer.embedded.RedisServerProcess;
import io.stargazer.node.web.WebChatGateway;
import io.stargazer.node.web.WebServer;
import io.stargazer.node.web.WebSettings;
import java.nio.file.Path;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Built by {@link Main}'s server commands; {@link #close()} is graceful and idempotent (the shutdown hook calls it).
 *
 * <p><b>Threads.</b> The node owns none of its own: {@link #start} runs on the caller's thread, and the command's
 * thread then waits in {@link #awaitStop} until {@link #close} (on the {@code stargazer-shutdown} hook thread, or a
 * test's) has stopped every part. The parts own theirs: the bus its Redis I/O threads (Lettuce's event loops, where
 * publish futures complete; nothing of the node blocks there) and {@code stargazer-maintenance}; each subscription
 * a reader thread and handler threads, where the worker's handlers and the gateway's deliveries run; the web chat
 * gateway {@code stargazer-webchat-send} (every WebSocket write) and {@code stargazer-gateway-sweep}; the HTTP server
 * Jetty's pool (requests and WebSocket events). See each part's class comment.
 */
public final class Node implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(Node.class);

    /**
     * What to run in this process. {@code relay}: the relay of relay mode (docs/functions.md); a standalone node runs it
     * too when {@code SG_PUBLISH_VIA=relay}, so that what its parts write to their outboxes arrives.
     */
    public record Parts(boolean gateway, boolean worker, boolean tools, boolean relay) {
        public Parts(boolean gateway, boolean worker, boolean tools) {
            this(gateway, worker, tools, false);
        }
    }

    /**
     * The settings a node runs with, already resolved (flag, then {@code SG_*}, then default).
     *
     * @param redisUrl  the server to use, or {@code null} to start an embedded one
     * @param httpPort  -1 for no HTTP server, 0 for a free port
     */
    public record Settings(NodeRole role, Parts parts, RedisUrl redisUrl, String nodeId, Path dataDir, int redisPort,
            String httpHost, int httpPort, String handler, java.time.Duration toolTimeout, Map<String, String> env,
            Dashboard dashboard) {
    }

    /**
     * Where the dashboard, its JSON API and the metrics are served: on the main HTTP server ({@code port} -1), or on a
     * listener of their own (for example an internal address), optionally behind HTTP Basic auth ({@code password}).
     */
    public record Dashboard(String host, int port, String password) {
        public static final Dashboard ON_MAIN_SERVER = new Dashboard("127.0.0.1", -1, null);

        public boolean separate() {
            return port >= 0;
        }

        @Override
        public String toString() {
            return "Dashboard[host=" + host + ", port=" + port + ", password=" + (password == null ? "none" : "***") + "]";
        }
    }

    private final Deque<AutoCloseable> toClose = new ArrayDeque<>();
    private final List<Subscription> subscriptions = new ArrayList<>();
    private final CountDownLatch stopped = new CountDownLatch(1);
    private RedisServerProcess embedded;
    private EventBus bus;
    private WebServer web;
    private WebServer dashboardWeb;
    private boolean closed;

    private Node() {
    }

    public static Node start(Settings s) {
        Node n = new Node();
        try {
            n.startParts(s);
            return n;
        } catch (RuntimeException e) {
            n.close();
            throw e;
        }
    }

    private void startParts(Settings s) {
        WebSettings webSettings = WebSettings.fromEnvironment(s.env()); // a bad value ends the start before anything runs
        BusConfig fromEnvironment = BusConfig.fromEnvironment(s.env());
        if (s.parts().gateway() && fromEnvironment.publishVia() == PublishVia.RELAY
                && !fromEnvironment.platforms().contains(WebChatGateway.PLATFORM)) {
            // The relay moves only the gateway outboxes of SG_PLATFORMS: every message typed in the web chat would be
            // answered and then never reach a worker.
            throw new io.stargazer.bus.ConfigException(BusConfig.ENV_PLATFORMS, "'" + String.join(",", fromEnvironment.platforms())
                    + "' leaves out " + WebChatGateway.PLATFORM + ", which this node's web chat gateway publishes for; with "
                    + BusConfig.ENV_PUBLISH_VIA + "=relay the relay moves only the outboxes of " + BusConfig.ENV_PLATFORMS
                    + " (add " + WebChatGateway.PLATFORM + " to it, on every process)");
        }
        // Every other setting is read here too, before anything starts (the handler's class looked at, created only as the
        // worker starts): a bad one found as its part started left the streams and groups created, and the parts started
        // before it (a standalone node's tools service) had been reading.
        ConsumerConfig.builder(fromEnvironment.topology().inboundStream(), fromEnvironment.topology().workerGroup())
                .consumerName("settings-check").fromEnvironment(s.env()).build(); // what every part's consumers read (SG_MAX_DELIVERIES, ...)
        ToolServiceConfig toolsConfig = s.parts().tools() ? ToolServiceConfig.fromEnvironment(s.env()) : null;
        if (s.parts().worker()) Handlers.check(s.handler());
        RedisUrl url = s.redisUrl();
        if (url == null) {
            embedded = RedisServerProcess.builder().port(s.redisPort()).appendOnly(true).dataDir(s.dataDir())
                    // Every acknowledged write on disk before the reply: the node's own server loses nothing on a crash.
                    .arg("--appendfsync", "always").start(); // the reaper's until handOverRedis
            toClose.push(embedded::stop);
            url = RedisUrl.parse(embedded.url());
            log.atInfo().addKeyValue("redis", embedded.url()).addKeyValue("data_dir", embedded.dataDir())
                    .log("No REDIS_URL: started embedded Redis " + embedded.version() + " at " + embedded.url() + ", data in "
                            + embedded.dataDir());
            if (s.role() != NodeRole.STANDALONE) {
                log.atInfo().log("Other processes join this node with REDIS_URL=" + embedded.url());
            }
        }
        BusConfig.Builder cfg = fromEnvironment.toBuilder().role(s.role());
        if (s.nodeId() != null) cfg.nodeId(s.nodeId());
        // Closed after the bus (pushed first), so the spans of the last deliveries are sent.
        NodeTracing tracing = NodeTracing.fromEnvironment(s.env(), s.role());
        if (tracing != null) toClose.push(tracing);
        bus = EventBus.connect(url, cfg.build());
        toClose.push(bus);
        if (tracing != null) {
            tracing.install(bus);
            log.atInfo().addKeyValue("endpoint", s.env().get(NodeTracing.ENDPOINT))
                    .log("Exporting traces over OTLP to " + s.env().get(NodeTracing.ENDPOINT));
        }
        bus.ensureStreams();
        NodeMetrics metrics = new NodeMetrics();
        metrics.bind(bus);

        // First started, last stopped: while the other parts stop, what they still write to their outboxes is moved.
        if (s.parts().relay() || (s.role() == NodeRole.STANDALONE && bus.config().publishVia() == PublishVia.RELAY)) {
            // The node's variables (s.env(), never the process's: an embedder or a test gives its own), then the node id:
            // fromEnvironment names the consumer after SG_NODE_ID, and --node-id wins over it.
            Relay relay = Relay.start(bus, c -> c.fromEnvironment(s.env()).consumerName(bus.config().nodeId()));
            toClose.push(relay);
            subscriptions.addAll(relay.subscriptions());
            relay.subscriptions().forEach(metrics::watch);
            if (bus.config().publishVia() != PublishVia.RELAY) {
                log.atWarn().log("SG_PUBLISH_VIA is not relay: the other nodes write the shared streams directly, and the outboxes stay empty");
            }
        }

        if (s.parts().tools()) {
            ToolService tools = ToolService.start(bus, BuiltinTools.register(ToolRegistry.builder()).build(),
                    toolsConfig.toBuilder().consumerName(bus.config().nodeId()).build());
            toClose.push(tools);
            subscriptions.add(tools.subscription());
            metrics.watch(tools.subscription());
            log.atInfo().addKeyValue("tools", List.of(BuiltinTools.CLOCK, BuiltinTools.CALC))
                    .addKeyValue("stream", bus.topology().toolsStream()).log("Tools service started");
        }
        if (s.parts().worker()) {
            WorkerHandler handler = Handlers.create(s.handler(), metrics, s.toolTimeout());
            Worker worker = Worker.start(bus, s.env(), s.handler(), handler, metrics);
            subscriptions.addAll(worker.subscriptions());
            toClose.push(worker);
        }
        WebChatGateway gateway = null;
        if (s.parts().gateway()) {
            gateway = WebChatGateway.start(bus, metrics, webSettings, s.env());
            subscriptions.addAll(gateway.subscriptions());
            toClose.push(gateway);
        }
        Dashboard d = s.dashboard();
        if (s.httpPort() >= 0) {
            web = WebServer.start(s.httpHost(), s.httpPort(), bus, metrics, gateway, () -> List.copyOf(subscriptions),
                    bus.config().platforms(), !d.separate(), d.separate() ? null : d.password(), webSettings);
            toClose.push(web);
            String base = base(s.httpHost(), web.port());
            if (gateway != null) {
                log.atInfo().addKeyValue("url", base + "/").log("Open " + base + "/ to chat"
                        + (d.separate() ? "" : "; dashboard at " + base + "/dashboard"));
            } else if (!d.separate()) {
                log.atInfo().addKeyValue("url", base + "/dashboard").log("Dashboard at " + base + "/dashboard, metrics at "
                        + base + "/metrics");
            }
        }
        if (d.separate()) {
            dashboardWeb = WebServer.start(d.host(), d.port(), bus, metrics, null, () -> List.copyOf(subscriptions),
                    bus.config().platforms(), true, d.password(), webSettings);
            toClose.push(dashboardWeb);
            String base = base(d.host(), dashboardWeb.port());
            log.atInfo().addKeyValue("url", base + "/dashboard").addKeyValue("protected", d.password() != null)
                    .log("Dashboard at " + base + "/dashboard, metrics at " + base + "/metrics");
        }
        log.atInfo().addKeyValue("node_id", bus.config().nodeId()).addKeyValue("role", s.role().wireName())
                .log("Node running; Ctrl-C or SIGTERM stops it gracefully");
    }

    /**
     * From now on only {@link #close} stops the embedded Redis (after the parts that use it, which settle their entries
     * first): called once a shutdown hook calls close(). Until then the JVM-exit reaper kills it, so a process ended
     * while the node starts (a second SIGTERM) leaves no redis-server behind. Without it the server is killed at JVM exit
     * in parallel with any other hook, as a test's is.
     */
    void handOverRedis() {
        if (embedded != null) embedded.leaveToOwner();
    }

    public EventBus bus() {
        return bus;
    }

    /** The HTTP port, or -1 without an HTTP server. */
    private static String base(String host, int port) {
        return "http://" + (host.contains(":") ? "[" + host + "]" : host) + ":" + port;
    }

    /** The port of the dashboard's own listener, or -1 when it is served on the main HTTP server. */
    public int dashboardPort() {
        return dashboardWeb == null ? -1 : dashboardWeb.port();
    }

    public int httpPort() {
        return web == null ? -1 : web.port();
    }

    public void awaitStop() throws InterruptedException {
        stopped.await();
    }

    /** Stops accepting work, lets in-flight handlers finish (or leaves their entries pending), then stops Redis. */
    @Override
    public synchronized void close() {
        if (closed) {
            return;
        }
        closed = true;
        log.atInfo().log("Shutting down");
        while (!toClose.isEmpty()) {
            try {
                toClose.pop().close();
            } catch (Exception e) {
                log.atWarn().log("Error while shutting down: " + e.getMessage());
            }
        }
        log.atInfo().log("Stopped");
        stopped.countDown();
    }
}
