package io.stargazer.bus.tools;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.stargazer.bus.Envelope;
import io.stargazer.bus.EventBus;
import io.stargazer.bus.NodeRole;
import io.stargazer.bus.StreamEntry;
import io.stargazer.bus.Topology;
import io.stargazer.bus.testing.TestRedis;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

/**
 * docs/once.md: "a request sent twice while its tool runs on a live instance does not start it again (the second copy
 * is acknowledged; the running one answers)". One instance with the default room (16 running + 64 waiting, read-ahead
 * 16), 60 distinct requests each stored twice before it reads: every request gets its tool's result, run once. Before,
 * the copies used up the room and 16 to 20 of the 60 were answered "overloaded" while their other copy ran the tool,
 * and that was the only answer the caller got (the result was dropped by the reply's dedupe key): found from outside
 * by helper-92.
 */
@org.junit.jupiter.api.Timeout(value = 2, unit = TimeUnit.MINUTES)
class ToolsCopiesInABurstIT {

    @Test
    void aRequestSentTwiceInABurstToIdleInstancesGetsItsToolsResultNotOverloaded() throws Exception {
        String ns = TestRedis.namespace();
        Topology t = Topology.builder().namespace(ns).build();
        String replyTo = ns + ":replies";
        Map<String, AtomicInteger> runs = new ConcurrentHashMap<>();
        java.util.concurrent.CountDownLatch release = new java.util.concurrent.CountDownLatch(1);
        ToolRegistry registry = ToolRegistry.builder().register("work", a -> {
            String rid = ToolService.currentRequest().orElseThrow().requestId();
            runs.computeIfAbsent(rid, k -> new AtomicInteger()).incrementAndGet();
            // Running until every copy has been read: each copy meets its original running or waiting.
            if (!release.await(30, TimeUnit.SECONDS)) throw new IllegalStateException("never released");
            return "ran " + rid;
        }).build();
        int n = 60;
        try (EventBus worker = TestRedis.bus(TestRedis.config(NodeRole.WORKER).topology(t).build());
             EventBus bus1 = TestRedis.bus(TestRedis.config(NodeRole.TOOLS).topology(t).nodeId(ns + "-i1").build())) {
            bus1.ensureGroup(t.toolsStream(), t.toolsGroup()); // the group exists before the requests come
            long deadline = System.currentTimeMillis() + 60_000;
            List<CompletableFuture<String>> sent = new ArrayList<>();
            for (int copy = 0; copy < 2; copy++) {
                for (int i = 0; i < n; i++) {
                    sent.add(worker.publishAsync(t.toolsStream(), Envelope.of("request_id", "r" + i, "tool", "work",
                            "args", Map.of(), "reply_to", replyTo, "deadline_ms", deadline)));
                }
            }
            sent.forEach(CompletableFuture::join);
            // One instance, default room: 16 running + 64 waiting (+ read-ahead 16), for 60 distinct requests.
            ToolService i1 = ToolService.start(bus1, registry, ToolServiceConfig.builder().readAhead(ToolServiceConfig.DEFAULT_READ_AHEAD).build());
            await().atMost(Duration.ofSeconds(30)).until(() -> i1.stats().received() >= 2L * n);
            release.countDown();
            await().atMost(Duration.ofSeconds(60)).until(() -> TestRedis.readAll(worker, replyTo).size() >= n
                    && worker.pendingCount(t.toolsStream(), t.toolsGroup()) == 0);
            Map<String, List<String>> answers = new TreeMap<>();
            for (StreamEntry e : TestRedis.readAll(worker, replyTo)) {
                answers.computeIfAbsent(String.valueOf(e.envelope().get("request_id")), k -> new ArrayList<>())
                        .add("ok=" + e.envelope().get("ok") + " " + (Boolean.TRUE.equals(e.envelope().get("ok"))
                                ? e.envelope().get("result") : e.envelope().get("error")));
            }
            List<String> wrong = new ArrayList<>();
            for (int i = 0; i < n; i++) {
                String rid = "r" + i;
                int ran = runs.getOrDefault(rid, new AtomicInteger()).get();
                List<String> a = answers.getOrDefault(rid, List.of());
                if (a.size() != 1 || !a.get(0).startsWith("ok=true") || ran != 1) wrong.add(rid + " runs=" + ran + " answers=" + a);
            }
            i1.close();
            assertThat(wrong).as("requests (sent twice) whose caller did not get the one run's result").isEmpty();
        }
    }
}
