package io.stargazer.bus.tools;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;

import io.stargazer.bus.BusConfig;
import io.stargazer.bus.Envelope;
import io.stargazer.bus.EventBus;
import io.stargazer.bus.NodeRole;
import io.stargazer.bus.RedisUrl;
import io.stargazer.bus.ServerCodeMode;
import io.stargazer.bus.StargazerException;
import io.stargazer.bus.Subscription;
import io.stargazer.bus.Topology;
import io.stargazer.bus.testing.RawRedis;
import io.stargazer.bus.testing.RedisFaults;
import io.stargazer.bus.testing.TcpProxy;
import io.stargazer.embedded.RedisServerProcess;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

// A Redis server that is killed and comes back empty, or paused (SIGSTOP): the client's reader and the service's
// subscription recover on their own, calls work again (the reply stream and the tools group are made anew), a call
// made during a pause gets its answer, and a tool still running through a pause keeps its request's lease.
@org.junit.jupiter.api.Timeout(value = 3, unit = TimeUnit.MINUTES)
class ToolsReconnectIT {
    @Test
    void callsWorkAgainAfterTheServerRestartsEmpty() {
        try (RedisServerProcess server = RedisServerProcess.builder().start()) {
            RedisUrl url = RedisUrl.parse(server.url());
            Topology t = Topology.defaults();
            try (EventBus toolsBus = EventBus.connect(url, BusConfig.builder().topology(t).role(NodeRole.TOOLS).nodeId("tools-1").build());
                 EventBus workerBus = EventBus.connect(url, BusConfig.builder().topology(t).role(NodeRole.WORKER).nodeId("worker-1").build());
                 ToolService service = ToolService.start(toolsBus, TestTools.register(ToolRegistry.builder()).build());
                 ToolClient client = ToolClient.create(workerBus)) {
                assertThat(client.callBlocking("mul", Map.of("a", 6, "b", 7), Duration.ofSeconds(5))).isEqualTo(42L);

                server.kill();
                server.restart();

                await().atMost(Duration.ofSeconds(30)).ignoreExceptions().until(() ->
                        Long.valueOf(7L).equals(client.callBlocking("add", Map.of("a", 3, "b", 4), Duration.ofSeconds(2))));
                assertThat(service.subscription().state()).isEqualTo(Subscription.State.RUNNING);
                // The reply stream has its expiry again after the restart wiped it.
                try (var raw = new io.stargazer.bus.testing.RawRedis(url)) {
                    await().atMost(Duration.ofSeconds(5)).until(() -> raw.sync().pttl(client.replyStream().getBytes()) > 0);
                }
            }
        }
    }

    /**
     * docs/tools.md: while a tool runs, a second copy of its request does not start it again. Redis is paused (SIGSTOP)
     * for longer than the lease's 10 s while the tool runs on a live instance. Before, the lease lapsed during the
     * pause and the renewal, which only extended a key that still named its owner, never took it back: a copy sent
     * any time later, while the first run still went on, ran the tool a second time.
     */
    @Test
    void aCopySentAfterRedisWasPausedLongerThanTenSecondsDoesNotStartTheRunningToolAgain() throws Exception {
        try (RedisServerProcess server = RedisServerProcess.builder().start()) {
            RedisUrl url = RedisUrl.parse(server.url());
            Topology t = Topology.builder().namespace("lease").build();
            String replyTo = "lease:replies";
            AtomicInteger runs = new AtomicInteger();
            CountDownLatch release = new CountDownLatch(1);
            ToolRegistry registry = ToolRegistry.builder().register("count", a -> {
                int n = runs.incrementAndGet();
                release.await(120, TimeUnit.SECONDS);
                return "run " + n;
            }).build();
            try (EventBus worker = EventBus.connect(url, BusConfig.builder().topology(t).role(NodeRole.WORKER).nodeId("w-1").build());
                 EventBus toolsBus = EventBus.connect(url, BusConfig.builder().topology(t).role(NodeRole.TOOLS).nodeId("tools-1").build());
                 ToolService tools = ToolService.start(toolsBus, registry, ToolServiceConfig.builder().maxConcurrent(4).build());
                 RawRedis raw = new RawRedis(url)) {
                worker.publish(t.toolsStream(), request("twice", "count", replyTo));
                await().atMost(Duration.ofSeconds(10)).until(() -> runs.get() == 1);
                byte[] lease = RawRedis.b("{" + t.toolsStream() + "}:run:twice");
                assertThat(raw.sync().pttl(lease)).as("lease held while the tool runs").isPositive();

                long pausedAt = System.nanoTime();
                try (RedisFaults.Fault paused = RedisFaults.pause(server)) {
                    await().atMost(Duration.ofSeconds(20)).pollInterval(Duration.ofMillis(200))
                            .until(() -> System.nanoTime() - pausedAt > TimeUnit.SECONDS.toNanos(11));
                }
                await().atMost(Duration.ofSeconds(30)).ignoreExceptions().until(() -> raw.sync().ping().equals("PONG")
                        && tools.subscription().state() == Subscription.State.RUNNING);
                // The lease is held again once the instance has renewed it after the pause.
                await().atMost(Duration.ofSeconds(10)).until(() -> raw.sync().pttl(lease) > 0);
                assertThat(runs.get()).isEqualTo(1);

                worker.publish(t.toolsStream(), request("twice", "count", replyTo)); // sent twice, while the first runs
                await().atMost(Duration.ofSeconds(20)).until(() -> tools.stats().received() == 2
                        && (runs.get() == 2 || toolsBus.pendingCount(t.toolsStream(), t.toolsGroup()) == 1));
                assertThat(runs.get()).as("runs of the tool for one request_id (a copy sent while the first still runs)").isEqualTo(1);
                release.countDown();
                await().atMost(Duration.ofSeconds(20)).until(() -> toolsBus.pendingCount(t.toolsStream(), t.toolsGroup()) == 0);
                assertThat(runs.get()).isEqualTo(1);
            } finally {
                release.countDown();
            }
        }
    }

    /**
     * Redis pauses (SIGSTOP) for 3 s just as a call with a 30 s timeout is made on a worker whose publish timeout is
     * 1 s. The request is stored when Redis resumes and its tool answers well within the call's time. Before, the
     * client failed the call at the publish timeout (its outcome unknown: "may or may not be stored") and forgot it,
     * so the answer was dropped as late, and a caller that tried again ran the tool a second time.
     */
    @Test
    void aCallMadeDuringAShortPauseGetsItsAnswerNotAPublishError() throws Exception {
        try (RedisServerProcess server = RedisServerProcess.builder().start()) {
            RedisUrl url = RedisUrl.parse(server.url());
            Topology t = Topology.builder().namespace("pausedcall").build();
            try (EventBus toolsBus = EventBus.connect(url, BusConfig.builder().topology(t).role(NodeRole.TOOLS).nodeId("tools-1").build());
                 EventBus workerBus = EventBus.connect(url, BusConfig.builder().topology(t).role(NodeRole.WORKER).nodeId("worker-1")
                         .publishTimeout(Duration.ofSeconds(1)).build());
                 ToolService service = ToolService.start(toolsBus, TestTools.register(ToolRegistry.builder()).build());
                 ToolClient client = ToolClient.create(workerBus)) {
                assertThat(client.callBlocking("add", Map.of("a", 1, "b", 1), Duration.ofSeconds(5))).isEqualTo(2L);

                CompletableFuture<Object> call;
                long pausedAt = System.nanoTime();
                try (RedisFaults.Fault paused = RedisFaults.pause(server)) {
                    call = client.call("add", Map.of("a", 3, "b", 4), Duration.ofSeconds(30));
                    await().atMost(Duration.ofSeconds(10)).pollInterval(Duration.ofMillis(100))
                            .until(() -> System.nanoTime() - pausedAt > TimeUnit.SECONDS.toNanos(3));
                }
                await().atMost(Duration.ofSeconds(30)).until(() -> service.stats().succeeded() >= 2);
                assertThat(call.get(10, TimeUnit.SECONDS)).isEqualTo(7L);
                assertThat(client.stats().lateReplies()).isZero();
                assertThat(service.stats().succeeded()).as("runs of the tool").isEqualTo(2);
            }
        }
    }

    /**
     * docs/tools.md: close() waits for Redis at most the bus's dead-peer timeout, and fails the calls in flight at once.
     * Redis is paused (SIGSTOP) with a call waiting; the worker's dead-peer timeout is 1 s. Before, close() took about
     * 23 s (its CLIENT UNBLOCK, the reader's join and the reply stream's last expiry each waited out the 10 s command
     * timeout or its own bound in turn), and the waiting call was failed only after the first 13 s of it.
     */
    @Test
    void closeWhileRedisIsPausedEndsWithinTheDeadPeerTimeoutAndFailsTheWaitingCallAtOnce() throws Exception {
        try (RedisServerProcess server = RedisServerProcess.builder().start()) {
            RedisUrl url = RedisUrl.parse(server.url());
            Topology t = Topology.builder().namespace("pausedclose").build();
            Duration deadPeer = Duration.ofSeconds(1);
            CountDownLatch release = new CountDownLatch(1);
            ToolRegistry registry = TestTools.register(ToolRegistry.builder()).register("hold", a -> release.await(60, TimeUnit.SECONDS)).build();
            try (EventBus toolsBus = EventBus.connect(url, BusConfig.builder().topology(t).role(NodeRole.TOOLS).nodeId("tools-1").build());
                 EventBus workerBus = EventBus.connect(url, BusConfig.builder().topology(t).role(NodeRole.WORKER).nodeId("worker-1")
                         .deadPeerTimeout(deadPeer).build());
                 ToolService service = ToolService.start(toolsBus, registry)) {
                ToolClient client = ToolClient.create(workerBus);
                assertThat(client.callBlocking("add", Map.of("a", 1, "b", 1), Duration.ofSeconds(5))).isEqualTo(2L);
                CompletableFuture<Object> waiting = client.call("hold", Map.of(), Duration.ofMinutes(2));
                await().atMost(Duration.ofSeconds(10)).until(() -> service.stats().running() == 1);
                try (RedisFaults.Fault paused = RedisFaults.pause(server)) {
                    CompletableFuture<Void> closing = CompletableFuture.runAsync(client::close);
                    // Deadlines well above the 1 s bound (a loaded machine), well below what close() took before.
                    await("the waiting call ends").atMost(Duration.ofSeconds(5)).until(waiting::isDone);
                    await("close() returns while Redis is still paused").atMost(Duration.ofSeconds(6)).until(closing::isDone);
                    closing.get();
                }
                assertThat(waiting).isCompletedExceptionally();
                assertThatThrownBy(waiting::get).cause().isInstanceOf(StargazerException.class)
                        .hasMessageContaining("the tool client closed before tool 'hold'");
                release.countDown();
            } finally {
                release.countDown();
            }
        }
    }

    /**
     * docs/tools.md: a reply Redis did not take when its tool returned is kept with the request's lease, so the tool does
     * not run again. Redis refuses writes (out of memory) as the tool returns, for longer than the lease (10 s); as
     * writes come back, the instance holding the reply is cut off from Redis for 4 s, and another instance (claim time
     * 500 ms) takes the request over. Before, the instance only tried to store the reply at each renewal turn and never
     * renewed the lease, which a store refused for lack of memory does not need: the lease lapsed during the outage, and
     * the other instance ran the tool a second time. Under the library's functions (library version 7 and before) Redis
     * out of memory refused {@code sg_tool_renew} as a whole, so there the lease lapsed all the same and the tool ran
     * twice; from version 8 the renewal falls back to {@code sg_tool_keep}, which carries {@code allow-oom}.
     */
    @ParameterizedTest
    @EnumSource(value = ServerCodeMode.class, names = {"SCRIPTS", "FUNCTIONS"})
    void aReplyKeptThroughAnOutOfMemoryOutageKeepsItsLeaseSoTheToolRunsOnce(ServerCodeMode mode) throws Exception {
        try (RedisServerProcess server = RedisServerProcess.builder().start()) {
            RedisUrl url = RedisUrl.parse(server.url());
            Topology t = Topology.builder().namespace("keptlease").build();
            AtomicInteger runs = new AtomicInteger();
            CountDownLatch release = new CountDownLatch(1);
            ToolRegistry registry = TestTools.firstRunWaits(runs, release);
            ToolServiceConfig shortClaim = ToolServiceConfig.builder().claimIdle(Duration.ofMillis(500)).build();
            // Scripts, as on a server without the library: out of memory, a script's PEXPIRE still runs, its SET does not.
            // Functions: Redis refuses a function without allow-oom as a whole.
            BusConfig.Builder tools = BusConfig.builder().topology(t).role(NodeRole.TOOLS).serverCode(mode);
            if (mode == ServerCodeMode.FUNCTIONS) io.stargazer.bus.Provisioning.provision(url, tools.nodeId("provisioner").build());
            try (TcpProxy proxy = TcpProxy.to(url);
                 EventBus worker = EventBus.connect(url, BusConfig.builder().topology(t).role(NodeRole.WORKER).nodeId("w-1").build());
                 EventBus busA = EventBus.connect(proxy.url(), tools.nodeId("tools-a").build());
                 EventBus busB = EventBus.connect(url, tools.nodeId("tools-b").build());
                 ToolService a = ToolService.start(busA, registry, shortClaim);
                 ToolClient client = ToolClient.create(worker)) {
                CompletableFuture<Object> call = client.call("count", Map.of(), Duration.ofSeconds(90));
                await().atMost(Duration.ofSeconds(10)).until(() -> runs.get() == 1);
                try (ToolService b = ToolService.start(busB, registry, shortClaim)) {
                    try (RedisFaults.Fault oom = RedisFaults.refuseWrites(url)) {
                        long refusedAt = System.nanoTime();
                        release.countDown(); // the tool returns while Redis refuses writes: its reply is kept
                        await().atMost(Duration.ofSeconds(30)).pollInterval(Duration.ofMillis(200))
                                .until(() -> System.nanoTime() - refusedAt > TimeUnit.SECONDS.toNanos(12));
                        proxy.freezeAll();
                    }
                    long cutAt = System.nanoTime();
                    await().atMost(Duration.ofSeconds(20)).pollInterval(Duration.ofMillis(100))
                            .until(() -> runs.get() == 2 || System.nanoTime() - cutAt > TimeUnit.SECONDS.toNanos(4));
                    proxy.unfreeze();
                    assertThat(call.get(60, TimeUnit.SECONDS)).isEqualTo("run 1");
                    await().atMost(Duration.ofSeconds(30)).until(() -> worker.pendingCount(t.toolsStream(), t.toolsGroup()) == 0);
                    assertThat(runs.get()).as("runs of the tool for one request").isEqualTo(1);
                }
            } finally {
                release.countDown();
            }
        }
    }

    /**
     * A reply that reaches a tools client's stream while Redis is out of memory is read. The client's reader keeps its
     * reply stream up (expiry, trim of what was read) every tick before it reads; under the library that upkeep,
     * {@code sg_reply_stream_maintain}, carried no {@code allow-oom} flag and was refused as a whole, so every turn failed
     * before its read and the call waited, its answer in the stream, until memory came back (library version 8 and
     * before). The reply is written here the way a tools service in another process writes it, in a moment when the
     * test lifts the limit; the client's reader has meanwhile turned at least twice under it.
     */
    @ParameterizedTest
    @EnumSource(value = ServerCodeMode.class, names = {"SCRIPTS", "FUNCTIONS"})
    void aReplyThatArrivesWhileRedisIsOutOfMemoryIsRead(ServerCodeMode mode) throws Exception {
        try (RedisServerProcess server = RedisServerProcess.builder().start()) {
            RedisUrl url = RedisUrl.parse(server.url());
            Topology t = Topology.builder().namespace("oomreply").build();
            BusConfig.Builder worker = BusConfig.builder().topology(t).role(NodeRole.WORKER).nodeId("w-1").serverCode(mode);
            if (mode == ServerCodeMode.FUNCTIONS) {
                io.stargazer.bus.Provisioning.provision(url, BusConfig.builder().topology(t).role(NodeRole.TOOLS).nodeId("provisioner").build());
            }
            try (EventBus bus = EventBus.connect(url, worker.build());
                 ToolClient client = ToolClient.create(bus);
                 RawRedis raw = new RawRedis(url)) {
                CompletableFuture<Object> call = client.call("count", Map.of(), Duration.ofSeconds(60));
                await().atMost(Duration.ofSeconds(10)).until(() -> raw.xlen(t.toolsStream()) == 1);
                Envelope request = io.stargazer.bus.wire.WireFormat.decodeEntry(RawRedis.fields(raw.xrange(t.toolsStream()).get(0)));
                byte[] reply = io.stargazer.bus.wire.WireFormat.encode(
                        Envelope.of("request_id", request.string("request_id"), "ok", true, "result", "answered"));
                try (RedisFaults.Fault oom = RedisFaults.refuseWrites(url)) {
                    long before = scriptCalls(raw);
                    await().atMost(Duration.ofSeconds(20)).pollInterval(Duration.ofMillis(50)).until(() -> scriptCalls(raw) >= before + 2);
                    raw.sync().configSet("maxmemory", "0");
                    raw.xadd(request.string("reply_to"), "payload", reply);
                    raw.sync().configSet("maxmemory", "1");
                    assertThat(call.get(30, TimeUnit.SECONDS)).isEqualTo("answered");
                }
            }
        }
    }

    /** Script and function calls the server ran or refused: the client's reader turns, each tick runs its upkeep. */
    private static long scriptCalls(RawRedis raw) {
        long n = 0;
        for (String line : raw.sync().info("commandstats").split("\\r?\\n")) {
            if (!line.startsWith("cmdstat_fcall:") && !line.startsWith("cmdstat_evalsha:") && !line.startsWith("cmdstat_eval:")) continue;
            for (String kv : line.substring(line.indexOf(':') + 1).split(",")) {
                if (kv.startsWith("calls=") || kv.startsWith("rejected_calls=")) n += Long.parseLong(kv.substring(kv.indexOf('=') + 1));
            }
        }
        return n;
    }

    private static Envelope request(String requestId, String tool, String replyTo) {
        return Envelope.of("request_id", requestId, "tool", tool, "args", Map.of(), "reply_to", replyTo);
    }
}
