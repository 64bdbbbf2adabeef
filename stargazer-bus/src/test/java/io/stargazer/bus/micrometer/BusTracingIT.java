package io.stargazer.bus.micrometer;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.micrometer.observation.Observation;
import io.micrometer.observation.ObservationRegistry;
import io.opentelemetry.api.common.AttributeKey;
import io.opentelemetry.api.trace.SpanKind;
import io.opentelemetry.api.trace.propagation.W3CTraceContextPropagator;
import io.opentelemetry.sdk.testing.exporter.InMemorySpanExporter;
import io.opentelemetry.sdk.trace.data.SpanData;
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
import org.junit.jupiter.api.Timeout;

// One message followed gateway -> worker -> tools -> worker -> gateway as one trace, through a real OpenTelemetry SDK
// bridged to the Observation API (W3C propagation), with the spans in memory.
class BusTracingIT {
    private static final Duration WAIT = Duration.ofSeconds(20);
    /** A trace id as a publisher that does not trace writes it (W3C Trace Context's example). */
    private static final String TRACE = "4bf92f3577b34da6a3ce929d0e0e4736";
    private static final AttributeKey<String> DESTINATION = AttributeKey.stringKey("messaging.destination.name");
    private static final AttributeKey<String> GROUP = AttributeKey.stringKey("messaging.consumer.group.name");
    private static final AttributeKey<String> SYSTEM = AttributeKey.stringKey("messaging.system");

    @Test
    @Timeout(120)
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
    @Timeout(120)
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
    @Timeout(120)
    void withoutAnObservationRegistryNothingIsWrittenButPayloadAndTraceId() {
        try (EventBus bus = TestRedis.bus(NodeRole.GATEWAY)) {
            BusObservations.install(bus, ObservationRegistry.NOOP);
            String stream = bus.topology().inboundStream();
            String id = bus.publish(stream, Envelope.of("channel_id", "c"));
            assertThat(fields(stream, id).keySet()).containsExactlyInAnyOrder("payload", "trace_id");
        }
    }

    /**
     * An entry from a publisher that does not trace (a Python gateway: trace_id, no traceparent). wire-format.md: "When
     * the envelope's trace_id is 32 lowercase hex characters and a trace is active, it equals the trace id": the
     * delivery continues that trace (from a parent made up for it, not marked sampled), so the answer the handler
     * publishes with the copied trace_id carries a traceparent of the same trace. Before, the delivery started a trace
     * of its own. Recorded because the sampler applies its ratio (1) to remote parents not sampled (tracedRegistry).
     */
    @Test
    @Timeout(60)
    void anEntryWithAHexTraceIdAndNoTraceparentIsContinuedInThatTrace() {
        InMemorySpanExporter spans = InMemorySpanExporter.create();
        ObservationRegistry registry = tracedRegistry(spans);
        try (EventBus bus = TestRedis.bus(NodeRole.STANDALONE)) {
            BusObservations.install(bus, registry);
            String in = bus.topology().inboundStream();
            String out = bus.topology().outboundStream("webchat");
            ConcurrentLinkedQueue<String> answered = new ConcurrentLinkedQueue<>();
            try (Subscription s = bus.subscribe(bus.consumer(in, "g").build(), d -> {
                answered.add(bus.publish(out, Envelope.of("channel_id", "c", "content", "answer", "trace_id", d.envelope().traceId())));
            })) {
                try (RawRedis raw = new RawRedis(TestRedis.url())) {
                    raw.xadd(in, "payload", io.stargazer.bus.wire.WireFormat.encode(Envelope.of("channel_id", "c", "content", "hi")),
                            "trace_id", TRACE);
                }
                await().atMost(WAIT).until(() -> answered.size() == 1);
            }
            await().atMost(WAIT).until(() -> spans.getFinishedSpanItems().size() >= 2);
            SpanData process = one(spans.getFinishedSpanItems(), "process " + in, SpanKind.CONSUMER);
            SpanData send = one(spans.getFinishedSpanItems(), "send " + out, SpanKind.PRODUCER);
            assertThat(process.getTraceId()).isEqualTo(TRACE);
            assertThat(process.getParentSpanContext().isRemote()).isTrue();
            assertThat(process.getParentSpanContext().isSampled()).as("the made-up parent is not marked sampled").isFalse();
            assertThat(process.getParentSpanId()).matches("[0-9a-f]{16}").isNotEqualTo("0000000000000000");
            assertThat(send.getParentSpanId()).isEqualTo(process.getSpanId());
            Map<String, String> f = fields(out, answered.peek());
            assertThat(f.get("trace_id")).isEqualTo(TRACE);
            assertThat(f.get("traceparent")).isEqualTo("00-" + TRACE + "-" + send.getSpanId() + "-01");
        }
    }

    /** A trace_id that is no W3C trace id (not 32 lowercase hex, or all zeros) is not continued: the delivery is a root. */
    @Test
    @Timeout(60)
    void aTraceIdThatIsNoW3cTraceIdStartsATraceOfItsOwn() {
        InMemorySpanExporter spans = InMemorySpanExporter.create();
        ObservationRegistry registry = tracedRegistry(spans);
        List<String> ids = List.of("req-42", TRACE.toUpperCase(java.util.Locale.ROOT), "0".repeat(32), TRACE.substring(1));
        try (EventBus bus = TestRedis.bus(NodeRole.STANDALONE)) {
            BusObservations.install(bus, registry);
            String in = bus.topology().inboundStream();
            ConcurrentLinkedQueue<String> handled = new ConcurrentLinkedQueue<>();
            try (Subscription s = bus.subscribe(bus.consumer(in, "g").build(), d -> handled.add(d.envelope().traceId()));
                 RawRedis raw = new RawRedis(TestRedis.url())) {
                for (String id : ids) {
                    raw.xadd(in, "payload", io.stargazer.bus.wire.WireFormat.encode(Envelope.of("channel_id", "c")), "trace_id", id);
                }
                await().atMost(WAIT).until(() -> handled.size() == ids.size());
            }
            await().atMost(WAIT).until(() -> spans.getFinishedSpanItems().size() >= ids.size());
            assertThat(spans.getFinishedSpanItems()).hasSize(ids.size()).allSatisfy(sd -> {
                assertThat(sd.getParentSpanContext().isValid()).as("a root").isFalse();
                assertThat(sd.getTraceId()).isNotIn(ids).isNotEqualTo(TRACE);
            });
        }
    }

    /**
     * A publish inside trace R of an envelope whose own trace_id is another 32-hex id T: the entry's trace_id must be T
     * (the envelope's own), and a traceparent beside it would have to name T too; the span that publishes is in R, so
     * the entry carries no traceparent (as from a publisher that does not trace) and the reader continues T. The send
     * span stays in R and names T ({@code messaging.message.conversation_id}). An envelope whose trace_id is R, or is
     * no W3C trace id, is traced as before.
     */
    @Test
    @Timeout(60)
    void aPublishWhoseEnvelopeNamesAnotherTraceWritesNoTraceparentAndIsContinuedInTheEnvelopesTrace() {
        InMemorySpanExporter spans = InMemorySpanExporter.create();
        ObservationRegistry registry = tracedRegistry(spans);
        try (EventBus bus = TestRedis.bus(NodeRole.STANDALONE)) {
            BusObservations.install(bus, registry);
            String stream = bus.topology().inboundStream();
            ConcurrentLinkedQueue<String> handled = new ConcurrentLinkedQueue<>();
            try (Subscription s = bus.subscribe(bus.consumer(stream, "g").build(), d -> handled.add(d.id()))) {
                Observation request = Observation.start("request", registry);
                String other;
                String same;
                String custom;
                String upper;
                try (Observation.Scope scope = request.openScope()) {
                    other = bus.publish(stream, Envelope.of("channel_id", "c", "trace_id", TRACE));
                    String r = fields(stream, bus.publish(stream, Envelope.of("channel_id", "c"))).get("trace_id");
                    same = bus.publish(stream, Envelope.of("channel_id", "c", "trace_id", r));
                    custom = bus.publish(stream, Envelope.of("channel_id", "c", "trace_id", "req-42"));
                    upper = bus.publish(stream, Envelope.of("channel_id", "c", "trace_id", TRACE.toUpperCase(java.util.Locale.ROOT)));
                } finally {
                    request.stop();
                }
                await().atMost(WAIT).until(() -> handled.size() == 5);
                String traceR = one(spans.getFinishedSpanItems(), "request", SpanKind.INTERNAL).getTraceId();
                Map<String, String> f = fields(stream, other);
                assertThat(f.get("trace_id")).isEqualTo(TRACE);
                assertThat(f).doesNotContainKeys("traceparent", "tracestate");
                assertThat(fields(stream, same).get("traceparent")).startsWith("00-" + traceR + "-");
                assertThat(fields(stream, custom).get("trace_id")).isEqualTo("req-42");
                assertThat(fields(stream, custom).get("traceparent")).startsWith("00-" + traceR + "-");
                assertThat(fields(stream, upper).get("traceparent")).startsWith("00-" + traceR + "-");

                await().atMost(WAIT).until(() -> spans.getFinishedSpanItems().size() >= 11);
                List<SpanData> all = spans.getFinishedSpanItems();
                SpanData sendOther = all.stream().filter(sd -> sd.getKind() == SpanKind.PRODUCER
                        && other.equals(sd.getAttributes().get(AttributeKey.stringKey("messaging.message.id")))).findFirst().orElseThrow();
                assertThat(sendOther.getTraceId()).isEqualTo(traceR);
                assertThat(sendOther.getAttributes().get(AttributeKey.stringKey("messaging.message.conversation_id"))).isEqualTo(TRACE);
                SpanData processOther = all.stream().filter(sd -> sd.getKind() == SpanKind.CONSUMER
                        && other.equals(sd.getAttributes().get(AttributeKey.stringKey("messaging.message.id")))).findFirst().orElseThrow();
                assertThat(processOther.getTraceId()).isEqualTo(TRACE);
                assertThat(all).filteredOn(sd -> sd.getTraceId().equals(traceR)).hasSize(1 + 5 + 4);
            }
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

    /**
     * Every span recorded, the deliveries of entries without traceparent too: their made-up parent is not marked
     * sampled, so the sampler applies its ratio (1) to such parents, as docs/observability.md says to configure it.
     */
    static ObservationRegistry tracedRegistry(InMemorySpanExporter exporter) {
        io.opentelemetry.sdk.trace.samplers.Sampler all = io.opentelemetry.sdk.trace.samplers.Sampler.traceIdRatioBased(1.0);
        return TracePropagationIT.traced(W3CTraceContextPropagator.getInstance(), List.of(),
                io.opentelemetry.sdk.trace.samplers.Sampler.parentBasedBuilder(all).setRemoteParentNotSampled(all).build(), exporter).registry();
    }
}
