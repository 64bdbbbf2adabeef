// The node's Prometheus metrics (Micrometer): what was published, consumed, acknowledged, redelivered and
// dead-lettered, handler and round-trip latency, and tools calls.
package io.stargazer.node;

import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.FunctionCounter;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.Timer;
import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import io.stargazer.bus.EventBus;
import io.stargazer.bus.Subscription;
import io.stargazer.bus.micrometer.BusMetrics;
import java.time.Duration;
import java.util.function.Supplier;
import java.util.function.ToDoubleFunction;

/**
 * One registry per node process. The bus's own meters come from the library's binder ({@link BusMetrics}, bound by
 * {@link #bind}): OpenTelemetry-style names such as {@code messaging_client_sent_messages_total} and
 * {@code messaging_process_duration_seconds} (docs/observability.md). The names this node exported before the binder
 * existed stay, read from the same sources, so dashboards and alert rules written against them keep working:
 * {@code stargazer_published_total} reads the binder's publish counter, the consumer counters read
 * {@link Subscription#stats()} at scrape time (the hot path pays nothing for them). Thread-safe.
 */
public final class NodeMetrics {
    private final PrometheusMeterRegistry registry = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);

    public PrometheusMeterRegistry registry() {
        return registry;
    }

    /** The Prometheus text exposition. */
    public String scrape() {
        return registry.scrape();
    }

    /** Binds the library's meters of {@code bus} to this registry; call once, before {@link #published}. */
    public void bind(EventBus bus) {
        new BusMetrics(bus).bindTo(registry);
    }

    /**
     * Keeps {@code stargazer_published_total{stream}} (the name this node exported before the binder) for a stream
     * the node publishes to: it reads the binder's count of stored publishes to that stream, so nothing is counted twice.
     */
    public void published(String stream) {
        if (registry.find("stargazer.published").tag("stream", stream).functionCounter() != null) {
            return;
        }
        FunctionCounter.builder("stargazer.published", registry, r -> {
            Counter c = r.find("messaging.client.sent.messages").tag(BusMetrics.TAG_DESTINATION, stream)
                    .tag(BusMetrics.TAG_ERROR, "none").counter();
            return c == null ? 0 : c.count();
        }).description("Envelopes this node published (stored)").tag("stream", stream).register(registry);
    }

    /** Exposes a subscription's counters as {@code stargazer_consumed_total} and friends, tagged by stream and group. */
    public void watch(Subscription s) {
        counter("stargazer.consumed", "Deliveries handed to handlers, redeliveries included", s, st -> st.delivered());
        counter("stargazer.acknowledged", "Entries acknowledged", s, st -> st.acknowledged());
        counter("stargazer.redelivered", "Deliveries with a delivery count above 1", s, st -> st.redelivered());
        counter("stargazer.dead.lettered", "Entries moved to the dead-letter stream", s, st -> st.deadLettered());
        counter("stargazer.handler.failures", "Handler failures and nacks", s, st -> st.failed());
        Gauge.builder("stargazer.in.flight", s, x -> x.stats().inFlight()).description("Deliveries not yet settled")
                .tag("stream", s.stream()).tag("group", s.group()).register(registry);
    }

    private void counter(String name, String help, Subscription s, ToDoubleFunction<Subscription.Stats> f) {
        FunctionCounter.builder(name, s, x -> f.applyAsDouble(x.stats())).description(help)
                .tag("stream", s.stream()).tag("group", s.group()).register(registry);
    }

    public Timer handlerLatency(String handler) {
        return Timer.builder("stargazer.handler.latency").description("Time the worker handler took per envelope")
                .tag("handler", handler).publishPercentileHistogram().register(registry);
    }

    /** Gateway: from publishing a person's message inbound to the first answer arriving for it. */
    public void roundTrip(String platform, Duration d) {
        Timer.builder("stargazer.roundtrip.latency").description("Inbound publish to outbound arrival at the gateway")
                .tag("platform", platform).publishPercentileHistogram().register(registry).record(d);
    }

    /** One tools call from a worker; {@code outcome} is {@code ok} or the error type ({@code timeout}, ...). */
    public void toolCall(String tool, String outcome, Duration d) {
        Timer.builder("stargazer.tools.calls").description("Tools calls made by the worker, by tool and outcome")
                .tag("tool", tool).tag("outcome", outcome).register(registry).record(d);
    }

    public Counter counter(String name, String help) {
        return Counter.builder(name).description(help).register(registry);
    }

    public void gauge(String name, String help, Supplier<Number> value) {
        Gauge.builder(name, value).description(help).register(registry);
    }
}
