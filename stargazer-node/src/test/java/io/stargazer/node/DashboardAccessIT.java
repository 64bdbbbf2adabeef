package io.stargazer.node;

import static org.assertj.core.api.Assertions.assertThat;

import io.stargazer.bus.NodeRole;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Base64;
import java.util.Map;
import org.junit.jupiter.api.Test;

// The dashboard, its API and the metrics can live on an address of their own, behind a password, while the chat
// stays public; the password never shows in what the node serves.
class DashboardAccessIT {
    private static final HttpClient HTTP = HttpClient.newHttpClient();

    private static HttpResponse<String> get(int port, String path, String password) throws Exception {
        HttpRequest.Builder b = HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + path)).timeout(Duration.ofSeconds(10));
        if (password != null) {
            b.header("Authorization", "Basic " + Base64.getEncoder().encodeToString(("ops:" + password).getBytes(StandardCharsets.UTF_8)));
        }
        return HTTP.send(b.build(), HttpResponse.BodyHandlers.ofString());
    }

    @Test
    void aSeparateProtectedDashboardServesOnlyWithItsPassword() throws Exception {
        Node.Settings settings = new Node.Settings(NodeRole.STANDALONE, new Node.Parts(true, true, true), TestRedis.url(),
                "node-dash", null, 0, "127.0.0.1", 0, "echo", Duration.ofSeconds(10), Map.of(),
                new Node.Dashboard("127.0.0.1", 0, "s3cret-dash"));
        Node node = Node.start(settings);
        try {
            int chat = node.httpPort();
            int dash = node.dashboardPort();
            assertThat(dash).isPositive().isNotEqualTo(chat);

            assertThat(get(chat, "/", null).statusCode()).isEqualTo(200);
            assertThat(get(chat, "/dashboard", null).statusCode()).isEqualTo(404);
            assertThat(get(chat, "/api/streams", null).statusCode()).isEqualTo(404);
            assertThat(get(chat, "/metrics", null).statusCode()).isEqualTo(404);

            for (String path : new String[] {"/dashboard", "/api/streams", "/metrics"}) {
                HttpResponse<String> open = get(dash, path, null);
                assertThat(open.statusCode()).as(path).isEqualTo(401);
                assertThat(open.headers().firstValue("WWW-Authenticate")).hasValueSatisfying(v -> assertThat(v).startsWith("Basic"));
                assertThat(get(dash, path, "wrong").statusCode()).as(path).isEqualTo(401);
                HttpResponse<String> ok = get(dash, path, "s3cret-dash");
                assertThat(ok.statusCode()).as(path).isEqualTo(200);
                assertThat(ok.body()).doesNotContain("s3cret-dash");
            }
            assertThat(get(dash, "/api/streams", "s3cret-dash").body()).contains("node-dash");
            assertThat(get(dash, "/health", null).statusCode()).isEqualTo(200);
            assertThat(get(chat, "/health", null).body()).doesNotContain("s3cret-dash");
        } finally {
            node.close();
        }
    }
}
