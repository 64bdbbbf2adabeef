package io.stargazer.bus;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.stargazer.bus.testing.TestRedis;
import io.stargazer.embedded.RedisServerProcess;
import io.stargazer.testing.TestServers;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

// Redis 6.2 has no functions: the bus keeps its scripts (issue 18), provisioning only creates the groups, and asking
// for functions fails at connect naming the reason.
class ServerCodeRedis62IT {
    private static RedisServerProcess server;

    @BeforeAll
    static void start() {
        server = TestServers.redis62().start();
    }

    @AfterAll
    static void stop() {
        server.stop();
    }

    @Test
    void theBusKeepsScriptsAndProvisioningCreatesOnlyTheGroups() throws Exception {
        RedisUrl url = RedisUrl.parse(server.url());
        Topology t = TestRedis.topology();
        BusConfig config = BusConfig.builder().topology(t).role(NodeRole.STANDALONE).nodeId("n62").platforms(List.of("webchat")).build();
        Provisioning.Result r = Provisioning.provision(url, config);
        assertThat(r.actions()).first().asString().startsWith("no library: Redis 6.2");
        assertThat(r.actions()).contains("created group " + t.workerGroup() + " on " + t.inboundStream());
        assertThat(Provisioning.provision(url, config).changed()).isFalse();
        try (EventBus bus = EventBus.connect(url, config)) {
            assertThat(bus.serverCode()).isEqualTo(ServerCodeMode.SCRIPTS);
            // Today's path still works: a coalesced batch (a script) and a paused group.
            var sent = new java.util.ArrayList<java.util.concurrent.CompletableFuture<String>>();
            for (int i = 0; i < 50; i++) sent.add(bus.publishInboundAsync(Envelope.of("channel_id", "c", "content", "m" + i)));
            for (var f : sent) f.get();
            assertThat(bus.streamInfo(t.inboundStream()).orElseThrow().length()).isEqualTo(50);
            assertThat(bus.pause(t.inboundStream(), t.workerGroup())).isTrue();
            assertThat(bus.paused(t.inboundStream(), t.workerGroup())).isTrue();
            assertThat(bus.resume(t.inboundStream(), t.workerGroup())).isTrue();
        }
        assertThatThrownBy(() -> EventBus.connect(url, config.toBuilder().serverCode(ServerCodeMode.FUNCTIONS).build()))
                .isInstanceOf(StargazerException.class).hasMessageContaining("has no functions");
    }

    /**
     * The tools' run-once scripts on Redis 6.2 (scripts, as on a cluster): a lease that lapses while its tool runs is
     * taken back by the renewal, so a copy of the request does not run the tool again, and the reply is stored once.
     */
    @Test
    void aToolsLapsedLeaseIsTakenBackWithScripts() throws Exception {
        RedisUrl url = RedisUrl.parse(server.url());
        Topology t = TestRedis.topology();
        String replyTo = t.toolsReplyStream("w62");
        java.util.concurrent.atomic.AtomicInteger runs = new java.util.concurrent.atomic.AtomicInteger();
        java.util.concurrent.CountDownLatch release = new java.util.concurrent.CountDownLatch(1);
        io.stargazer.bus.tools.ToolRegistry registry = io.stargazer.bus.tools.ToolRegistry.builder().register("hold", a -> {
            int n = runs.incrementAndGet();
            release.await(60, java.util.concurrent.TimeUnit.SECONDS);
            return "run " + n;
        }).build();
        BusConfig config = BusConfig.builder().topology(t).role(NodeRole.STANDALONE).nodeId("t62").build();
        try (EventBus bus = EventBus.connect(url, config);
             io.stargazer.bus.tools.ToolService tools = io.stargazer.bus.tools.ToolService.start(bus, registry);
             io.stargazer.bus.testing.RawRedis raw = new io.stargazer.bus.testing.RawRedis(url)) {
            assertThat(bus.serverCode()).isEqualTo(ServerCodeMode.SCRIPTS);
            Envelope request = Envelope.of("request_id", "r62", "tool", "hold", "args", java.util.Map.of(), "reply_to", replyTo);
            bus.publish(t.toolsStream(), request);
            org.awaitility.Awaitility.await().atMost(java.time.Duration.ofSeconds(10)).until(() -> runs.get() == 1);
            byte[] lease = io.stargazer.bus.testing.RawRedis.b(Topology.slotKey(t.toolsStream(), "run:r62"));
            raw.sync().del(lease);
            org.awaitility.Awaitility.await().atMost(java.time.Duration.ofSeconds(10)).until(() -> raw.sync().pttl(lease) > 0);
            bus.publish(t.toolsStream(), request);
            org.awaitility.Awaitility.await().atMost(java.time.Duration.ofSeconds(10)).until(() -> tools.stats().received() == 2
                    && (runs.get() == 2 || bus.pendingCount(t.toolsStream(), t.toolsGroup()) == 1));
            release.countDown();
            org.awaitility.Awaitility.await().atMost(java.time.Duration.ofSeconds(10))
                    .until(() -> bus.pendingCount(t.toolsStream(), t.toolsGroup()) == 0);
            assertThat(runs.get()).isEqualTo(1);
            assertThat(raw.xrange(replyTo)).hasSize(1);
            assertThat(raw.sync().exists(io.stargazer.bus.testing.RawRedis.b(Topology.slotKey(t.toolsStream(), "result:r62")))).isOne();
        } finally {
            release.countDown();
        }
    }
}
