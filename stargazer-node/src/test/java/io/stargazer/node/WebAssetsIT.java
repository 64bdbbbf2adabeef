// The pages' scripts and style sheet are served from the jar (Javalin's static files) with their types and the same
// protective headers as every page; nothing else of the jar is reachable under /assets; a malformed password header
// is refused like a wrong one.
package io.stargazer.node;

import static org.assertj.core.api.Assertions.assertThat;

import io.stargazer.bus.NodeRole;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import org.junit.jupiter.api.Test;

class WebAssetsIT {
    private static final HttpClient HTTP = HttpClient.newHttpClient();

    private static HttpResponse<String> get(int port, String path, String authorization) throws Exception {
        HttpRequest.Builder b = HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + path)).timeout(Duration.ofSeconds(10));
        if (authorization != null) b.header("Authorization", authorization);
        return HTTP.send(b.build(), HttpResponse.BodyHandlers.ofString());
    }

    private static String header(HttpResponse<?> r, String name) {
        return r.headers().firstValue(name).orElse("");
    }

    @Test
    void assetsAreServedWithTheirTypesAndHeadersAndNothingElseIs() throws Exception {
        Node node = Node.start(new Node.Settings(NodeRole.GATEWAY, new Node.Parts(true, false, false), TestRedis.url(),
                "node-assets", null, 0, "127.0.0.1", 0, "echo", Duration.ofSeconds(10), TestEnv.of(TestRedis.topology()),
                new Node.Dashboard("127.0.0.1", -1, "pw")));
        try {
            int port = node.httpPort();
            for (String[] asset : new String[][] {{"/assets/chat.js", "text/javascript"}, {"/assets/dashboard.js", "text/javascript"},
                    {"/assets/style.css", "text/css"}}) {
                HttpResponse<String> r = get(port, asset[0], null);
                assertThat(r.statusCode()).as(asset[0]).isEqualTo(200);
                assertThat(header(r, "Content-Type")).as(asset[0]).startsWith(asset[1]).containsIgnoringCase("charset=utf-8");
                assertThat(header(r, "X-Content-Type-Options")).as(asset[0]).isEqualTo("nosniff");
                assertThat(header(r, "Content-Security-Policy")).as(asset[0]).contains("default-src 'self'");
                assertThat(r.body()).as(asset[0]).isNotBlank();
            }
            HttpResponse<String> page = get(port, "/", null);
            assertThat(page.statusCode()).isEqualTo(200);
            assertThat(header(page, "Content-Type")).startsWith("text/html");
            assertThat(page.body()).contains("/assets/chat.js").contains("/assets/style.css");
            for (String path : new String[] {"/assets/chat.html", "/assets/nope.js", "/assets/../logback.xml",
                    "/assets/%2e%2e/chat.html", "/assets/%2e%2e/%2e%2e/logback.xml", "/web/chat.html"}) {
                HttpResponse<String> r = get(port, path, null);
                assertThat(r.statusCode()).as(path).isIn(400, 404); // 400: Jetty refuses an ambiguous path outright
                assertThat(r.body()).as(path).doesNotContain("<html").doesNotContain("<configuration>");
            }
            assertThat(get(port, "/dashboard", "Basic !!not-base64!!").statusCode()).isEqualTo(401);
            assertThat(get(port, "/dashboard", "Bearer pw").statusCode()).isEqualTo(401);
        } finally {
            node.close();
        }
    }
}
