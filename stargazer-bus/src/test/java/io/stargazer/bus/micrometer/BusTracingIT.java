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
import io.opentelemetry.api.common.AttributeKey;
import io.opentelemetry.api.trace.SpanKind;
import io.opentelemetry.api.trace.propagation.W3CTraceContextPropagator;
import io.opentelemetry.context.propagation.ContextPropagators;
import io.opentelemetry.sdk.OpenTelemetrySdk;
import io.opentelemetry.sdk.testing.exporter.InMemorySpanExporter;
import io.opentelemetry.sdk.trace.SdkTracerProvider;
import io.opentelemetry.sdk.trace.data.SpanData;
import io.opentelemetry.sdk.trace.export.SimpleSpanProcessor;
import io.stargazer.bus.Envelope;
import io.stargazer.bus.EventBus;
import io.stargazer.bus.NodeRole;
import io.stargazer.bus.StreamEntry;
import io.stargazer.bus.Subscription;
import io.stargazer.bus.Topology;
import io.stargazer.bus.testing.RawRedis;
import io.stargazer.bus.testing.TestRedis;
import io.stargazer.bus.tools.TestTools;
import io.stargazer.bus.tools.ToolClient;
import io.stargazer.bus.tools.ToolRegistry;
import io.stargazer.bus.tools.ToolService;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;

// One message followed gateway -> worker -> tools -> worker -> gateway as one trace, through a real OpenTelemetry SDK
// bridged to the Observation API (W3C propagation), with the spans in memory.
class BusTracingIT {
    private static final Duration WAIT = Duration.ofSeconds(20);
    private static final AttributeKey<String> DESTINATION = AttributeKey.stringKey("messaging.destination.name");
    private static final AttributeKey<String> GROUP = AttributeKey.stringKey("messaging.consumer.group.name");
    private static final AttributeKey<String> SYSTEM = AttributeKey.stringKey("messaging.system");

    @Test
    void oneMessageIsOneTraceAcrossGatewayWorkerToolsAndBack() {
        InMemorySpanExporter spans = InMemorySpanExporter.create();
        ObservationRegistry registry = tracedRegistry(spans);
        Topology t = TestRedis.topology();
        ToolRegistry tools = TestTools.register(ToolRegistry.builder()).build();
        ConcurrentLinkedQueue<Envelope> answers = new ConcurrentLinkedQueue<>();
        try (EventBus gateway = TestRedis.bus(TestRedis.config(NodeRole.GATEWAY).topology(t).build());
             EventBus worker = TestRedis.bus(TestRedis.config(NodeRole.WORKER).topology(t).build());
             EventBus toolsBus = TestRedis.bus(TestRedis.config(NodeRole.TOOLS).topology(t).build())) {
            for (EventBus b : List.of(gateway, worker, toolsBus)) BusObservations.install(b, registry);
            worker.ensureStreams();
            gateway.ensureStreams();
            try (ToolService service = ToolService.start(toolsBus, tools);
                 ToolClient client = ToolClient.create(worker);
                 Subscription w = worker.subscribeInbound(d -> {
                     Object sum = client.callBlocking("add", Map.of("a", 2, "b", 3), WAIT);
                     worker.publishOutbound("webchat", Envelope.of("channel_id", d.envelope().channelId(), "content", "= " + sum,
                             "trace_id", d.envelope().traceId()));
                 });
                 Subscription g = gateway.subscribe(gateway.consumer(t.outboundStream("webchat"), t.gatewayGroup("webchat")).build(),
                         d -> answers.add(d.envelope()))) {
                Observation request = Observation.start("chat.request", registry);
                try (Observation.Scope scope = request.openScope()) {
                    gateway.publishInbound(Envelope.of("platform", "webchat", "channel_id", "c-1", "content", "2+3"));
                }
                await().atMost(WAIT).until(() -> answers.size() == 1);
                request.stop();
                String inbound = t.inboundStream();
                String outbound = t.outboundStream("webchat");
                String reply = t.toolsReplyStream(worker.config().nodeId());
                await().atMost(WAIT).until(() -> spans.getFinishedSpanItems().size() >= 9);
                List<SpanData> all = spans.getFinishedSpanItems();
                SpanData root = one(all, "chat.request", SpanKind.INTERNAL);
                String traceId = root.getTraceId();
                assertThat(all).as("every span in the one trace").allSatisfy(s -> assertThat(s.getTraceId()).isEqualTo(traceId));
                assertThat(all).hasSize(9);

                SpanData sendIn = one(all, "send " + inbound, SpanKind.PRODUCER);
                SpanData processIn = one(all, "process " + inbound, SpanKind.CONSUMER);
                SpanData sendTools = one(all, "send " + t.toolsStream(), SpanKind.PRODUCER);
                SpanData processTools = one(all, "process " + t.toolsStream(), SpanKind.CONSUMER);
                SpanData sendReply = one(all, "send " + reply, SpanKind.PRODUCER);
                SpanData processReply = one(all, "process " + reply, SpanKind.CONSUMER);
                SpanData sendOut = one(all, "send " + outbound, SpanKind.PRODUCER);
                SpanData processOut = one(all, "process " + outbound, SpanKind.CONSUMER);
                assertThat(sendIn.getParentSpanId()).isEqualTo(root.getSpanId());
                assertThat(processIn.getParentSpanId()).isEqualTo(sendIn.getSpanId());
                assertThat(sendTools.getParentSpanId()).isEqualTo(processIn.getSpanId());
                assertThat(processTools.getParentSpanId()).isEqualTo(sendTools.getSpanId());
                assertThat(sendReply.getParentSpanId()).isEqualTo(processTools.getSpanId());
                assertThat(processReply.getParentSpanId()).isEqualTo(sendReply.getSpanId());
                assertThat(sendOut.getParentSpanId()).isEqualTo(processIn.getSpanId());
                assertThat(processOut.getParentSpanId()).isEqualTo(sendOut.getSpanId());

                assertThat(sendIn.getAttributes().get(SYSTEM)).isEqualTo("redis_streams");
                assertThat(sendIn.getAttributes().get(DESTINATION)).isEqualTo(inbound);
                assertThat(processIn.getAttributes().get(DESTINATION)).isEqualTo(inbound);
                assertThat(processIn.getAttributes().get(GROUP)).isEqualTo(t.workerGroup());
                assertThat(processIn.getAttributes().get(AttributeKey.stringKey("messaging.operation.type"))).isEqualTo("process");
                assertThat(processOut.getAttributes().get(GROUP)).isEqualTo(t.gatewayGroup("webchat"));
                assertThat(processIn.getAttributes().get(AttributeKey.stringKey("messaging.message.id"))).isNotEmpty();

                // The entry carries traceparent beside payload and trace_id; the generated trace_id is the trace's id.
                StreamEntry entry = gateway.read(inbound, "0", 10).get(0);
                assertThat(entry.envelope().traceId()).isEqualTo(traceId);
                Map<String, String> fields = fields(inbound, entry.id());
                assertThat(fields).containsKeys("payload", "trace_id", "traceparent");
                assertThat(fields.get("traceparent")).isEqualTo("00-" + traceId + "-" + sendIn.getSpanId() + "-01");
                // An envelope's own trace_id is kept: the worker copied the inbound one onto its answer.
                assertThat(answers.peek().traceId()).isEqualTo(traceId);
            }
        }
    }

    @Test
    void coalescedAndDedupedPublishesCarryTheirTraceFieldsToo() {
        InMemorySpanExporter spans = InMemorySpanExporter.create();
        ObservationRegistry registry = tracedRegistry(spans);
        try (EventBus bus = TestRedis.bus(NodeRole.GATEWAY)) {
            BusObservations.install(bus, registry);
            String stream = bus.topology().inboundStream();
            List<java.util.concurrent.CompletableFuture<String>> ids = new java.util.ArrayList<>();
            Observation request = Observation.start("burst", registry);
            try (Observation.Scope scope = request.openScope()) {
                // Published back to back, most go out in batches (the traced script); every third has a dedupe key.
                for (int i = 0; i < 300; i++) {
                    Envelope e = Envelope.of("channel_id", "c", "n", i);
                    ids.add(i % 3 == 0 ? bus.publishAsync(stream, e, io.stargazer.bus.PublishOptions.dedupeKey("k" + i))
                            : bus.publishAsync(stream, e));
                }
                ids.add(bus.publishAsync(stream, Envelope.of("channel_id", "c", "n", 0), io.stargazer.bus.PublishOptions.dedupeKey("k0")));
            }
            request.stop();
            List<String> stored = ids.stream().map(java.util.concurrent.CompletableFuture::join).toList();
            assertThat(stored.get(300)).as("a dedupe key used again adds nothing").isEqualTo(stored.get(0));
            String traceId = spans.getFinishedSpanItems().stream().filter(s -> s.getName().equals("burst")).findFirst().orElseThrow().getTraceId();
            try (RawRedis raw = new RawRedis(TestRedis.url())) {
                var entries = raw.xrange(stream);
                assertThat(entries).hasSize(300);
                for (var m : entries) {
                    Map<String, String> f = new java.util.HashMap<>();
                    m.getBody().forEach((k, v) -> f.put(RawRedis.s(k), RawRedis.s(v)));
                    assertThat(f.get("traceparent")).as(m.getId()).startsWith("00-" + traceId + "-");
                    assertThat(f.get("trace_id")).isEqualTo(traceId);
                    assertThat(f).doesNotContainKey("tracestate");
                }
            }
        }
    }

    @Test
    void withoutAnObservationRegistryNothingIsWrittenButPayloadAndTraceId() {
        try (EventBus bus = TestRedis.bus(NodeRole.GATEWAY)) {
            BusObservations.install(bus, ObservationRegistry.NOOP);
            String stream = bus.topology().inboundStream();
            String id = bus.publish(stream, Envelope.of("channel_id", "c"));
            assertThat(fields(stream, id).keySet()).containsExactlyInAnyOrder("payload", "trace_id");
        }
    }

    /** The entry's fields as Redis holds them. */
    private static Map<String, String> fields(String stream, String id) {
        try (RawRedis raw = new RawRedis(TestRedis.url())) {
            Map<String, String> out = new java.util.LinkedHashMap<>();
            raw.xrange(stream).stream().filter(m -> m.getId().equals(id)).findFirst().orElseThrow()
                    .getBody().forEach((k, v) -> out.put(RawRedis.s(k), RawRedis.s(v)));
            return out;
        }
    }

    private static SpanData one(List<SpanData> all, String name, SpanKind kind) {
        List<SpanData> found = all.stream().filter(s -> s.getName().equals(name)).collect(Collectors.toList());
        assertThat(found).as("spans named '%s' among %s", name, all.stream().map(SpanData::getName).toList()).hasSize(1);
        assertThat(found.get(0).getKind()).as(name).isEqualTo(kind);
        return found.get(0);
    }

    static ObservationRegistry tracedRegistry(InMemorySpanExporter exporter) {
        SdkTracerProvider provider = SdkTracerProvider.builder().addSpanProcessor(SimpleSpanProcessor.create(exporter)).build();
        OpenTelemetrySdk sdk = OpenTelemetrySdk.builder().setTracerProvider(provider)
                .setPropagators(ContextPropagators.create(W3CTraceContextPropagator.getInstance())).build();
        io.opentelemetry.api.trace.Tracer otel = sdk.getTracer("stargazer-test");
        OtelCurrentTraceContext context = new OtelCurrentTraceContext();
        OtelTracer tracer = new OtelTracer(otel, context, event -> { }, new OtelBaggageManager(context, List.of(), List.of()));
        OtelPropagator propagator = new OtelPropagator(sdk.getPropagators(), otel);
        ObservationRegistry registry = ObservationRegistry.create();
        registry.observationConfig().observationHandler(new ObservationHandler.FirstMatchingCompositeObservationHandler(
                new PropagatingSenderTracingObservationHandler<>(tracer, propagator),
                new PropagatingReceiverTracingObservationHandler<>(tracer, propagator),
                new DefaultTracingObservationHandler(tracer)));
        return registry;
    }
}
