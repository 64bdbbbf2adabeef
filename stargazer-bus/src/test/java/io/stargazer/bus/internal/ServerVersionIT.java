// Promise: the library takes a server's optional features from what the server answers, not from its version number
// (Valkey 8 calls itself 7.2.4): XADD's ACKED option is detected exactly where the server accepts it.
package io.stargazer.bus.internal;

import static org.assertj.core.api.Assertions.assertThat;

import io.lettuce.core.RedisCommandExecutionException;
import io.lettuce.core.codec.ByteArrayCodec;
import io.lettuce.core.output.NestedMultiOutput;
import io.lettuce.core.output.StatusOutput;
import io.lettuce.core.protocol.CommandArgs;
import io.lettuce.core.protocol.CommandType;
import io.stargazer.bus.RedisUrl;
import io.stargazer.bus.testing.RawRedis;
import io.stargazer.bus.testing.TestRedis;
import io.stargazer.embedded.RedisServerProcess;
import io.stargazer.testing.TestServers;
import java.util.List;
import org.junit.jupiter.api.Test;

class ServerVersionIT {

    @Test
    void ackedTrimmingIsDetectedExactlyWhereTheServerAcceptsIt() {
        assertDetectionMatchesTheServer(TestRedis.url());
        try (RedisServerProcess redis62 = TestServers.redis62().start()) {
            assertDetectionMatchesTheServer(RedisUrl.parse(redis62.url()));
        }
    }

    @Test
    void everyXaddOptionOfTheServersOwnCommandDocsIsFound() {
        try (Redis redis = Redis.connect(TestRedis.url(), "probe"); RawRedis raw = new RawRedis(TestRedis.url())) {
            List<Object> docs;
            try {
                docs = raw.sync().dispatch(CommandType.COMMAND, new NestedMultiOutput<>(ByteArrayCodec.INSTANCE),
                        new CommandArgs<>(ByteArrayCodec.INSTANCE).add("DOCS").add("XADD"));
            } catch (RedisCommandExecutionException noCommandDocs) {
                docs = List.of(); // Redis 6.2
            }
            if (docs.isEmpty()) {
                assertThat(ServerVersion.tokens(docs)).isEmpty();
            } else {
                // The options XADD has had since Redis 6.2, at their several depths of the reply.
                assertThat(ServerVersion.tokens(docs)).contains("NOMKSTREAM", "MAXLEN", "MINID", "=", "~", "LIMIT");
            }
        }
    }

    private static void assertDetectionMatchesTheServer(RedisUrl url) {
        String key = TestRedis.namespace() + ":acked";
        boolean accepted;
        try (RawRedis raw = new RawRedis(url)) {
            try {
                raw.sync().dispatch(CommandType.XADD, new StatusOutput<>(ByteArrayCodec.INSTANCE), new CommandArgs<>(ByteArrayCodec.INSTANCE)
                        .add(key).add("ACKED").add("MAXLEN").add("~").add(1000).add("*").add("f").add("v"));
                accepted = true;
            } catch (RedisCommandExecutionException e) {
                accepted = false;
            }
        }
        try (Redis redis = Redis.connect(url, "probe")) {
            assertThat(redis.version().hasAckedTrimming()).as("server %s", redis.version()).isEqualTo(accepted);
        }
    }
}
