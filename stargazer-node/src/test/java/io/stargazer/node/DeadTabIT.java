// A tab whose machine is gone (no FIN or RST ever comes) is closed within a bounded time and frees what it holds, while
// a quiet tab that answers its pings is kept; answers for a closed tab are counted, never dropped without a trace.
package io.stargazer.node;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.stargazer.bus.BusConfig;
import io.stargazer.bus.Envelope;
import io.stargazer.bus.EventBus;
import io.stargazer.bus.NodeRole;
import io.stargazer.bus.Topology;
import java.time.Duration;
import org.junit.jupiter.api.Test;

class DeadTabIT {
    private static final String NODE_ID = "node-dead-tab";
    /**
     * Generous next to the documented bound (a ping every 20 s, 20 s for anything to come back, 10 s for the close
     * frame): Linux's TCP would hold such a connection for some 15 minutes, and here, with the proxy alive, for ever.
     */
    private static final Duration NOTICED_WITHIN = Duration.ofSeconds(120);

    private static Node start(Topology t) {
        return Node.start(new Node.Settings(NodeRole.STANDALONE, new Node.Parts(true, true, true), TestRedis.url(),
                NODE_ID, null, 0, "127.0.0.1", 0, "echo", Duration.ofSeconds(10), TestEnv.of(t),
                Node.Dashboard.ON_MAIN_SERVER));
    }

    @Test
    void aTabFromWhichNothingComesBackIsClosedAndAQuietTabThatAnswersPingsIsKept() throws Exception {
        Node node = start(TestRedis.topology());
        int port = node.httpPort();
        try (FreezingProxy proxy = new FreezingProxy(port); ChatSocket quiet = new ChatSocket(port);
                ChatSocket gone = new ChatSocket(proxy.port())) {
            gone.say("before");
            await().atMost(Duration.ofSeconds(30)).until(() -> gone.answers().contains("before"));
            assertThat(RawHttp.openTabs(port)).isEqualTo(2);

            // The tab's machine is gone: nothing the node sends reaches it, so nothing (no pong) comes back.
            proxy.freeze(true);
            await().atMost(NOTICED_WITHIN).until(() -> RawHttp.openTabs(port) == 1);

            // The quiet tab sent nothing all this while but answered its pings: still open, still served.
            assertThat(quiet.closedWith()).isNull();
            quiet.say("still here");
            await().atMost(Duration.ofSeconds(30)).until(() -> quiet.answers().contains("still here"));
            assertThat(RawHttp.dropped(port)).isEqualTo(1);
        } finally {
            node.close();
        }
    }

    @Test
    void anAnswerForATabThatHasClosedIsCounted() throws Exception {
        Topology t = TestRedis.topology();
        Node node = start(t);
        int port = node.httpPort();
        try (EventBus worker = TestRedis.bus(BusConfig.builder().topology(t).role(NodeRole.WORKER).nodeId("w-dead-tab").build())) {
            String channel;
            try (ChatSocket tab = new ChatSocket(port)) {
                channel = tab.channelId();
            }
            await().atMost(Duration.ofSeconds(20)).until(() -> RawHttp.openTabs(port) == 0);

            // An answer to this gateway's tab (the worker copies gateway_id) that comes after the tab closed.
            worker.publishOutbound("webchat", Envelope.of("platform", "webchat", "channel_id", channel, "gateway_id", NODE_ID,
                    "type", "message", "content", "too late"));
            // And one for a tab of another gateway: not this gateway's to count.
            worker.publishOutbound("webchat", Envelope.of("platform", "webchat", "channel_id", "wc-elsewhere",
                    "gateway_id", "node-elsewhere", "type", "message", "content", "not ours"));
            await().atMost(Duration.ofSeconds(30))
                    .until(() -> RawHttp.metric(port, "stargazer_webchat_answers_discarded_total") == 1);
            await().during(Duration.ofSeconds(2)).atMost(Duration.ofSeconds(10))
                    .until(() -> RawHttp.metric(port, "stargazer_webchat_answers_discarded_total") == 1);
        } finally {
            node.close();
        }
    }
}
