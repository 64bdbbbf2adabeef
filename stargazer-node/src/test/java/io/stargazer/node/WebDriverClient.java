// Test helper: drives headless Chromium through chromedriver's W3C WebDriver HTTP API (no Selenium).
package io.stargazer.node;

import static org.awaitility.Awaitility.await;

import java.io.IOException;
import java.net.ServerSocket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Base64;
import java.util.Comparator;
import java.util.List;
import java.util.Map;

final class WebDriverClient implements AutoCloseable {
    static final Path CHROMEDRIVER = Path.of("/usr/bin/chromedriver");
    static final Path CHROMIUM = Path.of("/usr/bin/chromium");
    private static final String ELEMENT = "element-6066-11e4-a52e-4f735466cecf";

    private final Process driver;
    private final HttpClient http = HttpClient.newHttpClient();
    private final String base;
    private final Path profile;
    private String session;

    WebDriverClient() throws IOException, InterruptedException {
        for (Path p : List.of(CHROMEDRIVER, CHROMIUM)) {
            if (!Files.isExecutable(p)) {
                throw new AssertionError(p + " is missing: install Debian's chromium and chromium-driver "
                        + "(apt-get install -y chromium chromium-driver; .ci/run does this)");
            }
        }
        int port;
        try (ServerSocket s = new ServerSocket(0)) {
            port = s.getLocalPort();
        }
        profile = Files.createTempDirectory("sg-chromium-");
        driver = new ProcessBuilder(CHROMEDRIVER.toString(), "--port=" + port).redirectErrorStream(true)
                .redirectOutput(profile.resolveSibling(profile.getFileName() + ".driver.log").toFile()).start();
        base = "http://127.0.0.1:" + port;
        await().atMost(Duration.ofSeconds(20)).ignoreExceptions().until(() -> call("GET", "/status", null) != null);
        Map<String, Object> caps = Map.of("capabilities", Map.of("alwaysMatch", Map.of("browserName", "chrome",
                "goog:chromeOptions", Map.of("binary", CHROMIUM.toString(), "args", List.of("--headless", "--no-sandbox",
                        "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                        "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
                        "--window-size=1100,760", "--user-data-dir=" + profile)))));
        @SuppressWarnings("unchecked")
        Map<String, Object> value = (Map<String, Object>) call("POST", "/session", caps);
        session = (String) value.get("sessionId");
    }

    private Object call(String method, String path, Object body) throws IOException, InterruptedException {
        HttpRequest.Builder b = HttpRequest.newBuilder(URI.create(base + path)).timeout(Duration.ofSeconds(60));
        b.method(method, body == null ? HttpRequest.BodyPublishers.noBody() : HttpRequest.BodyPublishers.ofString(Json.write(body)));
        b.header("Content-Type", "application/json");
        HttpResponse<String> r = http.send(b.build(), HttpResponse.BodyHandlers.ofString());
        @SuppressWarnings("unchecked")
        Map<String, Object> reply = (Map<String, Object>) Json.parse(r.body());
        if (r.statusCode() != 200) {
            throw new IllegalStateException("WebDriver " + method + " " + path + " -> " + r.statusCode() + ": " + reply.get("value"));
        }
        return reply.get("value");
    }

    private Object sessionCall(String method, String path, Object body) {
        try {
            return call(method, "/session/" + session + path, body);
        } catch (IOException e) {
            throw new IllegalStateException(e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException(e);
        }
    }

    void windowSize(int width, int height) {
        sessionCall("POST", "/window/rect", Map.of("width", width, "height", height));
    }

    void open(String url) {
        sessionCall("POST", "/url", Map.of("url", url));
    }

    String find(String css) {
        @SuppressWarnings("unchecked")
        Map<String, Object> el = (Map<String, Object>) sessionCall("POST", "/element", Map.of("using", "css selector", "value", css));
        return (String) el.get(ELEMENT);
    }

    void type(String css, String text) {
        sessionCall("POST", "/element/" + find(css) + "/value", Map.of("text", text));
    }

    void click(String css) {
        sessionCall("POST", "/element/" + find(css) + "/click", Map.of());
    }

    String text(String css) {
        return (String) sessionCall("GET", "/element/" + find(css) + "/text", null);
    }

    Object script(String js) {
        return sessionCall("POST", "/execute/sync", Map.of("script", js, "args", List.of()));
    }

    void screenshot(Path file) throws IOException {
        String png = (String) sessionCall("GET", "/screenshot", null);
        Files.createDirectories(file.getParent());
        Files.write(file, Base64.getDecoder().decode(png));
    }

    @Override
    public void close() throws IOException {
        try {
            if (session != null) sessionCall("DELETE", "", null);
        } finally {
            driver.destroy();
            try (var files = Files.walk(profile)) {
                files.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
            }
        }
    }
}
