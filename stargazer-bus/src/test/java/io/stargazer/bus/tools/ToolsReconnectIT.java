package io.stargazer.bus.tools;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.stargazer.bus.BusConfig;
import io.stargazer.bus.EventBus;
import io.stargazer.bus.NodeRole;
import io.stargazer.bus.RedisUrl;
import io.stargazer.bus.Subscription;
import io.stargazer.bus.Topology;
import io.stargazer.embedded.RedisServerProcess;
import java.time.Duration;
import java.util.Map;
import org.junit.jupiter.api.Test;

// A Redis server that is killed and comes back empty: the client's reader and the service's subscription recover on
// their own, and calls work again (the reply stream and the tools group are made anew).
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
}
