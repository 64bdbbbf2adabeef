// A tab that reads what it is sent is never dropped as "too slow", however many frames come at once: a burst of
// answers (a worker streaming its answer in many small envelopes) or of "sent" frames (a tab pasting many messages).
// Only a tab that stops reading is dropped (SlowTabIT).
package io.stargazer.node;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.stargazer.bus.BusConfig;
import io.stargazer.bus.Envelope;
import io.stargazer.bus.EventBus;
import io.stargazer.bus.NodeRole;
import io.stargazer.bus.Topology;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

@Timeout(180)
class ChatBurstIT {
    private static final int ANSWERS = 5000;

    private static Node gateway(Topology t, String id, Map<String, String> env) {
        return Node.start(new Node.Settings(NodeRole.GATEWAY, new Node.Parts(true, false, false), TestRedis.url(),
                id, null, 0, "127.0.0.1", 0, "echo", Duration.ofSeconds(10), env, Node.Dashboard.ON_MAIN_SERVER));
    }

    /** Publishes {@link #ANSWERS} answers for {@code channel} as fast as the bus takes them; returns their contents. */
    private static List<String> burstOfAnswers(Topology t, String channel) {
        List<String> contents = new ArrayList<>();
        try (EventBus worker = TestRedis.bus(BusConfig.builder().topology(t).role(NodeRole.WORKER).nodeId("w-" + channel).build())) {
            List<CompletableFuture<String>> sent = new ArrayList<>();
            for (int i = 0; i < ANSWERS; i++) {
                contents.add("part " + i);
                sent.add(worker.publishAsync(t.outboundStream("webchat"), Envelope.of("platform", "webchat", "channel_id", channel,
                        "type", "message", "content", "part " + i)));
            }
            sent.forEach(CompletableFuture::join);
        }
        return contents;
    }

    @Test
    void aTabThatReadsEverythingIsNotDroppedByABurstOfAnswers() throws Exception {
        Topology t = TestRedis.topology();
        Node node = gateway(t, "node-burst", TestEnv.of(t));
        try (ChatSocket tab = new ChatSocket(node.httpPort())) {
            int port = node.httpPort();
            List<String> expected = burstOfAnswers(t, tab.channelId());
            await().atMost(Duration.ofSeconds(60)).until(() -> tab.answers().size() >= ANSWERS || RawHttp.dropped(port) > 0);
            assertThat(RawHttp.dropped(port)).as("tabs dropped (the tab had received %d of %d answers)", tab.answers().size(), ANSWERS)
                    .isZero();
            assertThat(tab.answers()).containsExactlyElementsOf(expected);
        } finally {
            node.close();
        }
    }

    /** The leanest reader: a raw socket with a 1 MiB receive buffer read in a tight loop, certainly not what is slow. */
    @Test
    void aRawSocketTabReadingInATightLoopIsNotDroppedByABurstOfAnswers() throws Exception {
        Topology t = TestRedis.topology();
        Node node = gateway(t, "node-burst-raw", TestEnv.of(t));
        AtomicInteger answers = new AtomicInteger();
        AtomicReference<String> end = new AtomicReference<>();
        try (RawChatTab tab = RawChatTab.open(node.httpPort(), 1 << 20)) {
            Matcher hello = Pattern.compile("\"channel_id\":\"([^\"]+)\"").matcher(tab.readText());
            assertThat(hello.find()).isTrue();
            Thread reader = new Thread(() -> {
                try {
                    while (true) {
                        if (tab.readText().contains("\"kind\":\"message\"")) answers.incrementAndGet();
                    }
                } catch (Exception e) {
                    end.set(String.valueOf(e));
                }
            }, "raw-reader");
            reader.setDaemon(true);
            reader.start();
            burstOfAnswers(t, hello.group(1));
            int port = node.httpPort();
            await().atMost(Duration.ofSeconds(60)).until(() -> answers.get() >= ANSWERS || end.get() != null);
            assertThat(end.get()).as("the node ended the tab after %d of %d answers (dropped: %d)", answers.get(), ANSWERS,
                    RawHttp.dropped(port)).isNull();
            assertThat(answers.get()).isEqualTo(ANSWERS);
        } finally {
            node.close();
        }
    }

    /**
     * A client sends 2000 messages back to back (a paste, a bot) and reads all it is sent. Each is answered with a
     * "sent" frame, or an "error" frame once the tab is over its rate (ChatRateLimitIT); the rate limit is lifted here
     * so that every one is published.
     */
    @Test
    void aTabThatReadsEverythingIsNotDroppedWhenItSendsABurst() throws Exception {
        Topology t = TestRedis.topology();
        Map<String, String> env = new HashMap<>(TestEnv.of(t));
        env.put("SG_WEBCHAT_RATE", "100000");
        env.put("SG_WEBCHAT_BURST", "100000");
        Node node = gateway(t, "node-burst-in", env);
        try (ChatSocket tab = new ChatSocket(node.httpPort())) {
            int port = node.httpPort();
            int n = 2000;
            int written = 0;
            try {
                for (; written < n; written++) tab.say("line " + written);
            } catch (RuntimeException e) {
                // the node closed the tab: the assertion below says so
            }
            int w = written;
            await().atMost(Duration.ofSeconds(60)).until(() -> answered(tab) >= w || RawHttp.dropped(port) > 0);
            assertThat(RawHttp.dropped(port)).as("tabs dropped; the tab wrote %d of %d messages and got %d 'sent' frames", written, n,
                    answered(tab)).isZero();
            assertThat(written).isEqualTo(n);
            assertThat(tab.errors()).isEmpty();
        } finally {
            node.close();
        }
    }

    private static long answered(ChatSocket tab) {
        return tab.frames().stream().filter(f -> "sent".equals(f.get("kind")) || "error".equals(f.get("kind"))).count();
    }
}
