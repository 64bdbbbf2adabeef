// `stargazer streams` tells a stream that could not be read from one that does not exist, and exits 1 for it.
package io.stargazer.node;

import static org.assertj.core.api.Assertions.assertThat;

import io.lettuce.core.AclSetuserArgs;
import io.lettuce.core.RedisURI;
import io.stargazer.bus.RedisUrl;
import io.stargazer.bus.Topology;
import io.stargazer.testing.RawRedis;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * Found by testers from outside: with a cluster primary paused, {@code stargazer streams} showed its streams as missing
 * ("-", 0 dead letters, no group) and exited 0, because the report used {@code EventBus.streamInfo}, which answers
 * empty for a failed call as for a missing stream. Here the failure is a refusal (an ACL user whose keys leave out the
 * outbound and tools streams), which the report reads the same way as a server out of reach: through
 * {@code EventBus.describeStream}, which throws for both.
 */
class StreamsUnreadableIT {

    @Test
    void aStreamThatCouldNotBeReadIsNamedAndTheExitCodeIsOne() {
        Topology t = TestRedis.topology();
        RedisUrl admin = TestRedis.url();
        String user = "streams-report-" + System.nanoTime();
        Map<String, String> env = new HashMap<>(TestEnv.of(t));
        assertThat(MainCliTest.run(env, "publish", "{\"platform\":\"webchat\",\"channel_id\":\"c-1\",\"content\":\"x\"}").code()).isZero();
        String missing = t.inboundStream() + "-missing";
        try (RawRedis raw = new RawRedis(RedisURI.create(admin.toString()))) {
            // The inbound stream, its dead letters and the missing one may be read; the outbound and tools streams not.
            raw.sync().aclSetuser(user, AclSetuserArgs.Builder.on().addPassword("pw").allCommands().allChannels()
                    .keyPattern(t.inboundStream() + "*"));
            try {
                env.put("REDIS_URL", "redis://" + user + ":pw@" + admin.host() + ":" + admin.port());
                MainCliTest.Result table = MainCliTest.run(env, "streams", "--stream", missing);
                assertThat(table.code()).as(table.out() + table.err()).isEqualTo(1);
                String outbound = t.outboundStream("webchat");
                assertThat(line(table.out(), outbound)).contains("?").contains("could not be read: ").contains("NOPERM");
                assertThat(line(table.out(), t.toolsStream())).contains("could not be read: ");
                assertThat(line(table.out(), missing)).doesNotContain("could not be read").containsPattern(" - +0 +-");
                assertThat(line(table.out(), t.inboundStream())).doesNotContain("could not be read");
                assertThat(table.err()).contains("stargazer: " + outbound + ": could not be read: ").contains("NOPERM")
                        .doesNotContain(missing);

                MainCliTest.Result json = MainCliTest.run(env, "streams", "--json", "--stream", missing);
                assertThat(json.code()).isEqualTo(1);
                @SuppressWarnings("unchecked")
                List<Map<String, Object>> rows = (List<Map<String, Object>>) Json.parse(json.out());
                assertThat(rows).filteredOn(r -> r.get("stream").equals(outbound)).singleElement()
                        .satisfies(r -> assertThat((String) r.get("error")).contains("NOPERM"))
                        .satisfies(r -> assertThat(r).containsEntry("exists", false).containsEntry("dead_letters", null));
                assertThat(rows).filteredOn(r -> r.get("stream").equals(missing)).singleElement()
                        .satisfies(r -> assertThat(r).containsEntry("exists", false).containsEntry("dead_letters", 0L).doesNotContainKey("error"));
                assertThat(rows).filteredOn(r -> r.get("stream").equals(t.inboundStream())).singleElement()
                        .satisfies(r -> assertThat(r).containsEntry("exists", true).containsEntry("length", 1L).doesNotContainKey("error"));
            } finally {
                raw.sync().aclDeluser(user);
            }
        }
    }

    private static String line(String table, String stream) {
        return table.lines().filter(l -> l.startsWith(stream + " ")).findFirst().orElseThrow(() -> new AssertionError(stream + " not in\n" + table));
    }
}
