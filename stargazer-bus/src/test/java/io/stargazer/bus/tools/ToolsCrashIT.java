package io.stargazer.bus.tools;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.stargazer.bus.EventBus;
import io.stargazer.bus.StreamEntry;
import io.stargazer.bus.Envelope;
import io.stargazer.bus.NodeRole;
import io.stargazer.bus.RedisUrl;
import io.stargazer.bus.Topology;
import io.stargazer.testing.ChildJvm;
import io.stargazer.bus.testing.RawRedis;
import io.stargazer.bus.testing.TestRedis;
import java.io.BufferedReader;
import java.io.File;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

// Crashes of real processes (SIGKILL): a tools instance killed mid-call has its request taken over by another
// instance; a worker killed without closing leaves a reply stream that expires.
class ToolsCrashIT {
    private final List<Process> children = new CopyOnWriteArrayList<>();

    @AfterEach
    void killChildren() {
        children.forEach(Process::destroyForcibly);
    }

    /** Starts {@link ToolsChildMain} in a JVM of its own and returns it with a reader of its stdout. */
    private Object[] child(String mode, String namespace, String nodeId) throws Exception {
        String java = System.getProperty("java.home") + File.separator + "bin" + File.separator + "java";
        RedisUrl url = TestRedis.url();
        ProcessBuilder pb = new ProcessBuilder(java, "-cp", ChildJvm.classPath(ToolsChildMain.class),
                ToolsChildMain.class.getName(), mode, url.host(), Integer.toString(url.port()), namespace, nodeId);
        pb.redirectError(ProcessBuilder.Redirect.DISCARD);
        Process p = pb.start();
        children.add(p);
        return new Object[] {p, new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8))};
    }

    private static String line(BufferedReader r, String prefix) throws Exception {
        CompletableFuture<String> f = CompletableFuture.supplyAsync(() -> {
            try {
                for (String l; (l = r.readLine()) != null; ) {
                    if (l.startsWith(prefix)) return l;
                }
                return null;
            } catch (Exception e) {
                throw new RuntimeException(e);
            }
        });
        String l = f.get(30, TimeUnit.SECONDS);
        assertThat(l).as("child printed a line starting with %s", prefix).isNotNull();
        return l;
    }

    @Test
    void aToolsInstanceKilledMidCallIsTakenOverByAnother() throws Exception {
        String ns = TestRedis.namespace();
        Topology t = Topology.builder().namespace(ns).build();
        Object[] c = child("tools", ns, "tools-doomed");
        Process doomed = (Process) c[0];
        BufferedReader out = (BufferedReader) c[1];
        line(out, "READY");
        try (EventBus worker = TestRedis.bus(TestRedis.config(NodeRole.WORKER).topology(t).build());
             EventBus toolsBus = TestRedis.bus(TestRedis.config(NodeRole.TOOLS).topology(t).build());
             ToolClient client = ToolClient.create(worker)) {
            CompletableFuture<Object> call = client.call("slow", Map.of("x", 1), Duration.ofSeconds(30));
            String running = line(out, "RUNNING ");
            String requestId = running.substring("RUNNING ".length());
            doomed.destroyForcibly();
            assertThat(doomed.waitFor(10, TimeUnit.SECONDS)).isTrue();

            // The survivor's "slow" returns at once and tells whether it is a repeat.
            List<ToolRequest> seen = new CopyOnWriteArrayList<>();
            ToolRegistry registry = ToolRegistry.builder().register("slow", a -> {
                ToolRequest r = ToolService.currentRequest().orElseThrow();
                seen.add(r);
                return "done by survivor, delivery " + r.deliveryCount();
            }).build();
            try (ToolService survivor = ToolService.start(toolsBus, registry,
                    ToolServiceConfig.builder().consumerName("tools-survivor").claimIdle(Duration.ofMillis(500)).build())) {
                assertThat(call.get(20, TimeUnit.SECONDS)).isEqualTo("done by survivor, delivery 2");
                assertThat(seen).hasSize(1);
                assertThat(seen.get(0).requestId()).isEqualTo(requestId);
                assertThat(seen.get(0).deliveryCount()).isEqualTo(2);
                await().atMost(Duration.ofSeconds(10)).until(() -> toolsBus.pendingCount(t.toolsStream(), t.toolsGroup()) == 0);
            }
        }
    }

    @Test
    void aWorkerKilledWithoutClosingLeavesAReplyStreamThatExpires() throws Exception {
        String ns = TestRedis.namespace();
        Object[] c = child("worker", ns, "worker-doomed");
        Process doomed = (Process) c[0];
        String replyStream = line((BufferedReader) c[1], "READY ").substring("READY ".length());
        assertThat(replyStream).isEqualTo(Topology.builder().namespace(ns).build().toolsReplyStream("worker-doomed"));
        try (RawRedis raw = new RawRedis(TestRedis.url())) {
            byte[] key = RawRedis.b(replyStream);
            assertThat(raw.sync().exists(key)).isEqualTo(1);
            doomed.destroyForcibly();
            assertThat(doomed.waitFor(10, TimeUnit.SECONDS)).isTrue();
            await().atMost(Duration.ofSeconds(5)).until(() -> raw.sync().exists(key) == 0);
        }
    }

    private static Envelope request(String requestId, String tool, String replyTo) {
        return Envelope.of("request_id", requestId, "tool", tool, "args", Map.of(), "reply_to", replyTo);
    }

    @Test
    void aToolsInstanceKilledAfterItsToolRanIsTakenOverWithoutRunningTheToolAgain() throws Exception {
        String ns = TestRedis.namespace();
        Topology t = Topology.builder().namespace(ns).build();
        Object[] c = child("count", ns, "tools-doomed");
        Process doomed = (Process) c[0];
        line((BufferedReader) c[1], "READY");
        String replyTo = ns + ":replies";
        String requestId = "req-" + ns;
        try (EventBus worker = TestRedis.bus(TestRedis.config(NodeRole.WORKER).topology(t).build());
             EventBus toolsBus = TestRedis.bus(TestRedis.config(NodeRole.TOOLS).topology(t).build());
             RawRedis raw = new RawRedis(TestRedis.url())) {
            // The reply cannot be stored yet (its stream name holds a string): the tool runs, its reply is remembered,
            // sending it fails, and the request stays pending. Then the instance dies.
            raw.sync().set(RawRedis.b(replyTo), RawRedis.b("not a stream"));
            worker.publish(t.toolsStream(), request(requestId, "count", replyTo));
            byte[] result = RawRedis.b("{" + t.toolsStream() + "}:result:" + requestId);
            await().atMost(Duration.ofSeconds(30)).until(() -> raw.sync().exists(result) == 1);
            doomed.destroyForcibly();
            assertThat(doomed.waitFor(10, TimeUnit.SECONDS)).isTrue();
            raw.sync().del(RawRedis.b(replyTo));

            List<String> survivorRuns = new CopyOnWriteArrayList<>();
            ToolRegistry registry = ToolRegistry.builder().register("count", a -> {
                survivorRuns.add(ToolService.currentRequest().orElseThrow().requestId());
                return "run by tools-survivor";
            }).build();
            try (ToolService survivor = ToolService.start(toolsBus, registry,
                    ToolServiceConfig.builder().consumerName("tools-survivor").claimIdle(Duration.ofMillis(500)).build())) {
                await().atMost(Duration.ofSeconds(30)).until(() -> raw.sync().exists(RawRedis.b(replyTo)) == 1
                        && toolsBus.pendingCount(t.toolsStream(), t.toolsGroup()) == 0);
            }
            assertThat(survivorRuns).as("runs on the survivor").isEmpty();
            assertThat(TestRedis.readAll(toolsBus, ns + ":runs")).as("runs of the tool").hasSize(1);
            List<StreamEntry> replies = TestRedis.readAll(toolsBus, replyTo);
            assertThat(replies).hasSize(1);
            assertThat(replies.get(0).envelope().get("result")).isEqualTo("run by tools-doomed");
        }
    }

    @Test
    void aRequestSentTwiceRunsItsToolOnceAndIsAnsweredOnce() throws Exception {
        String ns = TestRedis.namespace();
        Topology t = Topology.builder().namespace(ns).build();
        String replyTo = ns + ":replies";
        java.util.concurrent.atomic.AtomicInteger runs = new java.util.concurrent.atomic.AtomicInteger();
        java.util.concurrent.CountDownLatch release = new java.util.concurrent.CountDownLatch(1);
        ToolRegistry registry = ToolRegistry.builder().register("count", a -> {
            int n = runs.incrementAndGet();
            release.await(20, TimeUnit.SECONDS);
            return "run " + n;
        }).build();
        try (EventBus worker = TestRedis.bus(TestRedis.config(NodeRole.WORKER).topology(t).build());
             EventBus toolsBus = TestRedis.bus(TestRedis.config(NodeRole.TOOLS).topology(t).build());
             ToolService tools = ToolService.start(toolsBus, registry, ToolServiceConfig.builder().maxConcurrent(4).build())) {
            worker.publish(t.toolsStream(), request("twice", "count", replyTo));
            await().atMost(Duration.ofSeconds(10)).until(() -> runs.get() == 1);
            worker.publish(t.toolsStream(), request("twice", "count", replyTo)); // while the first runs
            await().atMost(Duration.ofSeconds(10)).until(() -> tools.stats().received() == 2
                    && toolsBus.pendingCount(t.toolsStream(), t.toolsGroup()) == 1);
            release.countDown();
            await().atMost(Duration.ofSeconds(10)).until(() -> toolsBus.pendingCount(t.toolsStream(), t.toolsGroup()) == 0);
            worker.publish(t.toolsStream(), request("twice", "count", replyTo)); // after it was answered
            await().atMost(Duration.ofSeconds(10)).until(() -> tools.stats().received() == 3
                    && toolsBus.pendingCount(t.toolsStream(), t.toolsGroup()) == 0);
            assertThat(runs.get()).isEqualTo(1);
            List<StreamEntry> replies = TestRedis.readAll(toolsBus, replyTo);
            assertThat(replies).hasSize(1);
            assertThat(replies.get(0).envelope().get("result")).isEqualTo("run 1");
        }
    }
}
