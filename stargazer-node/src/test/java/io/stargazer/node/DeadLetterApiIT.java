// The dashboard's dead-letter and pause API: behind the dashboard's password, and refusing cross-site requests (a
// changing request needs the X-Stargazer-Action header and, when the browser sends one, this server's Origin).
package io.stargazer.node;

import static org.assertj.core.api.Assertions.assertThat;

import io.lettuce.core.RedisURI;
import io.stargazer.bus.Envelope;
import io.stargazer.bus.NodeRole;
import io.stargazer.bus.Topology;
import io.stargazer.bus.wire.WireFormat;
import io.stargazer.testing.RawRedis;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Base64;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

@Timeout(120)
class DeadLetterApiIT {
    private static final HttpClient HTTP = HttpClient.newHttpClient();
    private static final String PASSWORD = "s3cret-dash";

    private static HttpResponse<String> send(int port, String method, String path, String body, Map<String, String> headers) throws Exception {
        HttpRequest.Builder b = HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + path)).timeout(Duration.ofSeconds(10))
                .method(method, body == null ? HttpRequest.BodyPublishers.noBody() : HttpRequest.BodyPublishers.ofString(body));
        headers.forEach(b::header);
        return HTTP.send(b.build(), HttpResponse.BodyHandlers.ofString());
    }

    /** A gateway node of {@code t} with nothing but its dashboard, on a port of its own, behind {@link #PASSWORD}. */
    private static Node startGatewayWithDashboard(Topology t, String nodeId) {
        return Node.start(new Node.Settings(NodeRole.GATEWAY, new Node.Parts(false, false, false), TestRedis.url(), nodeId, null, -1,
                "127.0.0.1", 0, "echo", Duration.ofSeconds(10), TestEnv.of(t), new Node.Dashboard("127.0.0.1", 0, PASSWORD)));
    }

    private static String auth(String password) {
        return "Basic " + Base64.getEncoder().encodeToString(("ops:" + password).getBytes(StandardCharsets.UTF_8));
    }

    @Test
    void listShowReplayPurgeAndPauseNeedThePasswordAndRefuseCrossSiteRequests() throws Exception {
        Topology t = TestRedis.topology();
        String dead = t.deadLetterStream(t.inboundStream());
        try (Node node = startGatewayWithDashboard(t, "node-dead-api"); RawRedis raw = new RawRedis(RedisURI.create(TestRedis.url().toString()))) {
            int port = node.dashboardPort();
            String a = raw.xadd(dead, "payload", WireFormat.encode(Envelope.of("channel_id", "c-1", "content", "one")), "trace_id", "t1",
                    "error", "provider down", "source_stream", t.inboundStream(), "source_id", "1-1", "group", "g", "deliveries", "5", "dead_at_ms", "1");
            String b = raw.xadd(dead, "payload", WireFormat.encode(Envelope.of("channel_id", "c-2", "content", "two")), "trace_id", "t2",
                    "error", "bad input", "source_stream", t.inboundStream(), "source_id", "1-2", "group", "g", "deliveries", "1", "dead_at_ms", "1");
            Map<String, String> ok = Map.of("Authorization", auth(PASSWORD));

            assertThat(send(port, "GET", "/api/dead", null, Map.of()).statusCode()).isEqualTo(401);
            assertThat(send(port, "GET", "/dashboard/dead", null, Map.of()).statusCode()).isEqualTo(401);
            assertThat(send(port, "GET", "/dashboard/dead", null, ok).body()).contains("Dead letters");
            HttpResponse<String> list = send(port, "GET", "/api/dead?error=PROVIDER", null, ok);
            assertThat(list.statusCode()).isEqualTo(200);
            @SuppressWarnings("unchecked")
            Map<String, Object> page = (Map<String, Object>) Json.parse(list.body());
            assertThat((List<Object>) page.get("entries")).hasSize(1);
            assertThat((List<Object>) page.get("streams")).contains(dead);
            assertThat((List<Object>) page.get("not_streams")).isEmpty();
            // A stray key at another dead-letter stream's name: skipped, and said (the reply said nothing of it before).
            String stray = t.deadLetterStream(t.toolsStream());
            raw.sync().set(RawRedis.b(stray), RawRedis.b("not a stream"));
            @SuppressWarnings("unchecked")
            Map<String, Object> withStray = (Map<String, Object>) Json.parse(send(port, "GET", "/api/dead", null, ok).body());
            assertThat((List<Object>) withStray.get("entries")).hasSize(2);
            assertThat((List<Object>) withStray.get("not_streams")).containsExactly(stray);
            raw.sync().del(RawRedis.b(stray));
            assertThat(send(port, "GET", "/api/dead/entry?id=" + b, null, ok).body()).contains("\"content\":\"two\"");
            assertThat(send(port, "GET", "/api/dead?stream=not-a-dead-stream", null, ok).statusCode()).isEqualTo(400);
            // An id past two unsigned 64-bit numbers is the caller's mistake (400), not a server error (Redis's ERR, 500).
            for (String tooLarge : List.of("/api/dead/entry?id=99999999999999999999-0", "/api/dead?after=1-18446744073709551616@" + dead)) {
                HttpResponse<String> r = send(port, "GET", tooLarge, null, ok);
                assertThat(r.statusCode()).as(tooLarge + ": " + r.body()).isEqualTo(400);
            }

            String replayOne = "{\"ids\":[\"" + a + "\"]}";
            // Cross-site: no action header (a form post or a simple fetch from another page), or another site's Origin.
            assertThat(send(port, "POST", "/api/dead/replay", replayOne, Map.of("Authorization", auth(PASSWORD), "Content-Type", "application/json"))
                    .statusCode()).isEqualTo(403);
            assertThat(send(port, "POST", "/api/dead/replay", replayOne, Map.of("Authorization", auth(PASSWORD), "X-Stargazer-Action", "1",
                    "Origin", "https://evil.example")).statusCode()).isEqualTo(403);
            assertThat(send(port, "POST", "/api/dead/replay", replayOne, Map.of("X-Stargazer-Action", "1")).statusCode()).isEqualTo(401);
            assertThat(raw.xlen(t.inboundStream())).isZero();
            assertThat(raw.xlen(dead)).isEqualTo(2);

            Map<String, String> action = Map.of("Authorization", auth(PASSWORD), "X-Stargazer-Action", "1", "Origin", "http://127.0.0.1:" + port);
            HttpResponse<String> replayed = send(port, "POST", "/api/dead/replay", replayOne, action);
            assertThat(replayed.statusCode()).as(replayed.body()).isEqualTo(200);
            assertThat(replayed.body()).contains("\"replayed\":1");
            assertThat(raw.xlen(t.inboundStream())).isEqualTo(1);
            assertThat(send(port, "POST", "/api/dead/purge", "{\"all\":true,\"error\":\"bad\"}", action).body()).contains("\"purged\":1");
            assertThat(raw.xlen(dead)).isZero();
            assertThat(send(port, "POST", "/api/dead/purge", "{}", action).statusCode()).isEqualTo(400);

            String group = "{\"stream\":\"" + t.inboundStream() + "\",\"group\":\"" + t.workerGroup() + "\"}";
            assertThat(send(port, "POST", "/api/pause", group, Map.of("Authorization", auth(PASSWORD))).statusCode()).isEqualTo(403);
            // Only a group that exists can be paused (this gateway node made none on the inbound stream).
            assertThat(send(port, "POST", "/api/pause", group, action).statusCode()).isEqualTo(400);
            node.bus().ensureGroup(t.inboundStream(), t.workerGroup());
            assertThat(send(port, "POST", "/api/pause", group, action).statusCode()).isEqualTo(200);
            assertThat(raw.sync().exists(RawRedis.utf8("{" + t.inboundStream() + "}:paused:" + t.workerGroup()))).isEqualTo(1);
            assertThat(send(port, "POST", "/api/resume", group, action).statusCode()).isEqualTo(200);
            assertThat(raw.sync().exists(RawRedis.utf8("{" + t.inboundStream() + "}:paused:" + t.workerGroup()))).isZero();
        }
    }

    /**
     * An id two dead-letter streams hold (stored in the same millisecond) is refused alone (400, naming each as
     * id@stream, nothing done), so a page's row acts on that row's dead letter only; with its stream it is one.
     */
    @Test
    void anIdTwoStreamsHoldIsRefusedAloneAndTakenWithItsStream() throws Exception {
        Topology t = TestRedis.topology();
        String inbound = t.inboundStream();
        String tools = t.toolsStream();
        String dead = t.deadLetterStream(inbound);
        String toolsDead = t.deadLetterStream(tools);
        try (Node node = startGatewayWithDashboard(t, "node-dead-api-same-id"); RawRedis raw = new RawRedis(RedisURI.create(TestRedis.url().toString()))) {
            int port = node.dashboardPort();
            String id = System.currentTimeMillis() + "-0";
            for (String[] at : List.of(new String[] {dead, inbound}, new String[] {toolsDead, tools})) {
                raw.xaddWithId(at[0], id, "payload", WireFormat.encode(Envelope.of("channel_id", "c-1", "content", "from " + at[1])),
                        "error", "boom", "source_stream", at[1], "source_id", "1-1", "group", "g", "deliveries", "5");
            }
            Map<String, String> ok = Map.of("Authorization", auth(PASSWORD));
            Map<String, String> action = Map.of("Authorization", auth(PASSWORD), "X-Stargazer-Action", "1", "Origin", "http://127.0.0.1:" + port);

            HttpResponse<String> entry = send(port, "GET", "/api/dead/entry?id=" + id, null, ok);
            assertThat(entry.statusCode()).as(entry.body()).isEqualTo(400);
            assertThat(entry.body()).contains("\"error\":\"id: '" + id + "' is in 2 dead-letter streams", id + "@" + dead, id + "@" + toolsDead);
            for (String kind : List.of("replay", "purge")) {
                HttpResponse<String> r = send(port, "POST", "/api/dead/" + kind, "{\"ids\":[\"" + id + "\"]}", action);
                assertThat(r.statusCode()).as(kind + ": " + r.body()).isEqualTo(400);
                assertThat(r.body()).contains(id + "@" + dead, id + "@" + toolsDead);
            }
            // Ids that name nothing do nothing (a selection without ids would be every dead letter); a ref to a stream
            // not searched is refused.
            assertThat(send(port, "POST", "/api/dead/replay", "{\"ids\":[\"1-1\"]}", action).body()).contains("\"replayed\":0");
            assertThat(send(port, "POST", "/api/dead/purge", "{\"ids\":[\"1-1\"]}", action).body()).contains("\"purged\":0");
            HttpResponse<String> elsewhere = send(port, "POST", "/api/dead/purge", "{\"ids\":[\"" + id + "@" + toolsDead + "\"],\"stream\":\"" + dead + "\"}", action);
            assertThat(elsewhere.statusCode()).as(elsewhere.body()).isEqualTo(400);
            assertThat(elsewhere.body()).contains("not one of the dead-letter streams searched");
            assertThat(raw.xlen(inbound)).isZero();
            assertThat(raw.xlen(dead)).isEqualTo(1);
            assertThat(raw.xlen(toolsDead)).isEqualTo(1);

            assertThat(send(port, "GET", "/api/dead/entry?id=" + id + "@" + toolsDead, null, ok).body()).contains("from " + tools);
            HttpResponse<String> replayed = send(port, "POST", "/api/dead/replay", "{\"ids\":[\"" + id + "@" + dead + "\"]}", action);
            assertThat(replayed.statusCode()).as(replayed.body()).isEqualTo(200);
            assertThat(replayed.body()).contains("\"replayed\":1");
            assertThat(raw.xlen(inbound)).isEqualTo(1);
            assertThat(raw.xlen(toolsDead)).as("the tools dead letter of the same id, left").isEqualTo(1);
            // Alone again, the id now names one dead letter.
            assertThat(send(port, "POST", "/api/dead/purge", "{\"ids\":[\"" + id + "\"]}", action).body()).contains("\"purged\":1");
            assertThat(raw.xlen(toolsDead)).isZero();
        }
    }
}
