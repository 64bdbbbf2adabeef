// Issue 17, fault 1: one browser tab that stops reading its socket must not freeze the node. Its frames wait in a
// bounded buffer of its own; when the writes to it stop moving for the stall timeout, or that buffer is full, the tab
// is closed with a reason, and meanwhile every other tab keeps getting its answers and /health stays up.
package io.stargazer.node;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.stargazer.bus.BusConfig;
import io.stargazer.bus.Envelope;
import io.stargazer.bus.EventBus;
import io.stargazer.bus.NodeRole;
import io.stargazer.bus.Topology;
import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;

class SlowTabIT {
    private static final HttpClient HTTP = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();
    /**
     * Far more than a tab's buffer and socket buffers hold: the node must drop the tab well before. Each is answered
     * with a frame of some 100 bytes that the tab does not read ("sent", or an error once it is over its rate), and
     * the kernel alone takes a few MiB of those on loopback before the writes stop moving.
     */
    private static final int MAX_FLOOD_MESSAGES = 100_000;
    private static final String BIG = "x".repeat(3900);
    private static final Pattern DROPPED = Pattern.compile("(?m)^stargazer_webchat_tabs_dropped_total\\S* (\\d+)");
    private static final Pattern CHANNEL = Pattern.compile("\"channel_id\":\"([^\"]+)\"");

    private static Node start(Topology t) {
        return Node.start(new Node.Settings(NodeRole.STANDALONE, new Node.Parts(true, true, true), TestRedis.url(),
                "node-slow-tab", null, 0, "127.0.0.1", 0, "echo", Duration.ofSeconds(10), TestEnv.of(t),
                Node.Dashboard.ON_MAIN_SERVER));
    }

    private static HttpResponse<String> get(int port, String path) throws Exception {
        return HTTP.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + path)).timeout(Duration.ofSeconds(10))
                .build(), HttpResponse.BodyHandlers.ofString());
    }

    private static long dropped(int port) throws Exception {
        Matcher m = DROPPED.matcher(get(port, "/metrics").body());
        return m.find() ? Long.parseLong(m.group(1)) : 0;
    }

    /** The normal tab says something and gets its echo; /health answers 200 meanwhile. */
    private static void stillServed(ChatSocket normal, int port, String text) throws Exception {
        normal.say(text);
        await().atMost(Duration.ofSeconds(30)).until(() -> normal.answers().contains(text));
        HttpResponse<String> health = get(port, "/health");
        assertThat(health.statusCode()).as("/health: %s", health.body()).isEqualTo(200);
    }

    @Test
    void aTabThatFloodsAndNeverReadsIsCutOffWithoutSlowingAnotherTab() throws Exception {
        Node node = start(TestRedis.topology());
        int port = node.httpPort();
        AtomicBoolean stop = new AtomicBoolean();
        Thread flooder = null;
        try (ChatSocket normal = new ChatSocket(port); RawChatTab slow = RawChatTab.open(port, 1024)) {
            stillServed(normal, port, "before");

            // The slow tab: large messages as fast as the node takes them, and never a byte of the answers read.
            AtomicInteger sent = new AtomicInteger();
            AtomicBoolean cutOff = new AtomicBoolean();
            String frame = "{\"content\": \"" + BIG + "\"}";
            flooder = new Thread(() -> {
                try {
                    boolean seenDrop = false;
                    while (!stop.get() && !seenDrop && sent.get() < MAX_FLOOD_MESSAGES) {
                        slow.sendText(frame);
                        if (sent.incrementAndGet() % 50 == 0) seenDrop = dropped(port) > 0;
                    }
                    await().atMost(Duration.ofSeconds(60)).until(() -> stop.get() || dropped(port) > 0);
                    // Dropped: the node cuts the connection (at once, or when its grace for the close frame ends),
                    // and the writes fail (until then they fill the socket buffers, then wait).
                    while (!stop.get()) {
                        slow.sendText(frame);
                        sent.incrementAndGet();
                    }
                } catch (IOException e) {
                    cutOff.set(true);
                } catch (Exception e) {
                    throw new IllegalStateException(e);
                }
            }, "slow-tab-flooder");
            flooder.setDaemon(true);
            flooder.start();

            // Meanwhile the normal tab keeps chatting, answered each time, until the slow tab has been dropped (once its
            // writes have not moved for the stall timeout, or its buffer is full), and after.
            AtomicInteger round = new AtomicInteger();
            await().atMost(Duration.ofSeconds(60)).until(() -> {
                stillServed(normal, port, "still here " + round.getAndIncrement());
                return dropped(port) > 0;
            });
            for (int i = 0; i < 3; i++) stillServed(normal, port, "still here after the drop " + i);
            // A tab that keeps sending after it was closed is cut off: its writes fail, it leaves the open tabs.
            flooder.join(Duration.ofSeconds(30).toMillis());
            assertThat(flooder.isAlive()).as("the flooding tab's writes never ended").isFalse();
            assertThat(cutOff).as("the connection was cut (%d messages sent)", sent.get()).isTrue();
            await().atMost(Duration.ofSeconds(20)).until(() -> get(port, "/api/streams").body().contains("\"open_tabs\":1"));
            stillServed(normal, port, "after");
        } finally {
            stop.set(true);
            node.close();
            if (flooder != null) flooder.join(Duration.ofSeconds(10).toMillis());
        }
    }

    @Test
    void aTabThatStopsReadingIsClosedWithAReasonWhenItsQueueOverflows() throws Exception {
        Topology t = TestRedis.topology();
        Node node = start(t);
        int port = node.httpPort();
        try (ChatSocket normal = new ChatSocket(port); RawChatTab frozen = RawChatTab.open(port, 1024);
                EventBus worker = TestRedis.bus(BusConfig.builder().topology(t).role(NodeRole.WORKER).nodeId("w2").build())) {
            Matcher hello = CHANNEL.matcher(frozen.readText());
            assertThat(hello.find()).isTrue();
            String channel = hello.group(1);
            // From here on the tab reads nothing (a hung browser), while answers for it keep coming.
            for (int i = 0; i < 100 && dropped(port) == 0; i++) {
                for (int j = 0; j < 50; j++) {
                    worker.publishOutbound("webchat", Envelope.of("platform", "webchat", "channel_id", channel,
                            "type", "message", "content", BIG));
                }
                stillServed(normal, port, "still here " + i);
            }
            assertThat(dropped(port)).isEqualTo(1);
            // Reading at last, the tab finds what was on its way before the drop, then the close frame with the reason.
            RawChatTab.Close close = frozen.readUntilClose();
            assertThat(close.code()).isEqualTo(1008);
            assertThat(close.reason()).startsWith("too slow: more than").endsWith("waiting to be read");
            await().atMost(Duration.ofSeconds(20)).until(() -> get(port, "/api/streams").body().contains("\"open_tabs\":1"));
            stillServed(normal, port, "after");
        } finally {
            node.close();
        }
    }
}
