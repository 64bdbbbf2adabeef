// The node's Prometheus metrics (Micrometer): what was published, consumed, acknowledged, redelivered and
// dead-lettered, handler and round-trip latency, tools calls, subscription states, and the streams' and groups' state
// in Redis (length, lag, pending, oldest pending age, dead letters, paused), which ops/prometheus/stargazer-rules.yml
// alerts on (docs/operating.md).
package io.stargazer.node;

import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.FunctionCounter;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MultiGauge;
import io.micrometer.core.instrument.Tags;
import io.micrometer.core.instrument.Timer;
import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import io.stargazer.bus.EventBus;
import io.stargazer.bus.GroupInfo;
import io.stargazer.bus.StreamInfo;
import io.stargazer.bus.Subscription;
import io.stargazer.bus.micrometer.BusMetrics;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.function.Supplier;
import java.util.function.ToDoubleFunction;
import org.slf4j.LoggerFactory;

/**
 * One registry per node process. The bus's own meters come from the library's binder ({@link BusMetrics}, bound by
 * {@link #bind}): OpenTelemetry-style names such as {@code messaging_client_sent_messages_total} and
 * {@code messaging_process_duration_seconds} (docs/observability.md). The names this node exported before the binder
 * existed stay, read from the same sources, so dashboards and alert rules written against them keep working:
 * {@code stargazer_published_total} reads the binder's publish counter, the consumer counters read
 * {@link Subscription#stats()} at scrape time (the hot path pays nothing for them). Thread-safe.
 *
 * <p>Threads: one, {@code stargazer-metrics-streams}, started by a scrape and ended after a minute idle, reads the
 * streams' and groups' state from Redis for the stream gauges ({@link #refreshStreams(EventBus, List, Duration)}), so
 * that a scrape waits for Redis at most {@link #SCRAPE_REFRESH_WAIT}. Everything else runs on the caller's thread.
 */
public final class NodeMetrics {
    private final PrometheusMeterRegistry registry = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
    private final MultiGauge streamLength = MultiGauge.builder("stargazer.stream.length").description("Entries in the stream (XLEN)").register(registry);
    private final MultiGauge streamMaxLength = MultiGauge.builder("stargazer.stream.max.length")
            .description("The stream's cap (SG_STREAM_MAXLEN); SAFE streams refuse publishes at it").register(registry);
    private final MultiGauge deadLetters = MultiGauge.builder("stargazer.dead.letters").description("Entries in the stream's dead-letter stream")
            .register(registry);
    private final MultiGauge groupLag = MultiGauge.builder("stargazer.group.lag")
            .description("Entries not yet delivered to the group (Redis 7 reports it; on 6.2 counted by reading, at most 1000)").register(registry);
    private final MultiGauge groupPending = MultiGauge.builder("stargazer.group.pending").description("Entries delivered and not acknowledged")
            .register(registry);
    private final MultiGauge oldestPending = MultiGauge.builder("stargazer.group.oldest.pending.age").baseUnit("seconds")
            .description("Age (by its id) of the oldest entry delivered to the group and not acknowledged; 0 when none").register(registry);
    private final MultiGauge groupStalled = MultiGauge.builder("stargazer.group.stalled").baseUnit("seconds")
            .description("How long entries have waited for the group while it was given none (lag above 0, its last-delivered id"
                    + " unchanged), as seen by this node's scrapes; 0 while it reads or nothing waits").register(registry);
    /** Per stream and group (stream NUL group): its last-delivered id, and since when this node has seen it unchanged with a lag. */
    private final Map<String, Stall> stalls = new java.util.concurrent.ConcurrentHashMap<>();

    private record Stall(String lastDelivered, long sinceMillis) {
    }
    private final MultiGauge groupPaused = MultiGauge.builder("stargazer.group.paused").description("1 while the group is paused (stargazer pause)")
            .register(registry);

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

    /** How long a scrape waits for the stream gauges' refresh before it serves the values it has. */
    public static final Duration SCRAPE_REFRESH_WAIT = Duration.ofSeconds(2);
    /** Runs the stream gauges' refreshes, one at a time; its thread ends when idle. */
    private final ThreadPoolExecutor streamsRefresher = refresher();
    /** The refresh running or last run; guarded by this. */
    private CompletableFuture<Void> streamsRefresh;

    private static ThreadPoolExecutor refresher() {
        ThreadPoolExecutor e = new ThreadPoolExecutor(1, 1, 60, TimeUnit.SECONDS,
                new LinkedBlockingQueue<>(), r -> {
                    Thread t = new Thread(r, "stargazer-metrics-streams");
                    t.setDaemon(true);
                    return t;
                });
        e.allowCoreThreadTimeOut(true);
        return e;
    }

    /**
     * What the /metrics handler calls before a scrape: refreshes the stream gauges ({@link #refreshStreams}) on a thread
     * of this registry, waiting for it at most {@code wait}; a refresh still running (Redis not answering: each read
     * waits up to the bus's 5 s for diagnostics, so one refresh took 5 s a stream) is joined, never started twice, and
     * the scrape then serves the values of the last refresh that ended. Before, the scrape ran the refresh itself and
     * took 15 s and more while Redis did not answer, past Prometheus's default 10 s scrape timeout, so the node's own
     * metrics (subscription states, publish failures) went unseen exactly then (MetricsDuringRedisStallIT).
     */
    public void refreshStreams(EventBus bus, List<String> streams, Duration wait) {
        CompletableFuture<Void> f;
        synchronized (this) {
            if (streamsRefresh == null || streamsRefresh.isDone()) {
                streamsRefresh = CompletableFuture.runAsync(() -> refreshStreams(bus, streams), streamsRefresher);
            }
            f = streamsRefresh;
        }
        try {
            f.get(wait.toMillis(), TimeUnit.MILLISECONDS);
        } catch (TimeoutException slow) {
            // Redis is slow or not answering: the last values are served, the refresh goes on for the next scrape.
        } catch (ExecutionException e) {
            LoggerFactory.getLogger(NodeMetrics.class).atDebug().log("Refreshing the stream gauges failed: " + e.getCause());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    /**
     * Reads each stream's and group's state from Redis into the stream gauges, on the calling thread; the /metrics
     * handler has it run through {@link #refreshStreams(EventBus, List, Duration)}, so nothing polls Redis when nobody
     * scrapes and a scrape does not wait for a Redis that does not answer.
     */
    public void refreshStreams(EventBus bus, List<String> streams) {
        List<MultiGauge.Row<?>> length = new ArrayList<>();
        List<MultiGauge.Row<?>> max = new ArrayList<>();
        List<MultiGauge.Row<?>> dead = new ArrayList<>();
        List<MultiGauge.Row<?>> lag = new ArrayList<>();
        List<MultiGauge.Row<?>> pending = new ArrayList<>();
        List<MultiGauge.Row<?>> oldest = new ArrayList<>();
        List<MultiGauge.Row<?>> stalled = new ArrayList<>();
        java.util.Set<String> seen = new java.util.HashSet<>();
        List<MultiGauge.Row<?>> paused = new ArrayList<>();
        long now = System.currentTimeMillis();
        for (String stream : streams) {
            StreamInfo info = bus.streamInfo(stream).orElse(null);
            if (info == null) continue;
            Tags st = Tags.of("stream", stream);
            length.add(MultiGauge.Row.of(st, info.length()));
            max.add(MultiGauge.Row.of(st, bus.config().streamMaxlen()));
            dead.add(MultiGauge.Row.of(st, bus.streamInfo(bus.topology().deadLetterStream(stream)).map(StreamInfo::length).orElse(0L)));
            for (GroupInfo g : bus.groups(stream)) {
                Tags gt = Tags.of("stream", stream, "group", g.name());
                Long l = g.lag() != null ? g.lag() : StreamsReport.lagByReading(bus, stream, g.lastDeliveredId(), info.lastEntryId());
                if (l != null) lag.add(MultiGauge.Row.of(gt, l));
                pending.add(MultiGauge.Row.of(gt, g.pending()));
                double age = bus.oldestPendingId(stream, g.name()).map(id -> Math.max(0, now - Long.parseLong(id.substring(0, id.indexOf('-')))) / 1000.0)
                        .orElse(0.0);
                oldest.add(MultiGauge.Row.of(gt, age));
                stalled.add(MultiGauge.Row.of(gt, stalledSeconds(stream, g, l, now, seen)));
                Boolean p = StreamsReport.paused(bus, stream, g.name());
                if (p != null) paused.add(MultiGauge.Row.of(gt, p ? 1 : 0));
            }
        }
        streamLength.register(length, true);
        streamMaxLength.register(max, true);
        deadLetters.register(dead, true);
        groupLag.register(lag, true);
        groupPending.register(pending, true);
        oldestPending.register(oldest, true);
        groupStalled.register(stalled, true);
        stalls.keySet().retainAll(seen); // groups gone, or streams no longer read: nothing kept for them
        groupPaused.register(paused, true);
    }

    /**
     * Seconds for which the group has had entries waiting (lag above 0) and been given none (its last-delivered id
     * unchanged), from this node's first scrape that saw it so; 0 while it reads or nothing waits. Grows while nobody
     * reads the group (every worker stopped) or all its consumers are busy, whatever the lag: the lag alert needs a lag
     * above 100, which a quiet chat never reaches, and its messages would wait unseen. A group catching up on a backlog
     * moves its last-delivered id at every read, so it stays near 0. Reads only XINFO GROUPS, which every role and the
     * monitor user may run; unknown lag (6.2 without a read of the stream) counts as nothing waiting.
     */
    private double stalledSeconds(String stream, GroupInfo g, Long lag, long now, java.util.Set<String> seen) {
        String key = stream + '\0' + g.name();
        seen.add(key);
        if (lag == null || lag == 0 || g.lastDeliveredId() == null) {
            stalls.remove(key);
            return 0;
        }
        Stall s = stalls.compute(key, (k, old) -> old != null && old.lastDelivered().equals(g.lastDeliveredId()) ? old
                : new Stall(g.lastDeliveredId(), now));
        return Math.max(0, now - s.sinceMillis()) / 1000.0;
    }

    /** A publish this node made that failed: {@code reason} backpressure (a full stream or queue) or error. */
    public void publishFailed(String stream, Throwable cause) {
        Throwable c = cause instanceof java.util.concurrent.CompletionException && cause.getCause() != null ? cause.getCause() : cause;
        boolean backpressure = c instanceof io.stargazer.bus.BackpressureException || c instanceof io.stargazer.bus.PublishQueueFullException;
        publishFailures(stream, backpressure ? "backpressure" : "error").increment();
    }

    /** Shows {@code stargazer_publish_failures_total} for {@code stream} at 0 before any failure, so rate() has a start. */
    public void watchPublishes(String stream) {
        publishFailures(stream, "backpressure");
        publishFailures(stream, "error");
    }

    private Counter publishFailures(String stream, String reason) {
        return Counter.builder("stargazer.publish.failures").description("Publishes this node made that failed, by reason (backpressure, error)")
                .tag("stream", stream).tag("reason", reason).register(registry);
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
        for (Subscription.State state : Subscription.State.values()) {
            Gauge.builder("stargazer.subscription.state", s, x -> x.state() == state ? 1 : 0)
                    .description("1 for the subscription's current state (RUNNING, PAUSED, RECONNECTING, ...), 0 for the others")
                    .tag("stream", s.stream()).tag("group", s.group()).tag("state", state.name()).register(registry);
        }
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
