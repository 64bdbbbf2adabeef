package io.stargazer.bus;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.stargazer.bus.testing.TcpProxy;
import io.stargazer.bus.testing.TestRedis;
import io.stargazer.bus.tools.ToolClient;
import io.stargazer.bus.tools.ToolClientConfig;
import io.stargazer.bus.tools.ToolRegistry;
import io.stargazer.bus.tools.ToolService;
import java.time.Duration;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * A blocking reader whose connection goes silent (a frozen flow: a dropped NAT entry, a half-open connection) gives up
 * and reconnects within its own BLOCK plus the dead-peer timeout, as docs/reliability.md says. Before, every reader
 * waited the longest BLOCK (5 s) plus it, whatever its own: a subscription blocking 200 ms, or a tools client blocking
 * 1 s, stayed deaf that much longer, and a tools call timed out with its reply sitting unread (found by the review of
 * the tools client). The bounds below leave seconds of room either way: with a dead-peer timeout of 1 s the readers
 * are back after about 1.2 s and 2 s, where the old fixed timeout took 6 s.
 */
@Timeout(value = 2, unit = TimeUnit.MINUTES)
class ReaderTimeoutIT {
    private static final Duration DEAD_PEER = Duration.ofSeconds(1);

    @Test
    void aSubscriptionWhoseReadGoesSilentReadsAgainWithinItsBlockPlusTheDeadPeerTimeout() throws Exception {
        Topology t = TestRedis.topology();
        String stream = t.inboundStream();
        try (TcpProxy link = TcpProxy.to(TestRedis.url());
             EventBus direct = TestRedis.bus(TestRedis.config(NodeRole.GATEWAY).topology(t).build());
             EventBus behind = EventBus.connect(link.url(), TestRedis.config(NodeRole.WORKER).topology(t).deadPeerTimeout(DEAD_PEER).build())) {
            behind.ensureGroup(stream, t.workerGroup());
            Set<String> received = ConcurrentHashMap.newKeySet();
            try (Subscription sub = behind.subscribe(ConsumerConfig.builder(stream, t.workerGroup()).consumerName("c")
                    .blockTimeout(Duration.ofMillis(200)).build(), d -> received.add(d.envelope().content()))) {
                direct.publish(stream, Envelope.of("channel_id", "c", "content", "before"));
                await().atMost(Duration.ofSeconds(20)).until(() -> received.contains("before"));

                link.freezeExisting(); // the reader's open flow carries nothing from now on; new connections work
                direct.publish(stream, Envelope.of("channel_id", "c", "content", "during"));

                await().atMost(Duration.ofMillis(4500)).until(() -> received.contains("during"));
            }
        }
    }

    @Test
    void aToolsCallWhoseReplyReaderGoesSilentGetsItsReplyWithinItsTimeout() throws Exception {
        Topology t = TestRedis.topology();
        CountDownLatch started = new CountDownLatch(1);
        CountDownLatch release = new CountDownLatch(1);
        ToolRegistry registry = ToolRegistry.builder().register("gate", a -> {
            started.countDown();
            release.await(30, TimeUnit.SECONDS);
            return "answered";
        }).build();
        try (TcpProxy link = TcpProxy.to(TestRedis.url());
             EventBus toolsBus = TestRedis.bus(TestRedis.config(NodeRole.TOOLS).topology(t).build());
             EventBus workerBus = EventBus.connect(link.url(), TestRedis.config(NodeRole.WORKER).topology(t).deadPeerTimeout(DEAD_PEER).build());
             ToolService service = ToolService.start(toolsBus, registry);
             ToolClient client = ToolClient.create(workerBus, ToolClientConfig.builder().blockTimeout(Duration.ofSeconds(1)).build())) {
            CompletableFuture<Object> call = client.call("gate", Map.of(), Duration.ofMillis(5500));
            assertThat(started.await(20, TimeUnit.SECONDS)).isTrue();
            link.freezeExisting();
            release.countDown(); // the answer goes to the reply stream straight away: the tools bus is not behind the proxy
            await().atMost(Duration.ofSeconds(5)).until(() -> service.stats().succeeded() == 1);

            assertThat(call.get(20, TimeUnit.SECONDS)).isEqualTo("answered");
        }
    }
}
