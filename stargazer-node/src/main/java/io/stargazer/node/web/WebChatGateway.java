// The web chat gateway: each browser tab (one WebSocket) is a channel; what it sends goes to the inbound stream,
// and answers from the webchat outbound stream come back to the tab, whichever gateway process read them.
package io.stargazer.node.web;

import io.javalin.websocket.WsContext;
import io.stargazer.bus.Envelope;
import io.stargazer.bus.EventBus;
import io.stargazer.bus.Subscription;
import io.stargazer.bus.WireFormat;
import io.stargazer.node.Json;
import io.stargazer.node.NodeMetrics;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.ConcurrentHashMap;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Routing with several gateway processes: every gateway reads the shared outbound stream {@code {prefix}:webchat}
 * with the one gateway group, so an answer may reach a process that does not hold its tab. Each inbound envelope
 * carries {@code gateway_id} (this process's node id), which the worker copies into its answers. A gateway that
 * reads an answer for a channel it does not hold forwards it to the owner's private stream
 * {@code {prefix}:webchat:gw:{gateway_id}} (read by the owner alone) and acknowledges it. Both streams are durable,
 * so an answer is not lost while the owner is briefly away. An answer for a tab that has closed is dropped.
 */
public final class WebChatGateway implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(WebChatGateway.class);
    public static final String PLATFORM = "webchat";
    public static final String GATEWAY_ID = "gateway_id";
    /** Longest message a tab may send, in characters. */
    public static final int MAX_CONTENT_CHARS = 4000;
    private static final long ROUND_TRIP_FORGET_NANOS = Duration.ofMinutes(5).toNanos();
    private static final int MAX_TRACKED_TRACES = 10_000;

    private final EventBus bus;
    private final NodeMetrics metrics;
    private final String gatewayId;
    private final String sharedStream;
    private final String privateStream;
    /** Open tabs by channel id; sends to one tab are serialised on its WsContext. */
    private final Map<String, WsContext> tabs = new ConcurrentHashMap<>();
    private final Map<String, String> channelBySession = new ConcurrentHashMap<>();
    /** When each message was published, by trace id, until its first answer: the round-trip latency. */
    private final Map<String, Long> sentAt = new ConcurrentHashMap<>();
    private final Set<String> peers = ConcurrentHashMap.newKeySet();
    private final List<Subscription> subscriptions = new ArrayList<>();

    private WebChatGateway(EventBus bus, NodeMetrics metrics) {
        this.bus = bus;
        this.metrics = metrics;
        this.gatewayId = bus.config().nodeId();
        this.sharedStream = bus.topology().outboundStream(PLATFORM);
        this.privateStream = privateStream(bus, gatewayId);
    }

    /** The stream only gateway {@code gatewayId} reads: answers forwarded to it by other gateways. */
    public static String privateStream(EventBus bus, String gatewayId) {
        return bus.topology().outboundStream(PLATFORM) + ":gw:" + gatewayId;
    }

    public static WebChatGateway start(EventBus bus, NodeMetrics metrics) {
        WebChatGateway g = new WebChatGateway(bus, metrics);
        String group = bus.topology().gatewayGroup(PLATFORM);
        Subscription shared = bus.subscribe(bus.consumer(g.sharedStream, group).build(), d -> g.deliver(d.envelope(), true));
        Subscription own = bus.subscribe(bus.consumer(g.privateStream, group).build(), d -> g.deliver(d.envelope(), false));
        g.subscriptions.add(shared);
        g.subscriptions.add(own);
        metrics.watch(shared);
        metrics.watch(own);
        metrics.gauge("stargazer.webchat.tabs", "Open web chat tabs on this gateway", g.tabs::size);
        log.atInfo().addKeyValue("gateway_id", g.gatewayId).addKeyValue("stream", g.sharedStream)
                .addKeyValue("private_stream", g.privateStream).log("Web chat gateway started");
        return g;
    }

    public String gatewayId() {
        return gatewayId;
    }

    public List<Subscription> subscriptions() {
        return List.copyOf(subscriptions);
    }

    /** This gateway's private stream and those of the peers it has forwarded to: for the dashboard. */
    public List<String> knownStreams() {
        List<String> out = new ArrayList<>();
        out.add(privateStream);
        for (String p : peers) out.add(privateStream(bus, p));
        return out;
    }

    public int openTabs() {
        return tabs.size();
    }

    // ---- tabs (called on Jetty threads) --------------------------------------------------------------------

    void opened(WsContext ws) {
        String channel = "wc-" + UUID.randomUUID().toString().replace("-", "");
        channelBySession.put(ws.sessionId(), channel);
        tabs.put(channel, ws);
        send(ws, Map.of("kind", "hello", "channel_id", channel, "gateway_id", gatewayId));
        log.atDebug().addKeyValue("channel_id", channel).log("Tab opened");
    }

    void closed(WsContext ws) {
        String channel = channelBySession.remove(ws.sessionId());
        if (channel != null) {
            tabs.remove(channel, ws);
            log.atDebug().addKeyValue("channel_id", channel).log("Tab closed");
        }
    }

    /** A frame from a tab: {@code {"content": "..."}}. Answers an error frame to the tab when it is refused. */
    void received(WsContext ws, String frame) {
        String channel = channelBySession.get(ws.sessionId());
        if (channel == null) {
            return;
        }
        String content;
        try {
            Object parsed = Json.parse(frame);
            if (!(parsed instanceof Map<?, ?> m) || !(m.get("content") instanceof String c)) {
                throw new IllegalArgumentException("expected {\"content\": \"...\"}");
            }
            content = c;
        } catch (IllegalArgumentException e) {
            send(ws, Map.of("kind", "error", "message", "bad frame: " + e.getMessage()));
            return;
        }
        if (content.isBlank()) {
            return;
        }
        if (content.length() > MAX_CONTENT_CHARS) {
            send(ws, Map.of("kind", "error", "message", "message too long: at most " + MAX_CONTENT_CHARS + " characters"));
            return;
        }
        String traceId = WireFormat.newTraceId();
        Envelope inbound = Envelope.builder().platform(PLATFORM).channelId(channel).content(content).traceId(traceId)
                .put(GATEWAY_ID, gatewayId).build();
        track(traceId);
        bus.publishInboundAsync(inbound).whenComplete((id, err) -> {
            if (err != null) {
                sentAt.remove(traceId);
                log.atWarn().addKeyValue("channel_id", channel).addKeyValue("trace_id", traceId)
                        .log("Publishing a web chat message failed: " + err.getMessage());
                send(ws, Map.of("kind", "error", "message", "could not publish: Redis did not take the message"));
            } else {
                metrics.published(bus.topology().inboundStreamFor(channel));
                send(ws, Map.of("kind", "sent", "trace_id", traceId));
            }
        });
    }

    private void track(String traceId) {
        long now = System.nanoTime();
        if (sentAt.size() >= MAX_TRACKED_TRACES) {
            sentAt.values().removeIf(t -> now - t > ROUND_TRIP_FORGET_NANOS);
            if (sentAt.size() >= MAX_TRACKED_TRACES) sentAt.clear();
        }
        sentAt.put(traceId, now);
    }

    // ---- answers (called on subscription handler threads; may block) ---------------------------------------

    private void deliver(Envelope out, boolean fromShared) {
        String channel = out.channelId();
        WsContext ws = channel == null ? null : tabs.get(channel);
        if (ws != null) {
            Long start = out.traceId() == null ? null : sentAt.remove(out.traceId());
            if (start != null) {
                metrics.roundTrip(PLATFORM, Duration.ofNanos(System.nanoTime() - start));
            }
            Map<String, Object> frame = new LinkedHashMap<>();
            frame.put("kind", "message");
            frame.put("type", out.type() == null ? "message" : out.type());
            frame.put("content", out.get(Envelope.CONTENT));
            frame.put("trace_id", out.traceId());
            send(ws, frame);
            return;
        }
        String owner = out.string(GATEWAY_ID);
        if (fromShared && owner != null && !owner.equals(gatewayId)) {
            String target;
            try {
                target = privateStream(bus, owner);
            } catch (RuntimeException e) {
                log.atWarn().addKeyValue("channel_id", channel).log("Dropped an answer with an unusable gateway_id");
                return;
            }
            // Blocking publish: the entry is acknowledged on the shared stream only once the owner's copy is stored.
            bus.publish(target, out);
            metrics.published(target);
            peers.add(owner);
            log.atDebug().addKeyValue("channel_id", channel).addKeyValue("gateway_id", owner).log("Forwarded an answer");
            return;
        }
        log.atDebug().addKeyValue("channel_id", channel).addKeyValue("trace_id", out.traceId())
                .log("Dropped an answer for a tab that is not open");
    }

    private static void send(WsContext ws, Map<String, ?> frame) {
        String text = Json.write(frame);
        synchronized (ws) {
            try {
                if (ws.session.isOpen()) {
                    ws.send(text);
                }
            } catch (RuntimeException e) {
                log.atDebug().log("Could not send to a closing tab: " + e.getMessage());
            }
        }
    }

    @Override
    public void close() {
        for (Subscription s : subscriptions) s.close();
    }
}
