package io.stargazer.bus.tools;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;

import io.stargazer.bus.EventBus;
import io.stargazer.bus.NodeRole;
import io.stargazer.bus.StargazerException;
import io.stargazer.bus.Topology;
import io.stargazer.bus.testing.RawRedis;
import io.stargazer.bus.testing.TestRedis;
import java.math.BigInteger;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneOffset;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

// Tool calls end to end on a real Redis: results of every type, every error type, timeouts and late replies,
// 1000 calls in flight on one reply stream, several tools instances sharing the load, and the reply stream's life.
class ToolsIT {
    private static final Duration WAIT = Duration.ofSeconds(10);
    private static final Duration CALL = Duration.ofSeconds(10);

    /** A worker bus and a tools bus on the same fresh topology (distinct node ids). */
    private static EventBus[] buses() {
        Topology t = TestRedis.topology();
        EventBus worker = TestRedis.bus(TestRedis.config(NodeRole.WORKER).topology(t).build());
        EventBus tools = TestRedis.bus(TestRedis.config(NodeRole.TOOLS).topology(t).build());
        return new EventBus[] {worker, tools};
    }

    private static ToolException toolError(CompletableFuture<Object> f) {
        try {
            f.get(20, TimeUnit.SECONDS);
        } catch (ExecutionException e) {
            assertThat(e.getCause()).isInstanceOf(ToolException.class);
            return (ToolException) e.getCause();
        } catch (Exception e) {
            throw new AssertionError("call did not fail with a ToolException", e);
        }
        throw new AssertionError("call succeeded but should have failed");
    }

    @Test
    void resultsOfEveryWireTypeIncludingLargeBytesComeBack() {
        EventBus[] b = buses();
        byte[] image = new byte[512 * 1024];
        for (int i = 0; i < image.length; i++) image[i] = (byte) (i * 31);
        BigInteger uint64Max = BigInteger.ONE.shiftLeft(64).subtract(BigInteger.ONE);
        ToolRegistry registry = TestTools.register(ToolRegistry.builder(),
                        Clock.fixed(Instant.parse("2024-05-01T12:00:00Z"), ZoneOffset.UTC))
                .register("echo", args -> args.get("value"))
                .register("media", args -> {
                    Map<String, Object> m = new HashMap<>();
                    m.put("image", image);
                    m.put("big", uint64Max);
                    m.put("pi", 3.25);
                    m.put("list", List.of(1, "two", new byte[] {3}));
                    m.put("none", null);
                    return m;
                })
                .register("huge", args -> new byte[2 * 1024 * 1024])
                .build();
        try (EventBus worker = b[0]; EventBus toolsBus = b[1];
             ToolService service = ToolService.start(toolsBus, registry);
             ToolClient client = ToolClient.create(worker)) {
            assertThat(client.callBlocking("now", Map.of(), CALL)).isEqualTo("2024-05-01T12:00:00Z");
            assertThat(client.callBlocking("mul", Map.of("a", 6, "b", 7), CALL)).isEqualTo(42L);
            assertThat(client.callBlocking("add", Map.of("a", 7L, "b", 7), CALL)).isEqualTo(14L);
            assertThat(client.callBlocking("div", Map.of("a", 1, "b", 4), CALL)).isEqualTo(0.25);
            assertThat(client.callBlocking("echo", Map.of("value", "héllo ✓"), CALL)).isEqualTo("héllo ✓");
            assertThat(client.callBlocking("echo", Map.of(), CALL)).isNull();
            assertThat(client.callBlocking("echo", Map.of("value", true), CALL)).isEqualTo(true);

            @SuppressWarnings("unchecked")
            Map<String, Object> media = (Map<String, Object>) client.callBlocking("media", Map.of(), CALL);
            assertThat((byte[]) media.get("image")).isEqualTo(image);
            assertThat(media.get("big")).isEqualTo(uint64Max);
            assertThat(media.get("pi")).isEqualTo(3.25);
            assertThat(media).containsEntry("none", null);
            List<?> list = (List<?>) media.get("list");
            assertThat(list.get(0)).isEqualTo(1L);
            assertThat(list.get(1)).isEqualTo("two");
            assertThat((byte[]) list.get(2)).containsExactly(3);

            // Over the envelope limit: answered tool_failed, not left unanswered.
            ToolException tooLarge = toolError(client.call("huge", Map.of(), CALL));
            assertThat(tooLarge.type()).isEqualTo(ToolException.TOOL_FAILED);
            assertThat(tooLarge.errorMessage()).contains("over the envelope limit");

            assertThat(client.stats().completed()).isEqualTo(8);
            assertThat(client.stats().failed()).isEqualTo(1);
            assertThat(client.stats().inFlight()).isZero();
            await().atMost(WAIT).until(() -> service.stats().succeeded() == 8 && service.stats().errors() == 1);
            await().atMost(WAIT).until(() -> toolsBus.pendingCount(toolsBus.topology().toolsStream(), toolsBus.topology().toolsGroup()) == 0);
        }
    }

    @Test
    void anErrorThrownByAToolIsNotAnsweredAsTheToolsFailure() throws Exception {
        EventBus[] b = buses();
        AtomicInteger runs = new AtomicInteger();
        ToolRegistry registry = ToolRegistry.builder().register("overflow", args -> {
            runs.incrementAndGet();
            throw new StackOverflowError("thrown by the test tool");
        }).build();
        try (EventBus worker = b[0]; EventBus toolsBus = b[1];
             ToolService service = ToolService.start(toolsBus, registry, ToolServiceConfig.builder().claimIdle(Duration.ofMillis(500)).build());
             ToolClient client = ToolClient.create(worker)) {
            CompletableFuture<Object> call = client.call("overflow", Map.of(), Duration.ofSeconds(2));
            Throwable outcome;
            try {
                call.get(20, TimeUnit.SECONDS);
                outcome = null;
            } catch (ExecutionException e) {
                outcome = e.getCause();
            }
            // No tool_failed answer: the caller times out.
            assertThat(outcome).isInstanceOf(ToolTimeoutException.class);
            assertThat(((ToolTimeoutException) outcome).answered()).isFalse();
            assertThat(runs.get()).isPositive();
            // The request stayed pending (an Error is no nack) and was taken over again after the claim time, until its
            // deadline had passed and it was answered timeout without running; never tool_failed.
            await().atMost(WAIT).until(() -> service.stats().expired() == 1);
            assertThat(service.stats().errors()).isZero();
            assertThat(service.stats().succeeded()).isZero();
            assertThat(service.stats().received()).isGreaterThanOrEqualTo(2);
        }
    }

    @Test
    void everyErrorTypeComesBackTyped() throws Exception {
        EventBus[] b = buses();
        CountDownLatch release = new CountDownLatch(1);
        CountDownLatch blockerRunning = new CountDownLatch(1);
        ToolRegistry registry = TestTools.register(ToolRegistry.builder())
                .register("boom", args -> {
                    throw new IllegalStateException("the tool broke");
                })
                .register("checked", args -> "ran", args -> {
                    if (!(args.get("n") instanceof Long)) throw new IllegalArgumentException("n must be a whole number");
                })
                .register("block", args -> {
                    blockerRunning.countDown();
                    release.await();
                    return "released";
                })
                .build();
        try (EventBus worker = b[0]; EventBus toolsBus = b[1];
             ToolService service = ToolService.start(toolsBus, registry,
                     ToolServiceConfig.builder().maxConcurrent(1).maxQueued(0).readAhead(4).build());
             ToolClient client = ToolClient.create(worker)) {
            ToolException unknown = toolError(client.call("no-such-tool", Map.of(), CALL));
            assertThat(unknown.type()).isEqualTo("unknown_tool");
            assertThat(unknown.tool()).isEqualTo("no-such-tool");
            assertThat(unknown.requestId()).matches("[0-9a-f]{32}");
            assertThat(unknown.errorMessage()).contains("no-such-tool");

            ToolException badArgument = toolError(client.call("add", Map.of("a", "x", "b", 1), CALL));
            assertThat(badArgument.type()).isEqualTo("bad_arguments");
            assertThat(badArgument.errorMessage()).isEqualTo("'a' must be a whole number");
            ToolException divZero = toolError(client.call("div", Map.of("a", 1, "b", 0), CALL));
            assertThat(divZero.type()).isEqualTo("bad_arguments");
            assertThat(divZero.errorMessage()).contains("division by zero");
            ToolException missing = toolError(client.call("mul", Map.of("a", 1), CALL));
            assertThat(missing.type()).isEqualTo("bad_arguments");
            ToolException refused = toolError(client.call("checked", Map.of("n", "x"), CALL));
            assertThat(refused.type()).isEqualTo("bad_arguments");
            assertThat(refused.errorMessage()).isEqualTo("n must be a whole number");
            assertThat(client.callBlocking("checked", Map.of("n", 1), CALL)).isEqualTo("ran");

            ToolException failed = toolError(client.call("boom", Map.of(), CALL));
            assertThat(failed.type()).isEqualTo("tool_failed");
            assertThat(failed.errorMessage()).isEqualTo("the tool broke");
            assertThatThrownBy(() -> client.callBlocking("boom", Map.of(), CALL))
                    .isInstanceOf(ToolException.class).hasMessageContaining("boom").hasMessageContaining("tool_failed");

            // One tool thread, no queue: while it is busy, the next request is answered overloaded at once.
            CompletableFuture<Object> blocker = client.call("block", Map.of(), CALL);
            assertThat(blockerRunning.await(10, TimeUnit.SECONDS)).isTrue();
            ToolException overloaded = toolError(client.call("add", Map.of("a", 1, "b", 1), CALL));
            assertThat(overloaded.type()).isEqualTo("overloaded");
            assertThat(overloaded.tool()).isEqualTo("add");
            release.countDown();
            assertThat(blocker.get(10, TimeUnit.SECONDS)).isEqualTo("released");

            await().atMost(Duration.ofSeconds(5)).until(() -> service.stats().overloaded() == 1);
            assertThat(client.stats().failed()).isEqualTo(8);
        }

        // timeout from the tools side: a tools instance whose clock runs 15 s ahead finds every 10 s deadline passed (by
        // less than its lateReplyLimit, 30 s: further behind, it would not answer at all, ToolsReplyStreamLifetimeIT).
        EventBus[] b2 = buses();
        AtomicInteger ran = new AtomicInteger();
        Clock ahead = Clock.offset(Clock.systemUTC(), CALL.plusSeconds(5));
        try (EventBus worker = b2[0];
             EventBus toolsBus = TestRedis.bus(b2[1].config().toBuilder().clock(ahead).build());
             ToolService service = ToolService.start(toolsBus, ToolRegistry.builder().register("count", a -> ran.incrementAndGet()).build());
             ToolClient client = ToolClient.create(worker)) {
            b2[1].close();
            ToolException expired = toolError(client.call("count", Map.of(), CALL));
            assertThat(expired).isInstanceOf(ToolTimeoutException.class);
            assertThat(expired.type()).isEqualTo("timeout");
            assertThat(((ToolTimeoutException) expired).answered()).isTrue();
            assertThat(((ToolTimeoutException) expired).waited()).isLessThan(CALL);
            assertThat(ran.get()).isZero();
            // The service counts a reply once Redis has stored it, which may be just after the client has read it.
            await().atMost(Duration.ofSeconds(5)).until(() -> service.stats().expired() == 1);
            assertThat(client.stats().timedOut()).isEqualTo(1);
        }
    }

    @Test
    void aCallTimesOutAndItsLateReplyIsDroppedAndCounted() throws Exception {
        EventBus[] b = buses();
        CountDownLatch release = new CountDownLatch(1);
        CountDownLatch running = new CountDownLatch(1);
        ToolRegistry registry = ToolRegistry.builder().register("slow", args -> {
            running.countDown();
            release.await();
            return "too late";
        }).register("fast", args -> "quick").build();
        try (EventBus worker = b[0]; EventBus toolsBus = b[1];
             ToolService service = ToolService.start(toolsBus, registry);
             ToolClient client = ToolClient.create(worker)) {
            long t0 = System.nanoTime();
            CompletableFuture<Object> call = client.call("slow", Map.of(), Duration.ofMillis(300));
            ToolException e = toolError(call);
            assertThat(e).isInstanceOf(ToolTimeoutException.class);
            ToolTimeoutException te = (ToolTimeoutException) e;
            assertThat(te.tool()).isEqualTo("slow");
            assertThat(te.requestId()).matches("[0-9a-f]{32}");
            assertThat(te.answered()).isFalse();
            assertThat(te.waited()).isGreaterThanOrEqualTo(Duration.ofMillis(300));
            assertThat(te.getMessage()).contains("slow").contains(te.requestId()).contains("ms");
            assertThat(Duration.ofNanos(System.nanoTime() - t0)).isGreaterThanOrEqualTo(Duration.ofMillis(300));
            assertThat(running.await(10, TimeUnit.SECONDS)).isTrue();
            assertThat(client.stats().timedOut()).isEqualTo(1);
            assertThat(client.stats().inFlight()).isZero();

            release.countDown();
            await().atMost(WAIT).until(() -> client.stats().lateReplies() == 1);
            await().atMost(WAIT).until(() -> service.stats().succeeded() == 1);
            // The client still works after dropping the late reply.
            assertThat(client.callBlocking("fast", Map.of(), CALL)).isEqualTo("quick");
            assertThatThrownBy(() -> client.callBlocking("slow", Map.of(), Duration.ZERO)).isInstanceOf(IllegalArgumentException.class);
        }
    }

    @Test
    void oneWorkerWithAThousandCallsInFlightOnOneReplyStream() throws Exception {
        EventBus[] b = buses();
        CountDownLatch gate = new CountDownLatch(1);
        ToolRegistry registry = ToolRegistry.builder().register("gate", args -> {
            gate.await();
            return Map.of("i", args.get("i"), "sq", (Long) args.get("i") * (Long) args.get("i"));
        }).build();
        try (EventBus worker = b[0]; EventBus toolsBus = b[1];
             ToolService service = ToolService.start(toolsBus, registry,
                     ToolServiceConfig.builder().maxConcurrent(8).maxQueued(1000).readAhead(0).build());
             ToolClient client = ToolClient.create(worker)) {
            List<CompletableFuture<Object>> calls = new ArrayList<>();
            for (int i = 0; i < 1000; i++) {
                calls.add(client.call("gate", Map.of("i", i), Duration.ofSeconds(60)));
            }
            // Nothing can answer before the gate opens: all 1000 are in flight at once.
            await().atMost(WAIT).until(() -> service.stats().running() == 8 && service.stats().queued() == 992);
            assertThat(client.stats().inFlight()).isEqualTo(1000);
            String readerPrefix = "stargazer-tools-reader-" + worker.config().nodeId();
            assertThat(Thread.getAllStackTraces().keySet().stream().filter(t -> t.getName().equals(readerPrefix)).count())
                    .isEqualTo(1);
            gate.countDown();
            CompletableFuture.allOf(calls.toArray(CompletableFuture[]::new)).get(60, TimeUnit.SECONDS);
            for (int i = 0; i < 1000; i++) {
                assertThat(calls.get(i).get()).isEqualTo(Map.of("i", (long) i, "sq", (long) i * i));
            }
            assertThat(client.stats()).isEqualTo(new ToolClient.Stats(1000, 1000, 0, 0, 0, 0));
            // The reply stream is trimmed of what was read.
            try (RawRedis raw = new RawRedis(TestRedis.url())) {
                await().atMost(WAIT).until(() -> raw.sync().xlen(RawRedis.b(client.replyStream())) <= 1);
            }
        }
    }

    @Test
    void severalToolsInstancesShareTheLoad() throws Exception {
        EventBus[] b = buses();
        CountDownLatch release = new CountDownLatch(1);
        Map<String, AtomicInteger> ranOn = new ConcurrentHashMap<>();
        List<ToolService> services = new ArrayList<>();
        try (EventBus worker = b[0]; EventBus toolsBus = b[1]; ToolClient client = ToolClient.create(worker)) {
            for (String name : List.of("tools-a", "tools-b", "tools-c")) {
                ToolRegistry registry = ToolRegistry.builder().register("hold", args -> {
                    ranOn.computeIfAbsent(name, k -> new AtomicInteger()).incrementAndGet();
                    release.await();
                    return name;
                }).build();
                // Two tool threads, no queue, no read-ahead: an instance reads only what it can run now.
                services.add(ToolService.start(toolsBus, registry, ToolServiceConfig.builder().consumerName(name)
                        .maxConcurrent(2).maxQueued(0).readAhead(0).build()));
            }
            List<CompletableFuture<Object>> calls = new ArrayList<>();
            for (int i = 0; i < 6; i++) calls.add(client.call("hold", Map.of(), CALL));
            // Six held at once need all three instances, two each.
            await().atMost(WAIT).until(() -> ranOn.values().stream().mapToInt(AtomicInteger::get).sum() == 6);
            assertThat(ranOn).containsOnlyKeys("tools-a", "tools-b", "tools-c");
            assertThat(ranOn.values()).allSatisfy(n -> assertThat(n.get()).isEqualTo(2));
            release.countDown();
            List<Object> results = new ArrayList<>();
            for (CompletableFuture<Object> c : calls) results.add(c.get(10, TimeUnit.SECONDS));
            assertThat(results).containsOnly("tools-a", "tools-b", "tools-c");
            assertThat(services).allSatisfy(s -> assertThat(s.stats().overloaded()).isZero());
        } finally {
            release.countDown();
            services.forEach(ToolService::close);
        }
    }

    @Test
    void theReplyStreamExpiresUnlessRefreshedAndOnlyOutlivesCloseUntilPastItsLastDeadline() {
        EventBus[] b = buses();
        try (EventBus worker = b[0]; EventBus toolsBus = b[1]; RawRedis raw = new RawRedis(TestRedis.url())) {
            ToolClient client = ToolClient.create(worker, ToolClientConfig.builder().replyTtl(Duration.ofSeconds(1)).build());
            byte[] key = RawRedis.b(client.replyStream());
            assertThat(client.replyStream()).isEqualTo(worker.topology().toolsReplyStream(worker.config().nodeId()));
            // It exists before any call, with an expiry.
            assertThat(raw.sync().exists(key)).isEqualTo(1);
            assertThat(raw.sync().pttl(key)).isBetween(1L, 1000L);
            assertThatThrownBy(() -> ToolClient.create(worker)).isInstanceOf(IllegalStateException.class);
            // Refreshed while the client lives: still there well after one expiry period.
            long t0 = System.nanoTime();
            await().atMost(WAIT).until(() -> System.nanoTime() - t0 > 2_500_000_000L && raw.sync().exists(key) == 1
                    && raw.sync().pttl(key) > 0);
            // Replies already read are trimmed; the cap is set on the stream.
            try (ToolService service = ToolService.start(toolsBus, ToolRegistry.builder().register("n", a -> 1).build())) {
                for (int i = 0; i < 50; i++) client.callBlocking("n", Map.of(), CALL);
            }
            await().atMost(WAIT).until(() -> raw.sync().xlen(key) <= 1);
            client.close();
            // Answers may come until lateReplyLimit past the last call's deadline: the stream stays until replyTtl past
            // it, then expires; close() never deletes it (ToolsReplyStreamLifetimeIT).
            assertThat(raw.sync().pttl(key)).isBetween(1L, CALL.toMillis() + 1000);
            client.close(); // idempotent
            assertThatThrownBy(() -> client.callBlocking("n", Map.of(), CALL)).isInstanceOf(StargazerException.class)
                    .hasMessageContaining("closed");
        }
    }

    @Test
    void closingTheClientFailsTheCallsInFlight() {
        EventBus[] b = buses();
        try (EventBus worker = b[0]; EventBus toolsBus = b[1]) {
            ToolClient client = ToolClient.create(worker);
            CompletableFuture<Object> call = client.call("nobody-answers", Map.of(), CALL);
            client.close();
            assertThat(call).isCompletedExceptionally();
            assertThatThrownBy(call::join).hasCauseInstanceOf(StargazerException.class).hasMessageContaining("closed");
            assertThat(client.stats().inFlight()).isZero();
            assertThat(client.stats().failed()).isEqualTo(1);
        }
    }

    /**
     * A ToolService.start that fails (here on a closed bus, as a node retrying its start would meet it) leaves no thread
     * behind. Before, the run-lease renewer ("stargazer-tool-leases") made before the subscription was refused was
     * never stopped: one more thread for good per failed start.
     */
    @Test
    void aServiceThatFailsToStartLeavesNoThreadBehind() {
        EventBus toolsBus = TestRedis.bus(TestRedis.config(NodeRole.TOOLS).topology(TestRedis.topology()).build());
        toolsBus.close();
        long before = leaseThreads();
        for (int i = 0; i < 5; i++) {
            assertThatThrownBy(() -> ToolService.start(toolsBus, TestTools.register(ToolRegistry.builder()).build()))
                    .hasMessageContaining("closed");
        }
        // A stopped thread may take a moment to end; one left running never does.
        await().atMost(Duration.ofSeconds(5)).until(() -> leaseThreads() == before);
    }

    private static long leaseThreads() {
        return Thread.getAllStackTraces().keySet().stream()
                .filter(th -> th.isAlive() && th.getName().equals("stargazer-tool-leases")).count();
    }
}
