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
}
