package io.stargazer.node;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.lettuce.core.RedisURI;
import io.stargazer.bus.acl.AclRules;
import io.stargazer.bus.NodeRole;
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
            // Rules for this server's version: a 7.2+ server (Valkey among them) is sent CLIENT SETINFO at login.
            AclRules rules = AclRules.builder(t).platforms(List.of("webchat")).serverVersion(server.version())
                    .gateway("sg-gateway-webchat", "gw-pass", "webchat").worker("sg-worker", "wk-pass").tools("sg-tools", "tl-pass")
                    .build();
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

    private static Node.Settings settings(NodeRole role, Node.Parts parts, RedisServerProcess server, String user, String password,
            String nodeId, int httpPort, String handler, Map<String, String> env) {
        RedisUrl url = RedisUrl.parse("redis://" + user + ":" + password + "@127.0.0.1:" + server.port());
        return new Node.Settings(role, parts, url, nodeId, null, 0, "127.0.0.1", httpPort, handler, Duration.ofSeconds(10), env,
                Node.Dashboard.ON_MAIN_SERVER);
    }
}
