// The node's traces over OTLP: when OTEL_EXPORTER_OTLP_ENDPOINT is set, an OpenTelemetry SDK configured from the
// standard OTEL_* variables, bridged to the Micrometer Observation API that the bus reports its spans through, with
// each current span's ids in the SLF4J MDC for the log lines. Without the variable nothing of it is loaded.
package io.stargazer.node;

import io.micrometer.observation.ObservationHandler;
import io.micrometer.observation.ObservationRegistry;
import io.micrometer.tracing.handler.DefaultTracingObservationHandler;
import io.micrometer.tracing.handler.PropagatingReceiverTracingObservationHandler;
import io.micrometer.tracing.handler.PropagatingSenderTracingObservationHandler;
import io.micrometer.tracing.otel.bridge.EventPublishingContextWrapper;
import io.micrometer.tracing.otel.bridge.OtelBaggageManager;
import io.micrometer.tracing.otel.bridge.OtelCurrentTraceContext;
import io.micrometer.tracing.otel.bridge.OtelPropagator;
import io.micrometer.tracing.otel.bridge.OtelTracer;
import io.micrometer.tracing.otel.bridge.Slf4JEventListener;
import io.opentelemetry.context.ContextStorage;
import io.opentelemetry.sdk.OpenTelemetrySdk;
import io.opentelemetry.sdk.autoconfigure.AutoConfiguredOpenTelemetrySdk;
import io.opentelemetry.sdk.autoconfigure.spi.ConfigurationException;
import io.stargazer.bus.ConfigException;
import io.stargazer.bus.EventBus;
import io.stargazer.bus.NodeRole;
import io.stargazer.bus.micrometer.BusObservations;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import org.slf4j.bridge.SLF4JBridgeHandler;

/**
 * Made by {@link #fromEnvironment} only when {@value #ENDPOINT} is set; {@link #install} puts its
 * {@link ObservationRegistry} on the bus ({@link BusObservations}), {@link #close} flushes the spans not yet sent.
 *
 * <p>Every {@code OTEL_*} variable the OpenTelemetry SDK's autoconfiguration knows applies ({@code OTEL_SERVICE_NAME},
 * {@code OTEL_RESOURCE_ATTRIBUTES}, {@code OTEL_EXPORTER_OTLP_HEADERS}, {@code OTEL_TRACES_SAMPLER}, ...), read from
 * the node's environment. The node's defaults differ from the SDK's in three: the protocol is {@code http/protobuf}
 * (the OTLP specification's default; the SDK 1.x still defaults to {@code grpc}, which a collector serves on another
 * port), the service name is {@code stargazer-<role>}, and no metrics or logs are exported (the node's metrics are on
 * /metrics; its logs go to stderr).
 */
final class NodeTracing implements AutoCloseable {
    static final String ENDPOINT = "OTEL_EXPORTER_OTLP_ENDPOINT";
    /** The MDC keys of the current span's ids (the envelope's member is trace_id too). */
    static final String MDC_TRACE_ID = "trace_id";
    static final String MDC_SPAN_ID = "span_id";

    /** OpenTelemetry's context storage takes a wrapper once per JVM, before its first use; JUL is bridged once. */
    private static final AtomicBoolean ONCE = new AtomicBoolean();

    private final OpenTelemetrySdk sdk;
    private final ObservationRegistry registry;

    private NodeTracing(OpenTelemetrySdk sdk, ObservationRegistry registry) {
        this.sdk = sdk;
        this.registry = registry;
    }

    /** The tracing {@code env} asks for, or null when {@value #ENDPOINT} is not set (then nothing is installed). */
    static NodeTracing fromEnvironment(Map<String, String> env, NodeRole role) {
        String endpoint = env.get(ENDPOINT);
        if (endpoint == null || endpoint.isBlank()) {
            return null;
        }
        Slf4JEventListener mdc = new Slf4JEventListener(MDC_TRACE_ID, MDC_SPAN_ID);
        if (ONCE.compareAndSet(false, true)) {
            ContextStorage.addWrapper(new EventPublishingContextWrapper(mdc::onEvent));
            // The SDK's own warnings (a collector that does not answer) go through java.util.logging.
            if (!SLF4JBridgeHandler.isInstalled()) {
                SLF4JBridgeHandler.removeHandlersForRootLogger();
                SLF4JBridgeHandler.install();
            }
        }
        OpenTelemetrySdk sdk;
        try {
            sdk = AutoConfiguredOpenTelemetrySdk.builder()
                    .addPropertiesSupplier(() -> Map.of("otel.exporter.otlp.protocol", "http/protobuf",
                            "otel.service.name", "stargazer-" + role.wireName(),
                            "otel.metrics.exporter", "none", "otel.logs.exporter", "none"))
                    .addPropertiesCustomizer(config -> otelProperties(env))
                    // Entries from publishers that do not trace (the Python services) are continued under a parent not
                    // marked sampled; the node's default records them as it records everything else. An explicit
                    // OTEL_TRACES_SAMPLER is applied as given (docs/node.md).
                    .addSamplerCustomizer((sampler, config) -> config.getString("otel.traces.sampler") != null ? sampler
                            : io.opentelemetry.sdk.trace.samplers.Sampler.parentBasedBuilder(io.opentelemetry.sdk.trace.samplers.Sampler.alwaysOn())
                                    .setRemoteParentNotSampled(io.opentelemetry.sdk.trace.samplers.Sampler.alwaysOn()).build())
                    .disableShutdownHook() // the node's own shutdown closes it, after the bus's last spans ended
                    .build().getOpenTelemetrySdk();
        } catch (ConfigurationException e) {
            throw new ConfigException("OpenTelemetry (OTEL_* variables)", e.getMessage());
        }
        io.opentelemetry.api.trace.Tracer otel = sdk.getTracer("io.stargazer.node");
        OtelCurrentTraceContext context = new OtelCurrentTraceContext();
        OtelTracer tracer = new OtelTracer(otel, context, mdc::onEvent, new OtelBaggageManager(context, List.of(), List.of()));
        OtelPropagator propagator = new OtelPropagator(sdk.getPropagators(), otel);
        ObservationRegistry registry = ObservationRegistry.create();
        registry.observationConfig().observationHandler(new ObservationHandler.FirstMatchingCompositeObservationHandler(
                new PropagatingSenderTracingObservationHandler<>(tracer, propagator),
                new PropagatingReceiverTracingObservationHandler<>(tracer, propagator),
                new DefaultTracingObservationHandler(tracer)));
        return new NodeTracing(sdk, registry);
    }

    /**
     * The {@code OTEL_*} variables of {@code env} under the SDK's property names, as the SDK itself reads the process
     * environment: {@code env} is what the command line was given (a test's map, or the process's).
     */
    private static Map<String, String> otelProperties(Map<String, String> env) {
        Map<String, String> out = new HashMap<>();
        env.forEach((k, v) -> {
            if (k.startsWith("OTEL_") && v != null && !v.isBlank()) out.put(k.toLowerCase(Locale.ROOT).replace('_', '.'), v);
        });
        return out;
    }

    ObservationRegistry registry() {
        return registry;
    }

    void install(EventBus bus) {
        BusObservations.install(bus, registry);
    }

    /** Sends the spans still queued (waiting up to 10 s for the collector), then stops the exporter. */
    @Override
    public void close() {
        sdk.getSdkTracerProvider().shutdown().join(10, TimeUnit.SECONDS);
    }
}
