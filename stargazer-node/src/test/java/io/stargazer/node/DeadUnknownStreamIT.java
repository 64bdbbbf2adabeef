// Promise (bad input gets a clear error): a mistyped STREAM of stargazer dead ... is refused, not read as an empty one.
package io.stargazer.node;

import static org.assertj.core.api.Assertions.assertThat;

import io.lettuce.core.RedisURI;
import io.stargazer.bus.Envelope;
import io.stargazer.bus.Topology;
import io.stargazer.bus.wire.WireFormat;
import io.stargazer.node.MainCliTest.Result;
import io.stargazer.testing.RawRedis;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Bad input gets a clear error naming it: {@code stargazer dead list|replay|purge} given a stream that is neither one of
 * the topology's nor there in Redis (a typo) is refused, exit 2, instead of acting on nothing and saying "purged 0".
 */
@Timeout(120)
class DeadUnknownStreamIT {

    @Test
    void aStreamThatIsNeitherTheTopologysNorThereIsRefusedNamingIt() {
        Topology t = TestRedis.topology();
        Map<String, String> env = TestEnv.of(t);
        String inbound = t.inboundStream();
        String typo = inbound.replace("inbound", "inbund");
        String custom = inbound.replace("inbound", "custom");
        try (RawRedis raw = new RawRedis(RedisURI.create(TestRedis.url().toString()))) {
            raw.xadd(t.deadLetterStream(inbound), "payload", WireFormat.encode(Envelope.of("channel_id", "c-1", "content", "x")),
                    "error", "boom", "source_stream", inbound, "source_id", "1-1", "group", "g", "deliveries", "5");
            for (List<String> args : List.of(List.of("dead", "list", typo), List.of("dead", "replay", "--all", "--stream", typo),
                    List.of("dead", "purge", "--all", "--stream", typo), List.of("dead", "purge", "--older-than", "0s", "--stream", typo + ":dead"),
                    List.of("dead", "show", "1-1", "--stream", typo))) {
                Result r = MainCliTest.run(env, args.toArray(String[]::new));
                assertThat(r.code()).as(args + ": " + r.out() + r.err()).isEqualTo(2);
                assertThat(r.err()).as(String.join(" ", args)).contains(t.deadLetterStream(typo));
            }
            assertThat(raw.xlen(t.deadLetterStream(inbound))).isEqualTo(1);
            // A topology's stream without dead letters yet, and a stream of another name whose dead letters are there, are taken.
            Result tools = MainCliTest.run(env, "dead", "purge", "--all", "--stream", "tools");
            assertThat(tools.code()).as(tools.out() + tools.err()).isZero();
            assertThat(tools.out().strip()).isEqualTo("purged 0");
            raw.xadd(t.deadLetterStream(custom), "payload", WireFormat.encode(Envelope.of("channel_id", "c-2", "content", "y")),
                    "error", "boom", "source_stream", custom, "source_id", "1-1", "group", "g", "deliveries", "5");
            Result own = MainCliTest.run(env, "dead", "purge", "--all", "--stream", custom);
            assertThat(own.code()).as(own.out() + own.err()).isZero();
            assertThat(own.out().strip()).isEqualTo("purged 1");
        }
    }
}
