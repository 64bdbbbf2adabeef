// The node's HTTP server (Javalin): the chat page and its WebSocket, the dashboard and its JSON API,
// Prometheus metrics and the health check.
package io.stargazer.node.web;

import io.javalin.Javalin;
import io.javalin.http.Context;
import io.javalin.http.HttpResponseException;
import io.javalin.http.HttpStatus;
import io.javalin.http.UnauthorizedResponse;
import io.javalin.http.staticfiles.Location;
import io.javalin.security.BasicAuthCredentials;
import io.javalin.websocket.WsContext;
import io.stargazer.bus.EventBus;
import io.stargazer.bus.Subscription;
import io.stargazer.node.NodeJson;
import io.stargazer.node.NodeMetrics;
import io.stargazer.node.StreamsReport;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Supplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Routes: {@code /} chat (gateway roles only), {@code /ws/chat} its WebSocket, {@code /dashboard},
 * {@code /dashboard/dead} (dead letters), {@code /api/streams}, {@code /api/dead...} and {@code /api/pause|resume}
 * (docs/operating.md), {@code /metrics}, {@code /health}, and the pages' scripts and style sheet under
 * {@code /assets} (Javalin's static files, from {@code /web/assets} in the jar), the charting library under
 * {@code /webjars} (uPlot's WebJar).
 *
 * <p><b>Cross-site requests.</b> Every request that changes something (POST under {@code /api}) must carry the header
 * {@value #ACTION_HEADER} and, when the browser sends an Origin, come from this server's own origin. A page of another
 * site cannot add a custom header without a CORS preflight, which this server never grants, so the browser's cached
 * dashboard password cannot be used to replay or purge from elsewhere.
 *
 * <p><b>DNS rebinding.</b> A page of another site whose name its owner makes resolve to this server's address is
 * same-origin with itself: the checks above pass, and it could read the API or open the chat. Its requests carry its
 * own name in Host, so every request but {@code /health} (a load balancer's probe, which reports only states), the
 * chat WebSocket's handshake included, must name this server: its bind address, {@code localhost}, an IP address
 * (a page's origin is then that address itself, which no other site can be), or a name in
 * {@link WebSettings#allowedHosts()} ({@code SG_HTTP_ALLOWED_HOSTS}); else it is answered 421 Misdirected Request.
 *
 * <p><b>Threads.</b> Every HTTP handler runs on a thread of Jetty's pool and may block briefly on Redis diagnostics
 * (each bounded by the bus's diagnostic timeout); those threads are not Redis's, so waiting there stalls no one else.
 * WebSocket events (open, frame, close) also arrive on Jetty's threads and go straight to the {@link WebChatGateway},
 * which only queues what it answers: no Jetty thread writes to a socket or waits for a tab.
 */
public final class WebServer implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(WebServer.class);
    private static final int MAX_FRAME_BYTES = 16 * 1024;
    /** The largest request body served (a chunked one included: {@link DeadLetterApi} reads bodies up to it). */
    static final int MAX_REQUEST_BYTES = 64 * 1024;
    /** The header every changing API request must carry (see the class comment). */
    public static final String ACTION_HEADER = "X-Stargazer-Action";
    private static final String CSP = "default-src 'self'; connect-src 'self'; img-src 'self' data:; "
            + "frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

    private static final java.util.regex.Pattern IP_ADDRESS = java.util.regex.Pattern.compile(
            "(25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)(\\.(25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)){3}|\\[[0-9a-f:.]+\\]");

    private final EventBus bus;
    private final NodeMetrics metrics;
    private final WebChatGateway gateway;
    private final Supplier<List<Subscription>> subscriptions;
    private final List<String> platforms;
    private final boolean dashboard;
    /** HTTP Basic password of the dashboard, its API and the metrics; null when they are open. */
    private final byte[] dashboardPassword;
    /** Host names this server answers to besides IP addresses (see the class comment); contains "*" to answer every one. */
    private final java.util.Set<String> knownHosts;
    private final Javalin app;

    private WebServer(String host, EventBus bus, NodeMetrics metrics, WebChatGateway gateway, Supplier<List<Subscription>> subscriptions,
            List<String> platforms, boolean dashboard, String dashboardPassword, WebSettings settings) {
        this.knownHosts = new java.util.HashSet<>(settings.allowedHosts());
        knownHosts.add("localhost");
        knownHosts.add(WebSettings.normalize(host));
        this.dashboard = dashboard;
        this.dashboardPassword = dashboardPassword == null ? null : dashboardPassword.getBytes(StandardCharsets.UTF_8);
        this.bus = bus;
        this.metrics = metrics;
        this.gateway = gateway;
        this.subscriptions = subscriptions;
        this.platforms = platforms;
        this.app = Javalin.create(cfg -> {
            cfg.showJavalinBanner = false;
            cfg.startupWatcherEnabled = false;
            cfg.http.maxRequestSize = MAX_REQUEST_BYTES; // by Content-Length only; see DeadLetterApi.body
            // The pages' scripts and style sheet; the pages themselves have routes (which one depends on the role).
            cfg.staticFiles.add(files -> {
                files.hostedPath = "/assets";
                files.directory = "/web/assets";
                files.location = Location.CLASSPATH;
                files.mimeTypes.add("text/javascript; charset=utf-8", "js");
                files.mimeTypes.add("text/css; charset=utf-8", "css");
            });
            cfg.staticFiles.enableWebjars();
            cfg.jetty.modifyWebSocketServletFactory(f -> {
                f.setMaxTextMessageSize(MAX_FRAME_BYTES);
                f.setMaxBinaryMessageSize(MAX_FRAME_BYTES);
                f.setIdleTimeout(Duration.ofMinutes(2));
            });
        });
        routes();
    }

    /**
     * Starts serving on {@code host:port} (0 = a free port): the chat when {@code gateway} is given, the dashboard, its
     * API and the metrics when {@code dashboard} is true (behind HTTP Basic auth when {@code dashboardPassword} is set).
     * It answers the host names of {@code settings} besides its own (see the class comment).
     */
    public static WebServer start(String host, int port, EventBus bus, NodeMetrics metrics, WebChatGateway gateway,
            Supplier<List<Subscription>> subscriptions, List<String> platforms, boolean dashboard, String dashboardPassword,
            WebSettings settings) {
        WebServer s = new WebServer(host, bus, metrics, gateway, subscriptions, platforms, dashboard, dashboardPassword, settings);
        try {
            s.app.start(host, port);
        } catch (RuntimeException e) {
            s.app.stop();
            Throwable root = e;
            while (root.getCause() != null) root = root.getCause();
            throw new IllegalStateException("cannot serve HTTP on " + host + ":" + port + ": " + root.getMessage(), e);
        }
        return s;
    }

    public int port() {
        return app.port();
    }

    private void routes() {
        app.before(ctx -> {
            if (!"/health".equals(ctx.path())) refuseUnknownHost(ctx);
        });
        app.wsBeforeUpgrade(this::refuseUnknownHost);
        app.before(ctx -> {
            ctx.header("X-Content-Type-Options", "nosniff");
            ctx.header("Referrer-Policy", "no-referrer");
            ctx.header("Content-Security-Policy", CSP);
        });
        app.get("/", ctx -> {
            if (gateway != null) {
                page(ctx, "chat.html");
            } else if (dashboard) {
                ctx.redirect("/dashboard");
            } else {
                ctx.status(HttpStatus.NOT_FOUND).result("not found");
            }
        });
        if (dashboard) {
            if (dashboardPassword != null) {
                for (String path : List.of("/dashboard", "/dashboard/*", "/api/*", "/metrics")) {
                    app.before(path, this::requirePassword);
                }
            }
            app.get("/dashboard", ctx -> page(ctx, "dashboard.html"));
            app.get("/api/streams", ctx -> json(ctx, streams()));
            app.get("/dashboard/dead", ctx -> page(ctx, "dead.html"));
            app.before("/api/*", WebServer::refuseCrossSite);
            DeadLetterApi api = new DeadLetterApi(bus);
            app.get("/api/dead", ctx -> json(ctx, api.list(ctx)));
            app.get("/api/dead/entry", ctx -> json(ctx, api.entry(ctx)));
            app.post("/api/dead/replay", ctx -> json(ctx, api.replay(ctx)));
            app.post("/api/dead/purge", ctx -> json(ctx, api.purge(ctx)));
            app.post("/api/pause", ctx -> json(ctx, api.pause(ctx, true)));
            app.post("/api/resume", ctx -> json(ctx, api.pause(ctx, false)));
            app.exception(io.stargazer.bus.ConfigException.class, (e, ctx) -> ctx.status(HttpStatus.BAD_REQUEST)
                    .contentType("application/json; charset=utf-8").result(NodeJson.write(Map.of("error", e.getMessage()))));
            app.get("/metrics", ctx -> {
                metrics.refreshStreams(bus, StreamsReport.streams(bus, platforms, List.of()), NodeMetrics.SCRAPE_REFRESH_WAIT);
                ctx.contentType("text/plain; version=0.0.4; charset=utf-8").result(metrics.scrape());
            });
        }
        app.get("/health", ctx -> {
            Map<String, Object> h = health();
            ctx.status("up".equals(h.get("status")) ? HttpStatus.OK : HttpStatus.SERVICE_UNAVAILABLE);
            json(ctx, h);
        });
        if (gateway != null) {
            app.ws("/ws/chat", ws -> {
                ws.onConnect(ctx -> {
                    if (!sameOrigin(ctx)) {
                        ctx.closeSession(4403, "cross-origin connection refused");
                        return;
                    }
                    gateway.opened(ctx);
                });
                ws.onMessage(ctx -> gateway.received(ctx, ctx.message()));
                ws.onClose(gateway::closed);
                ws.onError(gateway::closed);
            });
        }
    }

    /** HTTP Basic (Javalin reads the header): any user name, the configured password, compared in constant time. */
    private void requirePassword(Context ctx) {
        BasicAuthCredentials given;
        try {
            given = ctx.basicAuthCredentials();
        } catch (IllegalArgumentException e) {
            given = null; // not base64
        }
        if (given == null || !MessageDigest.isEqual(given.getPassword().getBytes(StandardCharsets.UTF_8), dashboardPassword)) {
            ctx.header("WWW-Authenticate", "Basic realm=\"stargazer dashboard\", charset=\"UTF-8\"");
            throw new UnauthorizedResponse("the dashboard needs its password (SG_DASHBOARD_PASSWORD)");
        }
    }

    /** Refuses a request whose Host does not name this server: DNS rebinding (class comment). */
    private void refuseUnknownHost(Context ctx) {
        String host = ctx.header("Host");
        if (host == null || knownHosts.contains("*")) {
            return; // no Host: an HTTP/1.0 client, not a browser
        }
        String name = hostName(host);
        if (name == null || !(knownHosts.contains(name) || isIpAddress(name))) {
            throw new HttpResponseException(HttpStatus.MISDIRECTED_REQUEST.getCode(), "this server does not answer to the name '"
                    + host + "'; add it to " + WebSettings.ENV_ALLOWED_HOSTS);
        }
    }

    /** The name of a Host header without its port, as {@link WebSettings#normalize} compares it; null when malformed. */
    static String hostName(String host) {
        String h = host.strip();
        if (h.startsWith("[")) {
            int end = h.indexOf(']');
            return end < 0 ? null : h.substring(0, end + 1).toLowerCase(java.util.Locale.ROOT);
        }
        int colon = h.indexOf(':');
        return WebSettings.normalize(colon < 0 ? h : h.substring(0, colon));
    }

    /** An IPv4 address in dotted decimal, or an IPv6 address in brackets (as hostName gives them); no lookup. */
    static boolean isIpAddress(String name) {
        return IP_ADDRESS.matcher(name).matches();
    }

    /** A request that changes something must carry {@link #ACTION_HEADER} and come from this origin (class comment). */
    private static void refuseCrossSite(Context ctx) {
        if ("GET".equals(ctx.method().name()) || "HEAD".equals(ctx.method().name())) return;
        if (!"1".equals(ctx.header(ACTION_HEADER)) || !sameOrigin(ctx.header("Origin"), ctx.header("Host"))) {
            throw new io.javalin.http.ForbiddenResponse("cross-site request refused: send " + ACTION_HEADER + ": 1 from the dashboard's own origin");
        }
    }

    /** Refuses pages of other sites opening a chat socket here (a browser always sends Origin on WebSockets). */
    private static boolean sameOrigin(WsContext ctx) {
        return sameOrigin(ctx.header("Origin"), ctx.header("Host"));
    }

    private static boolean sameOrigin(String origin, String host) {
        if (origin == null) {
            return true; // not a browser: nothing to protect against
        }
        try {
            URI o = URI.create(origin);
            String authority = o.getPort() == -1 ? o.getHost() : o.getHost() + ":" + o.getPort();
            return host != null && host.equalsIgnoreCase(authority);
        } catch (IllegalArgumentException e) {
            return false;
        }
    }

    /** What /api/streams serves: the node, then one entry per stream. */
    public Map<String, Object> streams() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("node_id", bus.config().nodeId());
        m.put("role", bus.config().role().wireName());
        m.put("time_ms", System.currentTimeMillis());
        m.put("server_version", bus.serverVersion());
        m.put("open_tabs", gateway == null ? null : gateway.openTabs());
        m.put("streams", StreamsReport.collect(bus, StreamsReport.streams(bus, platforms, List.of())));
        return m;
    }

    private Map<String, Object> health() {
        Map<String, Object> h = new LinkedHashMap<>();
        boolean redisUp;
        try {
            bus.ping(); // no key permission needed: works for every role's ACL user
            redisUp = true;
        } catch (RuntimeException e) {
            redisUp = false;
        }
        List<Map<String, Object>> consumers = new ArrayList<>();
        boolean allRunning = true;
        for (Subscription s : subscriptions.get()) {
            Map<String, Object> c = new LinkedHashMap<>();
            c.put("stream", s.stream());
            c.put("group", s.group());
            c.put("consumer", s.consumerName());
            c.put("state", s.state().name());
            Throwable f = s.failure();
            c.put("failure", f == null ? null : f.getMessage());
            consumers.add(c);
            // A paused group is the operator's choice, not a fault: the node stays up.
            allRunning &= s.state() == Subscription.State.RUNNING || s.state() == Subscription.State.STARTING
                    || s.state() == Subscription.State.PAUSED;
        }
        h.put("status", redisUp && allRunning ? "up" : "down");
        h.put("redis", redisUp ? "up" : "down");
        h.put("node_id", bus.config().nodeId());
        h.put("role", bus.config().role().wireName());
        h.put("consumers", consumers);
        return h;
    }

    private static void json(Context ctx, Object body) {
        ctx.contentType("application/json; charset=utf-8").header("Cache-Control", "no-store").result(NodeJson.write(body));
    }

    private static void page(Context ctx, String name) {
        ctx.contentType("text/html; charset=utf-8").result(resource(name));
    }

    private static byte[] resource(String name) {
        try (InputStream in = WebServer.class.getResourceAsStream("/web/" + name)) {
            if (in == null) {
                throw new IllegalStateException("resource /web/" + name + " is missing from the jar");
            }
            return in.readAllBytes();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    @Override
    public void close() {
        if (gateway != null) gateway.closeTabs(WebChatGateway.CLOSE_TABS_WAIT); // Jetty's stop sends tabs no close frame
        app.stop();
        log.atDebug().log("HTTP server stopped");
    }
}
