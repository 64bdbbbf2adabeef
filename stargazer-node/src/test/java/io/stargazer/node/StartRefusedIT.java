// Promise (clear errors): a node whose Redis refuses it (wrong password, an ACL user without the commands) exits 1 with one line.
package io.stargazer.node;

import static org.assertj.core.api.Assertions.assertThat;

import io.lettuce.core.RedisURI;
import io.stargazer.bus.Topology;
import io.stargazer.embedded.RedisServerProcess;
import io.stargazer.testing.RawRedis;
import io.stargazer.testing.TestServers;
import java.util.HashMap;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * A worker, gateway or standalone node started against a Redis that refuses it ends, as docs/node.md says of an
 * unreachable server, with exit code 1 and one line naming the URL without its password, and the reason; it does not
 * hang or start half-way.
 */
@Timeout(120)
class StartRefusedIT {
    @Test
    void aWrongPasswordOrAUserWithoutTheCommandsEndsTheStartWithOneLine() throws Exception {
        Topology t = TestRedis.topology();
        try (RedisServerProcess server = TestServers.server().arg("--requirepass", "right-secret").start()) {
            try (RawRedis admin = new RawRedis(RedisURI.builder().withHost("127.0.0.1").withPort(server.port())
                    .withPassword("right-secret".toCharArray()).build())) {
                // May connect and ping, nothing else: every stream command is NOPERM.
                admin.sync().aclSetuser("pinger", io.lettuce.core.AclSetuserArgs.Builder.on().addPassword("pinger-secret")
                        .allKeys().addCommand(io.lettuce.core.protocol.CommandType.PING)
                        .addCommand(io.lettuce.core.protocol.CommandType.HELLO)
                        .addCommand(io.lettuce.core.protocol.CommandType.CLIENT));
            }
            for (String[] urlAndSecret : new String[][] {
                    {"redis://:wrong-secret@127.0.0.1:" + server.port(), "wrong-secret", "WRONGPASS"},
                    {"redis://pinger:pinger-secret@127.0.0.1:" + server.port(), "pinger-secret", "NOPERM"}}) {
                for (String command : new String[] {"worker", "gateway", "standalone"}) {
                    Map<String, String> env = new HashMap<>(TestEnv.of(t));
                    env.put("REDIS_URL", urlAndSecret[0]);
                    env.put("SG_HTTP_PORT", "0");
                    MainCliTest.Result r = MainCliTest.run(env, command);
                    String err = r.err().strip();
                    assertThat(r.code()).as("%s with %s: %s", command, urlAndSecret[0], err).isEqualTo(1);
                    assertThat(err).as("%s with %s", command, urlAndSecret[0]).startsWith("stargazer: ").doesNotContain("\n")
                            .contains("127.0.0.1:" + server.port()).contains(urlAndSecret[2]).doesNotContain(urlAndSecret[1]);
                }
            }
        }
    }
}
