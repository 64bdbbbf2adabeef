// An answer reaches its tab once, also when the gateway's connections to Redis are cut while answers flow: its
// reader reconnects and reads its pending entries again, and one whose answer went to the tab but whose XACK had not
// landed comes back. The gateway reads its stream in order, so such an entry is at or below the last one it sent
// the tab, and is skipped.
package io.stargazer.node;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.lettuce.core.KillArgs;
import io.lettuce.core.RedisURI;
import io.stargazer.bus.Envelope;
import io.stargazer.bus.NodeRole;
import io.stargazer.bus.RedisUrl;
import io.stargazer.bus.Topology;
import io.stargazer.bus.wire.WireFormat;
import io.stargazer.embedded.RedisServerProcess;
import io.stargazer.testing.RawRedis;
import io.stargazer.testing.TestServers;
import java.time.Duration;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.Function;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

@Timeout(180)
class ChatAnswersOnceIT {

    @Test
    void answersReachTheTabOnceEachAcrossConnectionCuts() throws Exception {
        Topology t = TestRedis.topology();
        // A server of its own: the test cuts every connection to it but its own.
        try (RedisServerProcess server = TestServers.server().start()) {
            Map<String, String> env = new HashMap<>(TestEnv.of(t));
            env.put("REDIS_URL", server.url());
            Node node = Node.start(new Node.Settings(NodeRole.GATEWAY, new Node.Parts(true, false, false), RedisUrl.parse(server.url()),
                    "node-answers-once", null, 0, "127.0.0.1", 0, "echo", Duration.ofSeconds(10), env, Node.Dashboard.ON_MAIN_SERVER));
            try {
                answersOnceAcrossCuts(t, node, server.url());
            } finally {
                node.close();
            }
        }
    }

    private static void answersOnceAcrossCuts(Topology t, Node node, String url) throws Exception {
        try (ChatSocket tab = new ChatSocket(node.httpPort()); RawRedis raw = new RawRedis(RedisURI.create(url))) {
            String channel = tab.channelId();
            Set<String> stored = new HashSet<>();
            int n = 0;
            for (int round = 0; round < 15; round++) {
                // Written on the test's own connection, which the cut below spares (SKIPME).
                for (int i = 0; i < 40; i++, n++) {
                    raw.xadd(t.outboundStream("webchat"), "payload", WireFormat.encode(Envelope.of("platform", "webchat", "channel_id", channel,
                            "type", "message", "content", "part " + n)), "trace_id", "tr-" + n);
                    stored.add("part " + n);
                }
                // Cuts the gateway's connections while it delivers the round: the shared one (with the XACKs) and its
                // reader's.
                raw.sync().clientKill(KillArgs.Builder.typeNormal().skipme(true));
                Set<String> sofar = new HashSet<>(stored);
                await().atMost(Duration.ofSeconds(30)).until(() -> tab.answers().containsAll(sofar));
            }
            List<String> answers = tab.answers();
            Map<String, Long> counts = answers.stream().collect(Collectors.groupingBy(Function.identity(), Collectors.counting()));
            List<String> doubled = counts.entrySet().stream().filter(e -> e.getValue() > 1).map(Map.Entry::getKey).sorted().toList();
            assertThat(doubled).as("answers the tab got more than once (of %d frames, %d distinct)", answers.size(), counts.size()).isEmpty();
            assertThat(counts).hasSize(stored.size());
        }
    }
}
