// ops/prometheus/stargazer-rules.yml: valid, its alerts fire as its unit tests expect (`promtool test rules`), and every
// metric it names is one a running node really serves at /metrics.
package io.stargazer.node;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.fail;
import static org.awaitility.Awaitility.await;

import io.lettuce.core.RedisURI;
import io.stargazer.bus.Envelope;
import io.stargazer.bus.NodeRole;
import io.stargazer.bus.Topology;
import io.stargazer.bus.wire.WireFormat;
import io.stargazer.testing.RawRedis;
import java.io.File;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

@Timeout(120)
class AlertRulesIT {
    private static final Path RULES_DIR = Path.of("..", "ops", "prometheus");
    private static final Path RULES = RULES_DIR.resolve("stargazer-rules.yml");

    /** promtool from PATH; the test fails (never skips) without it, naming what to install. */
    private static Path promtool() {
        for (String dir : System.getenv().getOrDefault("PATH", "").split(File.pathSeparator)) {
            Path p = Path.of(dir, "promtool");
            if (Files.isExecutable(p)) return p;
        }
        return fail("promtool is missing from PATH: install Debian's 'prometheus' package (apt-get install -y prometheus), "
                + "which provides it; .ci/run installs it when it can");
    }

    private static String run(Path dir, String... command) throws Exception {
        Process p = new ProcessBuilder(command).directory(dir.toFile()).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertThat(p.waitFor(60, TimeUnit.SECONDS)).as("promtool finished").isTrue();
        assertThat(p.exitValue()).as(String.join(" ", command) + ":\n" + out).isZero();
        return out;
    }

    @Test
    void theRulesAreValidAndTheirUnitTestsPass() throws Exception {
        String promtool = promtool().toString();
        assertThat(run(RULES_DIR, promtool, "check", "rules", "stargazer-rules.yml")).contains("SUCCESS: 8 rules found");
        assertThat(run(RULES_DIR, promtool, "test", "rules", "stargazer-rules.test.yml")).contains("SUCCESS");
    }

    @Test
    void everyMetricTheRulesUseIsServedByARunningNode() throws Exception {
        Set<String> used = new TreeSet<>();
        Matcher m = Pattern.compile("\\bstargazer_[a-z_]+").matcher(Files.readString(RULES));
        while (m.find()) used.add(m.group());
        assertThat(used).contains("stargazer_group_lag", "stargazer_subscription_state", "stargazer_publish_failures_total");

        Topology t = TestRedis.topology();
        Map<String, String> env = TestEnv.of(t);
        Node.Settings settings = new Node.Settings(NodeRole.STANDALONE, new Node.Parts(true, true, true), TestRedis.url(),
                "node-alerts", null, 0, "127.0.0.1", 0, "echo", Duration.ofSeconds(10), env, Node.Dashboard.ON_MAIN_SERVER);
        try (Node node = Node.start(settings); RawRedis raw = new RawRedis(RedisURI.create(TestRedis.url().toString()))) {
            raw.xadd(t.deadLetterStream(t.inboundStream()), "payload", WireFormat.encode(Envelope.of("channel_id", "c")), "error", "x");
            HttpResponse<String> r = HttpClient.newHttpClient().send(HttpRequest.newBuilder(
                    URI.create("http://127.0.0.1:" + node.httpPort() + "/metrics")).build(), HttpResponse.BodyHandlers.ofString());
            assertThat(r.statusCode()).isEqualTo(200);
            Set<String> served = new TreeSet<>();
            for (String line : r.body().split("\n")) {
                Matcher n = Pattern.compile("^(stargazer_[a-z_]+)[{ ]").matcher(line);
                if (n.find()) served.add(n.group(1));
            }
            assertThat(served).containsAll(used);
            assertThat(r.body()).contains("stargazer_dead_letters{stream=\"" + t.inboundStream() + "\"} 1.0")
                    .contains("stargazer_subscription_state{group=\"" + t.workerGroup() + "\",state=\"RUNNING\",stream=\"" + t.inboundStream() + "\"} 1.0");
        }
    }

    /**
     * stargazer_group_stalled_seconds (what StargazerGroupNotReading fires on): a group nobody reads, with an entry
     * waiting, counts up from the first scrape that saw it so; the worker group, which took the entry, stays at 0.
     */
    @Test
    void aGroupNobodyReadsCountsUpItsStalledSecondsAndTheReadingGroupStaysAtZero() throws Exception {
        Topology t = TestRedis.topology();
        Node.Settings settings = new Node.Settings(NodeRole.STANDALONE, new Node.Parts(true, true, true), TestRedis.url(),
                "node-stalled", null, 0, "127.0.0.1", 0, "echo", Duration.ofSeconds(10), TestEnv.of(t), Node.Dashboard.ON_MAIN_SERVER);
        try (Node node = Node.start(settings); RawRedis raw = new RawRedis(RedisURI.create(TestRedis.url().toString()))) {
            byte[] stream = RawRedis.b(t.inboundStream());
            raw.sync().xadd(stream, Map.of(RawRedis.b("payload"),
                    WireFormat.encode(Envelope.of("platform", "webchat", "channel_id", "c", "content", "x"))));
            raw.sync().xgroupCreate(io.lettuce.core.XReadArgs.StreamOffset.from(stream, "0"), RawRedis.b("nobody"));
            await().atMost(Duration.ofSeconds(30)).untilAsserted(() -> {
                String body = HttpClient.newHttpClient().send(HttpRequest.newBuilder(
                        URI.create("http://127.0.0.1:" + node.httpPort() + "/metrics")).build(), HttpResponse.BodyHandlers.ofString()).body();
                assertThat(stalled(body, t.inboundStream(), "nobody")).as("the group nobody reads").isGreaterThanOrEqualTo(2.0);
                assertThat(stalled(body, t.inboundStream(), t.workerGroup())).as("the worker group, which took the entry").isZero();
            });
        }
    }

    private static double stalled(String metrics, String stream, String group) {
        Matcher m = Pattern.compile("stargazer_group_stalled_seconds\\{group=\"" + Pattern.quote(group) + "\",stream=\""
                + Pattern.quote(stream) + "\"\\} ([0-9.E]+)").matcher(metrics);
        assertThat(m.find()).as("stargazer_group_stalled_seconds of " + group).isTrue();
        return Double.parseDouble(m.group(1));
    }
}
