package io.stargazer.node;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.lettuce.core.RedisURI;
import io.stargazer.bus.acl.AclRules;
import io.stargazer.bus.NodeRole;
import io.stargazer.bus.PublishVia;
import io.stargazer.bus.RedisUrl;
import io.stargazer.bus.Topology;
import io.stargazer.embedded.RedisServerProcess;
import io.stargazer.testing.RawRedis;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

// The node runs with the least-privilege users `stargazer acl` generates (FCALL of the stargazer library's functions, no
// EVAL) on a provisioned server: a gateway, a worker and a tools service, each logged in as its own role's user, pass
// messages and tool calls through, and Redis refuses nothing.
class NodeUnderAclIT {
    @Test
    void gatewayWorkerAndToolsEachRunAsTheirOwnAclUser() throws Exception {
        Topology t = Topology.defaults();
        try (RedisServerProcess server = RedisServerProcess.builder().start()) {
            loadUsers(server, rules(t, server, false));
            // The roles may not load functions: the administrator provisions the server first (stargazer provision).
            io.stargazer.bus.Provisioning.provision(RedisUrl.parse(server.url()),
                    io.stargazer.bus.BusConfig.builder().topology(t).platforms(List.of("webchat")).build());
            Map<String, String> env = Map.of("SG_PLATFORMS", "webchat");
            List<Node> nodes = new ArrayList<>();
            try {
                Node gateway = Node.start(settings(NodeRole.GATEWAY, new Node.Parts(true, false, false), server, "sg-gateway-webchat",
                        "gw-pass", "gw-1", 0, "echo", env));
                nodes.add(gateway);
                nodes.add(Node.start(settings(NodeRole.WORKER, new Node.Parts(false, true, false), server, "sg-worker", "wk-pass",
                        "worker-1", -1, "tools", env)));
                nodes.add(Node.start(settings(NodeRole.TOOLS, new Node.Parts(false, false, true), server, "sg-tools", "tl-pass",
                        "tools-1", -1, "echo", env)));
                try (ChatSocket tab = new ChatSocket(gateway.httpPort())) {
                    tab.say("/calc 6*7");
                    tab.say("plain words");
                    await().atMost(Duration.ofSeconds(20)).until(() -> tab.answers().size() == 2);
                    assertThat(tab.answers()).containsExactly("42", "plain words");
                }
                HttpResponse<String> health = HttpClient.newHttpClient().send(HttpRequest.newBuilder(
                        URI.create("http://127.0.0.1:" + gateway.httpPort() + "/health")).build(), HttpResponse.BodyHandlers.ofString());
                assertThat(health.body()).contains("\"redis\":\"up\"").doesNotContain("gw-pass");
                assertThat(health.statusCode()).isEqualTo(200);
            } finally {
                for (int i = nodes.size() - 1; i >= 0; i--) nodes.get(i).close();
            }
            try (RawRedis admin = new RawRedis(RedisURI.create(server.url()))) {
                // Nothing any role did, from start to graceful stop, was refused.
                assertThat(admin.sync().aclLog()).isEmpty();
            }
        }
    }

    /**
     * A standalone node in relay mode runs the relay in-process: what its parts write to their outboxes arrives, under the
     * relay-mode standalone user (which holds everything, relay included: it is for trying relay mode out).
     */
    @Test
    void aStandaloneNodeInRelayModeRunsTheRelayInProcess() throws Exception {
        Topology t = Topology.defaults();
        try (RedisServerProcess server = RedisServerProcess.builder().start()) {
            loadUsers(server, AclRules.builder(t).platforms(List.of("webchat")).serverVersion(server.version())
                    .publishVia(PublishVia.RELAY).standalone("sg-standalone", "st-pass").build());
            io.stargazer.bus.Provisioning.provision(RedisUrl.parse(server.url()),
                    io.stargazer.bus.BusConfig.builder().topology(t).platforms(List.of("webchat")).publishVia(PublishVia.RELAY).build());
            Map<String, String> env = Map.of("SG_PLATFORMS", "webchat", "SG_PUBLISH_VIA", "relay");
            try (Node node = Node.start(settings(NodeRole.STANDALONE, new Node.Parts(true, true, true), server, "sg-standalone",
                    "st-pass", "st-1", 0, "tools", env)); ChatSocket tab = new ChatSocket(node.httpPort())) {
                tab.say("/calc 6*7");
                await().atMost(Duration.ofSeconds(20)).until(() -> tab.answers().size() == 1);
                assertThat(tab.answers()).containsExactly("42");
            }
            try (RawRedis admin = new RawRedis(RedisURI.create(server.url()))) {
                for (String o : List.of(t.gatewayOutbox("webchat"), t.workerOutbox(), t.toolsOutbox())) {
                    assertThat(admin.xlen(o)).as(o).isPositive();
                }
                assertThat(admin.sync().aclLog()).isEmpty();
            }
        }
    }

    /**
     * The same as separate processes (`stargazer gateway|worker|tools`, each with REDIS_URL of its own user), and the
     * operator's command line as sg-operator: a dead letter is replayed, the worker group paused and resumed. Redis
     * refuses nothing from start to stop (issue 18).
     */
    @Test
    void separateProcessesRunAsTheirUsersAndTheOperatorReplaysAndPauses() throws Exception {
        separateProcesses(PublishVia.DIRECT);
    }

    /**
     * Relay mode (SG_PUBLISH_VIA=relay): the same processes under the relay-mode users, which hold no write on any shared
     * stream, and `stargazer relay` as sg-relay moving their outboxes' entries: chat, a tool call, the dead letter and
     * its replay, the paused and resumed group all work, and Redis refuses nothing.
     */
    @Test
    void inRelayModeSeparateProcessesAndTheRelayRunAsTheirUsers() throws Exception {
        separateProcesses(PublishVia.RELAY);
    }

    private void separateProcesses(PublishVia via) throws Exception {
        Topology t = Topology.defaults();
        try (RedisServerProcess server = RedisServerProcess.builder().start()) {
            AclRules rules = rules(t, server, true, via);
            io.stargazer.bus.Provisioning.provision(RedisUrl.parse(server.url()),
                    io.stargazer.bus.BusConfig.builder().topology(t).platforms(List.of("webchat")).publishVia(via).build());
            loadUsers(server, rules);
            List<NodeProcess> procs = new ArrayList<>();
            try (RawRedis admin = new RawRedis(RedisURI.create(server.url()))) {
                if (via == PublishVia.RELAY) {
                    start(procs, "acl-relay", env(server, "sg-relay", "rl-pass", via), "relay", "--node-id", "relay-1");
                }
                NodeProcess gateway = start(procs, "acl-gw", env(server, "sg-gateway-webchat", "gw-pass", via),
                        "gateway", "--platform", "webchat", "--http-port", "0", "--node-id", "gw-1");
                Map<String, String> workerEnv = env(server, "sg-worker", "wk-pass", via);
                workerEnv.put("SG_WORKER_HANDLER", "tools");
                NodeProcess worker = start(procs, "acl-worker", workerEnv, "worker", "--node-id", "worker-1");
                start(procs, "acl-tools", env(server, "sg-tools", "tl-pass", via), "tools", "--node-id", "tools-1");
                for (NodeProcess p : procs) p.awaitRunning();
                Map<String, String> operator = env(server, "sg-operator", "op-pass", via);
                try (ChatSocket tab = new ChatSocket(gateway.httpPort())) {
                    tab.say("/calc 6*7");
                    await().atMost(Duration.ofSeconds(30)).until(() -> tab.answers().size() == 1);
                    assertThat(tab.answers()).containsExactly("42");

                    // A malformed entry from outside: the worker dead-letters it; the operator puts it back (it is
                    // dead-lettered again, now naming the first).
                    String dead = t.deadLetterStream(t.inboundStream());
                    admin.xadd(t.inboundStream(), "payload", new byte[] {(byte) 0xc1}, "trace_id", "x");
                    await().atMost(Duration.ofSeconds(30)).until(() -> admin.xlen(dead) == 1);
                    MainCliTest.Result replay = MainCliTest.run(operator, "dead", "replay", "--all", "--stream", "inbound");
                    assertThat(replay.code()).as(replay.err()).isZero();
                    assertThat(replay.out()).contains("replayed 1");
                    await().atMost(Duration.ofSeconds(30)).until(() -> admin.xrange(dead).stream()
                            .anyMatch(m -> RawRedis.fields(m).containsKey("replay_of")));

                    MainCliTest.Result pause = MainCliTest.run(operator, "pause", "inbound", t.workerGroup());
                    assertThat(pause.code()).as(pause.err()).isZero();
                    // A consumer sees the flag within its next check (docs/operating.md): wait for the worker to say so.
                    await().atMost(Duration.ofSeconds(10)).until(() -> worker.lines().stream().anyMatch(l -> l.contains("Group paused")));
                    tab.say("while paused");
                    await().during(Duration.ofSeconds(2)).atMost(Duration.ofSeconds(3)).until(() -> tab.answers().size() == 1);
                    MainCliTest.Result resume = MainCliTest.run(operator, "resume", "inbound", t.workerGroup());
                    assertThat(resume.code()).as(resume.err()).isZero();
                    assertThat(resume.err()).as("no warning: the operator may SCAN for other counts' pause flags").isEmpty();
                    await().atMost(Duration.ofSeconds(30)).until(() -> tab.answers().size() == 2);
                    assertThat(tab.answers()).containsExactly("42", "while paused");
                    // What the operator commands read to tell a typo or a stray key apart is within their users' rules:
                    // the ACL LOG below stays empty.
                    MainCliTest.Result again = MainCliTest.run(operator, "resume", "inbound", t.workerGroup());
                    assertThat(again.code()).as(again.err()).isZero();
                    assertThat(again.out()).startsWith("was not paused");
                    MainCliTest.Result streams = MainCliTest.run(operator, "streams");
                    assertThat(streams.code()).as(streams.err()).isZero();
                    assertThat(streams.err()).isEmpty();
                    MainCliTest.Result list = MainCliTest.run(operator, "dead", "list");
                    assertThat(list.code()).as(list.err()).isZero();
                    assertThat(list.err()).isEmpty();
                }
                if (via == PublishVia.RELAY) {
                    // Every write to a shared stream went through an outbox: the gateway's messages, the worker's
                    // answers, tool requests and dead letters, the tools service's replies.
                    for (String o : List.of(t.gatewayOutbox("webchat"), t.workerOutbox(), t.toolsOutbox())) {
                        assertThat(admin.xlen(o)).as(o).isPositive();
                    }
                    assertThat(admin.xlen(t.deadLetterStream(t.gatewayOutbox("webchat")))).isZero();
                }
                for (int i = procs.size() - 1; i >= 0; i--) procs.get(i).stop(); // graceful: SIGTERM, then its shutdown
                assertThat(admin.sync().aclLog()).isEmpty();
            } finally {
                for (NodeProcess p : procs) p.close();
            }
        }
    }

    private static NodeProcess start(List<NodeProcess> procs, String name, Map<String, String> env, String... args) {
        return NodeProcess.start(procs, name, env, args);
    }

    /**
     * The gateway, worker and tools users `stargazer acl` generates, with passwords, for this server's version (a 7.2+
     * server, Valkey among them, is sent CLIENT SETINFO at login); {@code operator}: also sg-operator.
     */
    private static AclRules rules(Topology t, RedisServerProcess server, boolean operator) {
        return rules(t, server, operator, PublishVia.DIRECT);
    }

    private static AclRules rules(Topology t, RedisServerProcess server, boolean operator, PublishVia via) {
        AclRules.Builder b = AclRules.builder(t).platforms(List.of("webchat")).serverVersion(server.version()).publishVia(via)
                .gateway("sg-gateway-webchat", "gw-pass", "webchat").worker("sg-worker", "wk-pass").tools("sg-tools", "tl-pass");
        if (operator) b.operator("sg-operator", "op-pass");
        if (via == PublishVia.RELAY) b.relay("sg-relay", "rl-pass");
        return b.build();
    }

    private static Map<String, String> env(RedisServerProcess server, String user, String password, PublishVia via) {
        Map<String, String> env = new java.util.HashMap<>();
        env.put("REDIS_URL", "redis://" + user + ":" + password + "@127.0.0.1:" + server.port());
        env.put("SG_PLATFORMS", "webchat");
        env.put("SG_PUBLISH_VIA", via.wireName());
        return env;
    }

    /** Loads the users (ACL SETUSER as the default user) and clears the ACL LOG. */
    private static void loadUsers(RedisServerProcess server, AclRules rules) {
        try (RawRedis admin = new RawRedis(RedisURI.create(server.url()))) {
            for (AclRules.User u : rules.users()) {
                List<String> args = u.setUserArgs();
                admin.sync().dispatch(io.lettuce.core.protocol.CommandType.ACL, new io.lettuce.core.output.StatusOutput<>(
                        io.lettuce.core.codec.ByteArrayCodec.INSTANCE), new io.lettuce.core.protocol.CommandArgs<>(
                        io.lettuce.core.codec.ByteArrayCodec.INSTANCE).add("SETUSER").addValues(
                        args.stream().map(a -> a.getBytes(StandardCharsets.UTF_8)).toList()));
            }
            admin.sync().aclLogReset();
        }
    }

    private static Node.Settings settings(NodeRole role, Node.Parts parts, RedisServerProcess server, String user, String password,
            String nodeId, int httpPort, String handler, Map<String, String> env) {
        RedisUrl url = RedisUrl.parse("redis://" + user + ":" + password + "@127.0.0.1:" + server.port());
        return new Node.Settings(role, parts, url, nodeId, null, 0, "127.0.0.1", httpPort, handler, Duration.ofSeconds(10), env,
                Node.Dashboard.ON_MAIN_SERVER);
    }
}
