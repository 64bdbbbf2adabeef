// A gateway holds at most SG_WEBCHAT_MAX_TABS tabs (bounded memory): one more is refused with a close code and a reason
// naming the cap, the tabs it holds are served as before, and a place freed by a closing tab is taken again.
package io.stargazer.node;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.stargazer.bus.NodeRole;
import java.time.Duration;
import java.util.Map;
import org.junit.jupiter.api.Test;

class TabCapIT {

    @Test
    void aTabBeyondTheCapIsRefusedWithAReasonAndAFreedPlaceIsTakenAgain() throws Exception {
        Map<String, String> env = TestEnv.of(TestRedis.topology());
        env.put("SG_WEBCHAT_MAX_TABS", "2");
        Node node = Node.start(new Node.Settings(NodeRole.STANDALONE, new Node.Parts(true, true, true), TestRedis.url(),
                "node-tab-cap", null, 0, "127.0.0.1", 0, "echo", Duration.ofSeconds(10), env, Node.Dashboard.ON_MAIN_SERVER));
        int port = node.httpPort();
        try (ChatSocket first = new ChatSocket(port); ChatSocket second = new ChatSocket(port)) {
            ChatSocket third = new ChatSocket(port, false);
            await().atMost(Duration.ofSeconds(20)).until(() -> third.closedWith() != null);
            assertThat(third.closedWith()).isEqualTo("1013 too many tabs on this gateway: at most 2 (SG_WEBCHAT_MAX_TABS)");
            assertThat(third.channelId()).as("a refused tab is given no channel").isNull();
            assertThat(RawHttp.openTabs(port)).isEqualTo(2);

            first.say("held");
            await().atMost(Duration.ofSeconds(30)).until(() -> first.answers().contains("held"));

            second.close();
            await().atMost(Duration.ofSeconds(20)).until(() -> RawHttp.openTabs(port) == 1);
            try (ChatSocket fourth = new ChatSocket(port)) {
                fourth.say("in again");
                await().atMost(Duration.ofSeconds(30)).until(() -> fourth.answers().contains("in again"));
                assertThat(fourth.closedWith()).isNull();
            }
        } finally {
            node.close();
        }
    }
}
