// The worker role: consumes the inbound stream(s) with the worker group and runs the WorkerHandler on each envelope.
package io.stargazer.node;

import io.micrometer.core.instrument.Timer;
import io.stargazer.bus.Delivery;
import io.stargazer.bus.Envelope;
import io.stargazer.bus.EventBus;
import io.stargazer.bus.NotRetryableException;
import io.stargazer.bus.PublishOptions;
import io.stargazer.bus.Subscription;
import io.stargazer.bus.tools.ToolClient;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/** One subscription per inbound stream (partition); closing it lets in-flight handlers finish or stay pending. */
public final class Worker implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(Worker.class);

    /**
     * Members copied from an inbound envelope into every answer so the answer can be routed back: {@code gateway_id}
     * names the web chat gateway process that holds the browser tab (see docs/node.md).
     */
    public static final Set<String> ROUTING_MEMBERS = Set.of("gateway_id");

    private final EventBus bus;
    private final WorkerHandler handler;
    private final NodeMetrics metrics;
    private final Timer latency;
    private final List<Subscription> subscriptions = new ArrayList<>();
    private ToolClient tools;
    private boolean closed;

    private Worker(EventBus bus, String handlerName, WorkerHandler handler, NodeMetrics metrics) {
        this.bus = bus;
        this.handler = handler;
        this.metrics = metrics;
        this.latency = metrics.handlerLatency(handlerName);
    }

    /** @param env the node's variables, of which the consumer settings ({@code SG_MAX_DELIVERIES}, ...) are read */
    public static Worker start(EventBus bus, Map<String, String> env, String handlerName, WorkerHandler handler, NodeMetrics metrics) {
        Worker w = new Worker(bus, handlerName, handler, metrics);
        for (String stream : bus.topology().inboundStreams()) {
            // The node id again after the variables: fromEnvironment() would name the consumer after SG_NODE_ID even when
            // --node-id says otherwise (the flag wins).
            Subscription s = bus.subscribe(bus.consumer(stream, bus.topology().workerGroup()).fromEnvironment(env)
                    .consumerName(bus.config().nodeId()).build(), w::handle);
            metrics.watch(s);
            w.subscriptions.add(s);
        }
        log.atInfo().addKeyValue("handler", handlerName).addKeyValue("streams", bus.topology().inboundStreams())
                .addKeyValue("group", bus.topology().workerGroup()).log("Worker started");
        return w;
    }

    public List<Subscription> subscriptions() {
        return List.copyOf(subscriptions);
    }

    private void handle(Delivery delivery) throws Exception {
        checkPlatform(delivery.envelope().platform());
        long start = System.nanoTime();
        try {
            handler.handle(delivery.envelope(), new Ctx(delivery));
        } finally {
            latency.record(System.nanoTime() - start, java.util.concurrent.TimeUnit.NANOSECONDS);
        }
    }

    /**
     * The worker answers on {@code outbound:<platform>} of the inbound message: only the configured platforms
     * ({@code SG_PLATFORMS}), whose outbound streams are provisioned, read by gateways and allowed by the worker's ACL.
     * Any other name a gateway sent would make a stream nobody reads and a metrics series of its own; the message is
     * dead-lettered at once instead (nothing is lost: replay it once the platform is configured), before the handler
     * runs, so no model is called for an answer that cannot be delivered.
     */
    private void checkPlatform(String platform) {
        if (platform == null || platform.isEmpty()) {
            throw new NotRetryableException("the inbound message has no platform to answer on", null);
        }
        if (!bus.config().platforms().contains(platform)) {
            try {
                io.stargazer.bus.Topology.checkPlatform("platform", platform);
            } catch (io.stargazer.bus.ConfigException e) {
                throw new NotRetryableException("the inbound message's platform is no platform name (" + e.getMessage() + ")", e);
            }
            throw new NotRetryableException("the inbound message's platform '" + platform + "' is not one of SG_PLATFORMS "
                    + bus.config().platforms() + ": no answer is sent to outbound:" + platform + "; add the platform to SG_PLATFORMS"
                    + " of the workers and its gateway, then replay this dead letter", null);
        }
    }

    /** The answer to {@code inbound}: its platform, channel, trace and routing members, then {@code outbound}'s own. */
    static Envelope answer(Envelope inbound, Envelope outbound) {
        Envelope.Builder b = Envelope.builder();
        for (String k : List.of(Envelope.PLATFORM, Envelope.CHANNEL_ID, Envelope.TRACE_ID)) {
            if (inbound.has(k)) b.put(k, inbound.get(k));
        }
        for (String k : ROUTING_MEMBERS) {
            if (inbound.has(k)) b.put(k, inbound.get(k));
        }
        b.putAll(outbound.asMap());
        return b.build();
    }

    /**
     * Answers sent once (docs/once.md): the reply is stored and the entry acknowledged in one step
     * ({@link Delivery#reply}); other messages carry a dedupe key derived from the entry and their place in the
     * handling, so an entry handled again (its worker died after answering) adds no second answer.
     */
    private final class Ctx implements WorkerHandler.Context {
        private final Delivery delivery;
        private final Envelope inbound;
        private int sent;

        Ctx(Delivery delivery) {
            this.delivery = delivery;
            this.inbound = delivery.envelope();
        }

        @Override
        public void reply(String content) {
            Envelope out = answer(inbound, Envelope.of(Envelope.TYPE, "message", Envelope.CONTENT, content));
            String stream = bus.topology().outboundStream(platformOf(out));
            delivery.reply(stream, out).join();
            metrics.published(stream);
        }

        @Override
        public void send(Envelope outbound) {
            Envelope out = answer(inbound, outbound);
            String stream = bus.topology().outboundStream(platformOf(out));
            sent++;
            bus.publish(stream, out, PublishOptions.dedupeKey("send:" + delivery.stream() + ":" + delivery.id() + ":" + sent));
            metrics.published(stream);
        }

        private String platformOf(Envelope out) {
            String platform = out.platform();
            if (platform == null) {
                throw new IllegalArgumentException("the inbound envelope has no platform to answer on");
            }
            return platform;
        }

        @Override
        public EventBus bus() {
            return bus;
        }

        @Override
        public ToolClient tools() {
            return toolClient();
        }
    }

    /** One client per worker process (its reply stream is named after the node id), made when a handler first asks. */
    private synchronized ToolClient toolClient() {
        if (closed) {
            throw new IllegalStateException("the worker is closed");
        }
        if (tools == null) {
            tools = ToolClient.create(bus);
        }
        return tools;
    }

    /** Stops the subscriptions (in-flight handlers finish or stay pending), then the tools client they used. */
    @Override
    public void close() {
        for (Subscription s : subscriptions) {
            s.close();
        }
        ToolClient t;
        synchronized (this) {
            closed = true;
            t = tools;
        }
        if (t != null) {
            t.close();
        }
    }
}
