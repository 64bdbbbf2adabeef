package io.stargazer.bus.micrometer;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.micrometer.observation.Observation;
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
import io.opentelemetry.context.propagation.TextMapPropagator;
import io.opentelemetry.extension.trace.propagation.B3Propagator;
import io.opentelemetry.sdk.OpenTelemetrySdk;
import io.opentelemetry.sdk.testing.exporter.InMemorySpanExporter;
import io.opentelemetry.sdk.trace.SdkTracerProvider;
import io.opentelemetry.sdk.trace.data.SpanData;
import io.opentelemetry.sdk.trace.export.SimpleSpanProcessor;
import io.opentelemetry.sdk.trace.samplers.Sampler;
import io.stargazer.bus.Envelope;
import io.stargazer.bus.EventBus;
import io.stargazer.bus.NodeRole;
import io.stargazer.bus.Subscription;
import io.stargazer.bus.testing.TestRedis;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.ConcurrentLinkedQueue;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.api.Timeout;

/**
 * The wire fields are W3C whatever propagation the application's tracer uses (Spring Boot's
 * {@code management.tracing.propagation.type}): a handler continues the publisher's trace under each, its span the
 * child of the publish's span, and the entry's {@code traceparent} names that span.
 */
@Timeout(120)
class TracePropagationIT {
    private static final Duration WAIT = Duration.ofSeconds(20);

    enum Propagation {
        W3C(W3CTraceContextPropagator.getInstance()),
        B3_SINGLE(B3Propagator.injectingSingleHeader()),
        B3_MULTI(B3Propagator.injectingMultiHeaders());

        final TextMapPropagator propagator;

        Propagation(TextMapPropagator propagator) {
            this.propagator = propagator;
        }
    }

    record Traced(ObservationRegistry registry, OtelTracer tracer, InMemorySpanExporter spans) {
    }

    /** A registry built as Spring Boot builds it with Micrometer Tracing and the OpenTelemetry bridge. */
    static Traced traced(TextMapPropagator propagator, List<String> remoteBaggage, Sampler sampler) {
        return traced(propagator, remoteBaggage, sampler, InMemorySpanExporter.create());
    }

    static Traced traced(TextMapPropagator propagator, List<String> remoteBaggage, Sampler sampler, InMemorySpanExporter spans) {
        SdkTracerProvider provider = SdkTracerProvider.builder().setSampler(sampler).addSpanProcessor(SimpleSpanProcessor.create(spans)).build();
        OpenTelemetrySdk sdk = OpenTelemetrySdk.builder().setTracerProvider(provider).setPropagators(ContextPropagators.create(propagator)).build();
        io.opentelemetry.api.trace.Tracer otel = sdk.getTracer("test");
        OtelCurrentTraceContext context = new OtelCurrentTraceContext();
        OtelTracer tracer = new OtelTracer(otel, context, event -> { }, new OtelBaggageManager(context, remoteBaggage, List.of()));
        OtelPropagator p = new OtelPropagator(sdk.getPropagators(), otel);
        ObservationRegistry registry = ObservationRegistry.create();
        registry.observationConfig().observationHandler(new ObservationHandler.FirstMatchingCompositeObservationHandler(
                new PropagatingSenderTracingObservationHandler<>(tracer, p),
                new PropagatingReceiverTracingObservationHandler<>(tracer, p),
                new DefaultTracingObservationHandler(tracer)));
        return new Traced(registry, tracer, spans);
    }

    @ParameterizedTest
    @EnumSource(Propagation.class)
    void theHandlerContinuesThePublishersTraceWhateverTheApplicationsPropagation(Propagation propagation) {
        Traced t = traced(propagation.propagator, List.of(), Sampler.parentBased(Sampler.alwaysOn()));
        ConcurrentLinkedQueue<String> handlerTrace = new ConcurrentLinkedQueue<>();
        ConcurrentLinkedQueue<String> traceparents = new ConcurrentLinkedQueue<>();
        try (EventBus bus = TestRedis.bus(NodeRole.WORKER)) {
            BusObservations.install(bus, t.registry());
            bus.ensureStreams();
            try (Subscription s = bus.subscribeInbound(d -> {
                handlerTrace.add(t.tracer().currentSpan().context().traceId());
                traceparents.add(String.valueOf(d.traceparent()));
            })) {
                Observation request = Observation.start("http.request", t.registry());
                String publisherTrace;
                try (Observation.Scope scope = request.openScope()) {
                    publisherTrace = t.tracer().currentSpan().context().traceId();
                    bus.publishInbound(Envelope.of("platform", "webchat", "channel_id", "c-1", "content", "hi"));
                }
                request.stop();
                await().atMost(WAIT).until(() -> !handlerTrace.isEmpty());
                assertThat(handlerTrace).as("the handler's span is in the publisher's trace").containsExactly(publisherTrace);
                await().atMost(WAIT).until(() -> t.spans().getFinishedSpanItems().stream().anyMatch(x -> x.getName().startsWith("process ")));
            }
        }
        SpanData send = t.spans().getFinishedSpanItems().stream().filter(x -> x.getName().startsWith("send ")).findFirst().orElseThrow();
        SpanData process = t.spans().getFinishedSpanItems().stream().filter(x -> x.getName().startsWith("process ")).findFirst().orElseThrow();
        assertThat(traceparents).as("the entry's traceparent is W3C and names the send span")
                .containsExactly("00-" + send.getTraceId() + "-" + send.getSpanId() + "-01");
        assertThat(process.getParentSpanId()).as("the process span is the send span's child").isEqualTo(send.getSpanId());
        assertThat(process.getTraceId()).isEqualTo(send.getTraceId());
    }

    /**
     * A publisher that does not trace (the Python services) writes a 32-hex trace_id and no traceparent. Its deliveries
     * are the consumer's sampler's to decide: with Spring Boot's parent-based ratio sampler at probability 0 no span is
     * recorded. Before, the bus made up a parent marked sampled, so every such delivery was recorded.
     */
    @ParameterizedTest
    @EnumSource(Propagation.class)
    void deliveriesFromAnUntracedPublisherAreSampledAsTheConsumersSamplerDecides(Propagation propagation) {
        Traced t = traced(propagation.propagator, List.of(), Sampler.parentBased(Sampler.traceIdRatioBased(0.0)));
        ConcurrentLinkedQueue<String> handled = new ConcurrentLinkedQueue<>();
        io.stargazer.bus.Topology topology = TestRedis.topology();
        try (EventBus gateway = TestRedis.bus(TestRedis.config(NodeRole.GATEWAY).topology(topology).build());
             EventBus worker = TestRedis.bus(TestRedis.config(NodeRole.WORKER).topology(topology).build())) {
            BusObservations.install(worker, t.registry());
            worker.ensureStreams();
            try (Subscription s = worker.subscribeInbound(d -> handled.add(d.id()))) {
                for (int i = 0; i < 20; i++) gateway.publishInbound(Envelope.of("platform", "webchat", "channel_id", "c-" + i, "content", "hi"));
                await().atMost(WAIT).until(() -> handled.size() == 20);
            }
        }
        assertThat(t.spans().getFinishedSpanItems()).as("spans recorded with sampling probability 0").isEmpty();
    }
}
