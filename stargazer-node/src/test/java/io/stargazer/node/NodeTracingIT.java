// A node with OTEL_EXPORTER_OTLP_ENDPOINT set exports its spans over OTLP/HTTP (to a receiver the test runs), and its
// log lines, the handler's and the bus's, carry the current span's trace and span ids; without it, neither.
package io.stargazer.node;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import com.sun.net.httpserver.HttpServer;
import io.opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest;
import io.opentelemetry.proto.collector.trace.v1.ExportTraceServiceResponse;
import io.opentelemetry.proto.common.v1.KeyValue;
import io.opentelemetry.proto.trace.v1.ResourceSpans;
import io.opentelemetry.proto.trace.v1.Span;
import io.stargazer.bus.BusConfig;
import io.stargazer.bus.ConsumerConfig;
import io.stargazer.bus.Envelope;
import io.stargazer.bus.EventBus;
import io.stargazer.bus.NodeRole;
import io.stargazer.bus.StreamEntry;
import io.stargazer.bus.Topology;
import java.io.IOException;
import java.io.InputStream;
import java.net.InetSocketAddress;
import java.time.Duration;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import org.junit.jupiter.api.Test;

class NodeTracingIT {
    private static final Duration WAIT = Duration.ofSeconds(30);

    @Test
    void spansGoToTheOtlpEndpointAndLogLinesCarryTheirIds() throws Exception {
        Topology t = TestRedis.topology();
        try (OtlpReceiver otlp = new OtlpReceiver()) {
            Map<String, String> env = TestEnv.of(t);
            env.put("OTEL_EXPORTER_OTLP_ENDPOINT", otlp.url());
            env.put("OTEL_SERVICE_NAME", "traced-worker");
            env.put("OTEL_BSP_SCHEDULE_DELAY", "100");
            env.put(ConsumerConfig.ENV_RETRY_BACKOFF_MS, "50");
            try (NodeProcess worker = NodeProcess.start("traced-worker", env, "worker", "--handler", FailOnceHandler.class.getName());
                 EventBus gateway = TestRedis.bus(BusConfig.builder().topology(t).role(NodeRole.GATEWAY).nodeId("probe").build())) {
                worker.awaitRunning();
                assertThat(worker.log()).contains("Exporting traces over OTLP to " + otlp.url());
                gateway.publishInbound(Envelope.of("platform", "webchat", "channel_id", "c-1", "content", "hello"));

                String inbound = t.inboundStream();
                String outbound = t.outboundStream("webchat");
                // The first attempt fails, the second answers: two process spans, then the answer's send span.
                await().atMost(WAIT).until(() -> otlp.spans("process " + inbound).size() == 2 && otlp.spans("send " + outbound).size() == 1);
                List<Span> processes = otlp.spans("process " + inbound);
                Span send = otlp.spans("send " + outbound).get(0);
                assertThat(processes).allSatisfy(p -> assertThat(p.getKind()).isEqualTo(Span.SpanKind.SPAN_KIND_CONSUMER));
                assertThat(send.getKind()).isEqualTo(Span.SpanKind.SPAN_KIND_PRODUCER);
                Span answered = processes.stream().filter(p -> p.getSpanId().equals(send.getParentSpanId())).findFirst().orElseThrow();
                assertThat(send.getTraceId()).isEqualTo(answered.getTraceId());
                assertThat(otlp.serviceNames).containsOnly("traced-worker");

                StreamEntry answer = gateway.read(outbound, "0", 10).get(0);
                assertThat(answer.envelope().content()).isEqualTo("hello");

                // Each attempt's log lines end with its span's ids: the handler's, and the bus's retry warning.
                Span failedAttempt = processes.stream().filter(p -> p != answered).findFirst().orElseThrow();
                String failedIds = " trace_id=" + hex(failedAttempt.getTraceId().toByteArray()) + " span_id="
                        + hex(failedAttempt.getSpanId().toByteArray());
                String answeredIds = " trace_id=" + hex(answered.getTraceId().toByteArray()) + " span_id="
                        + hex(answered.getSpanId().toByteArray());
                await().atMost(WAIT).untilAsserted(() -> {
                    assertThat(worker.lines()).anyMatch(l -> l.contains("FailOnceHandler - Handling 'hello'") && l.endsWith(failedIds));
                    assertThat(worker.lines()).anyMatch(l -> l.contains("Handler failed on delivery 1") && l.endsWith(failedIds));
                    assertThat(worker.lines()).anyMatch(l -> l.contains("FailOnceHandler - Handling 'hello'") && l.endsWith(answeredIds));
                });
                // Outside any span a line has no ids.
                assertThat(worker.lines()).filteredOn(l -> l.contains("Worker started")).singleElement()
                        .satisfies(l -> assertThat(l).doesNotContain("trace_id="));
                worker.stop();
                assertThat(worker.log()).contains("Stopped");
            }
        }
    }

    @Test
    void aCollectorThatDoesNotAnswerIsLoggedInTheNodesOwnFormat() throws Exception {
        int closedPort;
        try (java.net.ServerSocket s = new java.net.ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress())) {
            closedPort = s.getLocalPort();
        }
        Topology t = TestRedis.topology();
        Map<String, String> env = TestEnv.of(t);
        env.put("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:" + closedPort);
        env.put("OTEL_BSP_SCHEDULE_DELAY", "100");
        try (NodeProcess worker = NodeProcess.start("unreachable-collector", env, "worker");
             EventBus gateway = TestRedis.bus(BusConfig.builder().topology(t).role(NodeRole.GATEWAY).nodeId("probe").build())) {
            worker.awaitRunning();
            gateway.publishInbound(Envelope.of("platform", "webchat", "channel_id", "c-1", "content", "hello"));
            // The SDK says it through java.util.logging; the node routes that to its own log lines.
            await().atMost(WAIT).untilAsserted(() -> assertThat(worker.lines())
                    .anyMatch(l -> l.matches("\\d\\d:\\d\\d:\\d\\d\\.\\d{3} (WARN|ERROR) \\w+ - Failed to export spans.*")));
            assertThat(worker.lines()).noneMatch(l -> l.startsWith("SEVERE:") || l.startsWith("WARNING:")); // java.util.logging's own format
            await().atMost(WAIT).until(() -> gateway.read(t.outboundStream("webchat"), "0", 10).size() == 1); // answered regardless
            worker.stop();
            assertThat(worker.log()).contains("Stopped");
        }
    }

    @Test
    void withoutTheEndpointNothingIsInstalledAndNoIdsAreLogged() throws Exception {
        Topology t = TestRedis.topology();
        Map<String, String> env = TestEnv.of(t);
        env.put(ConsumerConfig.ENV_RETRY_BACKOFF_MS, "50");
        try (NodeProcess worker = NodeProcess.start("untraced-worker", env, "worker", "--handler", FailOnceHandler.class.getName());
             EventBus gateway = TestRedis.bus(BusConfig.builder().topology(t).role(NodeRole.GATEWAY).nodeId("probe").build())) {
            worker.awaitRunning();
            gateway.publishInbound(Envelope.of("platform", "webchat", "channel_id", "c-1", "content", "hello"));
            await().atMost(WAIT).until(() -> !gateway.read(t.outboundStream("webchat"), "0", 10).isEmpty());
            assertThat(worker.log()).contains("FailOnceHandler - Handling 'hello'").contains("Handler failed on delivery 1")
                    .doesNotContain("trace_id=").doesNotContain("OTLP");
            worker.stop();
            assertThat(worker.log()).contains("Stopped");
        }
    }

    private static String hex(byte[] b) {
        return HexFormat.of().formatHex(b);
    }

    /** An OTLP/HTTP receiver: keeps the spans of every protobuf export POSTed to /v1/traces. */
    private static final class OtlpReceiver implements AutoCloseable {
        private final HttpServer server;
        private final List<Span> received = new CopyOnWriteArrayList<>();
        final List<String> serviceNames = new CopyOnWriteArrayList<>();

        OtlpReceiver() throws IOException {
            server = HttpServer.create(new InetSocketAddress("127.0.0.1", 0), 0);
            server.createContext("/v1/traces", exchange -> {
                try (InputStream in = exchange.getRequestBody()) {
                    ExportTraceServiceRequest request = ExportTraceServiceRequest.parseFrom(in.readAllBytes());
                    for (ResourceSpans rs : request.getResourceSpansList()) {
                        rs.getResource().getAttributesList().stream().filter(a -> a.getKey().equals("service.name"))
                                .map(KeyValue::getValue).forEach(v -> serviceNames.add(v.getStringValue()));
                        rs.getScopeSpansList().forEach(ss -> received.addAll(ss.getSpansList()));
                    }
                }
                byte[] body = ExportTraceServiceResponse.getDefaultInstance().toByteArray();
                exchange.getResponseHeaders().set("Content-Type", "application/x-protobuf");
                exchange.sendResponseHeaders(200, body.length == 0 ? -1 : body.length);
                exchange.getResponseBody().write(body);
                exchange.close();
            });
            server.start();
        }

        String url() {
            return "http://127.0.0.1:" + server.getAddress().getPort();
        }

        List<Span> spans(String name) {
            return received.stream().filter(s -> s.getName().equals(name)).toList();
        }

        @Override
        public void close() {
            server.stop(0);
        }
    }
}
