// The command line: one-line errors with the right exit codes, and streams / publish / tail against a real Redis.
package io.stargazer.node;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.stargazer.bus.BusConfig;
import io.stargazer.bus.ConsumerInfo;
import io.stargazer.bus.EventBus;
import io.stargazer.bus.NodeRole;
import io.stargazer.bus.Topology;
import io.stargazer.embedded.RedisServerProcess;
import io.stargazer.testing.Certificates;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class MainCliTest {
    record Result(int code, String out, String err) {
    }

    static Result run(Map<String, String> env, String... args) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        int code = Main.run(args, env, new PrintStream(out, true, StandardCharsets.UTF_8), new PrintStream(err, true, StandardCharsets.UTF_8));
        return new Result(code, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
    }

    @Test
    void badFlagIsOneLineUsageError() {
        Result r = run(Map.of(), "standalone", "--no-such-flag");
        assertThat(r.code()).isEqualTo(2);
        assertThat(r.err().strip()).doesNotContain("\n").contains("--no-such-flag").startsWith("stargazer: ");
    }

    @Test
    void flagOfTheWrongTypeNamesTheFlag() {
        Result r = run(Map.of(), "gateway", "--http-port", "eighty");
        assertThat(r.code()).isEqualTo(2);
        assertThat(r.err().strip()).doesNotContain("\n").contains("--http-port").contains("eighty");
    }

    @Test
    void unreadableVariableNamesTheVariable() {
        Result r = run(Map.of("SG_HTTP_PORT", "abc"), "standalone");
        assertThat(r.code()).isEqualTo(2);
        assertThat(r.err().strip()).isEqualTo("stargazer: SG_HTTP_PORT: 'abc' is not a whole number");
        Result bad = run(Map.of("SG_INBOUND_PARTITIONS", "0", "REDIS_URL", TestRedis.url().toString()), "streams");
        assertThat(bad.code()).isEqualTo(2);
        assertThat(bad.err().strip()).doesNotContain("\n").contains("SG_INBOUND_PARTITIONS");
    }

    @Test
    void aSettingIsTheFlagElseTheVariableElseTheDefaultAndAnErrorNamesWhereItCameFrom() {
        // The variable when there is no flag; a blank variable is unset.
        Result env = run(Map.of("SG_TOOL_TIMEOUT_MS", "0", "SG_HTTP_PORT", " "), "worker");
        assertThat(env.code()).isEqualTo(2);
        assertThat(env.err().strip()).isEqualTo("stargazer: SG_TOOL_TIMEOUT_MS: '0' must be greater than zero");
        // The flag wins, and the variable is not even read.
        Result flag = run(Map.of("SG_DASHBOARD_PORT", "abc"), "gateway", "--dashboard-port", "70000");
        assertThat(flag.code()).isEqualTo(2);
        assertThat(flag.err().strip()).isEqualTo("stargazer: --dashboard-port: '70000' is not a port");
        Result variable = run(Map.of("SG_REDIS_PORT", "-1"), "standalone");
        assertThat(variable.err().strip()).isEqualTo("stargazer: SG_REDIS_PORT: '-1' is not a port");
        Result platform = run(Map.of("SG_GATEWAY_PLATFORM", "discord"), "gateway");
        assertThat(platform.code()).isEqualTo(2);
        assertThat(platform.err().strip()).startsWith("stargazer: SG_GATEWAY_PLATFORM: 'discord' is not a platform");
        Result both = run(Map.of("SG_GATEWAY_PLATFORM", "discord"), "gateway", "--platform", "matrix");
        assertThat(both.err().strip()).startsWith("stargazer: --platform: 'matrix' is not a platform");
    }

    /**
     * A tool timeout over the day a tool call takes at most is refused at start, naming it. Before, the node started and
     * every tool command of the tools handler failed (the call refused the timeout), was retried and ended as a dead
     * letter, unanswered.
     */
    @Test
    void aToolTimeoutOverADayIsRefusedAtStart() {
        Result r = run(Map.of("SG_TOOL_TIMEOUT_MS", "86400001", "REDIS_URL", "redis://127.0.0.1:1"), "worker");
        assertThat(r.code()).isEqualTo(2);
        assertThat(r.err().strip()).isEqualTo("stargazer: SG_TOOL_TIMEOUT_MS: '86400001' must be at most 86400000 (one day, "
                + "the longest a tool call waits)");
        Result day = run(Map.of("SG_TOOL_TIMEOUT_MS", "86400000", "REDIS_URL", "redis://127.0.0.1:1"), "worker");
        assertThat(day.err()).doesNotContain("SG_TOOL_TIMEOUT_MS");
    }

    @Test
    void unreachableServerIsOneLineErrorNamingIt() {
        Result r = run(Map.of("REDIS_URL", "redis://127.0.0.1:1"), "worker");
        assertThat(r.code()).isEqualTo(1);
        assertThat(r.err().strip()).doesNotContain("\n").contains("redis://127.0.0.1:1").doesNotContain("Exception");
        Result url = run(Map.of("REDIS_URL", "http://x"), "streams");
        assertThat(url.code()).isEqualTo(2);
        assertThat(url.err().strip()).isEqualTo("stargazer: REDIS_URL: 'http://x' must start with redis:// or rediss://");
    }

    @Test
    void aBadOpenTelemetryVariableIsOneLineNamingIt() {
        Result r = run(Map.of("REDIS_URL", TestRedis.url().toString(), "OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318",
                "OTEL_EXPORTER_OTLP_PROTOCOL", "carrier-pigeon"), "worker");
        assertThat(r.code()).isEqualTo(2);
        assertThat(r.err().strip()).doesNotContain("\n").startsWith("stargazer: OpenTelemetry (OTEL_* variables): ").contains("carrier-pigeon");
    }

    @Test
    void operatorToolsNeedAServer() {
        Result r = run(Map.of(), "streams");
        assertThat(r.code()).isEqualTo(2);
        assertThat(r.err().strip()).startsWith("stargazer: REDIS_URL: not set");
    }

    @Test
    void unknownHandlerNamesTheSetting() {
        Map<String, String> env = TestEnv.of(TestRedis.topology());
        env.put("SG_WORKER_HANDLER", "com.example.Missing");
        Result r = run(env, "worker");
        assertThat(r.code()).isEqualTo(2);
        assertThat(r.err().strip()).doesNotContain("\n").contains("SG_WORKER_HANDLER").contains("com.example.Missing");
    }

    /** provision --url names --url, as streams --redis-url names --redis-url, not the REDIS_URL it stands in for. */
    @Test
    void provisionWithABadUrlNamesTheFlag() {
        Result r = run(Map.of("REDIS_URL", "redis://127.0.0.1:1"), "provision", "--url", "garbage");
        assertThat(r.code()).isEqualTo(2);
        assertThat(r.err().strip()).startsWith("stargazer: --url: 'garbage'").doesNotContain("\n");
    }

    /** The help a usage error points to is the subcommand's own, by its whole name. */
    @Test
    void aBadFlagOfASubcommandPointsToThatSubcommandsHelp() {
        for (String[] args : List.of(new String[] {"dead", "replay", "--bogus"}, new String[] {"dead", "list", "--bogus"},
                new String[] {"streams", "--bogus"})) {
            Result r = run(Map.of(), args);
            assertThat(r.code()).isEqualTo(2);
            String command = String.join(" ", java.util.Arrays.copyOf(args, args.length - 1));
            assertThat(r.err().strip()).endsWith("(see 'stargazer " + command + " --help')");
            assertThat(run(Map.of(), (command + " --help").split(" ")).code()).isZero();
        }
    }

    /** JSON has no infinity: a number past a double is refused, as an integer past 64 bits is, not stored as +Infinity. */
    @Test
    void publishRefusesANumberTooLargeForADouble() {
        for (String json : List.of("{\"n\":1e400}", "{\"n\":-1e400}", "{\"a\":[1.5e309]}")) {
            Result r = run(Map.of(), "publish", json);
            assertThat(r.code()).as(json + ": " + r.err()).isEqualTo(2);
            assertThat(r.err().strip()).as(json).startsWith("stargazer: JSON: ").contains("too large").doesNotContain("\n");
        }
    }

    /** docs/node.md: a bad value ends the command with exit code 2 and one line that names the setting and quotes the value. */
    @Test
    void badValuesOfTheOperatorCommandsAreUsageErrorsQuotingTheValue() {
        Map<String, String> env = TestEnv.of(TestRedis.topology());
        String[][] cases = { // the setting and the value the error line must name, then the command
            {"--older-than", "99999999999999999999d", "dead", "purge", "--older-than", "99999999999999999999d"},
            {"--older-than", "9999999999999999d", "dead", "purge", "--older-than", "9999999999999999d"},
            {"--older-than", "PT99999999999999999999H", "dead", "purge", "--older-than", "PT99999999999999999999H"},
            {"--older-than", "soon", "dead", "purge", "--older-than", "soon"},
            {"--older-than", "PT-1H", "dead", "purge", "--older-than", "PT-1H"},
            {"--stream", "a b", "streams", "--stream", "a b"},
            {"STREAM", "a b", "dead", "list", "a b"},
            {"--limit", "0", "dead", "list", "-n", "0"},
            {"--after", "garbage", "dead", "list", "--after", "garbage"},
            {"ID", "notanid", "dead", "replay", "notanid"},
            {"--rate", "0", "dead", "replay", "--all", "--rate", "0"},
            {"--rate", "abc", "dead", "replay", "--all", "--rate", "abc"},
        };
        List<String> problems = new java.util.ArrayList<>();
        for (String[] c : cases) {
            String[] args = java.util.Arrays.copyOfRange(c, 2, c.length);
            Result r = run(env, args);
            String err = r.err().strip();
            if (r.code() != 2 || err.contains("\n") || !err.startsWith("stargazer: " + c[0] + ": ") || !err.contains("'" + c[1] + "'")) {
                problems.add(String.join(" ", args) + " -> exit " + r.code() + ": " + err);
            }
        }
        assertThat(problems).isEmpty();
    }

    @Test
    void publishTailAndStreamsRoundTripAnEnvelopeWithBytes() {
        Topology t = TestRedis.topology();
        Map<String, String> env = new HashMap<>(TestEnv.of(t));
        Result pub = run(env, "publish", "{\"platform\":\"webchat\",\"channel_id\":\"c-1\",\"content\":\"héllo\","
                + "\"blob\":{\"$bytes\":\"AP8Q\"},\"n\":-1,\"list\":[1,\"two\"]}");
        assertThat(pub.code()).as(pub.err()).isZero();
        assertThat(pub.out().strip()).matches("\\d+-\\d+");

        Result tail = run(env, "tail", "inbound", "--from-start", "-n", "1");
        assertThat(tail.code()).as(tail.err()).isZero();
        @SuppressWarnings("unchecked")
        Map<String, Object> line = (Map<String, Object>) Json.parse(tail.out().strip());
        assertThat(line.get("id")).isEqualTo(pub.out().strip());
        assertThat(line.get("stream")).isEqualTo(t.inboundStream());
        @SuppressWarnings("unchecked")
        Map<String, Object> envelope = (Map<String, Object>) line.get("envelope");
        assertThat(envelope).containsEntry("content", "héllo").containsEntry("blob", Map.of("$bytes", "AP8Q"))
                .containsEntry("n", -1L).containsEntry("list", List.of(1L, "two"));
        assertThat((String) envelope.get("trace_id")).hasSize(32);

        Result outbound = run(env, "publish", "--to", "outbound:webchat", "{\"channel_id\":\"c-1\",\"content\":\"x\"}");
        assertThat(outbound.code()).as(outbound.err()).isZero();

        Result table = run(env, "streams");
        assertThat(table.code()).as(table.err()).isZero();
        assertThat(table.out()).contains("STREAM").contains(t.inboundStream()).contains(t.outboundStream("webchat"));
        Result json = run(env, "streams", "--json");
        assertThat(json.code()).isZero();
        @SuppressWarnings("unchecked")
        List<Map<String, Object>> rows = (List<Map<String, Object>>) Json.parse(json.out());
        assertThat(rows).filteredOn(r -> r.get("stream").equals(t.inboundStream())).singleElement()
                .satisfies(r -> assertThat(r).containsEntry("length", 1L).containsEntry("dead_letters", 0L));
        assertThat(rows).filteredOn(r -> r.get("stream").equals(t.outboundStream("webchat"))).singleElement()
                .satisfies(r -> assertThat(r).containsEntry("length", 1L));

        Result badJson = run(env, "publish", "{\"content\": ");
        assertThat(badJson.code()).isEqualTo(2);
        assertThat(badJson.err().strip()).startsWith("stargazer: JSON: invalid JSON at character");
    }

    @Test
    void publishWithADedupeKeyStoresOneEntryAndPrintsTheFirstIdAgain() {
        Topology t = TestRedis.topology();
        Map<String, String> env = new HashMap<>(TestEnv.of(t));
        Result first = run(env, "publish", "--dedupe-key", "discord:1234567", "{\"channel_id\":\"c-1\",\"content\":\"hi\"}");
        assertThat(first.code()).as(first.err()).isZero();
        Result again = run(env, "publish", "--dedupe-key", "discord:1234567", "{\"channel_id\":\"c-1\",\"content\":\"hi\"}");
        assertThat(again.code()).as(again.err()).isZero();
        assertThat(again.out().strip()).isEqualTo(first.out().strip()).matches("\\d+-\\d+");
        Result other = run(env, "publish", "--dedupe-key", "discord:1234568", "{\"channel_id\":\"c-1\",\"content\":\"hi\"}");
        assertThat(other.out().strip()).isNotEqualTo(first.out().strip());
        Result tail = run(env, "tail", "inbound", "--from-start", "-n", "2");
        assertThat(tail.out().strip().lines()).hasSize(2);
        Result bad = run(env, "publish", "--dedupe-key", "", "{}");
        assertThat(bad.code()).isEqualTo(2);
        assertThat(bad.err().strip()).doesNotContain("\n").contains("--dedupe-key");
    }

    /**
     * In relay mode the relay moves only the outboxes of SG_PLATFORMS: `stargazer publish` for another platform printed an
     * outbox id and the entry was never delivered, and a web chat gateway whose SG_PLATFORMS left out webchat did the same
     * with every message typed. Both are refused, naming SG_PLATFORMS and the platform; nothing is written (found by the
     * review of relay mode).
     */
    @Test
    @org.junit.jupiter.api.Timeout(120) // on the old code the gateway started and ran until stopped
    void inRelayModeAPublishOrAWebChatGatewayForAPlatformOutsideSgPlatformsIsRefusedNamingIt() {
        Topology t = TestRedis.topology();
        Map<String, String> env = new HashMap<>(TestEnv.of(t));
        env.put("SG_PUBLISH_VIA", "relay");
        env.put(Topology.ENV_OUTBOX_PREFIX, t.outboxPrefix());
        Result pub = run(env, "publish", "{\"platform\":\"discord\",\"channel_id\":\"c-1\",\"content\":\"hi\"}");
        assertThat(pub.code()).isEqualTo(2);
        assertThat(pub.err().strip()).doesNotContain("\n").startsWith("stargazer: SG_PLATFORMS: ").contains("'discord'")
                .contains("nothing was written");
        Map<String, String> gatewayEnv = new HashMap<>(env);
        gatewayEnv.put("SG_PLATFORMS", "discord");
        Result gateway = run(gatewayEnv, "gateway", "--http-port", "0");
        assertThat(gateway.code()).isEqualTo(2);
        assertThat(gateway.err().strip()).doesNotContain("\n").startsWith("stargazer: SG_PLATFORMS: 'discord' leaves out webchat");
    }

    /**
     * In relay mode a publish completes once the role's outbox holds it, before its dedupe key is looked up (the relay
     * does that when it moves the entry), so a key used again prints the new outbox entry's id, not the first entry's.
     * The help said "prints the first entry's id" without that exception (docs/once.md likewise).
     */
    @Test
    void publishWithADedupeKeyInRelayModePrintsTheOutboxEntrysIdAsItsHelpSays() {
        Topology t = TestRedis.topology();
        Map<String, String> env = new HashMap<>(TestEnv.of(t));
        env.put("SG_PUBLISH_VIA", "relay");
        env.put(Topology.ENV_OUTBOX_PREFIX, t.outboxPrefix());
        String json = "{\"platform\":\"webchat\",\"channel_id\":\"c-1\",\"content\":\"hi\"}";
        Result first = run(env, "publish", "--dedupe-key", "discord:1234567", json);
        assertThat(first.code()).as(first.err()).isZero();
        Result again = run(env, "publish", "--dedupe-key", "discord:1234567", json);
        assertThat(again.code()).as(again.err()).isZero();
        assertThat(again.out().strip()).isNotEqualTo(first.out().strip()).matches("\\d+-\\d+");
        String help = run(Map.of(), "publish", "--help").out().replaceAll("\\s+", " ");
        assertThat(help).contains("first entry's id").contains("SG_PUBLISH_VIA=relay").contains("outbox entry's id");
    }

    @Test
    void aclPrintsOneUserPerRoleForTheTopologyOfTheEnvironment() {
        Result r = run(Map.of("SG_PLATFORMS", "webchat,discord", "SG_INBOUND_STREAM", "app:in"), "acl");
        assertThat(r.code()).isZero();
        assertThat(r.out().lines().filter(l -> l.startsWith("ACL SETUSER ")).map(l -> l.split(" ")[2]))
                .containsExactly("sg-gateway-webchat", "sg-gateway-discord", "sg-worker", "sg-tools", "sg-monitor", "sg-operator");
        assertThat(r.out()).contains("%W~app:in ").doesNotContain("~sg:stream:inbound").doesNotContain("nopass")
                .contains("+fcall|sg_publish ").doesNotContain("+eval");
        assertThat(run(Map.of("SG_PLATFORMS", "webchat"), "acl", "--compatibility").out()).contains("+eval +evalsha");
        Result file = run(Map.of("SG_PLATFORMS", "webchat"), "acl", "--file");
        assertThat(file.code()).isZero();
        assertThat(file.out().lines().filter(l -> l.startsWith("user ")).count()).isEqualTo(5);
        // Relay mode (flag, or SG_PUBLISH_VIA): the gateway writes only its outbox; sg-relay writes the inbound stream.
        for (Result relay : List.of(run(Map.of("SG_PLATFORMS", "webchat", "SG_INBOUND_STREAM", "app:in"), "acl", "--relay"),
                run(Map.of("SG_PLATFORMS", "webchat", "SG_INBOUND_STREAM", "app:in", "SG_PUBLISH_VIA", "relay"), "acl"))) {
            assertThat(relay.code()).as(relay.err()).isZero();
            List<String> lines = relay.out().lines().toList();
            assertThat(lines).extracting(l -> l.split(" ")[2]).containsExactly("sg-gateway-webchat", "sg-worker", "sg-tools",
                    "sg-monitor", "sg-operator", "sg-relay");
            assertThat(lines.get(0)).contains("%W~sg:outbox:gateway:webchat)").doesNotContain("~app:in");
            assertThat(lines.get(5)).contains("%W~app:in ").contains("+fcall|sg_reply");
        }
        // While SG_INBOUND_PARTITIONS changes: the old count's inbound streams beside the new count's.
        Result both = run(Map.of("SG_PLATFORMS", "webchat", "SG_INBOUND_STREAM", "app:in", "SG_INBOUND_PARTITIONS", "2"),
                "acl", "--relay", "--also-partitions", "1");
        assertThat(both.code()).as(both.err()).isZero();
        String relayLine = both.out().lines().filter(l -> l.startsWith("ACL SETUSER sg-relay ")).findFirst().orElseThrow();
        assertThat(relayLine).contains("%W~app:in ");
        for (String part : io.stargazer.bus.Topology.partitionNames("app:in", 2)) assertThat(relayLine).contains("%W~" + part + " ");
        Result bad = run(Map.of("SG_PLATFORMS", "web chat"), "acl");
        assertThat(bad.code()).isEqualTo(2);
        assertThat(bad.err().strip()).doesNotContain("\n").contains("SG_PLATFORMS");
    }

    @Test
    void provisionLoadsTheLibraryAndCreatesTheGroupsThenSaysThereIsNothingToDo() {
        Topology t = TestRedis.topology();
        try (io.stargazer.embedded.RedisServerProcess server = io.stargazer.embedded.RedisServerProcess.builder().start()) {
            Map<String, String> env = new HashMap<>(TestEnv.of(t));
            env.remove("REDIS_URL");
            Result first = run(env, "provision", "--url", server.url());
            assertThat(first.code()).as(first.err()).isZero();
            assertThat(first.out().lines()).containsExactly(
                    "loaded library stargazer 10",
                    "created group " + t.workerGroup() + " on " + t.inboundStream(),
                    "created group " + t.toolsGroup() + " on " + t.toolsStream(),
                    "provisioned");
            Result again = run(env, "provision", "--url", server.url());
            assertThat(again.out().lines()).last().isEqualTo("nothing to do: already provisioned");
            assertThat(again.out().lines()).first().isEqualTo("library stargazer 10 already loaded");
        }
    }

    /** README "Settings": SG_REDIS_CA_FILE is the CA to trust for rediss://; the node reads it beside REDIS_URL. */
    @Test
    void theNodeTrustsTheCaOfSgRedisCaFile(@TempDir Path dir) {
        Certificates certs = new Certificates(dir);
        certs.ca("ca");
        certs.server("server", "ca", "IP:127.0.0.1", "DNS:localhost");
        try (RedisServerProcess server = RedisServerProcess.builder().tls(certs.crt("server"), certs.key("server"), certs.crt("ca")).start()) {
            Map<String, String> env = new HashMap<>(TestEnv.of(TestRedis.topology()));
            env.put("REDIS_URL", server.tlsUrl());
            env.put("SG_REDIS_CA_FILE", certs.crt("ca").toString());
            Result r = run(env, "streams");
            assertThat(r.code()).as("stargazer streams with SG_REDIS_CA_FILE: " + r.err()).isZero();
        }
    }

    /** The node refuses what RedisUrl.fromEnvironment refuses: a CA file on a redis:// URL, a TLS_VERIFY not full or none. */
    @Test
    void aCaFileOnAPlainUrlIsRefusedAsTheLibraryDoes() {
        Map<String, String> env = new HashMap<>(TestEnv.of(TestRedis.topology()));
        env.put("SG_REDIS_CA_FILE", "/no/such/ca.pem");
        Result r = run(env, "streams");
        assertThat(r.code()).as("exit code; out=" + r.out()).isEqualTo(2);
        assertThat(r.err().strip()).startsWith("stargazer: SG_REDIS_CA_FILE: is set but").doesNotContain("\n");
        env.remove("SG_REDIS_CA_FILE");
        env.put("SG_REDIS_TLS_VERIFY", "sometimes");
        r = run(env, "streams");
        assertThat(r.code()).isEqualTo(2);
        assertThat(r.err().strip()).isEqualTo("stargazer: SG_REDIS_TLS_VERIFY: 'sometimes' must be full or none");
    }

    /**
     * node.md: a setting is "its flag, else its environment variable". With both, --node-id names the worker's consumer
     * (each subscription used to take SG_NODE_ID again from ConsumerConfig.Builder.fromEnvironment()).
     */
    @Test
    void theNodeIdFlagWinsOverSgNodeIdForTheConsumerName() throws Exception {
        Topology t = TestRedis.topology();
        Map<String, String> env = new HashMap<>(TestEnv.of(t));
        env.put("SG_NODE_ID", "from-variable");
        try (NodeProcess worker = NodeProcess.start("node-id-flag", env, "worker", "--node-id", "from-flag");
             EventBus bus = TestRedis.bus(BusConfig.builder().topology(t).role(NodeRole.WORKER).build())) {
            worker.awaitRunning();
            await().atMost(Duration.ofSeconds(20)).until(() -> !bus.consumers(t.inboundStream(), t.workerGroup()).isEmpty());
            List<String> names = bus.consumers(t.inboundStream(), t.workerGroup()).stream().map(ConsumerInfo::name).toList();
            assertThat(names).as("consumers of the worker group").containsExactly("from-flag");
            worker.stop();
        }
    }

    /**
     * node.md: "a blank one counts as unset", for the bus variables too: a blank SG_NODE_ID (compose's
     * SG_NODE_ID=${NODE_ID} with NODE_ID unset) ended every command, even publish, with "must not be empty".
     */
    @Test
    void aBlankSgNodeIdCountsAsUnset() {
        Map<String, String> env = new HashMap<>(TestEnv.of(TestRedis.topology()));
        env.put("SG_NODE_ID", "");
        env.put("SG_STREAM_MAXLEN", " ");
        Result r = run(env, "publish", "{\"channel_id\":\"c-1\",\"content\":\"hi\"}");
        assertThat(r.code()).as(r.err()).isZero();
    }

    /** README: a bad value's message names the variable and the value: a zero duration in milliseconds, not 'PT0S'. */
    @Test
    void aZeroDurationIsQuotedInMilliseconds() {
        Map<String, String> env = new HashMap<>(TestEnv.of(TestRedis.topology()));
        env.put("SG_PUBLISH_TIMEOUT_MS", "0");
        Result r = run(env, "streams");
        assertThat(r.code()).isEqualTo(2);
        assertThat(r.err().strip()).isEqualTo("stargazer: SG_PUBLISH_TIMEOUT_MS: '0 ms' must be a positive duration");
    }

    /** node.md "Shutting down": a graceful stop on SIGTERM ends with exit code 0, not the JVM's 143. */
    @Test
    void aGracefulStopOnSigtermExitsWithZero() throws Exception {
        try (NodeProcess worker = NodeProcess.start("sigterm-exit", TestEnv.of(TestRedis.topology()), "worker")) {
            worker.awaitRunning();
            assertThat(worker.stop()).as(worker.log()).isZero();
            assertThat(worker.lines()).anyMatch(l -> l.contains("Stopped"));
        }
    }

    /**
     * A SIGTERM while the node starts (held open here by its handler's creation) stops it once started, with 0.
     * Before, the signals were taken only after Node.start returned: one in the start, or just after the "Node running"
     * line the start logs last (aGracefulStopOnSigtermExitsWithZero's 143, 1 run in 4), went to the JVM's handler and
     * the process ended with 143.
     */
    @Test
    void aSigtermWhileTheNodeStartsStopsItOnceStartedWithZero(@TempDir Path dir) throws Exception {
        Path gate = dir.resolve("gate");
        try (NodeProcess worker = gatedWorker("sigterm-in-start", gate)) {
            worker.awaitLine("GatedStartHandler: waiting");
            worker.sigterm();
            worker.awaitLine("SIGTERM while the node starts: it stops once started");
            java.nio.file.Files.createFile(gate);
            assertThat(worker.awaitExit()).as(worker.log()).isZero();
            assertThat(worker.lines()).anyMatch(l -> l.contains("Node running")).anyMatch(l -> l.contains("Stopped"));
        }
    }

    /** A second SIGTERM while the start still hangs ends the process at once, as the JVM ends it (143). */
    @Test
    void aSecondSigtermWhileTheNodeStartsEndsItAtOnce(@TempDir Path dir) throws Exception {
        try (NodeProcess worker = gatedWorker("sigterm-twice-in-start", dir.resolve("gate"))) {
            worker.awaitLine("GatedStartHandler: waiting");
            worker.sigterm();
            worker.awaitLine("SIGTERM while the node starts: it stops once started");
            worker.sigterm();
            assertThat(worker.awaitExit()).as(worker.log()).isEqualTo(143);
            assertThat(worker.lines()).noneMatch(l -> l.contains("Node running"));
        }
    }

    /**
     * The embedded redis-server ends with the process when a second SIGTERM ends it during the start (helper-117's
     * review): the node takes its server over from the JVM-exit reaper only once started. Before, the node built it
     * "stopped by its owner" and the owner's shutdown hook came only after the start, so the server outlived the process.
     */
    @Test
    void aSecondSigtermWhileAStandaloneNodeStartsLeavesNoRedisServerRunning(@TempDir Path dir) throws Exception {
        Map<String, String> env = new HashMap<>(TestEnv.of(TestRedis.topology()));
        env.remove("REDIS_URL");
        env.put("SG_TEST_START_GATE", dir.resolve("gate").toString());
        Path data = dir.resolve("redis");
        try (NodeProcess node = NodeProcess.start("sigterm-twice-standalone", env, "standalone", "--http-port", "0",
                "--redis-port", "0", "--data-dir", data.toString(), "--handler", GatedStartHandler.class.getName())) {
            node.awaitLine("GatedStartHandler: waiting");
            java.util.regex.Matcher m = java.util.regex.Pattern.compile("started embedded Redis \\S+ at redis://127\\.0\\.0\\.1:(\\d+)")
                    .matcher(node.log());
            assertThat(m.find()).as(node.log()).isTrue();
            int port = Integer.parseInt(m.group(1));
            try {
                node.sigterm();
                node.awaitLine("SIGTERM while the node starts: it stops once started");
                node.sigterm();
                assertThat(node.awaitExit()).as(node.log()).isEqualTo(143);
                await().atMost(Duration.ofSeconds(10)).until(() -> !ourRedisAnswers(port, data));
            } finally {
                if (ourRedisAnswers(port, data)) shutdown(port); // what the old version left behind, or a failed test
            }
        }
    }

    /** Whether the redis-server on {@code port} answers and keeps its data in {@code data} (not another test's). */
    private static boolean ourRedisAnswers(int port, Path data) {
        try (io.stargazer.testing.RawRedis r = new io.stargazer.testing.RawRedis(io.lettuce.core.RedisURI.create("redis://127.0.0.1:" + port))) {
            Map<String, String> dirs = r.sync().configGet("dir");
            Path ours = data.toRealPath(); // what the server's getcwd() says
            return dirs.values().stream().anyMatch(v -> Path.of(v).equals(ours));
        } catch (RuntimeException | java.io.IOException refused) {
            return false;
        }
    }

    private static void shutdown(int port) {
        try (io.stargazer.testing.RawRedis r = new io.stargazer.testing.RawRedis(io.lettuce.core.RedisURI.create("redis://127.0.0.1:" + port))) {
            r.sync().shutdown(false);
        } catch (RuntimeException gone) {
            // it went by itself meanwhile
        }
    }

    private static NodeProcess gatedWorker(String name, Path gate) {
        Map<String, String> env = new HashMap<>(TestEnv.of(TestRedis.topology()));
        env.put("SG_TEST_START_GATE", gate.toString());
        return NodeProcess.start(name, env, "worker", "--handler", GatedStartHandler.class.getName());
    }

    /** The operator commands never start a server: their --redis-url help does not say they would. */
    @Test
    void theRedisUrlHelpOfTheOperatorCommandsPromisesNoEmbeddedServer() {
        for (String command : List.of("streams", "publish", "tail", "pause", "provision")) {
            Result r = run(Map.of(), command, "--help");
            // The help wraps its lines: compare with the white space made single.
            assertThat(r.out().replaceAll("\\s+", " ")).as(command).contains("--redis-url")
                    .doesNotContain("without it the node starts an embedded one");
        }
    }

    /**
     * tail without --from-start, for a user that may not run XINFO STREAM: it used to start at 0 and print the whole
     * stream; it ends with one line saying why instead.
     */
    @Test
    void tailWithoutXinfoStreamSaysSoInsteadOfPrintingTheWholeStream() {
        try (RedisServerProcess server = RedisServerProcess.builder().start()) {
            Map<String, String> env = new HashMap<>(TestEnv.of(TestRedis.topology()));
            env.put("REDIS_URL", server.url());
            for (int i = 0; i < 3; i++) assertThat(run(env, "publish", "{\"channel_id\":\"c\",\"n\":" + i + "}").code()).isZero();
            try (io.stargazer.testing.RawRedis admin = new io.stargazer.testing.RawRedis(io.lettuce.core.RedisURI.create(server.url()))) {
                io.lettuce.core.codec.ByteArrayCodec codec = io.lettuce.core.codec.ByteArrayCodec.INSTANCE;
                admin.sync().dispatch(io.lettuce.core.protocol.CommandType.ACL, new io.lettuce.core.output.StatusOutput<>(codec),
                        new io.lettuce.core.protocol.CommandArgs<>(codec).add("SETUSER").add("tailer").add("on").add(">pw").add("~*")
                                .add("&*").add("+@all").add("-xinfo"));
            }
            env.put("REDIS_URL", "redis://tailer:pw@127.0.0.1:" + server.port());
            Result r = run(env, "tail", "inbound", "-n", "1");
            assertThat(r.out()).as("printed").isEmpty();
            assertThat(r.code()).as(r.err()).isEqualTo(1);
            assertThat(r.err().strip()).contains("XINFO STREAM").contains("--from-start").doesNotContain("\n");
        }
    }
}
