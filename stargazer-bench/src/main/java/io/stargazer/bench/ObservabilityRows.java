// What metrics and tracing cost the bus: asynchronous publishing and consuming a backlog with three contenders side
// by side in one run (off, metrics only, metrics and tracing), alternated A B C per round; medians with min and max.
package io.stargazer.bench;

import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import io.micrometer.observation.ObservationHandler;
import io.micrometer.observation.ObservationRegistry;
import io.micrometer.tracing.handler.DefaultTracingObservationHandler;
import io.micrometer.tracing.handler.PropagatingReceiverTracingObservationHandler;
import io.micrometer.tracing.handler.PropagatingSenderTracingObservationHandler;
import io.micrometer.tracing.otel.bridge.OtelBaggageManager;
import io.micrometer.tracing.otel.bridge.OtelCurrentTraceContext;
import io.micrometer.tracing.otel.bridge.OtelPropagator;
import io.micrometer.tracing.otel.bridge.OtelTracer;
import io.opentelemetry.api.trace.propagation.W3CTraceContextPropagator;
import io.opentelemetry.context.propagation.ContextPropagators;
import io.opentelemetry.sdk.OpenTelemetrySdk;
import io.opentelemetry.sdk.trace.SdkTracerProvider;
import io.opentelemetry.sdk.trace.export.BatchSpanProcessor;
import io.opentelemetry.sdk.trace.export.SpanExporter;
import io.stargazer.bus.EventBus;
import io.stargazer.bus.micrometer.BusMetrics;
import io.stargazer.bus.micrometer.BusObservations;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.function.Consumer;

/**
 * <ul>
 *   <li>off: a bus as {@link StargazerRows} makes it (the plain rows' code path);</li>
 *   <li>metrics: {@link BusMetrics} bound to a {@link SimpleMeterRegistry};</li>
 *   <li>metrics and tracing: also {@link BusObservations} on an ObservationRegistry bridged by Micrometer Tracing to
 *       a real OpenTelemetry SDK (W3C propagation, every span sampled, batched) whose exporter drops the spans, so the
 *       figure is the bus's and the SDK's work in this process, not a collector's network.</li>
 * </ul>
 * Publishing: one thread keeping {@value #WINDOW} asynchronous publishes in flight (the plain row's best window).
 * Consuming: a backlog published beforehand by a traced bus (so every entry carries {@code traceparent}, for every
 * contender), read by one subscription with the plain row's settings.
 */
final class ObservabilityRows {
    static final String SECTION = "observability";
    static final int WINDOW = 1_000;

    enum Contender {
        OFF("off"), METRICS("metrics only"), TRACING("metrics and tracing");

        final String label;

        Contender(String label) {
            this.label = label;
        }
    }

    /** BenchMain's row writer. */
    interface Sink {
        void add(String section, String figure, String impl, double value, String unit, String limit);
    }

    private ObservabilityRows() {
    }

    static void run(Ctx ctx, Sink sink, Consumer<String> notes, Consumer<String> progress, String limit) throws Exception {
        int rounds = ctx.quick ? 3 : 5;
        long backlog = ctx.quick ? 100_000 : 300_000;
        Contender[] all = Contender.values();
        double[][] publish = new double[all.length][rounds];
        double[][] consume = new double[all.length][rounds];
        StringBuilder loads = new StringBuilder();
        progress.accept("observability: off, metrics only, metrics and tracing; " + rounds + " rounds, alternated");
        try (Tracing tracing = new Tracing()) {
            // One round not counted: each contender's code paths compiled before any is measured.
            for (Contender c : all) {
                publish(ctx, c, tracing);
                consume(ctx, c, tracing, backlog);
            }
            for (int r = 0; r < rounds; r++) {
                loads.append(r == 0 ? "" : "; ").append(BenchMain.loadAverage());
                for (Contender c : all) {
                    publish[c.ordinal()][r] = publish(ctx, c, tracing);
                }
                for (Contender c : all) {
                    consume[c.ordinal()][r] = consume(ctx, c, tracing, backlog);
                }
                StringBuilder line = new StringBuilder(String.format(Locale.ROOT, "    round %d:", r + 1));
                for (Contender c : all) {
                    line.append(String.format(Locale.ROOT, " %s publish %s consume %s msg/s;", c.label,
                            Report.num(publish[c.ordinal()][r], "msg/s"), Report.num(consume[c.ordinal()][r], "msg/s")));
                }
                progress.accept(line.toString());
            }
        }
        String backlogText = String.format(Locale.ROOT, "%,d", backlog).replace(',', ' ');
        for (Contender c : all) {
            sink.add(SECTION, "asynchronous publishing (" + WINDOW + " in flight), " + c.label + " (median of " + rounds + ")",
                    Result.STARGAZER, median(publish[c.ordinal()]), "msg/s", limit);
            sink.add(SECTION, "consume a backlog of " + backlogText + ", " + c.label + " (median of " + rounds + ")",
                    Result.STARGAZER, median(consume[c.ordinal()]), "msg/s", limit);
        }
        StringBuilder note = new StringBuilder("Observability rows (a warm-up round not counted, then " + rounds + " rounds, each "
                + "publishing then consuming with off, metrics only, metrics and tracing in turn): ");
        for (Contender c : all) {
            note.append(String.format(Locale.ROOT, "%s: publish %s, consume %s; ", c.label, spread(publish[c.ordinal()]),
                    spread(consume[c.ordinal()])));
        }
        note.append("cost against off (medians): ");
        for (Contender c : List.of(Contender.METRICS, Contender.TRACING)) {
            note.append(String.format(Locale.ROOT, "%s publish %+.1f %%, consume %+.1f %%; ", c.label,
                    change(publish[c.ordinal()], publish[0]), change(consume[c.ordinal()], consume[0])));
        }
        note.append("load average (1, 5, 15 min) at the start of each round: ").append(loads).append('.');
        notes.accept(note.toString());
    }

    private static double publish(Ctx ctx, Contender c, Tracing tracing) throws Exception {
        String stream = ctx.key("obs-pub");
        try (EventBus bus = instrumented(ctx, "obs-pub", c, tracing)) {
            return Throughput.async(WINDOW, ctx.warm, ctx.measure, i -> bus.publishAsync(stream, Envelopes.envelope(i)));
        } finally {
            ctx.reset(stream);
        }
    }

    private static double consume(Ctx ctx, Contender c, Tracing tracing, long n) throws Exception {
        String stream = ctx.key("obs-consume");
        String group = "bench-group";
        try (EventBus publisher = instrumented(ctx, "obs-fill", Contender.TRACING, tracing);
             EventBus bus = instrumented(ctx, "obs-consume", c, tracing)) {
            ctx.createGroup(stream, group);
            StargazerRows.publishCount(publisher, stream, n, 10_000);
            return StargazerRows.consume(ctx, bus, stream, group, n, 0);
        } finally {
            ctx.reset(stream);
        }
    }

    private static EventBus instrumented(Ctx ctx, String who, Contender c, Tracing tracing) {
        EventBus bus = ctx.bus(who);
        if (c != Contender.OFF) new BusMetrics(bus).bindTo(new SimpleMeterRegistry());
        if (c == Contender.TRACING) BusObservations.install(bus, tracing.registry);
        return bus;
    }

    private static double median(double[] v) {
        double[] s = v.clone();
        Arrays.sort(s);
        return s.length % 2 == 1 ? s[s.length / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
    }

    private static String spread(double[] v) {
        return Report.num(median(v), "msg/s") + " (min " + Report.num(Arrays.stream(v).min().orElse(0), "msg/s") + ", max "
                + Report.num(Arrays.stream(v).max().orElse(0), "msg/s") + ")";
    }

    private static double change(double[] contender, double[] off) {
        return 100 * (median(contender) / median(off) - 1);
    }

    /** One OpenTelemetry SDK for the run, bridged to an ObservationRegistry as an application (or the node) does. */
    private static final class Tracing implements AutoCloseable {
        final OpenTelemetrySdk sdk;
        final ObservationRegistry registry = ObservationRegistry.create();

        Tracing() {
            SdkTracerProvider provider = SdkTracerProvider.builder()
                    .addSpanProcessor(BatchSpanProcessor.builder(SpanExporter.composite()).build()).build();
            sdk = OpenTelemetrySdk.builder().setTracerProvider(provider)
                    .setPropagators(ContextPropagators.create(W3CTraceContextPropagator.getInstance())).build();
            io.opentelemetry.api.trace.Tracer otel = sdk.getTracer("stargazer-bench");
            OtelCurrentTraceContext context = new OtelCurrentTraceContext();
            OtelTracer tracer = new OtelTracer(otel, context, event -> { }, new OtelBaggageManager(context, List.of(), List.of()));
            OtelPropagator propagator = new OtelPropagator(sdk.getPropagators(), otel);
            registry.observationConfig().observationHandler(new ObservationHandler.FirstMatchingCompositeObservationHandler(
                    new PropagatingSenderTracingObservationHandler<>(tracer, propagator),
                    new PropagatingReceiverTracingObservationHandler<>(tracer, propagator),
                    new DefaultTracingObservationHandler(tracer)));
        }

        @Override
        public void close() {
            sdk.close();
        }
    }
}
