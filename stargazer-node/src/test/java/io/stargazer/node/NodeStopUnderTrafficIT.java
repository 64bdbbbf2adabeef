// Promise (never lose, never answer twice, never stall): a worker sent SIGTERM under traffic, or during a Redis outage,
// ends within its shutdown time, and every message it held is answered once, by it or by another worker.
package io.stargazer.node;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.lettuce.core.RedisURI;
import io.stargazer.bus.Envelope;
import io.stargazer.bus.Topology;
import io.stargazer.bus.wire.WireFormat;
import io.stargazer.embedded.RedisServerProcess;
import io.stargazer.testing.RawRedis;
import io.stargazer.testing.TestServers;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Function;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * Worker processes (child JVMs) sent SIGTERM while they hold messages: each exits with 0 within
 * {@link NodeProcess#stop}'s bound, and every message published is answered exactly once on the outbound stream.
 */
@Timeout(300)
class NodeStopUnderTrafficIT {
    @TempDir
    Path dir;

    private Map<String, String> env(Topology t, String url) {
        Map<String, String> env = new HashMap<>(TestEnv.of(t));
        env.put("REDIS_URL", url);
        env.put("SG_WORKER_HANDLER", SlowTestHandler.class.getName());
        env.put("SG_CLAIM_IDLE_MS", "2000"); // what a stopped worker leaves pending is taken over soon
        env.put("SG_CONSUMER_CONCURRENCY", "4");
        env.put("SG_TEST_HOLD_FILE", dir.resolve("hold").toString());
        return env;
    }

    private static void publish(RawRedis raw, Topology t, List<String> contents) {
        for (int i = 0; i < contents.size(); i++) {
            raw.xadd(t.inboundStream(), "payload", WireFormat.encode(Envelope.of(Envelope.PLATFORM, "webchat",
                    Envelope.CHANNEL_ID, "c-" + (i % 8), Envelope.CONTENT, contents.get(i))));
        }
    }

    /** The contents of the answers on the webchat outbound stream, each with how often it was stored. */
    private static Map<String, Long> answers(RawRedis raw, Topology t) {
        return raw.xrange(t.outboundStream("webchat")).stream()
                .map(m -> WireFormat.decode(RawRedis.fields(m).get("payload")).content())
                .collect(Collectors.groupingBy(Function.identity(), Collectors.counting()));
    }

    private static void assertEachAnsweredOnce(RawRedis raw, Topology t, List<String> contents) {
        await().atMost(Duration.ofSeconds(90)).alias("every message answered")
                .until(() -> answers(raw, t).keySet().containsAll(contents));
        Map<String, Long> answers = answers(raw, t);
        assertThat(answers.entrySet().stream().filter(e -> e.getValue() > 1).map(Map.Entry::getKey).sorted().toList())
                .as("messages answered more than once").isEmpty();
        assertThat(answers.keySet()).containsExactlyInAnyOrderElementsOf(contents);
    }

    @Test
    void aWorkerStoppedWhileHandlingLeavesEveryMessageAnsweredOnce() throws Exception {
        Topology t = TestRedis.topology();
        Map<String, String> env = env(t, TestRedis.url().toString());
        List<NodeProcess> procs = new ArrayList<>();
        try (RawRedis raw = new RawRedis(RedisURI.create(TestRedis.url().toString()))) {
            NodeProcess a = NodeProcess.start(procs, "stop-under-traffic-a", env, "worker", "--node-id", "worker-a").awaitRunning();
            List<String> contents = new ArrayList<>();
            for (int i = 0; i < 80; i++) contents.add("sleep 1000 m" + i);
            publish(raw, t, contents);
            // Started once the first worker holds the messages (one that reads first may take them all at once).
            await().atMost(Duration.ofSeconds(60)).until(() -> a.lines().stream().filter(l -> l.contains("SlowTestHandler: handling")).count() >= 8);
            NodeProcess b = NodeProcess.start(procs, "stop-under-traffic-b", env, "worker", "--node-id", "worker-b").awaitRunning();

            assertThat(a.stop()).as(a.log()).isZero();

            assertEachAnsweredOnce(raw, t, contents);
            assertThat(b.stop()).as(b.log()).isZero();
        } finally {
            procs.forEach(NodeProcess::close);
        }
    }

    @Test
    void aWorkerWhoseHandlerOutlivesTheGraceStopsAndItsMessageIsAnsweredOnceByAnother() throws Exception {
        Topology t = TestRedis.topology();
        Map<String, String> env = env(t, TestRedis.url().toString());
        Files.createFile(dir.resolve("hold"));
        List<NodeProcess> procs = new ArrayList<>();
        try (RawRedis raw = new RawRedis(RedisURI.create(TestRedis.url().toString()))) {
            NodeProcess a = NodeProcess.start(procs, "stop-held-a", env, "worker", "--node-id", "worker-a").awaitRunning();
            List<String> contents = List.of("hold h1", "sleep 100 s1", "sleep 100 s2");
            publish(raw, t, contents.subList(0, 1));
            a.awaitLine("SlowTestHandler: handling hold h1");

            // The handler holds its message past the stop's grace: the process ends anyway, leaving it pending.
            assertThat(a.stop()).as(a.log()).isZero();
            Files.delete(dir.resolve("hold"));
            publish(raw, t, contents.subList(1, 3));
            NodeProcess b = NodeProcess.start(procs, "stop-held-b", env, "worker", "--node-id", "worker-b").awaitRunning();

            assertEachAnsweredOnce(raw, t, contents);
            assertThat(b.stop()).as(b.log()).isZero();
        } finally {
            procs.forEach(NodeProcess::close);
        }
    }

    @Test
    void aWorkerStoppedDuringARedisOutageEndsAndLosesNothing() throws Exception {
        // A server of its own, which the test kills; everything acknowledged is on disk.
        try (RedisServerProcess server = TestServers.server().appendOnly(true).arg("--appendfsync", "always").start()) {
            stopWhileRedisIsAway("stop-in-outage", server, server.url(), server::kill, server::restart);
        }
    }

    @Test
    void aWorkerStoppedWhileRedisStallsEndsAndLosesNothing() throws Exception {
        // The worker reaches Redis through a proxy that holds Redis's answers back: its commands run, their replies never come.
        try (RedisServerProcess server = TestServers.server().start(); FreezingProxy proxy = new FreezingProxy(server.port())) {
            stopWhileRedisIsAway("stop-in-stall", server, "redis://127.0.0.1:" + proxy.port(), () -> proxy.freeze(true), () -> { });
        }
    }

    /**
     * A worker reaching {@code server} at {@code url} is sent SIGTERM while handling, once {@code away} has taken Redis
     * from it; after {@code back}, another worker reaching the server directly answers what it left.
     */
    private void stopWhileRedisIsAway(String name, RedisServerProcess server, String url, Runnable away, Runnable back)
            throws Exception {
        Topology t = TestRedis.topology();
        List<NodeProcess> procs = new ArrayList<>();
        try (RawRedis raw = new RawRedis(RedisURI.create(server.url()))) {
            NodeProcess a = NodeProcess.start(procs, name + "-a", env(t, url), "worker", "--node-id", "worker-a").awaitRunning();
            List<String> contents = new ArrayList<>();
            for (int i = 0; i < 20; i++) contents.add("sleep 1000 m" + i);
            publish(raw, t, contents);
            a.awaitLine("SlowTestHandler: handling");

            away.run();
            assertThat(a.stop()).as(a.log()).isZero();

            back.run();
            NodeProcess b = NodeProcess.start(procs, name + "-b", env(t, server.url()), "worker", "--node-id", "worker-b").awaitRunning();
            assertEachAnsweredOnce(raw, t, contents);
            assertThat(b.stop()).as(b.log()).isZero();
        } finally {
            procs.forEach(NodeProcess::close);
        }
    }
}
