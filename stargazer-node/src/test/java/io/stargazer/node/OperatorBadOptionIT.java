// Promise (bad input gets a clear error naming the bad value): a bad value typed after a flag of an operator command is
// refused naming that flag (or the STREAM argument), exit code 2, and nothing is published. Before, `--node-id` was refused as SG_NODE_ID,
// `publish --dedupe-key ''` as "dedupeKey" and `publish --to 'outbound:web chat'` as "platform": names the operator never typed.
package io.stargazer.node;

import static org.assertj.core.api.Assertions.assertThat;

import io.lettuce.core.RedisURI;
import io.stargazer.bus.Topology;
import io.stargazer.node.MainCliTest.Result;
import io.stargazer.testing.RawRedis;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

@Timeout(120)
class OperatorBadOptionIT {

    @Test
    void aBadFlagValueOfAnOperatorCommandIsRefusedNamingTheFlag() {
        Topology t = TestRedis.topology();
        Map<String, String> env = TestEnv.of(t);
        String json = "{\"channel_id\":\"c\",\"platform\":\"webchat\"}";
        List<String[]> cases = List.of(
                new String[] {"--node-id", "stargazer: --node-id: 'a b'", "streams", "--node-id", "a b"},
                new String[] {"--node-id", "stargazer: --node-id: 'a b'", "publish", "--node-id", "a b", json},
                new String[] {"--dedupe-key", "stargazer: --dedupe-key: ", "publish", "--dedupe-key", "", json},
                new String[] {"--to", "stargazer: --to: 'web chat'", "publish", "--to", "outbound:web chat", json},
                new String[] {"--to", "stargazer: --to: 'a b'", "publish", "--to", "a b", json});
        for (String[] c : cases) {
            Result r = MainCliTest.run(env, java.util.Arrays.copyOfRange(c, 2, c.length));
            assertThat(r.code()).as(c[0] + ": " + r.err()).isEqualTo(2);
            assertThat(r.err().strip()).as(c[0]).doesNotContain("\n").startsWith(c[1]);
        }
        try (RawRedis raw = new RawRedis(RedisURI.create(TestRedis.url().toString()))) {
            assertThat(raw.sync().exists(t.inboundStream().getBytes(StandardCharsets.UTF_8))).as("published").isZero();
        }
    }

    /** The same for a stream typed as an operator command's STREAM argument or its --stream flag. */
    @Test
    void aBadStreamArgumentOrStreamFlagIsRefusedNamingIt() {
        Map<String, String> env = TestEnv.of(TestRedis.topology());
        List<String[]> cases = List.of(
                new String[] {"STREAM", "stargazer: STREAM: 'web chat'", "tail", "outbound:web chat"},
                new String[] {"STREAM", "stargazer: STREAM: 'a b'", "tail", "a b"},
                new String[] {"STREAM", "stargazer: STREAM: 'web chat'", "dead", "list", "outbound:web chat"},
                new String[] {"STREAM", "stargazer: STREAM: 'web chat'", "pause", "outbound:web chat", "g"},
                new String[] {"--stream", "stargazer: --stream: 'web chat'", "dead", "replay", "--all", "--stream", "outbound:web chat"},
                new String[] {"--stream", "stargazer: --stream: 'a b'", "dead", "purge", "--all", "--stream", "a b"});
        for (String[] c : cases) {
            Result r = MainCliTest.run(env, java.util.Arrays.copyOfRange(c, 2, c.length));
            assertThat(r.code()).as(String.join(" ", c) + ": " + r.err()).isEqualTo(2);
            assertThat(r.err().strip()).as(String.join(" ", c)).doesNotContain("\n").startsWith(c[1]);
        }
    }
}
