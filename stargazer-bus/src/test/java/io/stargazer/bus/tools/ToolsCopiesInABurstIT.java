package io.stargazer.bus.tools;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.stargazer.bus.Envelope;
import io.stargazer.bus.EventBus;
import io.stargazer.bus.NodeRole;
import io.stargazer.bus.StreamEntry;
import io.stargazer.bus.Topology;
import io.stargazer.bus.testing.TcpProxy;
import io.stargazer.bus.testing.TestRedis;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

/**
 * docs/once.md: "a request sent twice while its tool runs on a live instance does not start it again (the second copy
 * is acknowledged; the running one answers)". One instance with the default room (16 running + 64 waiting, read-ahead
 * 16) and 60 distinct requests, each stored twice before it reads: every request gets its tool's result, run once,
 * and none is answered "overloaded", since the room holds all 60.
 */
@org.junit.jupiter.api.Timeout(value = 2, unit = TimeUnit.MINUTES)
class ToolsCopiesInABurstIT {
    private static final int REQUESTS = 60;

    /**
     * All 60, then all 60 again. Before, the copies used up the room and 16 to 20 of the 60 were answered "overloaded"
     * while their other copy ran the tool, and that was the only answer the caller got (the result was dropped by the
     * reply's dedupe key): found from outside by helper-92.
     */
    @Test
    void aRequestSentTwiceInABurstToIdleInstancesGetsItsToolsResultNotOverloaded() throws Exception {
        List<Integer> order = new ArrayList<>();
        for (int copy = 0; copy < 2; copy++) for (int i = 0; i < REQUESTS; i++) order.add(i);
        assertEachRanOnceAndGotItsResult(order, null);
    }

    /**
     * 40 requests, their copies, then 20 more and their copies, on a link with latency while the instance takes
     * them in: a copy's lookup of its request is a round trip. Before, a copy took a place in the room before that
     * lookup and gave it back when it learnt it was a copy, so the 40 copies in flight held 40 places and 16 requests
     * read just after them found the room full while 40 tools were running or waiting, were answered "overloaded" and
     * never ran. CI saw it once without a proxy, on a loaded machine ("running 4 tools with 55 waiting").
     */
    @Test
    void copiesBeingLookedUpHoldNoRoomFromRequestsReadAfterThem() throws Exception {
        List<Integer> order = new ArrayList<>();
        for (int copy = 0; copy < 2; copy++) for (int i = 0; i < 40; i++) order.add(i);
        for (int copy = 0; copy < 2; copy++) for (int i = 40; i < REQUESTS; i++) order.add(i);
        try (TcpProxy proxy = TcpProxy.to(TestRedis.url())) {
            assertEachRanOnceAndGotItsResult(order, proxy);
        }
    }

    /**
     * Stores the requests {@code r<i>} in {@code order}, then starts one instance (through {@code proxy}, delayed
     * until it has read them all, when not null) whose tool runs until every entry has been read, so each copy meets
     * its request running or waiting.
     */
    private static void assertEachRanOnceAndGotItsResult(List<Integer> order, TcpProxy proxy) throws Exception {
        String ns = TestRedis.namespace();
        Topology t = Topology.builder().namespace(ns).build();
        String replyTo = ns + ":replies";
        Map<String, AtomicInteger> runs = new ConcurrentHashMap<>();
        CountDownLatch release = new CountDownLatch(1);
        ToolRegistry registry = ToolRegistry.builder().register("work", a -> {
            String rid = ToolService.currentRequest().orElseThrow().requestId();
            runs.computeIfAbsent(rid, k -> new AtomicInteger()).incrementAndGet();
            if (!release.await(90, TimeUnit.SECONDS)) throw new IllegalStateException("never released"); // beyond the waits below
            return "ran " + rid;
        }).build();
        var toolsConfig = TestRedis.config(NodeRole.TOOLS).topology(t).nodeId(ns + "-i1").build();
        try (EventBus worker = TestRedis.bus(TestRedis.config(NodeRole.WORKER).topology(t).build());
             EventBus bus1 = proxy == null ? TestRedis.bus(toolsConfig) : EventBus.connect(proxy.url(), toolsConfig)) {
            bus1.ensureGroup(t.toolsStream(), t.toolsGroup()); // the group exists before the requests come
            long deadline = System.currentTimeMillis() + 60_000;
            List<CompletableFuture<String>> sent = new ArrayList<>();
            for (int i : order) {
                sent.add(worker.publishAsync(t.toolsStream(), Envelope.of("request_id", "r" + i, "tool", "work",
                        "args", Map.of(), "reply_to", replyTo, "deadline_ms", deadline)));
            }
            sent.forEach(CompletableFuture::join);
            if (proxy != null) proxy.delay(Duration.ofMillis(100));
            // One instance, default room: 16 running + 64 waiting (+ read-ahead 16), for 60 distinct requests.
            ToolService i1 = ToolService.start(bus1, registry, ToolServiceConfig.builder().readAhead(ToolServiceConfig.DEFAULT_READ_AHEAD).build());
            try {
                await().atMost(Duration.ofSeconds(60)).until(() -> i1.stats().received() >= order.size());
                if (proxy != null) proxy.delay(Duration.ZERO);
                release.countDown();
                await().atMost(Duration.ofSeconds(60)).until(() -> TestRedis.readAll(worker, replyTo).size() >= REQUESTS
                        && worker.pendingCount(t.toolsStream(), t.toolsGroup()) == 0);
            } finally {
                release.countDown(); // a wait that failed leaves no tool thread waiting
                i1.close();
            }
            Map<String, List<String>> answers = new TreeMap<>();
            for (StreamEntry e : TestRedis.readAll(worker, replyTo)) {
                answers.computeIfAbsent(String.valueOf(e.envelope().get("request_id")), k -> new ArrayList<>())
                        .add("ok=" + e.envelope().get("ok") + " " + (Boolean.TRUE.equals(e.envelope().get("ok"))
                                ? e.envelope().get("result") : e.envelope().get("error")));
            }
            List<String> wrong = new ArrayList<>();
            for (int i = 0; i < REQUESTS; i++) {
                String rid = "r" + i;
                int ran = runs.getOrDefault(rid, new AtomicInteger()).get();
                List<String> a = answers.getOrDefault(rid, List.of());
                if (a.size() != 1 || !a.get(0).startsWith("ok=true") || ran != 1) wrong.add(rid + " runs=" + ran + " answers=" + a);
            }
            assertThat(wrong).as("requests (sent twice) whose caller did not get the one run's result").isEmpty();
        }
    }
}
