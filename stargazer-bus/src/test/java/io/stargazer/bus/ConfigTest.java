// Promise: the configs (BusConfig, ConsumerConfig, ToolClientConfig, ToolServiceConfig) have the original defaults, published as
// DEFAULT_* constants, read their SG_* variables only when asked, and refuse bad values naming the setting and the value on one line.
package io.stargazer.bus;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.catchThrowableOfType;

import io.stargazer.bus.internal.Settings;
import io.stargazer.bus.tools.ToolClient;
import io.stargazer.bus.tools.ToolClientConfig;
import io.stargazer.bus.tools.ToolServiceConfig;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneOffset;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Nested;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;

class ConfigTest {

    private static ConfigException refusal(Runnable r) {
        ConfigException e = catchThrowableOfType(r::run, ConfigException.class);
        assertThat(e).as("expected a ConfigException").isNotNull();
        assertThat(e.getMessage()).as("one line").doesNotContain("\n").doesNotContain("\r");
        return e;
    }

    @Nested
    class Bus {

        @Test
        void defaults() {
            BusConfig c = BusConfig.builder().nodeId("n1").build();
            assertThat(c.topology()).isEqualTo(Topology.defaults());
            assertThat(c.role()).isEqualTo(NodeRole.STANDALONE);
            assertThat(c.nodeId()).isEqualTo("n1");
            assertThat(c.platforms()).containsExactly("discord", "matrix", "webchat");
            assertThat(c.streamMaxlen()).isEqualTo(100_000L);
            assertThat(c.maxEnvelopeBytes()).isEqualTo(1024 * 1024);
            assertThat(c.backlogCheckInterval()).isEqualTo(Duration.ofSeconds(5));
            assertThat(c.publishBatchMax()).isEqualTo(256);
            assertThat(c.clock()).isNotNull();
        }

        /**
         * The dedupe window is counted in whole milliseconds by the scripts: a fraction is refused, naming the setting
         * (before, 1.5 ms was accepted and reported while the scripts were sent 1 ms; helper-92).
         */
        @Test
        void aDedupeWindowWithAFractionOfAMillisecondIsRefused() {
            assertThatThrownBy(() -> BusConfig.builder().dedupeWindow(Duration.ofMillis(1).plusNanos(500_000)))
                    .isInstanceOf(io.stargazer.bus.ConfigException.class).hasMessageContaining(BusConfig.ENV_DEDUPE_WINDOW_MS)
                    .hasMessageContaining("whole number of milliseconds");
            assertThat(BusConfig.builder().dedupeWindow(Duration.ofMillis(1500)).build().dedupeWindow()).isEqualTo(Duration.ofMillis(1500));
        }

        @Test
        void emptyEnvironmentGivesTheDefaults() {
            BusConfig c = BusConfig.fromEnvironment(Map.of());
            assertThat(c.topology()).isEqualTo(Topology.defaults());
            assertThat(c.role()).isEqualTo(NodeRole.STANDALONE);
            assertThat(c.streamMaxlen()).isEqualTo(100_000L);
            assertThat(c.maxEnvelopeBytes()).isEqualTo(1 << 20);
            assertThat(c.nodeId()).isEqualTo(BusConfig.defaultNodeId());
        }

        @Test
        void defaultNodeIdIsAUsableNameEndingInThePid() {
            String id = BusConfig.defaultNodeId();
            assertThat(id).endsWith("-" + ProcessHandle.current().pid()).matches("[A-Za-z0-9_.-]+");
            assertThat(Topology.checkName("SG_NODE_ID", id)).isEqualTo(id);
        }

        @Test
        void fromEnvironmentReadsEverySgVariable() {
            Map<String, String> env = new HashMap<>();
            env.put("SG_NODE_ROLE", "worker");
            env.put("SG_NODE_ID", "worker-7");
            env.put("SG_PLATFORMS", "discord, matrix");
            env.put("SG_STREAM_MAXLEN", "5000");
            env.put("SG_MAX_ENVELOPE_BYTES", "2048");
            env.put("SG_BACKLOG_CHECK_MS", "750");
            env.put("SG_INBOUND_STREAM", "in");
            env.put("SG_INBOUND_PARTITIONS", "2");

            BusConfig c = BusConfig.fromEnvironment(env);

            assertThat(c.role()).isEqualTo(NodeRole.WORKER);
            assertThat(c.nodeId()).isEqualTo("worker-7");
            assertThat(c.platforms()).containsExactly("discord", "matrix");
            assertThat(c.streamMaxlen()).isEqualTo(5000L);
            assertThat(c.maxEnvelopeBytes()).isEqualTo(2048);
            assertThat(c.backlogCheckInterval()).isEqualTo(Duration.ofMillis(750));
            assertThat(c.topology().inboundStream()).isEqualTo("in");
            assertThat(c.topology().inboundStreams()).containsExactly("in:{part-0-of-2~2}", "in:{part-1-of-2~0}");
        }

        @ParameterizedTest(name = "streamMaxlen {0} -> {1}")
        @CsvSource({"0, 1000", "1, 1000", "500, 1000", "999, 1000", "1000, 1000", "1001, 1001", "5000, 5000"})
        void streamMaxlenIsFlooredAt1000(long given, long expected) {
            assertThat(BusConfig.builder().nodeId("n").streamMaxlen(given).build().streamMaxlen()).isEqualTo(expected);
            assertThat(BusConfig.fromEnvironment(Map.of("SG_STREAM_MAXLEN", String.valueOf(given), "SG_NODE_ID", "n"))
                    .streamMaxlen()).isEqualTo(expected);
        }

        @Test
        void negativeStreamMaxlenIsRefused() {
            ConfigException e = refusal(() -> BusConfig.builder().streamMaxlen(-1));
            assertThat(e.setting()).isEqualTo("SG_STREAM_MAXLEN");
            assertThat(e.getMessage()).contains("SG_STREAM_MAXLEN").contains("'-1'");
            assertThat(refusal(() -> BusConfig.fromEnvironment(Map.of("SG_STREAM_MAXLEN", "-5"))).getMessage())
                    .contains("SG_STREAM_MAXLEN").contains("'-5'");
        }

        @Test
        void nonNumericStreamMaxlenIsRefusedNamingTheVariable() {
            ConfigException e = refusal(() -> BusConfig.fromEnvironment(Map.of("SG_STREAM_MAXLEN", "abc")));
            assertThat(e.setting()).isEqualTo("SG_STREAM_MAXLEN");
            assertThat(e.getMessage()).contains("SG_STREAM_MAXLEN").contains("'abc'");
        }

        @ParameterizedTest(name = "SG_NODE_ROLE={0}")
        @CsvSource({"gateway, GATEWAY", "worker, WORKER", "standalone, STANDALONE", "tools, TOOLS", "' Gateway ', GATEWAY",
                "TOOLS, TOOLS"})
        void nodeRoleIsParsed(String value, NodeRole expected) {
            assertThat(BusConfig.fromEnvironment(Map.of("SG_NODE_ROLE", value, "SG_NODE_ID", "n")).role()).isEqualTo(expected);
            assertThat(expected.wireName()).isEqualTo(expected.name().toLowerCase());
        }

        /** A blank variable counts as unset (node.md; compose's VAR=${UNSET}): the default holds. */
        @Test
        void blankVariablesCountAsUnset() {
            BusConfig c = BusConfig.fromEnvironment(Map.of("SG_NODE_ROLE", "", "SG_PLATFORMS", " ", "SG_NODE_ID", "",
                    "SG_PUBLISH_TIMEOUT_MS", "\t"));
            assertThat(c.role()).isEqualTo(BusConfig.DEFAULT_ROLE);
            assertThat(c.platforms()).isEqualTo(BusConfig.DEFAULT_PLATFORMS);
            assertThat(c.nodeId()).isEqualTo(BusConfig.defaultNodeId());
            assertThat(c.publishTimeout()).isEqualTo(BusConfig.DEFAULT_PUBLISH_TIMEOUT);
            ConsumerConfig cc = ConsumerConfig.builder("s", "g").fromEnvironment(Map.of("SG_NODE_ID", " ", "SG_MAX_DELIVERIES", "")).build();
            assertThat(cc.consumerName()).isEqualTo(BusConfig.defaultNodeId());
            assertThat(cc.maxDeliveries()).isEqualTo(ConsumerConfig.DEFAULT_MAX_DELIVERIES);
        }

        @ParameterizedTest
        @ValueSource(strings = {"boss", "work er", "work\ner"})
        void badNodeRoleIsRefusedNamingTheVariable(String bad) {
            ConfigException e = refusal(() -> BusConfig.fromEnvironment(Map.of("SG_NODE_ROLE", bad)));
            assertThat(e.setting()).isEqualTo("SG_NODE_ROLE");
            assertThat(e.getMessage()).contains("SG_NODE_ROLE").contains("'" + Settings.printable(bad) + "'");
            assertThat(refusal(() -> NodeRole.parse("SG_NODE_ROLE", null)).getMessage()).contains("SG_NODE_ROLE");
        }

        @Test
        void platformsAreParsed() {
            assertThat(BusConfig.parsePlatforms("discord, matrix")).containsExactly("discord", "matrix");
            assertThat(BusConfig.parsePlatforms(" webchat ")).containsExactly("webchat");
        }

        @ParameterizedTest
        @ValueSource(strings = {"discord,,matrix", "discord,", ",discord", "disc ord", "discord;matrix"})
        void badPlatformListsAreRefused(String bad) {
            ConfigException e = refusal(() -> BusConfig.fromEnvironment(Map.of("SG_PLATFORMS", bad, "SG_NODE_ID", "n")));
            assertThat(e.setting()).isEqualTo("SG_PLATFORMS");
            assertThat(e.getMessage()).contains("SG_PLATFORMS");
        }

        @Test
        void platformsGivenInCodeAreChecked() {
            assertThat(refusal(() -> BusConfig.builder().platforms(List.of("ok", "not ok"))).getMessage())
                    .contains("SG_PLATFORMS").contains("'not ok'");
        }

        @Test
        void badNodeIdIsRefused() {
            ConfigException e = refusal(() -> BusConfig.fromEnvironment(Map.of("SG_NODE_ID", "node 1")));
            assertThat(e.setting()).isEqualTo("SG_NODE_ID");
            assertThat(e.getMessage()).contains("'node 1'");
        }

        @Test
        void otherNumbersAreCheckedNamingTheVariable() {
            assertThat(refusal(() -> BusConfig.fromEnvironment(Map.of("SG_MAX_ENVELOPE_BYTES", "0"))).getMessage())
                    .contains("SG_MAX_ENVELOPE_BYTES").contains("'0'");
            assertThat(refusal(() -> BusConfig.fromEnvironment(Map.of("SG_MAX_ENVELOPE_BYTES", "1MB"))).getMessage())
                    .contains("SG_MAX_ENVELOPE_BYTES").contains("'1MB'");
            assertThat(refusal(() -> BusConfig.fromEnvironment(Map.of("SG_BACKLOG_CHECK_MS", "-1"))).getMessage())
                    .contains("SG_BACKLOG_CHECK_MS").contains("'-1'");
            assertThat(refusal(() -> BusConfig.fromEnvironment(Map.of("SG_BACKLOG_CHECK_MS", "0"))).getMessage())
                    .contains("SG_BACKLOG_CHECK_MS");
            assertThat(refusal(() -> BusConfig.builder().publishBatchMax(0)).getMessage()).contains("publishBatchMax");
            assertThat(refusal(() -> BusConfig.builder().clock(null)).getMessage()).contains("clock");
            assertThat(refusal(() -> BusConfig.fromEnvironment(Map.of("SG_TRIM_POLICY", "drop"))).getMessage())
                    .contains("SG_TRIM_POLICY").contains("'drop'");
            assertThat(refusal(() -> BusConfig.fromEnvironment(Map.of("SG_BACKPRESSURE", "wait"))).getMessage())
                    .contains("SG_BACKPRESSURE").contains("'wait'");
            assertThat(refusal(() -> BusConfig.fromEnvironment(Map.of("SG_BACKPRESSURE_TIMEOUT_MS", "0"))).getMessage())
                    .contains("SG_BACKPRESSURE_TIMEOUT_MS");
            BusConfig fromEnv = BusConfig.fromEnvironment(Map.of("SG_TRIM_POLICY", "evict", "SG_BACKPRESSURE", "reject"));
            assertThat(fromEnv.trimPolicy()).isEqualTo(TrimPolicy.EVICT);
            assertThat(fromEnv.backpressure()).isEqualTo(Backpressure.REJECT);
            assertThat(BusConfig.builder().build().trimPolicy()).isEqualTo(TrimPolicy.SAFE);
        }

        @Test
        void publishViaIsDirectByDefaultRelayOnRequestAndAnythingElseIsRefusedNamingTheVariable() {
            assertThat(BusConfig.builder().build().publishVia()).isEqualTo(PublishVia.DIRECT).isEqualTo(BusConfig.DEFAULT_PUBLISH_VIA);
            assertThat(BusConfig.fromEnvironment(Map.of("SG_PUBLISH_VIA", "relay")).publishVia()).isEqualTo(PublishVia.RELAY);
            assertThat(BusConfig.builder().publishVia(PublishVia.RELAY).build().toBuilder().build().publishVia()).isEqualTo(PublishVia.RELAY);
            assertThat(refusal(() -> BusConfig.fromEnvironment(Map.of("SG_PUBLISH_VIA", "sideways"))).getMessage())
                    .contains("SG_PUBLISH_VIA").contains("'sideways'");
            assertThat(refusal(() -> BusConfig.builder().publishVia(null)).getMessage()).contains("SG_PUBLISH_VIA");
            assertThat(BusConfig.fromEnvironment(Map.of("SG_NODE_ROLE", "relay")).role()).isEqualTo(NodeRole.RELAY);
        }

        @Test
        void theBuilderRefusesWhatIsMissing() {
            // A stream cap below the floor is raised, not refused (streamMaxlenIsFlooredAt1000); a missing value is refused.
            assertThat(BusConfig.builder().nodeId("n").streamMaxlen(500).build().streamMaxlen()).isEqualTo(BusConfig.MIN_STREAM_MAXLEN);
            assertThat(refusal(() -> BusConfig.builder().topology(null)).getMessage()).contains("topology");
            assertThat(refusal(() -> BusConfig.builder().role(null)).getMessage()).contains("SG_NODE_ROLE");
            assertThat(refusal(() -> BusConfig.builder().trimPolicy(null)).getMessage()).contains("SG_TRIM_POLICY");
            assertThat(refusal(() -> BusConfig.builder().backpressure(null)).getMessage()).contains("SG_BACKPRESSURE");
            assertThat(refusal(() -> BusConfig.builder().platforms(null)).getMessage()).contains("SG_PLATFORMS");
            assertThat(refusal(() -> BusConfig.builder().nodeId(null)).getMessage()).contains("SG_NODE_ID");
        }

        @Test
        void defaultsAreThePublishedConstants() {
            BusConfig c = BusConfig.builder().nodeId("n").build();
            assertThat(c.topology()).isEqualTo(BusConfig.DEFAULT_TOPOLOGY);
            assertThat(c.role()).isEqualTo(BusConfig.DEFAULT_ROLE);
            assertThat(c.platforms()).isEqualTo(BusConfig.DEFAULT_PLATFORMS);
            assertThat(c.streamMaxlen()).isEqualTo(BusConfig.DEFAULT_STREAM_MAXLEN);
            assertThat(c.maxEnvelopeBytes()).isEqualTo(BusConfig.DEFAULT_MAX_ENVELOPE_BYTES);
            assertThat(c.backlogCheckInterval()).isEqualTo(BusConfig.DEFAULT_BACKLOG_CHECK_INTERVAL);
            assertThat(c.publishBatchMax()).isEqualTo(BusConfig.DEFAULT_PUBLISH_BATCH_MAX);
            assertThat(c.clock()).isEqualTo(BusConfig.DEFAULT_CLOCK);
            assertThat(c.trimPolicy()).isEqualTo(BusConfig.DEFAULT_TRIM_POLICY);
            assertThat(c.backpressure()).isEqualTo(BusConfig.DEFAULT_BACKPRESSURE);
            assertThat(c.backpressureTimeout()).isEqualTo(BusConfig.DEFAULT_BACKPRESSURE_TIMEOUT);
            assertThat(c.publishTimeout()).isEqualTo(BusConfig.DEFAULT_PUBLISH_TIMEOUT);
            assertThat(c.publishQueueLimit()).isEqualTo(BusConfig.DEFAULT_PUBLISH_QUEUE_LIMIT);
            assertThat(c.deadPeerTimeout()).isEqualTo(BusConfig.DEFAULT_DEAD_PEER_TIMEOUT);
            assertThat(c.blockingPublishConnections()).isEqualTo(BusConfig.DEFAULT_BLOCKING_PUBLISH_CONNECTIONS);
        }

        @Test
        void blockingPublishConnectionsAreReadAndChecked() {
            assertThat(BusConfig.fromEnvironment(Map.of("SG_BLOCKING_PUBLISH_CONNECTIONS", "0", "SG_NODE_ID", "n"))
                    .blockingPublishConnections()).isZero();
            assertThat(BusConfig.fromEnvironment(Map.of("SG_BLOCKING_PUBLISH_CONNECTIONS", "12", "SG_NODE_ID", "n"))
                    .blockingPublishConnections()).isEqualTo(12);
            assertThat(refusal(() -> BusConfig.fromEnvironment(Map.of("SG_BLOCKING_PUBLISH_CONNECTIONS", "-1"))).getMessage())
                    .contains("SG_BLOCKING_PUBLISH_CONNECTIONS").contains("'-1'");
            assertThat(refusal(() -> BusConfig.fromEnvironment(Map.of("SG_BLOCKING_PUBLISH_CONNECTIONS", "many"))).setting())
                    .isEqualTo("SG_BLOCKING_PUBLISH_CONNECTIONS");
        }

        @Test
        void faultSettingsAreReadAndChecked() {
            BusConfig c = BusConfig.fromEnvironment(Map.of("SG_PUBLISH_TIMEOUT_MS", "1500", "SG_PUBLISH_QUEUE_LIMIT", "7",
                    "SG_DEAD_PEER_TIMEOUT_MS", "900", "SG_NODE_ID", "n"));
            assertThat(c.publishTimeout()).isEqualTo(Duration.ofMillis(1500));
            assertThat(c.publishQueueLimit()).isEqualTo(7);
            assertThat(c.deadPeerTimeout()).isEqualTo(Duration.ofMillis(900));
            assertThat(refusal(() -> BusConfig.fromEnvironment(Map.of("SG_PUBLISH_TIMEOUT_MS", "0"))).setting())
                    .isEqualTo("SG_PUBLISH_TIMEOUT_MS");
            assertThat(refusal(() -> BusConfig.fromEnvironment(Map.of("SG_PUBLISH_QUEUE_LIMIT", "-3"))).getMessage())
                    .contains("SG_PUBLISH_QUEUE_LIMIT").contains("'-3'");
            assertThat(refusal(() -> BusConfig.builder().deadPeerTimeout(Duration.ZERO)).setting()).isEqualTo("SG_DEAD_PEER_TIMEOUT_MS");
        }

        @Test
        void theBuildersEnvironmentReadingKeepsWhatTheEnvironmentDoesNotSet() {
            Topology named = Topology.builder().inboundStream("mine").build();
            BusConfig c = BusConfig.builder().topology(named).nodeId("n").streamMaxlen(3000)
                    .fromEnvironment(Map.of("SG_WORKER_GROUP", "wg", "SG_MAX_ENVELOPE_BYTES", "64")).build();
            assertThat(c.topology().inboundStream()).isEqualTo("mine");
            assertThat(c.topology().workerGroup()).isEqualTo("wg");
            assertThat(c.streamMaxlen()).isEqualTo(3000L);
            assertThat(c.maxEnvelopeBytes()).isEqualTo(64);
        }

        @Test
        void toBuilderKeepsEverything() {
            Clock clock = Clock.fixed(Instant.EPOCH, ZoneOffset.UTC);
            BusConfig c = BusConfig.builder().nodeId("n").role(NodeRole.TOOLS).platforms(List.of("matrix")).streamMaxlen(2000)
                    .maxEnvelopeBytes(10).backlogCheckInterval(Duration.ofMillis(3)).publishBatchMax(7).clock(clock)
                    .trimPolicy(TrimPolicy.EVICT).backpressure(Backpressure.REJECT).backpressureTimeout(Duration.ofMillis(4))
                    .publishTimeout(Duration.ofMillis(5)).publishQueueLimit(6).deadPeerTimeout(Duration.ofMillis(8)).build();
            assertThat(c.toBuilder().build()).isEqualTo(c).hasSameHashCodeAs(c);
            assertThat(c.toBuilder().build()).hasToString(c.toString());
            assertThat(c.toBuilder().publishQueueLimit(9).build()).isNotEqualTo(c);
            assertThat(c.toBuilder().blockingPublishConnections(0).build()).isNotEqualTo(c);
            assertThat(c.toString()).contains("nodeId=n").contains("publishQueueLimit=6");
        }
    }

    @Nested
    class Consumer {

        @Test
        void defaults() {
            ConsumerConfig c = ConsumerConfig.builder("s", "g").consumerName("c1").build();
            assertThat(c.stream()).isEqualTo("s");
            assertThat(c.group()).isEqualTo("g");
            assertThat(c.consumerName()).isEqualTo("c1");
            assertThat(c.claimIdle()).isEqualTo(Duration.ofSeconds(30));
            assertThat(c.maxDeliveries()).isEqualTo(5);
            assertThat(c.batchSize()).isEqualTo(128);
            assertThat(c.maxInFlight()).isEqualTo(1024);
            assertThat(c.concurrency()).isEqualTo(16);
            assertThat(c.blockTimeout()).isEqualTo(Duration.ofSeconds(2));
            assertThat(c.retryBackoff()).isEqualTo(Duration.ofSeconds(1));
            assertThat(c.maxRetryBackoff()).isEqualTo(Duration.ofMinutes(1));
            assertThat(c.manualAck()).isFalse();
            assertThat(c.closeTimeout()).isEqualTo(Duration.ofSeconds(10));
            assertThat(c.consumerIdleLimit()).isEqualTo(Duration.ofHours(1));
            assertThat(c.deadLetterStream()).isEqualTo("s:dead");
        }

        @Test
        void consumerNameDefaultsToTheNodeId() {
            assertThat(ConsumerConfig.builder("s", "g").build().consumerName()).isEqualTo(BusConfig.defaultNodeId());
            assertThat(ConsumerConfig.builder("s", "g").fromEnvironment(Map.of()).build().consumerName())
                    .isEqualTo(BusConfig.defaultNodeId());
        }

        @Test
        void fromEnvironmentReadsItsVariables() {
            Map<String, String> env = new HashMap<>();
            env.put("SG_NODE_ID", "w7");
            env.put("SG_CLAIM_IDLE_MS", "1500");
            env.put("SG_MAX_DELIVERIES", "3");
            env.put("SG_CONSUMER_BATCH_SIZE", "10");
            env.put("SG_CONSUMER_MAX_IN_FLIGHT", "20");
            env.put("SG_CONSUMER_CONCURRENCY", "4");
            env.put("SG_RETRY_BACKOFF_MS", "250");
            env.put("SG_MAX_RETRY_BACKOFF_MS", "9000");

            ConsumerConfig c = ConsumerConfig.builder("s", "g").fromEnvironment(env).build();

            assertThat(c.consumerName()).isEqualTo("w7");
            assertThat(c.claimIdle()).isEqualTo(Duration.ofMillis(1500));
            assertThat(c.maxDeliveries()).isEqualTo(3);
            assertThat(c.batchSize()).isEqualTo(10);
            assertThat(c.maxInFlight()).isEqualTo(20);
            assertThat(c.concurrency()).isEqualTo(4);
            assertThat(c.retryBackoff()).isEqualTo(Duration.ofMillis(250));
            assertThat(c.maxRetryBackoff()).isEqualTo(Duration.ofMillis(9000));
        }

        @ParameterizedTest(name = "{0}={1}")
        @CsvSource({
                "SG_CLAIM_IDLE_MS, soon", "SG_CLAIM_IDLE_MS, -1", "SG_CLAIM_IDLE_MS, 0", "SG_CLAIM_IDLE_MS, '-5\n'",
                "SG_MAX_DELIVERIES, abc", "SG_MAX_DELIVERIES, 0", "SG_MAX_DELIVERIES, -2", "SG_MAX_DELIVERIES, 3.5",
                "SG_CONSUMER_BATCH_SIZE, 0", "SG_CONSUMER_MAX_IN_FLIGHT, many", "SG_CONSUMER_CONCURRENCY, -1",
                "SG_RETRY_BACKOFF_MS, x", "SG_MAX_RETRY_BACKOFF_MS, -10", "SG_NODE_ID, 'w 7'",
        })
        void badValuesAreRefusedNamingTheVariable(String variable, String value) {
            ConfigException e = refusal(() -> ConsumerConfig.builder("s", "g").fromEnvironment(Map.of(variable, value)));
            assertThat(e.setting()).isEqualTo(variable);
            assertThat(e.getMessage()).startsWith(variable + ":");
            if (!value.isEmpty() && !"0".equals(value)) {
                assertThat(e.getMessage()).contains("'" + Settings.printable(value) + "'");
            }
        }

        @Test
        void zeroDurationNamesTheVariable() {
            ConfigException e = refusal(() -> ConsumerConfig.builder("s", "g").fromEnvironment(Map.of("SG_CLAIM_IDLE_MS", "0")));
            assertThat(e.getMessage()).contains("SG_CLAIM_IDLE_MS").contains("positive");
        }

        @Test
        void aRetryBackoffLongerThanTheMaxRetryBackoffIsRefusedNamingBoth() {
            ConfigException e = refusal(() -> ConsumerConfig.builder("s", "g").consumerName("c").retryBackoff(Duration.ofMinutes(10))
                    .maxRetryBackoff(Duration.ofSeconds(1)).build());
            assertThat(e.setting()).isEqualTo("SG_RETRY_BACKOFF_MS");
            assertThat(e.getMessage()).contains("600000 ms").contains("SG_MAX_RETRY_BACKOFF_MS").contains("1000 ms");
            ConsumerConfig equal = ConsumerConfig.builder("s", "g").consumerName("c").retryBackoff(Duration.ofSeconds(2))
                    .maxRetryBackoff(Duration.ofSeconds(2)).build();
            assertThat(equal.retryBackoff()).isEqualTo(equal.maxRetryBackoff());
        }

        @Test
        void deadLetterStreamEqualToTheStreamIsRefused() {
            ConfigException e = refusal(() -> ConsumerConfig.builder("s", "g").consumerName("c").deadLetterStream("s").build());
            assertThat(e.setting()).isEqualTo("deadLetterStream");
            assertThat(e.getMessage()).contains("'s'");
        }

        @Test
        void deadLetterStreamCanBeSet() {
            assertThat(ConsumerConfig.builder("s", "g").consumerName("c").deadLetterStream("graveyard").build()
                    .deadLetterStream()).isEqualTo("graveyard");
        }

        @Test
        void badStreamOrGroupIsRefused() {
            assertThat(refusal(() -> ConsumerConfig.builder("a b", "g")).getMessage()).contains("stream").contains("'a b'");
            assertThat(refusal(() -> ConsumerConfig.builder("s", "")).getMessage()).contains("group");
        }

        @Test
        void toBuilderKeepsEverything() {
            ConsumerConfig c = ConsumerConfig.builder("s", "g").consumerName("c").claimIdle(Duration.ofMillis(5)).maxDeliveries(2)
                    .batchSize(3).maxInFlight(4).concurrency(5).blockTimeout(Duration.ofMillis(6)).retryBackoff(Duration.ofMillis(7))
                    .maxRetryBackoff(Duration.ofMillis(8)).manualAck(true).closeTimeout(Duration.ofMillis(9))
                    .consumerIdleLimit(Duration.ofMillis(10)).deadLetterStream("dl").retryOrder(RetryOrder.UNORDERED).build();
            assertThat(c.toBuilder().build()).isEqualTo(c).hasSameHashCodeAs(c);
            assertThat(c.toBuilder().build()).hasToString(c.toString());
            assertThat(c.toBuilder().retryOrder(RetryOrder.ORDERED).build()).isNotEqualTo(c);
        }

        @Test
        void defaultsAreThePublishedConstants() {
            ConsumerConfig c = ConsumerConfig.builder("s", "g").consumerName("c1").build();
            assertThat(c.claimIdle()).isEqualTo(ConsumerConfig.DEFAULT_CLAIM_IDLE);
            assertThat(c.maxDeliveries()).isEqualTo(ConsumerConfig.DEFAULT_MAX_DELIVERIES);
            assertThat(c.batchSize()).isEqualTo(ConsumerConfig.DEFAULT_BATCH_SIZE);
            assertThat(c.maxInFlight()).isEqualTo(ConsumerConfig.DEFAULT_MAX_IN_FLIGHT);
            assertThat(c.concurrency()).isEqualTo(ConsumerConfig.DEFAULT_CONCURRENCY);
            assertThat(c.blockTimeout()).isEqualTo(ConsumerConfig.DEFAULT_BLOCK_TIMEOUT);
            assertThat(c.retryBackoff()).isEqualTo(ConsumerConfig.DEFAULT_RETRY_BACKOFF);
            assertThat(c.maxRetryBackoff()).isEqualTo(ConsumerConfig.DEFAULT_MAX_RETRY_BACKOFF);
            assertThat(c.manualAck()).isEqualTo(ConsumerConfig.DEFAULT_MANUAL_ACK);
            assertThat(c.closeTimeout()).isEqualTo(ConsumerConfig.DEFAULT_CLOSE_TIMEOUT);
            assertThat(c.consumerIdleLimit()).isEqualTo(ConsumerConfig.DEFAULT_CONSUMER_IDLE_LIMIT);
            assertThat(c.retryOrder()).isEqualTo(ConsumerConfig.DEFAULT_RETRY_ORDER);
            assertThat(c.deadLetterStream()).isEqualTo("s" + Topology.DEFAULT_DEAD_LETTER_SUFFIX);
        }

        @Test
        void retryOrderIsReadAndChecked() {
            assertThat(ConsumerConfig.builder("s", "g").fromEnvironment(Map.of("SG_RETRY_ORDER", "unordered")).build().retryOrder())
                    .isEqualTo(RetryOrder.UNORDERED);
            ConfigException e = refusal(() -> ConsumerConfig.builder("s", "g").fromEnvironment(Map.of("SG_RETRY_ORDER", "random")));
            assertThat(e.setting()).isEqualTo("SG_RETRY_ORDER");
            assertThat(e.getMessage()).contains("'random'");
            assertThat(refusal(() -> ConsumerConfig.builder("s", "g").retryOrder(null)).setting()).isEqualTo("SG_RETRY_ORDER");
        }

        @Test
        void blockTimeoutIsBounded() {
            assertThat(refusal(() -> ConsumerConfig.builder("s", "g").blockTimeout(Duration.ofSeconds(6))).getMessage())
                    .contains("blockTimeout").contains("at most 5 s");
            assertThat(ConsumerConfig.builder("s", "g").blockTimeout(ConsumerConfig.MAX_BLOCK_TIMEOUT).build().blockTimeout())
                    .isEqualTo(ConsumerConfig.MAX_BLOCK_TIMEOUT);
        }
    }

    @Nested
    class Tools {

        @Test
        void clientDefaultsAndRefusals() {
            ToolClientConfig c = ToolClientConfig.defaults();
            assertThat(c.defaultTimeout()).isEqualTo(ToolClientConfig.DEFAULT_CALL_TIMEOUT);
            assertThat(c.replyStreamMaxlen()).isEqualTo(ToolClientConfig.DEFAULT_REPLY_STREAM_MAXLEN);
            assertThat(c.replyTtl()).isEqualTo(ToolClientConfig.DEFAULT_REPLY_TTL);
            assertThat(c.blockTimeout()).isEqualTo(ToolClientConfig.DEFAULT_BLOCK_TIMEOUT);
            assertThat(c.readBatchSize()).isEqualTo(ToolClientConfig.DEFAULT_READ_BATCH_SIZE);
            assertThat(refusal(() -> ToolClientConfig.builder().replyTtl(Duration.ofMillis(999))).getMessage())
                    .contains("replyTtl").contains("PT0.999S");
            assertThat(refusal(() -> ToolClientConfig.builder().blockTimeout(Duration.ofSeconds(6))).setting()).isEqualTo("blockTimeout");
            assertThat(refusal(() -> ToolClientConfig.builder().replyStreamMaxlen(0)).getMessage()).contains("'0'");
            assertThat(refusal(() -> ToolClientConfig.builder().defaultTimeout(null)).setting()).isEqualTo("defaultTimeout");
            assertThat(refusal(() -> ToolClientConfig.builder().defaultTimeout(Duration.ofHours(25))).getMessage())
                    .contains("defaultTimeout").contains("PT25H").contains("PT24H");
            assertThat(ToolClientConfig.builder().defaultTimeout(ToolClient.MAX_TIMEOUT).build().defaultTimeout()).isEqualTo(Duration.ofDays(1));
            ToolClientConfig set = ToolClientConfig.builder().defaultTimeout(Duration.ofSeconds(2)).replyStreamMaxlen(5)
                    .replyTtl(Duration.ofSeconds(3)).blockTimeout(Duration.ofMillis(100)).readBatchSize(9).build();
            assertThat(set.toBuilder().build()).isEqualTo(set).hasSameHashCodeAs(set).isNotEqualTo(c);
        }

        @Test
        void serviceDefaultsAndRefusals() {
            ToolServiceConfig c = ToolServiceConfig.defaults();
            assertThat(c.maxConcurrent()).isEqualTo(ToolServiceConfig.DEFAULT_MAX_CONCURRENT);
            assertThat(c.maxQueued()).isEqualTo(ToolServiceConfig.DEFAULT_MAX_QUEUED);
            assertThat(c.readAhead()).isEqualTo(ToolServiceConfig.DEFAULT_READ_AHEAD);
            assertThat(c.closeTimeout()).isEqualTo(ToolServiceConfig.DEFAULT_CLOSE_TIMEOUT);
            assertThat(c.lateReplyLimit()).isEqualTo(ToolServiceConfig.DEFAULT_LATE_REPLY_LIMIT).isEqualTo(Duration.ofSeconds(30));
            assertThat(c.consumerName()).isNull();
            assertThat(c.claimIdle()).isNull();
            assertThat(refusal(() -> ToolServiceConfig.builder().maxConcurrent(0)).setting()).isEqualTo("maxConcurrent");
            assertThat(refusal(() -> ToolServiceConfig.builder().maxQueued(-1)).getMessage()).contains("'-1'");
            assertThat(refusal(() -> ToolServiceConfig.builder().readAhead(-2)).setting()).isEqualTo("readAhead");
            assertThat(refusal(() -> ToolServiceConfig.builder().consumerName("a b")).setting()).isEqualTo("consumerName");
            assertThat(refusal(() -> ToolServiceConfig.builder().consumer(null)).setting()).isEqualTo("consumer");
            assertThat(refusal(() -> ToolServiceConfig.builder().lateReplyLimit(Duration.ofSeconds(-1))).getMessage())
                    .contains("lateReplyLimit").contains("'-1000 ms'");
            assertThat(refusal(() -> ToolServiceConfig.builder().lateReplyLimit(null)).setting()).isEqualTo("lateReplyLimit");
            assertThat(ToolServiceConfig.builder().lateReplyLimit(Duration.ZERO).build().lateReplyLimit()).isZero();
            ToolServiceConfig set = ToolServiceConfig.builder().maxConcurrent(2).maxQueued(0).readAhead(0).consumerName("t")
                    .claimIdle(Duration.ofSeconds(1)).closeTimeout(Duration.ofSeconds(2)).lateReplyLimit(Duration.ofSeconds(5)).build();
            assertThat(set.toBuilder().build()).isEqualTo(set).hasSameHashCodeAs(set).isNotEqualTo(c);
        }

        @Test
        void serviceFromEnvironmentAppliesTheConsumerVariablesToItsSubscription() {
            ToolServiceConfig c = ToolServiceConfig.fromEnvironment(Map.of("SG_CLAIM_IDLE_MS", "1500", "SG_MAX_DELIVERIES", "2"));
            ConsumerConfig cc = c.consumer().apply(ConsumerConfig.builder("t", "g").consumerName("x")).build();
            assertThat(cc.claimIdle()).isEqualTo(Duration.ofMillis(1500));
            assertThat(cc.maxDeliveries()).isEqualTo(2);
            assertThat(ToolServiceConfig.defaults().consumer().apply(ConsumerConfig.builder("t", "g").consumerName("x")).build()
                    .claimIdle()).isEqualTo(ConsumerConfig.DEFAULT_CLAIM_IDLE);
        }
    }
}
