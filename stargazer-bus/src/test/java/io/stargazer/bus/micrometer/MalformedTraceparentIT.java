// Promise (wire format, tracing): a traceparent that is no valid W3C one is ignored and the entry's trace_id continued.
package io.stargazer.bus.micrometer;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.micrometer.observation.ObservationRegistry;
import io.opentelemetry.api.common.AttributeKey;
import io.opentelemetry.sdk.testing.exporter.InMemorySpanExporter;
import io.opentelemetry.sdk.trace.data.SpanData;
import io.stargazer.bus.Envelope;
import io.stargazer.bus.EventBus;
import io.stargazer.bus.NodeRole;
import io.stargazer.bus.Subscription;
import io.stargazer.bus.testing.RawRedis;
import io.stargazer.bus.testing.TestRedis;
import io.stargazer.bus.wire.WireFormat;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.api.Timeout;

/**
 * wire-format.md is a contract with services in other languages: a traceparent that is no valid W3C traceparent is
 * ignored, as if the entry had none. The delivery runs (never crashes the consumer) and, since the entry's trace_id is
 * a W3C trace id, continues that trace as an entry without traceparent does (docs/observability.md).
 */
@Timeout(120)
class MalformedTraceparentIT {
    private static final Duration WAIT = Duration.ofSeconds(20);
    private static final String TRACE = "4bf92f3577b34da6a3ce929d0e0e4736";
    private static final String SPAN = "00f067aa0ba902b7";

    @ParameterizedTest
    @EnumSource(TracePropagationIT.Propagation.class)
    void aMalformedTraceparentIsIgnoredAndTheTraceIdContinued(TracePropagationIT.Propagation propagation) {
        List<String> malformed = List.of(
                "garbage",
                "",
                "00-" + TRACE.toUpperCase(java.util.Locale.ROOT) + "-" + SPAN + "-01",
                "00-" + "0".repeat(32) + "-" + SPAN + "-01",
                "00-" + TRACE + "-" + "0".repeat(16) + "-01",
                "ff-" + TRACE + "-" + SPAN + "-01",
                "00-" + "z".repeat(32) + "-" + "z".repeat(16) + "-zz",
                "00-" + TRACE + "-" + SPAN + "-01-extra");
        InMemorySpanExporter spans = InMemorySpanExporter.create();
        io.opentelemetry.sdk.trace.samplers.Sampler all = io.opentelemetry.sdk.trace.samplers.Sampler.alwaysOn();
        ObservationRegistry registry = TracePropagationIT.traced(propagation.propagator, List.of(), all, spans).registry();
        try (EventBus bus = TestRedis.bus(NodeRole.STANDALONE)) {
            BusObservations.install(bus, registry);
            String in = bus.topology().inboundStream();
            Map<String, String> handled = new ConcurrentHashMap<>();
            try (Subscription s = bus.subscribe(bus.consumer(in, "g").build(), d -> handled.put(d.id(), String.valueOf(d.traceparent())));
                 RawRedis raw = new RawRedis(TestRedis.url())) {
                for (String tp : malformed) {
                    raw.xadd(in, "payload", WireFormat.encode(Envelope.of("channel_id", "c")), "trace_id", TRACE, "traceparent", tp);
                }
                await().atMost(WAIT).until(() -> handled.size() == malformed.size());
            }
            await().atMost(WAIT).until(() -> spans.getFinishedSpanItems().size() >= malformed.size());
            assertThat(spans.getFinishedSpanItems()).hasSize(malformed.size()).allSatisfy(sd ->
                    assertThat(sd.getTraceId()).as("process span of entry %s (traceparent '%s')",
                            sd.getAttributes().get(AttributeKey.stringKey("messaging.message.id")),
                            handled.get(sd.getAttributes().get(AttributeKey.stringKey("messaging.message.id")))).isEqualTo(TRACE));
        }
    }
}
