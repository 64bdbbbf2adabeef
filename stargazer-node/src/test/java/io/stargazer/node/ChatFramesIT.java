// What a tab sends must be JSON: a frame that is not (including what the old hand-written parser let through) gets an
// error frame saying where it is wrong and publishes nothing, and every good message around it is answered, in order.
package io.stargazer.node;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.stargazer.bus.BusConfig;
import io.stargazer.bus.EventBus;
import io.stargazer.bus.NodeRole;
import io.stargazer.bus.StreamInfo;
import io.stargazer.bus.Topology;
import java.time.Duration;
import org.junit.jupiter.api.Test;

class ChatFramesIT {

    @Test
    void aFrameThatIsNotJsonIsRefusedWithWhereAndNothingElseIsLost() {
        Topology t = TestRedis.topology();
        Node node = Node.start(new Node.Settings(NodeRole.STANDALONE, new Node.Parts(true, true, false), TestRedis.url(),
                "node-frames", null, 0, "127.0.0.1", 0, "echo", Duration.ofSeconds(10), TestEnv.of(t),
                Node.Dashboard.ON_MAIN_SERVER));
        try (ChatSocket tab = new ChatSocket(node.httpPort());
                EventBus probe = TestRedis.bus(BusConfig.builder().topology(t).role(NodeRole.GATEWAY).nodeId("probe").build())) {
            tab.say("one");
            tab.sendFrame("{\"content\": \"two\", \"n\": 01}");
            tab.sendFrame("{\"content\": \"three\", \"content\": \"four\"}");
            tab.sendFrame("{\"content\": \"five\"} and more");
            tab.sendFrame("not json at all");
            tab.sendFrame("{\"text\": \"six\"}");
            tab.say("seven");
            await().atMost(Duration.ofSeconds(20)).until(() -> tab.answers().contains("seven"));

            assertThat(tab.answers()).containsExactly("one", "seven");
            assertThat(tab.errors()).hasSize(5);
            assertThat(tab.errors().subList(0, 4)).allSatisfy(e -> assertThat(e).startsWith("bad frame: invalid JSON at character "));
            assertThat(tab.errors().get(0)).contains("Leading zeroes not allowed");
            assertThat(tab.errors().get(1)).contains("Duplicate field 'content'");
            assertThat(tab.errors().get(2)).contains("unexpected text after the JSON value");
            assertThat(tab.errors().get(4)).isEqualTo("bad frame: expected {\"content\": \"...\"}");
            // Only the two good messages reached the inbound stream.
            assertThat(probe.streamInfo(t.inboundStream()).map(StreamInfo::length)).contains(2L);
        } finally {
            node.close();
        }
    }
}
