package io.stargazer.bus.spring.autoconfigure;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.stargazer.bus.BusConfig;
import io.stargazer.bus.Delivery;
import io.stargazer.bus.Envelope;
import io.stargazer.bus.EventBus;
import io.stargazer.bus.NodeRole;
import io.stargazer.bus.RedisUrl;
import io.stargazer.bus.TrimPolicy;
import io.stargazer.bus.micrometer.BusMetrics;
import io.stargazer.bus.spring.StargazerListener;
import io.stargazer.bus.spring.StargazerListeners;
import io.stargazer.bus.tools.ToolClient;
import io.stargazer.bus.tools.ToolRegistry;
import io.stargazer.bus.tools.ToolService;
import io.stargazer.testing.TestServers;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.ConcurrentLinkedQueue;
import org.junit.jupiter.api.Test;
import org.springframework.boot.autoconfigure.AutoConfigurations;
import org.springframework.boot.health.contributor.Health;
import org.springframework.boot.health.contributor.Status;
import org.springframework.boot.test.context.runner.ApplicationContextRunner;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;

// The auto-configuration against a real Redis (TestServers): defaults, properties, back-off, a bad property named.
class StargazerBusAutoConfigurationTest {
    private static final Duration WAIT = Duration.ofSeconds(20);

    private final ApplicationContextRunner runner = new ApplicationContextRunner()
            .withConfiguration(AutoConfigurations.of(StargazerBusAutoConfiguration.class))
            .withPropertyValues("stargazer.bus.url=" + TestServers.url(),
                    "stargazer.bus.topology.namespace=" + TestServers.namespace());

    @Test
    void defaultsGiveABusAToolClientListenersHealthAndMetricsButNoToolService() {
        runner.run(ctx -> {
            assertThat(ctx).hasNotFailed();
            assertThat(ctx).hasSingleBean(EventBus.class).hasSingleBean(ToolClient.class).hasSingleBean(StargazerListeners.class)
                    .hasSingleBean(StargazerHealthIndicator.class).hasSingleBean(BusMetrics.class).doesNotHaveBean(ToolService.class);
            BusConfig c = ctx.getBean(EventBus.class).config();
            assertThat(c.role()).isEqualTo(BusConfig.DEFAULT_ROLE);
            assertThat(c.streamMaxlen()).isEqualTo(BusConfig.DEFAULT_STREAM_MAXLEN);
            assertThat(c.publishTimeout()).isEqualTo(BusConfig.DEFAULT_PUBLISH_TIMEOUT);
            Health h = ctx.getBean(StargazerHealthIndicator.class).health(true);
            assertThat(h.getStatus()).isEqualTo(Status.UP);
            assertThat(h.getDetails()).containsKeys("ping_ms", "server_version", "subscriptions");
        });
    }

    @Test
    void propertiesReachTheBusConfigAndTopology() {
        runner.withPropertyValues("stargazer.bus.role=worker", "stargazer.bus.node-id=w-7", "stargazer.bus.stream-maxlen=5000",
                "stargazer.bus.trim-policy=evict", "stargazer.bus.publish-timeout=3s", "stargazer.bus.platforms=discord,webchat",
                "stargazer.bus.topology.inbound-partitions=3", "stargazer.bus.dedupe-window=90s", "stargazer.bus.server-code=scripts").run(ctx -> {
            assertThat(ctx).hasNotFailed();
            BusConfig c = ctx.getBean(EventBus.class).config();
            assertThat(c.role()).isEqualTo(NodeRole.WORKER);
            assertThat(c.nodeId()).isEqualTo("w-7");
            assertThat(c.streamMaxlen()).isEqualTo(5000);
            assertThat(c.trimPolicy()).isEqualTo(TrimPolicy.EVICT);
            assertThat(c.publishTimeout()).isEqualTo(Duration.ofSeconds(3));
            assertThat(c.platforms()).containsExactly("discord", "webchat");
            assertThat(c.topology().inboundStreams()).hasSize(3);
            assertThat(c.dedupeWindow()).isEqualTo(Duration.ofSeconds(90));
            assertThat(c.serverCode()).isEqualTo(io.stargazer.bus.ServerCodeMode.SCRIPTS);
        });
    }

    @Test
    void aBadPropertyIsNamedInTheStartUpFailure() {
        runner.withPropertyValues("stargazer.bus.publish-queue-limit=0").run(ctx -> {
            assertThat(ctx).hasFailed();
            assertThat(ctx.getStartupFailure()).hasStackTraceContaining("Invalid value for property 'stargazer.bus.publish-queue-limit'");
        });
        runner.withPropertyValues("stargazer.bus.consumer.max-deliveries=-1").withUserConfiguration(Listeners.class).run(ctx -> {
            assertThat(ctx).hasFailed();
            assertThat(ctx.getStartupFailure()).hasStackTraceContaining("Invalid value for property 'stargazer.bus.consumer.max-deliveries'");
        });
    }

    @Test
    void theApplicationsOwnBeansWin() {
        EventBus own = EventBus.connect(RedisUrl.parse(TestServers.url()), BusConfig.builder().nodeId("own").build());
        try {
            runner.withBean(EventBus.class, () -> own).withUserConfiguration(OwnTools.class).run(ctx -> {
                assertThat(ctx).hasNotFailed();
                assertThat(ctx.getBean(EventBus.class)).isSameAs(own);
                assertThat(ctx.getBean(ToolClient.class)).isSameAs(ctx.getBean(OwnTools.class).client);
                assertThat(ctx).hasSingleBean(ToolService.class); // a ToolRegistry bean turns the service on
            });
        } finally {
            own.close();
        }
    }

    @Test
    void listenerMethodsGetEnvelopesDeliveriesAndBatchesAndAFailingHandlerKeepsListening() {
        runner.withUserConfiguration(Listeners.class).withPropertyValues("test.stream=orders", "stargazer.bus.consumer.retry-backoff=20ms")
                .run(ctx -> {
            assertThat(ctx).hasNotFailed();
            EventBus bus = ctx.getBean(EventBus.class);
            Listeners l = ctx.getBean(Listeners.class);
            String stream = ctx.getEnvironment().getProperty("stargazer.bus.topology.namespace") + ":orders";
            for (int i = 0; i < 5; i++) bus.publish(stream, Envelope.of("channel_id", "c", "n", i));
            await().atMost(WAIT).until(() -> l.envelopes.size() == 5 && l.batched.size() == 5);
            // The first delivery of n=0 threw: the bus delivered it again, and the listener went on.
            assertThat(l.failures).hasValue(1);
            assertThat(l.envelopes.stream().map(e -> e.longValue("n", -1)).toList()).containsExactlyInAnyOrder(0L, 1L, 2L, 3L, 4L);
            assertThat(ctx.getBean(StargazerListeners.class).subscriptions()).hasSize(2);
            await().atMost(WAIT).until(() -> bus.pendingCount(stream, "g1") == 0 && bus.pendingCount(stream, "g2") == 0);
        });
    }

    @Configuration(proxyBeanMethods = false)
    static class Listeners {
        final ConcurrentLinkedQueue<Envelope> envelopes = new ConcurrentLinkedQueue<>();
        final ConcurrentLinkedQueue<Delivery> batched = new ConcurrentLinkedQueue<>();
        final java.util.concurrent.atomic.AtomicInteger failures = new java.util.concurrent.atomic.AtomicInteger();

        @StargazerListener(stream = "${stargazer.bus.topology.namespace}:${test.stream:orders}", group = "g1", concurrency = "2")
        void one(Envelope e) {
            if (e.longValue("n", -1) == 0 && failures.compareAndSet(0, 1)) throw new IllegalStateException("first try fails");
            envelopes.add(e);
        }

        @StargazerListener(stream = "${stargazer.bus.topology.namespace}:orders", group = "g2", batch = true, batchSize = "3", batchWait = "50ms")
        void many(List<Delivery> ds) {
            batched.addAll(ds);
        }
    }

    @Configuration(proxyBeanMethods = false)
    static class OwnTools {
        ToolClient client;

        @Bean
        ToolClient ownClient(EventBus bus) {
            client = ToolClient.create(bus);
            return client;
        }

        @Bean
        ToolRegistry registry() {
            return ToolRegistry.builder().register("echo", args -> args.get("v")).build();
        }
    }
}
