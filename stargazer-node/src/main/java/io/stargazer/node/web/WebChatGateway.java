// The web chat gateway: each browser tab (one WebSocket) is a channel; what it sends goes to the inbound stream,
// and answers from the webchat outbound stream come back to the tab, whichever gateway process read them.
package io.stargazer.node.web;

import io.javalin.websocket.WsContext;
import io.stargazer.bus.Envelope;
import io.stargazer.bus.EventBus;
import io.stargazer.bus.GroupInfo;
import io.stargazer.bus.PublishOptions;
import io.stargazer.bus.PublishOutcomeUnknownException;
import io.stargazer.bus.Subscription;
import io.stargazer.bus.wire.WireFormat;
import io.stargazer.node.NodeJson;
import io.stargazer.node.NodeMetrics;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Routing with several gateway processes: each gateway reads the whole webchat outbound stream with a consumer group
 * of its own, {@code {gatewayGroupPrefix}:webchat:{gateway_id}}, so every answer reaches every gateway; the one that
 * holds the answer's channel (tab) sends it, the others acknowledge it and move on. One stream read in order by each
 * gateway keeps the answers of a channel in order (sharing one group would hand one channel's answers to different
 * gateways, which could overtake each other on the way to the tab). A gateway deletes its group when it stops;
 * each inbound envelope carries {@code gateway_id} so an answer can be traced to the process that holds its tab.
 *
 * <p>A gateway that crashed cannot delete its group, and under the SAFE trim policy a group nobody reads would keep
 * the stream from being trimmed until publishing answers is held. So each gateway keeps a presence key,
 * {@code {its group}:alive}, refreshed every {@link #ALIVE_REFRESH} with a time to live of {@link #ALIVE_TTL}, and
 * sweeps once a minute: a sibling gateway group whose presence key was missing on two sweeps in a row belonged to a
 * dead gateway (its tabs died with it), and is deleted. Consumer idle times cannot tell: Redis does not refresh
 * them on reads that return nothing, so a quiet live gateway looks as idle as a dead one.
 *
 * <p>An answer reaches its tab once: the subscription may hand an entry over again (its acknowledgement was lost
 * with a connection, and the reader reads its pending entries again), but the gateway reads its stream in order and
 * one channel's answers one at a time, so each tab skips any entry at or below the last one it was sent. An answer
 * that finds its tab gone (closed, dropped, or this gateway's and closed already: the worker copies
 * {@code gateway_id}) is acknowledged and counted in {@code stargazer.webchat.answers.discarded}, as are the answers
 * still queued for a tab when it went; the chat page reconnects as a new channel, so nothing could receive them.
 *
 * <p>A gateway holds at most {@link WebSettings#maxTabs()} tabs, so what its tabs hold stays bounded; one more is
 * closed at once with {@link #CLOSE_FULL} and {@link #fullReason}.
 *
 * <p>Each message a tab sends is published with a dedupe key of its own ({@code webchat:<trace id>}) and up to
 * {@link #PUBLISH_ATTEMPTS} attempts, so a publish whose reply was lost is tried again without storing it twice; the
 * tab hears "sent" once it is stored, and when the outcome stays unknown it is told so, never that the message was
 * not taken. Each tab publishes through a token bucket ({@link WebSettings}): a message over its rate is answered
 * with an error frame and publishes nothing.
 *
 * <p><b>Threads.</b> Jetty's threads call {@link #opened}, {@link #received} and {@link #closed} for the tabs; the
 * outbound subscription's handler threads deliver answers; neither ever writes to a socket. The gateway owns two
 * threads. {@code stargazer-webchat-send} starts every WebSocket write (a tab's queued frames as one batch), runs
 * every publish completion, pings the tabs, checks every {@link #STALL_CHECK_EVERY} for tabs that stopped reading
 * or from which nothing came back after a ping ({@link ChatTab#PONG_TIMEOUT}), and cuts dropped tabs off; it only
 * starts non-blocking writes (see {@link ChatTab}), and Jetty's write callbacks only count and hand the next batch
 * back to it. So nothing of the gateway runs on, let alone blocks, a Redis I/O
 * thread, and a tab that stops reading is dropped without slowing any other. {@code stargazer-gateway-sweep}
 * refreshes the presence key and sweeps dead gateways' groups (it talks to Redis and may wait on it).
 */
public final class WebChatGateway implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(WebChatGateway.class);
    public static final String PLATFORM = "webchat";
    public static final String GATEWAY_ID = "gateway_id";
    /** Longest message a tab may send, in characters. */
    public static final int MAX_CONTENT_CHARS = 4000;
    private static final long ROUND_TRIP_FORGET_NANOS = Duration.ofMinutes(5).toNanos();
    private static final int MAX_TRACKED_TRACES = 10_000;
    public static final Duration ALIVE_TTL = Duration.ofSeconds(30);
    public static final Duration ALIVE_REFRESH = Duration.ofSeconds(10);
    private static final Duration SWEEP_EVERY = Duration.ofMinutes(1);
    /** How often a tab is pinged, so that proxies and the server's idle timeout keep a quiet tab's connection. */
    static final Duration PING_EVERY = Duration.ofSeconds(20);
    /** How often the send thread looks for tabs whose writes have stopped moving ({@link ChatTab#STALL_TIMEOUT}). */
    static final Duration STALL_CHECK_EVERY = Duration.ofSeconds(1);
    /** Attempts per message: the first, and retries after an unknown outcome or a passing failure (same dedupe key). */
    static final int PUBLISH_ATTEMPTS = 3;
    /** At most one WARN this often about messages refused over their tab's rate. */
    static final Duration REFUSED_WARN_EVERY = Duration.ofSeconds(10);
    /** WebSocket status "try again later": the gateway holds as many tabs as it may. */
    static final int CLOSE_FULL = 1013;
    /**
     * How long a stopping gateway waits for its tabs to answer their close ({@link #closeTabs}) before the HTTP server
     * cuts the connections of those that did not.
     */
    static final Duration CLOSE_TABS_WAIT = Duration.ofSeconds(2);
    /** At most one WARN this often about tabs refused over the cap. */
    static final Duration FULL_WARN_EVERY = Duration.ofSeconds(10);
    /** At most one WARN this often about failed publishes, as for the bus's handler failures. */
    static final Duration PUBLISH_FAILED_WARN_EVERY = Duration.ofSeconds(1);

    private final EventBus bus;
    private final NodeMetrics metrics;
    private final String gatewayId;
    private final String stream;
    private final String group;
    /** Open tabs by channel id, and by WebSocket session id. */
    private final Map<String, ChatTab> tabs = new ConcurrentHashMap<>();
    private final Map<String, ChatTab> tabBySession = new ConcurrentHashMap<>();
    /** Notified as a tab leaves {@link #tabBySession}: what {@link #closeTabs} waits on. */
    private final Object tabGone = new Object();
    /** Set by {@link #closeTabs}: a tab opened after it is closed at once. */
    private volatile boolean stopping;
    /** When each message was published, by trace id, until its first answer: the round-trip latency. */
    private final Map<String, Long> sentAt = new ConcurrentHashMap<>();
    private final Runnable tabDropped;
    private final io.micrometer.core.instrument.Counter answersDiscarded;
    /** Tabs held (opened and not yet closed), against {@link WebSettings#maxTabs()}. */
    private final AtomicInteger held = new AtomicInteger();
    private final LogLimit fullWarnings = new LogLimit(FULL_WARN_EVERY);
    private final WebSettings settings;
    private Subscription subscription;
    /** Sibling groups whose presence key was missing on the last sweep. */
    private final Set<String> missingLastSweep = ConcurrentHashMap.newKeySet();
    private final ScheduledExecutorService sweeper = thread("stargazer-gateway-sweep");
    private final ScheduledExecutorService sendThread = thread("stargazer-webchat-send");
    private final LogLimit refusedWarnings = new LogLimit(REFUSED_WARN_EVERY);
    /** While Redis is down every message fails: one line per failure flooded the log (310 lines in 40 s). */
    private final LogLimit publishFailedWarnings = new LogLimit(PUBLISH_FAILED_WARN_EVERY);

    private WebChatGateway(EventBus bus, NodeMetrics metrics, WebSettings settings) {
        this.bus = bus;
        this.settings = settings;
        this.metrics = metrics;
        this.gatewayId = bus.config().nodeId();
        this.stream = bus.topology().outboundStream(PLATFORM);
        this.group = groupOf(bus, gatewayId);
        this.tabDropped = metrics.counter("stargazer.webchat.tabs.dropped",
                "Web chat tabs closed because they did not read what they were sent or nothing came back after a ping")::increment;
        this.answersDiscarded = metrics.counter("stargazer.webchat.answers.discarded",
                "Answers for web chat tabs of this gateway that had closed or were dropped");
    }

    private static ScheduledExecutorService thread(String name) {
        return Executors.newSingleThreadScheduledExecutor(r -> {
            Thread t = new Thread(r, name);
            t.setDaemon(true);
            return t;
        });
    }

    /** The consumer group gateway {@code gatewayId} reads the webchat outbound stream with. */
    public static String groupOf(EventBus bus, String gatewayId) {
        return bus.topology().gatewayGroup(PLATFORM) + ":" + gatewayId;
    }

    /** With the default settings: no consumer setting of any environment. */
    public static WebChatGateway start(EventBus bus, NodeMetrics metrics) {
        return start(bus, metrics, WebSettings.DEFAULTS, Map.of());
    }

    /** @param env the node's variables, of which the consumer settings ({@code SG_MAX_DELIVERIES}, ...) are read */
    public static WebChatGateway start(EventBus bus, NodeMetrics metrics, WebSettings settings, Map<String, String> env) {
        WebChatGateway g = new WebChatGateway(bus, metrics, settings);
        g.refreshAlive(); // before the group exists, so no sweep ever sees this gateway's group without it
        // ORDERED whatever SG_RETRY_ORDER says: a tab skips answers at or below the last id it was sent, which holds
        // only while a channel's answers reach it in stream order (an older one retried after a newer would be lost).
        // The consumer is named after the gateway id (--node-id wins over SG_NODE_ID, which fromEnvironment() reads).
        g.subscription = bus.subscribe(bus.consumer(g.stream, g.group).fromEnvironment(env).consumerName(g.gatewayId)
                        .retryOrder(io.stargazer.bus.RetryOrder.ORDERED).build(),
                d -> g.deliver(d.id(), d.envelope()));
        metrics.watch(g.subscription);
        metrics.gauge("stargazer.webchat.tabs", "Open web chat tabs on this gateway", g.tabs::size);
        for (String stream : bus.topology().inboundStreams()) metrics.watchPublishes(stream);
        g.sweeper.scheduleWithFixedDelay(g::refreshAlive, ALIVE_REFRESH.toMillis(), ALIVE_REFRESH.toMillis(), TimeUnit.MILLISECONDS);
        g.sweeper.scheduleWithFixedDelay(g::removeDeadGatewayGroups, SWEEP_EVERY.toMillis(), SWEEP_EVERY.toMillis(),
                TimeUnit.MILLISECONDS);
        g.sendThread.scheduleWithFixedDelay(() -> {
            long now = System.nanoTime();
            g.tabs.values().forEach(t -> t.ping(now));
        }, PING_EVERY.toMillis(), PING_EVERY.toMillis(), TimeUnit.MILLISECONDS);
        g.sendThread.scheduleWithFixedDelay(() -> {
            long now = System.nanoTime();
            g.tabs.values().forEach(t -> t.dropIfStalled(now));
        }, STALL_CHECK_EVERY.toMillis(), STALL_CHECK_EVERY.toMillis(), TimeUnit.MILLISECONDS);
        log.atInfo().addKeyValue("gateway_id", g.gatewayId).addKeyValue("stream", g.stream).addKeyValue("group", g.group)
                .log("Web chat gateway started");
        return g;
    }

    public String gatewayId() {
        return gatewayId;
    }

    public List<Subscription> subscriptions() {
        return List.of(subscription);
    }

    public int openTabs() {
        return tabs.size();
    }

    // ---- tabs (called on Jetty threads; they only queue frames) --------------------------------------------

    void opened(WsContext ws) {
        if (stopping) {
            ws.closeSession(ChatTab.CLOSE_GOING_AWAY, ChatTab.STOPPING_REASON);
            return;
        }
        if (held.incrementAndGet() > settings.maxTabs()) {
            held.decrementAndGet();
            ws.closeSession(CLOSE_FULL, fullReason());
            long more = fullWarnings.take();
            if (more >= 0) {
                log.atWarn().addKeyValue("max_tabs", settings.maxTabs())
                        .log("Refused a web chat tab: " + fullReason() + LogLimit.more(more, "tabs refused"));
            }
            return;
        }
        String channel = "wc-" + UUID.randomUUID().toString().replace("-", "");
        ChatTab tab = new ChatTab(channel, ws.session, sendThread, tabDropped,
                new RateLimit(settings.messagesPerSecond(), settings.burst(), System.nanoTime()));
        tabBySession.put(ws.sessionId(), tab);
        tabs.put(channel, tab);
        send(tab, Map.of("kind", "hello", "channel_id", channel, "gateway_id", gatewayId));
        log.atDebug().addKeyValue("channel_id", channel).log("Tab opened");
    }

    void closed(WsContext ws) {
        ChatTab tab = tabBySession.remove(ws.sessionId());
        if (tab != null) {
            held.decrementAndGet();
            tab.closed();
            tabs.remove(tab.channel, tab);
            discarded(tab.channel, tab.takeLostAnswers());
            log.atDebug().addKeyValue("channel_id", tab.channel).log("Tab closed");
            synchronized (tabGone) {
                tabGone.notifyAll();
            }
        }
    }

    /**
     * Closes every tab with 1001 ("going away") and {@link ChatTab#STOPPING_REASON}, and waits up to {@code wait} for
     * them to answer: called before the HTTP server stops, which otherwise cut every tab's connection with no close frame
     * (the browser saw 1006, an abnormal closure, and no reason).
     */
    public void closeTabs(Duration wait) {
        stopping = true;
        tabBySession.values().forEach(ChatTab::goingAway);
        long deadline = System.nanoTime() + wait.toNanos();
        synchronized (tabGone) {
            for (long left; !tabBySession.isEmpty() && (left = deadline - System.nanoTime()) > 0; ) {
                try {
                    TimeUnit.NANOSECONDS.timedWait(tabGone, left);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    return;
                }
            }
        }
        if (!tabBySession.isEmpty()) {
            log.atDebug().addKeyValue("tabs", tabBySession.size()).log("Tabs that did not answer their close are cut off");
        }
    }

    /** A frame from a tab: {@code {"content": "..."}}. Answers an error frame to the tab when it is refused. */
    void received(WsContext ws, String frame) {
        ChatTab tab = tabBySession.get(ws.sessionId());
        if (tab == null || tab.gone()) {
            return; // a dropped tab's last frames: it is being closed
        }
        if (!tab.tryPublish()) {
            send(tab, Map.of("kind", "error", "message", "too many messages: at most " + rateText() + " a second, bursts of "
                    + settings.burst() + "; this one was not sent"));
            refusedOverRate(tab);
            return;
        }
        String channel = tab.channel;
        String content;
        try {
            Object parsed = NodeJson.parse(frame);
            if (!(parsed instanceof Map<?, ?> m) || !(m.get("content") instanceof String c)) {
                throw new IllegalArgumentException("expected {\"content\": \"...\"}");
            }
            content = c;
        } catch (IllegalArgumentException e) {
            send(tab, Map.of("kind", "error", "message", "bad frame: " + e.getMessage()));
            return;
        }
        if (content.isBlank()) {
            return;
        }
        if (content.length() > MAX_CONTENT_CHARS) {
            send(tab, Map.of("kind", "error", "message", "message too long: at most " + MAX_CONTENT_CHARS + " characters"));
            return;
        }
        String traceId = WireFormat.newTraceId();
        Envelope inbound = Envelope.builder().platform(PLATFORM).channelId(channel).content(content).traceId(traceId)
                .put(GATEWAY_ID, gatewayId).build();
        track(traceId);
        PublishOptions once = PublishOptions.builder().dedupeKey(PLATFORM + ":" + traceId).maxAttempts(PUBLISH_ATTEMPTS).build();
        // The publish completes on a Redis I/O thread: the rest runs on the send thread, never there.
        bus.publishInboundAsync(inbound, once).whenCompleteAsync((id, failure) -> {
            if (failure != null) {
                Throwable err = failure instanceof CompletionException && failure.getCause() != null ? failure.getCause() : failure;
                sentAt.remove(traceId);
                metrics.publishFailed(bus.topology().inboundStreamFor(channel), err);
                long held = publishFailedWarnings.take();
                if (held >= 0) {
                    log.atWarn().addKeyValue("channel_id", channel).addKeyValue("trace_id", traceId)
                            .log("Publishing a web chat message failed: " + err.getMessage() + LogLimit.more(held, "failures"));
                } else {
                    log.atDebug().addKeyValue("channel_id", channel).addKeyValue("trace_id", traceId)
                            .log("Publishing a web chat message failed: " + err.getMessage());
                }
                // Unknown: an attempt reached Redis and its reply was lost, so the message may be stored (and answered).
                send(tab, Map.of("kind", "error", "message", err instanceof PublishOutcomeUnknownException
                        ? "could not confirm the message: Redis may have taken it (an answer may still come); wait before sending it again"
                        : "could not publish: Redis did not take the message"));
            } else {
                metrics.published(bus.topology().inboundStreamFor(channel));
                send(tab, Map.of("kind", "sent", "trace_id", traceId));
            }
        }, sendThread);
    }

    private void track(String traceId) {
        long now = System.nanoTime();
        if (sentAt.size() >= MAX_TRACKED_TRACES) {
            sentAt.values().removeIf(t -> now - t > ROUND_TRIP_FORGET_NANOS);
            if (sentAt.size() >= MAX_TRACKED_TRACES) sentAt.clear();
        }
        sentAt.put(traceId, now);
    }

    // ---- answers (called on subscription handler threads; they only queue frames) --------------------------

    private void deliver(String entryId, Envelope out) {
        String channel = out.channelId();
        ChatTab tab = channel == null ? null : tabs.get(channel);
        if (tab == null) {
            if (gatewayId.equals(out.get(GATEWAY_ID))) {
                discarded(channel, 1); // one of this gateway's tabs, closed (else another gateway's tab)
            }
            return;
        }
        Map<String, Object> frame = new LinkedHashMap<>();
        frame.put("kind", "message");
        frame.put("type", out.type() == null ? "message" : out.type());
        frame.put("content", out.get(Envelope.CONTENT));
        frame.put("trace_id", out.traceId());
        if (!tab.offerAnswer(entryId, NodeJson.write(frame))) {
            if (tab.gone()) {
                discarded(channel, 1);
            }
            return; // else sent already (an entry read again)
        }
        Long start = out.traceId() == null ? null : sentAt.remove(out.traceId());
        if (start != null) {
            metrics.roundTrip(PLATFORM, Duration.ofNanos(System.nanoTime() - start));
        }
    }

    /** What a tab beyond {@link WebSettings#maxTabs()} is told as it is closed. */
    private String fullReason() {
        return "too many tabs on this gateway: at most " + settings.maxTabs() + " (" + WebSettings.ENV_MAX_TABS + ")";
    }

    private void discarded(String channel, int answers) {
        if (answers > 0) {
            answersDiscarded.increment(answers);
            log.atDebug().addKeyValue("channel_id", channel).addKeyValue("answers", answers)
                    .log("Discarded answers for a tab that has gone");
        }
    }

    /**
     * Says in the log, at most every {@link #REFUSED_WARN_EVERY}, how many messages were refused over their tab's rate:
     * each tab is told, but an operator otherwise sees nothing, and a compliant tab is refused too when its frames
     * arrive all at once (the gateway stalled, or the network held them).
     */
    private void refusedOverRate(ChatTab tab) {
        long held = refusedWarnings.take();
        if (held >= 0) {
            long n = held + 1;
            log.atWarn().addKeyValue("channel_id", tab.channel).addKeyValue("refused", n)
                    .log("Refused " + n + " chat message(s) over their tab's rate (at most " + rateText() + " a second, bursts of "
                            + settings.burst() + ": SG_WEBCHAT_RATE, SG_WEBCHAT_BURST) since the last such warning; each tab was told. "
                            + "Frames held back by a stalled gateway or network arrive at once and count as a burst");
        }
    }

    private String rateText() {
        double r = settings.messagesPerSecond();
        return r == Math.rint(r) ? Long.toString((long) r) : Double.toString(r);
    }

    private static void send(ChatTab tab, Map<String, ?> frame) {
        tab.offer(NodeJson.write(frame));
    }

    private static String aliveKey(String group) {
        return group + ":alive";
    }

    private void refreshAlive() {
        try {
            bus.setAlive(aliveKey(group), ALIVE_TTL);
        } catch (RuntimeException e) {
            log.atDebug().addKeyValue("group", group).log("Could not refresh this gateway's presence: " + e.getMessage());
        }
    }

    /**
     * Deletes the groups of sibling gateways that are gone (see the class comment); returns their names.
     * Runs on the sweeper thread; tests call it directly.
     */
    public List<String> removeDeadGatewayGroups() {
        List<String> removed = new java.util.ArrayList<>();
        String shared = bus.topology().gatewayGroup(PLATFORM);
        String prefix = shared + ":";
        try {
            Set<String> missingNow = new HashSet<>();
            for (GroupInfo g : bus.groups(stream)) {
                // The shared group: older provisioning (and ensureStreams) made it, and no gateway here reads with it,
                // so under SAFE it held the stream's trimming for ever. One with a consumer belongs to someone else.
                if (g.name().equals(shared) && g.consumers() == 0 && bus.deleteGroup(stream, g.name())) {
                    removed.add(g.name());
                    log.atWarn().addKeyValue("stream", stream).addKeyValue("group", g.name())
                            .log("Deleted the shared web chat group nobody reads (web chat gateways read with groups of their own)");
                    continue;
                }
                if (!g.name().startsWith(prefix) || g.name().equals(group) || bus.isAlive(aliveKey(g.name()))) {
                    continue;
                }
                missingNow.add(g.name());
                if (missingLastSweep.contains(g.name()) && bus.deleteGroup(stream, g.name())) {
                    removed.add(g.name());
                    missingNow.remove(g.name());
                    log.atWarn().addKeyValue("stream", stream).addKeyValue("group", g.name()).addKeyValue("pending", g.pending())
                            .log("Deleted the group of a gateway that is gone (its tabs went with it)");
                }
            }
            missingLastSweep.clear();
            missingLastSweep.addAll(missingNow);
        } catch (RuntimeException e) {
            log.atDebug().addKeyValue("stream", stream).log("Gateway group sweep failed: " + e.getMessage());
        }
        return removed;
    }

    /** Stops reading, then deletes this gateway's group: its tabs are gone with it, so nothing in it is wanted. */
    @Override
    public void close() {
        if (subscription == null) {
            return;
        }
        sweeper.shutdownNow();
        subscription.close();
        sendThread.shutdownNow();
        try {
            bus.deleteGroup(stream, group);
        } catch (RuntimeException e) {
            log.atWarn().addKeyValue("stream", stream).addKeyValue("group", group)
                    .log("Could not delete this gateway's group: " + e.getMessage());
        }
    }
}
