// While SG_INBOUND_PARTITIONS changes, workers on the old and the new count dead-letter into their own count's
// dead-letter streams. An operator or node given the other count (SG_INBOUND_PARTITIONS_ALSO, as the relay is) lists,
// replays and counts those too: before, `stargazer dead` and the dead-letter gauge saw only their own count's.
package io.stargazer.node;

import static org.assertj.core.api.Assertions.assertThat;

import io.lettuce.core.RedisURI;
import io.stargazer.bus.Envelope;
import io.stargazer.bus.NodeRole;
import io.stargazer.bus.Topology;
import io.stargazer.bus.wire.WireFormat;
import io.stargazer.node.MainCliTest.Result;
import io.stargazer.testing.RawRedis;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

@Timeout(120)
class DeadLettersDuringAPartitionChangeIT {

    private static String deadLetter(RawRedis raw, Topology t, String source, String channel) {
        return raw.xadd(t.deadLetterStream(source), "payload", WireFormat.encode(Envelope.of("platform", "webchat", "channel_id", channel,
                "content", "from " + source)), "trace_id", "tr-" + channel, "error", "provider down", "source_stream", source,
                "source_id", "1-1", "group", t.workerGroup(), "deliveries", "5", "dead_at_ms", Long.toString(System.currentTimeMillis()));
    }

    @Test
    void theOtherCountsDeadLettersAreListedReplayedAndCounted() throws Exception {
        Topology t = TestRedis.topology();
        Map<String, String> env = new HashMap<>(TestEnv.of(t));
        env.put(Topology.ENV_INBOUND_PARTITIONS, "3");
        env.put(Topology.ENV_INBOUND_PARTITIONS_ALSO, "2");
        String newPart = Topology.partitionNames(t.inboundStream(), 3).get(0);
        String oldPart = Topology.partitionNames(t.inboundStream(), 2).get(1);
        try (RawRedis raw = new RawRedis(RedisURI.create(TestRedis.url().toString()))) {
            // Each partition with an entry still to handle, and one dead letter of its workers.
            for (String part : List.of(oldPart, newPart)) {
                raw.xadd(part, "payload", WireFormat.encode(Envelope.of("platform", "webchat", "channel_id", "c-wait", "content", "wait")));
            }
            String onOld = deadLetter(raw, t, oldPart, "c-old");
            String onNew = deadLetter(raw, t, newPart, "c-new");

            // The gauge, and so the dead-letter alert, of a node given the other count.
            Node.Settings settings = new Node.Settings(NodeRole.GATEWAY, new Node.Parts(false, false, false), TestRedis.url(),
                    "node-also-dead", null, -1, "127.0.0.1", 0, "echo", Duration.ofSeconds(10), env, Node.Dashboard.ON_MAIN_SERVER);
            try (Node node = Node.start(settings)) {
                HttpResponse<String> metrics = HttpClient.newHttpClient().send(HttpRequest.newBuilder(
                        URI.create("http://127.0.0.1:" + node.httpPort() + "/metrics")).build(), HttpResponse.BodyHandlers.ofString());
                assertThat(metrics.body()).contains("stargazer_dead_letters{stream=\"" + oldPart + "\"} 1.0")
                        .contains("stargazer_dead_letters{stream=\"" + newPart + "\"} 1.0");
            }

            Result list = MainCliTest.run(env, "dead", "list");
            assertThat(list.code()).as(list.err()).isZero();
            assertThat(list.out()).contains(onOld, onNew).contains(t.deadLetterStream(oldPart));
            Result inbound = MainCliTest.run(env, "dead", "list", "inbound", "--json");
            assertThat(inbound.out().strip().lines().toList()).hasSize(2);
            // By id and stream: the two dead letters, stored in the same millisecond, may share an id, and an id alone
            // that two streams hold is refused (DeadCliIT.anIdTwoDeadLetterStreamsHoldIsRefusedUntilNamedWithItsStream).
            Result show = MainCliTest.run(env, "dead", "show", onOld + "@" + t.deadLetterStream(oldPart));
            assertThat(show.code()).as(show.err()).isZero();
            assertThat(show.out()).contains("from " + oldPart);

            Result replay = MainCliTest.run(env, "dead", "replay", "--all", "--stream", "inbound");
            assertThat(replay.code()).as(replay.err()).isZero();
            assertThat(replay.out()).contains("replayed 2, already replayed 0, skipped 0");
            assertThat(raw.xlen(t.deadLetterStream(oldPart))).isZero();
            assertThat(raw.xlen(oldPart)).as("the old partition: its waiting entry and the replayed one").isEqualTo(2);
            assertThat(RawRedis.s(RawRedis.fields(raw.xrange(oldPart).get(1)).get("replay_of"))).isEqualTo(onOld);
            assertThat(raw.xlen(newPart)).isEqualTo(2);

            // Without the other count, only this count's are seen (as before): the setting is what shows them.
            Map<String, String> without = new HashMap<>(env);
            without.remove(Topology.ENV_INBOUND_PARTITIONS_ALSO);
            String again = deadLetter(raw, t, oldPart, "c-old-2");
            assertThat(MainCliTest.run(without, "dead", "list").out()).doesNotContain(again);
            assertThat(MainCliTest.run(env, "dead", "list").out()).contains(again);
            assertThat(List.of(MainCliTest.run(env, "dead", "purge", "--all").out().strip())).containsExactly("purged 1");
        }
    }
}
