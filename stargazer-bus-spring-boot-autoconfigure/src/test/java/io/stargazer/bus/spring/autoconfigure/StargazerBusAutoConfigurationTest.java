package io.stargazer.bus.spring.autoconfigure;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.stargazer.bus.BusConfig;
import io.stargazer.bus.ConsumerConfig;
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
import io.stargazer.bus.tools.ToolClientConfig;
import io.stargazer.bus.tools.ToolRegistry;
import io.stargazer.bus.tools.ToolService;
import io.stargazer.bus.tools.ToolServiceConfig;
import io.stargazer.testing.TestServers;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentLinkedQueue;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.springframework.boot.autoconfigure.AutoConfigurations;
import org.springframework.boot.health.contributor.Health;
import org.springframework.boot.health.contributor.Status;
import org.springframework.boot.test.context.runner.ApplicationContextRunner;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;

// The auto-configuration against a real Redis (TestServers): defaults, properties, back-off, a bad property named.
@Timeout(120)
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
                "stargazer.bus.topology.inbound-partitions=3", "stargazer.bus.dedupe-window=90s", "stargazer.bus.server-code=scripts",
                "stargazer.bus.publish-via=relay", "stargazer.bus.topology.outbox-prefix=ob",
                "stargazer.bus.blocking-publish-connections=2").run(ctx -> {
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
            assertThat(c.publishVia()).isEqualTo(io.stargazer.bus.PublishVia.RELAY);
            assertThat(c.topology().outboxPrefix()).endsWith("ob");
            assertThat(c.blockingPublishConnections()).isEqualTo(2);
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

    @Configuration(proxyBeanMethods = false)
    static class StartedLater {
        @StargazerListener(id = "later", stream = "${stargazer.bus.topology.namespace}:later", group = "g", autoStartup = false)
        void on(Envelope e) {
        }
    }

    /**
     * The consumer properties are checked at start-up, whatever the listeners: before, a bad one failed only a
     * listener's start, so an application with none, or with only autoStartup = false ones, started without complaint
     * and the error came at start(id).
     */
    @Test
    void aBadConsumerPropertyFailsTheStartUpWithoutAListenerStarting() {
        Map<List<String>, String> refused = Map.of(
                List.of("stargazer.bus.consumer.max-deliveries=-1"),
                "Invalid value for property 'stargazer.bus.consumer.max-deliveries': SG_MAX_DELIVERIES: '-1' must be greater than zero",
                List.of("stargazer.bus.consumer.close-timeout=-3s"),
                "Invalid value for property 'stargazer.bus.consumer.close-timeout': closeTimeout: '-3000 ms' must be a positive duration",
                List.of("stargazer.bus.consumer.retry-backoff=5s", "stargazer.bus.consumer.max-retry-backoff=1s"),
                "Invalid value for property 'stargazer.bus.consumer.retry-backoff': SG_RETRY_BACKOFF_MS: retryBackoff 5000 ms is longer"
                        + " than maxRetryBackoff (SG_MAX_RETRY_BACKOFF_MS) 1000 ms",
                List.of("stargazer.bus.consumer.consumer-name="),
                "Invalid value for property 'stargazer.bus.consumer.consumer-name': SG_NODE_ID: must not be empty");
        refused.forEach((properties, message) -> {
            for (ApplicationContextRunner r : List.of(runner, runner.withUserConfiguration(StartedLater.class))) {
                r.withPropertyValues(properties.toArray(String[]::new)).run(ctx -> {
                    assertThat(ctx).as("%s", properties).hasFailed();
                    assertThat(ctx.getStartupFailure()).as("%s", properties).hasStackTraceContaining(message);
                });
            }
        });
    }

    /**
     * The INFO lines of a group created (here by a listener's start) and deleted name it and its stream in their text:
     * before, only in key-values, which Spring Boot's default log pattern leaves out.
     */
    @Test
    @org.junit.jupiter.api.extension.ExtendWith(org.springframework.boot.test.system.OutputCaptureExtension.class)
    void theLinesOfAGroupCreatedAndDeletedNameTheGroupAndTheStream(org.springframework.boot.test.system.CapturedOutput output) {
        runner.withUserConfiguration(Forwarding.class).run(ctx -> {
            assertThat(ctx).hasNotFailed();
            String ns = ctx.getEnvironment().getProperty("stargazer.bus.topology.namespace");
            assertThat(output.getAll()).contains("Created consumer group 'g' on stream '" + ns + ":traced'");
            EventBus bus = ctx.getBean(EventBus.class);
            bus.ensureGroup(ns + ":gone", "h");
            bus.deleteGroup(ns + ":gone", "h");
            assertThat(output.getAll()).contains("Deleted consumer group 'h' on stream '" + ns + ":gone'");
        });
    }

    /** SG_INBOUND_PARTITIONS_ALSO as a property: it reaches the topology, and a value out of range is named with it. */
    @Test
    void theOtherPartitionCountOfAChangeIsAProperty() throws Exception {
        runner.withPropertyValues("stargazer.bus.topology.inbound-partitions=3", "stargazer.bus.topology.inbound-partitions-also=2").run(ctx -> {
            assertThat(ctx).hasNotFailed();
            io.stargazer.bus.Topology t = ctx.getBean(EventBus.class).config().topology();
            assertThat(t.inboundStreams()).hasSize(3);
            assertThat(t.alsoInboundPartitions()).isEqualTo(2);
        });
        runner.run(ctx -> assertThat(ctx.getBean(EventBus.class).config().topology().alsoInboundPartitions()).isZero());
        for (String bad : List.of("0", "1025", "-3")) {
            runner.withPropertyValues("stargazer.bus.topology.inbound-partitions-also=" + bad).run(ctx -> {
                assertThat(ctx).hasFailed();
                assertThat(ctx.getStartupFailure()).as(bad)
                        .hasStackTraceContaining("Invalid value for property 'stargazer.bus.topology.inbound-partitions-also': "
                                + "SG_INBOUND_PARTITIONS_ALSO: '" + bad + "' must be between 1 and 1024");
            });
        }
        runner.withPropertyValues("stargazer.bus.topology.inbound-partitions-also=two").run(ctx -> {
            assertThat(ctx).hasFailed();
            assertThat(ctx.getStartupFailure()).hasStackTraceContaining("stargazer.bus.topology.inbound-partitions-also")
                    .hasStackTraceContaining("two");
        });
        // Checked with the inbound name by build(): a hash tag would pin the other count's partitions to one slot.
        runner.withPropertyValues("stargazer.bus.topology.inbound-stream=in{x}", "stargazer.bus.topology.inbound-partitions-also=3").run(ctx -> {
            assertThat(ctx).hasFailed();
            assertThat(ctx.getStartupFailure()).hasStackTraceContaining("Invalid value for property 'stargazer.bus.topology.inbound-stream'")
                    .hasStackTraceContaining("SG_INBOUND_PARTITIONS_ALSO");
        });
        JsonNode metadata;
        try (var in = getClass().getResourceAsStream("/META-INF/spring-configuration-metadata.json")) {
            metadata = JsonMapper.builder().build().readTree(in);
        }
        JsonNode also = null;
        for (JsonNode n : metadata.get("properties")) {
            if (n.get("name").asString().equals("stargazer.bus.topology.inbound-partitions-also")) also = n;
        }
        assertThat(also).as("metadata of stargazer.bus.topology.inbound-partitions-also").isNotNull();
        assertThat(also.get("type").asString()).isEqualTo("java.lang.Integer");
        assertThat(also.get("description").asString()).contains("SG_INBOUND_PARTITIONS_ALSO");
    }

    @Test
    void theTlsAndClusterPropertiesAreCheckedAsTheLibraryChecksTheirVariables() {
        runner.withPropertyValues("stargazer.bus.ca-file=/no/such/ca.pem").run(ctx -> {
            assertThat(ctx).hasFailed();
            assertThat(ctx.getStartupFailure()).hasStackTraceContaining("Invalid value for property 'stargazer.bus.ca-file'")
                    .hasStackTraceContaining("is not rediss://");
        });
        runner.withPropertyValues("stargazer.bus.tls-verify=sometimes").run(ctx -> {
            assertThat(ctx).hasFailed();
            assertThat(ctx.getStartupFailure()).hasStackTraceContaining("Invalid value for property 'stargazer.bus.tls-verify'")
                    .hasStackTraceContaining("'sometimes' must be full or none");
        });
        runner.withPropertyValues("stargazer.bus.url=redis://127.0.0.1:1,127.0.0.1:2", "stargazer.bus.cluster=false").run(ctx -> {
            assertThat(ctx).hasFailed();
            assertThat(ctx.getStartupFailure()).hasStackTraceContaining("Invalid value for property 'stargazer.bus.cluster'");
        });
        runner.withPropertyValues("stargazer.bus.tls-verify=full", "stargazer.bus.cluster=false").run(ctx -> assertThat(ctx).hasNotFailed());
    }

    @Test
    void aCombinationTheLibraryRefusesNamesTheProperty() {
        // Refused by build(), which checks settings together and names an SG_* variable a Spring application never set.
        runner.withPropertyValues("stargazer.bus.server-code=functions", "stargazer.bus.trim-policy=evict").run(ctx -> {
            assertThat(ctx).hasFailed();
            assertThat(ctx.getStartupFailure()).hasStackTraceContaining("Invalid value for property 'stargazer.bus.server-code'")
                    .hasStackTraceContaining("evict");
        });
        runner.withPropertyValues("stargazer.bus.consumer.retry-backoff=10m", "stargazer.bus.consumer.max-retry-backoff=1s")
                .withUserConfiguration(Listeners.class).run(ctx -> {
            assertThat(ctx).hasFailed();
            assertThat(ctx.getStartupFailure()).hasStackTraceContaining("Invalid value for property 'stargazer.bus.consumer.retry-backoff'")
                    .hasStackTraceContaining("retryBackoff 600000 ms is longer than maxRetryBackoff (SG_MAX_RETRY_BACKOFF_MS) 1000 ms");
        });
        runner.withPropertyValues("stargazer.bus.topology.inbound-stream=in{x}", "stargazer.bus.topology.inbound-partitions=3").run(ctx -> {
            assertThat(ctx).hasFailed();
            assertThat(ctx.getStartupFailure()).hasStackTraceContaining("Invalid value for property 'stargazer.bus.topology.inbound-stream'");
        });
        // Two names of one stream: the workers would take tool requests, the tools service chat messages.
        runner.withPropertyValues("stargazer.bus.topology.inbound-stream=app:s", "stargazer.bus.topology.tools-stream=app:s").run(ctx -> {
            assertThat(ctx).hasFailed();
            assertThat(ctx.getStartupFailure()).hasStackTraceContaining("Invalid value for property 'stargazer.bus.topology.tools-stream'")
                    .hasStackTraceContaining("'app:s' is named by both SG_INBOUND_STREAM and SG_TOOLS_STREAM");
        });
    }

    @Test
    void theHealthIndicatorIsSwitchedOffAsSpringBootsOwnAre() {
        runner.withPropertyValues("management.health.stargazer.enabled=false").run(ctx -> {
            assertThat(ctx).hasNotFailed();
            assertThat(ctx).doesNotHaveBean(StargazerHealthIndicator.class);
        });
        runner.withPropertyValues("management.health.defaults.enabled=false").run(ctx -> {
            assertThat(ctx).hasNotFailed();
            assertThat(ctx).doesNotHaveBean(StargazerHealthIndicator.class);
        });
        runner.withPropertyValues("management.health.defaults.enabled=false", "management.health.stargazer.enabled=true")
                .run(ctx -> assertThat(ctx).hasSingleBean(StargazerHealthIndicator.class));
    }

    @Test
    void healthIsDownOnceRedisIsGone() {
        try (io.stargazer.embedded.RedisServerProcess own = TestServers.server().start()) {
            new ApplicationContextRunner().withConfiguration(AutoConfigurations.of(StargazerBusAutoConfiguration.class))
                    .withPropertyValues("stargazer.bus.url=" + own.url(), "stargazer.bus.topology.namespace=" + TestServers.namespace())
                    .run(ctx -> {
                assertThat(ctx).hasNotFailed();
                StargazerHealthIndicator h = ctx.getBean(StargazerHealthIndicator.class);
                assertThat(h.health(true).getStatus()).isEqualTo(Status.UP);
                own.kill();
                assertThat(h.health(true).getStatus()).isEqualTo(Status.DOWN);
            });
        }
    }

    @Configuration(proxyBeanMethods = false)
    static class Observations {
        final ConcurrentLinkedQueue<io.micrometer.observation.Observation.Context> stopped = new ConcurrentLinkedQueue<>();

        @Bean
        io.micrometer.observation.ObservationRegistry observationRegistry() {
            io.micrometer.observation.ObservationRegistry r = io.micrometer.observation.ObservationRegistry.create();
            r.observationConfig().observationHandler(new io.micrometer.observation.ObservationHandler<>() {
                @Override public boolean supportsContext(io.micrometer.observation.Observation.Context c) { return true; }
                @Override public void onStop(io.micrometer.observation.Observation.Context c) { stopped.add(c); }
            });
            return r;
        }
    }

    @Configuration(proxyBeanMethods = false)
    static class Forwarding {
        private final EventBus bus;

        Forwarding(EventBus bus) {
            this.bus = bus;
        }

        @StargazerListener(stream = "${stargazer.bus.topology.namespace}:traced", group = "g")
        void on(Envelope e) {
            bus.publish(e.string("out"), Envelope.of("channel_id", "c"));
        }
    }

    @Test
    void withAnObservationRegistryBeanWhatAListenerPublishesJoinsItsProcessObservation() {
        runner.withUserConfiguration(Observations.class, Forwarding.class).run(ctx -> {
            assertThat(ctx).hasNotFailed();
            String ns = ctx.getEnvironment().getProperty("stargazer.bus.topology.namespace");
            ctx.getBean(EventBus.class).publish(ns + ":traced", Envelope.of("channel_id", "c", "out", ns + ":traced-out"));
            Observations o = ctx.getBean(Observations.class);
            await().atMost(WAIT).untilAsserted(() -> assertThat(o.stopped)
                    .filteredOn(c -> ("send " + ns + ":traced-out").equals(c.getContextualName())).singleElement()
                    .satisfies(send -> assertThat(send.getParentObservation().getContextView().getContextualName())
                            .isEqualTo("process " + ns + ":traced")));
        });
    }

    @Configuration(proxyBeanMethods = false)
    static class BadConcurrency {
        @StargazerListener(stream = "s", group = "g", concurrency = "${worker.concurrency}")
        void onMessage(Envelope e) {
        }
    }

    @Configuration(proxyBeanMethods = false)
    static class BadBatchWait {
        @StargazerListener(stream = "s", group = "g", batch = true, batchWait = "soon")
        void onBatch(List<Envelope> e) {
        }
    }

    @Test
    void aBadListenerAttributeNamesTheMethodAndTheAttribute() {
        runner.withUserConfiguration(BadConcurrency.class).withPropertyValues("worker.concurrency=four").run(ctx -> {
            assertThat(ctx).hasFailed();
            assertThat(ctx.getStartupFailure()).hasStackTraceContaining(".onMessage: concurrency = '${worker.concurrency}' is 'four', not a whole number");
        });
        runner.withUserConfiguration(BadConcurrency.class).withPropertyValues("worker.concurrency=0").run(ctx -> {
            assertThat(ctx).hasFailed();
            assertThat(ctx.getStartupFailure()).hasStackTraceContaining(".onMessage: concurrency = '${worker.concurrency}' is '0'");
        });
        runner.withUserConfiguration(BadBatchWait.class).run(ctx -> {
            assertThat(ctx).hasFailed();
            assertThat(ctx.getStartupFailure()).hasStackTraceContaining(".onBatch: batchWait = 'soon' is 'soon', not a duration");
        });
    }

    public record Order(String channel_id, int n) {
    }

    @Configuration(proxyBeanMethods = false)
    static class Typed {
        @StargazerListener(stream = "${stargazer.bus.topology.namespace}:typed", group = "g")
        void onOrder(Order o) {
        }
    }

    @Test
    void aPayloadTypeListenerWithoutAJsonMapperFailsTheStartUpNamingTheMethod() {
        // This runner has no JacksonAutoConfiguration, so no JsonMapper: every entry would fail to map and be dead-lettered.
        runner.withUserConfiguration(Typed.class).run(ctx -> {
            assertThat(ctx).hasFailed();
            assertThat(ctx.getStartupFailure()).hasStackTraceContaining(".onOrder takes " + Order.class.getTypeName())
                    .hasStackTraceContaining("JsonMapper");
        });
        runner.withConfiguration(AutoConfigurations.of(org.springframework.boot.jackson.autoconfigure.JacksonAutoConfiguration.class))
                .withUserConfiguration(Typed.class).run(ctx -> assertThat(ctx).hasNotFailed());
    }

    @Test
    void toolsPropertiesReachTheClientAndTheService() {
        runner.withUserConfiguration(Registry.class).withPropertyValues("stargazer.bus.tools.client.default-timeout=7s",
                "stargazer.bus.tools.client.reply-stream-maxlen=500", "stargazer.bus.tools.client.reply-ttl=2m",
                "stargazer.bus.tools.client.block-timeout=250ms", "stargazer.bus.tools.client.read-batch-size=32",
                "stargazer.bus.tools.service.max-concurrent=3", "stargazer.bus.tools.service.max-queued=0",
                "stargazer.bus.tools.service.read-ahead=0", "stargazer.bus.tools.service.consumer-name=tools-a",
                "stargazer.bus.tools.service.claim-idle=45s", "stargazer.bus.tools.service.close-timeout=2s",
                "stargazer.bus.tools.service.late-reply-limit=12s", "stargazer.bus.consumer.max-deliveries=9").run(ctx -> {
            assertThat(ctx).hasNotFailed();
            ToolClientConfig client = ctx.getBean(ToolClient.class).config();
            assertThat(client.defaultTimeout()).isEqualTo(Duration.ofSeconds(7));
            assertThat(client.replyStreamMaxlen()).isEqualTo(500);
            assertThat(client.replyTtl()).isEqualTo(Duration.ofMinutes(2));
            assertThat(client.blockTimeout()).isEqualTo(Duration.ofMillis(250));
            assertThat(client.readBatchSize()).isEqualTo(32);
            ToolServiceConfig service = ctx.getBean(ToolService.class).config();
            assertThat(service.maxConcurrent()).isEqualTo(3);
            assertThat(service.maxQueued()).isZero();
            assertThat(service.readAhead()).isZero();
            assertThat(service.consumerName()).isEqualTo("tools-a");
            assertThat(service.claimIdle()).isEqualTo(Duration.ofSeconds(45));
            assertThat(service.closeTimeout()).isEqualTo(Duration.ofSeconds(2));
            assertThat(service.lateReplyLimit()).isEqualTo(Duration.ofSeconds(12));
            // The service's subscription takes stargazer.bus.consumer.* as the listeners do.
            assertThat(service.consumer().apply(ConsumerConfig.builder("s", "g")).build().maxDeliveries()).isEqualTo(9);
        });
    }

    @Test
    void withoutToolsPropertiesTheClientAndServiceKeepTheLibrarysDefaults() {
        runner.withUserConfiguration(Registry.class).run(ctx -> {
            assertThat(ctx).hasNotFailed();
            assertThat(ctx.getBean(ToolClient.class).config()).isEqualTo(ToolClientConfig.defaults());
            ToolServiceConfig service = ctx.getBean(ToolService.class).config();
            assertThat(service.toBuilder().consumer(ToolServiceConfig.DEFAULT_CONSUMER).build()).isEqualTo(ToolServiceConfig.defaults());
        });
    }

    @Test
    void aBadToolsPropertyIsNamedWithItsValue() {
        runner.withPropertyValues("stargazer.bus.tools.client.block-timeout=10s").run(ctx -> {
            assertThat(ctx).hasFailed();
            assertThat(ctx.getStartupFailure()).hasStackTraceContaining("Invalid value for property 'stargazer.bus.tools.client.block-timeout'")
                    .hasStackTraceContaining("PT10S");
        });
        runner.withUserConfiguration(Registry.class).withPropertyValues("stargazer.bus.tools.service.max-concurrent=0").run(ctx -> {
            assertThat(ctx).hasFailed();
            assertThat(ctx.getStartupFailure()).hasStackTraceContaining("Invalid value for property 'stargazer.bus.tools.service.max-concurrent': maxConcurrent: '0' must be greater than zero");
        });
    }

    /** The configuration processor's metadata, each property by its name. */
    private Map<String, JsonNode> metadataByName() throws java.io.IOException {
        JsonNode metadata;
        try (var in = getClass().getResourceAsStream("/META-INF/spring-configuration-metadata.json")) {
            assertThat(in).as("metadata written by the configuration processor").isNotNull();
            metadata = JsonMapper.builder().build().readTree(in);
        }
        Map<String, JsonNode> byName = new java.util.HashMap<>();
        metadata.get("properties").forEach(n -> byName.put(n.get("name").asString(), n));
        return byName;
    }

    @Test
    void theIdeMetadataDescribesTheConsumerName() throws Exception {
        JsonNode name = metadataByName().get("stargazer.bus.consumer.consumer-name");
        assertThat(name).as("metadata of stargazer.bus.consumer.consumer-name").isNotNull();
        assertThat(name.get("type").asString()).isEqualTo("java.lang.String");
        assertThat(name.get("description").asString()).contains("node id");
    }

    @Test
    void theIdeMetadataDescribesTheToolsProperties() throws Exception {
        Map<String, JsonNode> byName = metadataByName();
        for (String name : List.of("stargazer.bus.tools.client.default-timeout", "stargazer.bus.tools.client.reply-stream-maxlen",
                "stargazer.bus.tools.client.reply-ttl", "stargazer.bus.tools.client.block-timeout", "stargazer.bus.tools.client.read-batch-size",
                "stargazer.bus.tools.service.max-concurrent", "stargazer.bus.tools.service.max-queued", "stargazer.bus.tools.service.read-ahead",
                "stargazer.bus.tools.service.consumer-name", "stargazer.bus.tools.service.claim-idle", "stargazer.bus.tools.service.close-timeout",
                "stargazer.bus.tools.service.late-reply-limit", "stargazer.bus.tools.service.auto-startup")) {
            assertThat(byName).as(name).containsKey(name);
            assertThat(byName.get(name).get("description").asString()).as(name).isNotBlank();
        }
        assertThat(byName.get("stargazer.bus.tools.client.reply-ttl").get("type").asString()).isEqualTo("java.time.Duration");
        assertThat(byName.get("stargazer.bus.tools.service.auto-startup").get("defaultValue").asBoolean()).isTrue();
    }

    @Test
    void theIdeMetadataNamesOnlyVariablesAndUrlsTheLibraryTakes() throws Exception {
        JsonNode metadata;
        try (var in = getClass().getResourceAsStream("/META-INF/spring-configuration-metadata.json")) {
            metadata = JsonMapper.builder().build().readTree(in);
        }
        java.util.Set<String> variables = new java.util.HashSet<>();
        for (Class<?> c : List.of(BusConfig.class, io.stargazer.bus.Topology.class, ConsumerConfig.class, RedisUrl.class)) {
            for (java.lang.reflect.Field f : c.getFields()) {
                if (f.getName().startsWith("ENV_")) variables.add((String) f.get(null));
            }
        }
        java.util.regex.Pattern named = java.util.regex.Pattern.compile("SG_[A-Z_]+[A-Z]");
        metadata.get("properties").forEach(n -> {
            String description = n.path("description").asString("");
            named.matcher(description).results().map(java.util.regex.MatchResult::group)
                    .forEach(v -> assertThat(variables).as(n.get("name").asString() + " names " + v).contains(v));
        });
        metadata.get("properties").forEach(n -> {
            if (n.get("name").asString().equals("stargazer.bus.url")) {
                assertThat(n.get("description").asString()).doesNotContain("sentinel");
                // Refused by RedisUrl: a description must not promise it.
                runner.withPropertyValues("stargazer.bus.url=redis-sentinel://127.0.0.1:26379/0#mymaster")
                        .run(ctx -> assertThat(ctx.getStartupFailure()).hasStackTraceContaining("Invalid value for property 'stargazer.bus.url'"));
            }
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
    static class Registry {
        @Bean
        ToolRegistry registry() {
            return ToolRegistry.builder().register("echo", args -> args.get("v")).build();
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
