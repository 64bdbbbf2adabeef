// A scrape while Redis does not answer (a paused server, a partition that keeps the connection open, a stall of its
// disk under appendfsync always): /metrics must still answer within Prometheus's default scrape timeout (10 s), or
// the node's per-process metrics (subscription states, the gateway's publish failures) go unseen exactly then.
package io.stargazer.node;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.stargazer.bus.NodeRole;
import io.stargazer.bus.RedisUrl;
import io.stargazer.bus.Topology;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

@Timeout(180)
class MetricsDuringRedisStallIT {
    /** Prometheus's default scrape_timeout. */
    private static final Duration SCRAPE_TIMEOUT = Duration.ofSeconds(10);
    private static final HttpClient HTTP = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();

    private static HttpResponse<String> scrape(int port) throws Exception {
        return HTTP.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + "/metrics")).timeout(SCRAPE_TIMEOUT).build(),
                HttpResponse.BodyHandlers.ofString());
    }

    @Test
    void aScrapeAnswersWithinTheScrapeTimeoutWhileRedisDoesNotAnswer() throws Exception {
        Topology t = TestRedis.topology();
        int redisPort = URI.create(TestRedis.url().toString()).getPort();
        try (FreezingProxy proxy = new FreezingProxy(redisPort)) {
            Node node = Node.start(new Node.Settings(NodeRole.STANDALONE, new Node.Parts(true, true, true),
                    RedisUrl.parse("redis://127.0.0.1:" + proxy.port()), "node-metrics-stall", null, 0, "127.0.0.1", 0,
                    "echo", Duration.ofSeconds(10), TestEnv.of(t), Node.Dashboard.ON_MAIN_SERVER));
            try {
                int port = node.httpPort();
                HttpResponse<String> before = scrape(port);
                assertThat(before.statusCode()).isEqualTo(200);
                assertThat(before.body()).contains("stargazer_stream_length{stream=\"" + t.inboundStream() + "\"}");

                proxy.freeze(true);
                // Every scrape during the stall, the first and those after it, answers in time.
                for (int i = 0; i < 3; i++) {
                    long start = System.nanoTime();
                    HttpResponse<String> during;
                    try {
                        during = scrape(port);
                    } catch (java.net.http.HttpTimeoutException e) {
                        throw new AssertionError("scrape " + i + " during the stall: no answer within " + SCRAPE_TIMEOUT.toSeconds()
                                + " s (" + (System.nanoTime() - start) / 1_000_000 + " ms)", e);
                    }
                    assertThat(during.statusCode()).isEqualTo(200);
                    assertThat(during.body()).contains("stargazer_subscription_state");
                }
                proxy.freeze(false);
                // Once Redis answers again the stream gauges come back.
                await().atMost(Duration.ofSeconds(60)).until(() -> scrape(port).body()
                        .contains("stargazer_stream_length{stream=\"" + t.inboundStream() + "\"}"));
            } finally {
                proxy.freeze(false);
                node.close();
            }
        }
    }
}
