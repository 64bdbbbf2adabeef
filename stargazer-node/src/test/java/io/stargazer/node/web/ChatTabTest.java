// ChatTab against a Jetty session of the test's own, whose writes complete when the test says: a tab is dropped only
// when its writes stop moving for the stall timeout or its buffer is full, never for the number of frames that come
// at once; everything queued goes to Jetty as one batch that its last frame flushes.
package io.stargazer.node.web;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import java.lang.reflect.Proxy;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.stream.IntStream;
import org.eclipse.jetty.websocket.api.BatchMode;
import org.eclipse.jetty.websocket.api.RemoteEndpoint;
import org.eclipse.jetty.websocket.api.Session;
import org.eclipse.jetty.websocket.api.WriteCallback;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

class ChatTabTest {
    /** One frame handed to Jetty: its text, whether it was sent in batch mode, and its callback. */
    record Write(String text, boolean batched, WriteCallback callback) {
    }

    private final ScheduledExecutorService sendThread = Executors.newSingleThreadScheduledExecutor();
    private final List<Write> writes = new CopyOnWriteArrayList<>();
    private final List<String> closes = new CopyOnWriteArrayList<>();
    private final AtomicInteger dropped = new AtomicInteger();
    /** Whether Jetty writes a frame at once (a tab that reads) or holds it (a tab that does not). */
    private volatile boolean reading = true;

    @AfterEach
    void stop() {
        sendThread.shutdownNow();
    }

    private ChatTab tab() {
        BatchMode[] mode = {BatchMode.AUTO};
        RemoteEndpoint remote = (RemoteEndpoint) Proxy.newProxyInstance(getClass().getClassLoader(), new Class<?>[] {RemoteEndpoint.class},
                (p, m, args) -> switch (m.getName()) {
                    case "setBatchMode" -> {
                        mode[0] = (BatchMode) args[0];
                        yield null;
                    }
                    case "sendString" -> {
                        WriteCallback cb = (WriteCallback) args[1];
                        writes.add(new Write((String) args[0], mode[0] == BatchMode.ON, cb));
                        if (reading) cb.writeSuccess();
                        yield null;
                    }
                    case "sendPing" -> null;
                    default -> throw unexpected(m);
                });
        Session session = (Session) Proxy.newProxyInstance(getClass().getClassLoader(), new Class<?>[] {Session.class},
                (p, m, args) -> switch (m.getName()) {
                    case "getRemote" -> remote;
                    case "close" -> {
                        closes.add(args[0] + " " + args[1]);
                        yield null;
                    }
                    case "disconnect" -> null;
                    default -> throw unexpected(m);
                });
        return new ChatTab("wc-test", session, sendThread, dropped::incrementAndGet, new RateLimit(20, 40, System.nanoTime()));
    }

    /** A call the fakes above do not stand in for: ChatTab is not expected to make it. */
    private static IllegalStateException unexpected(java.lang.reflect.Method m) {
        return new IllegalStateException("ChatTab called " + m.getDeclaringClass().getSimpleName() + "." + m.getName()
                + ", which this test's fake Jetty session does not expect");
    }

    private static String frame(int i) {
        return "{\"kind\":\"message\",\"content\":\"part " + i + "\"}";
    }

    @Test
    void aTabThatReadsGetsTwentyThousandFramesOfferedAtOnceInOrder() {
        ChatTab tab = tab();
        int n = 20_000; // some 0.8 MB: within a tab's buffer however slowly the send thread gets to them
        for (int i = 0; i < n; i++) assertThat(tab.offer(frame(i))).isTrue();
        await().atMost(Duration.ofSeconds(30)).until(() -> writes.size() == n);
        assertThat(dropped).hasValue(0);
        assertThat(writes).extracting(Write::text).containsExactlyElementsOf(IntStream.range(0, n).mapToObj(ChatTabTest::frame).toList());
    }

    @Test
    void whatWaitsIsWrittenAsOneBatchFlushedByItsLastFrame() throws Exception {
        reading = false;
        ChatTab tab = tab();
        tab.offer(frame(0));
        await().atMost(Duration.ofSeconds(10)).until(() -> writes.size() == 1);
        for (int i = 1; i <= 5; i++) tab.offer(frame(i));
        // Frame 0 is still being written: the next five wait for it, then go out together.
        sendThread.submit(() -> null).get(10, TimeUnit.SECONDS);
        assertThat(writes).hasSize(1);
        writes.get(0).callback().writeSuccess();
        await().atMost(Duration.ofSeconds(10)).until(() -> writes.size() == 6);
        assertThat(writes.subList(1, 6)).extracting(Write::batched).containsExactly(true, true, true, true, false);
    }

    @Test
    void aTabWhoseWritesDoNotMoveIsDroppedAfterTheStallTimeoutAndNotBefore() throws Exception {
        reading = false;
        ChatTab tab = tab();
        tab.offer(frame(0));
        await().atMost(Duration.ofSeconds(10)).until(() -> writes.size() == 1);
        tab.offer(frame(1));
        long start = System.nanoTime();
        // Progress before the timeout keeps it: the first frame gets out, the second goes out and then stops.
        writes.get(0).callback().writeSuccess();
        await().atMost(Duration.ofSeconds(10)).until(() -> writes.size() == 2);
        onSendThread(() -> tab.dropIfStalled(start + ChatTab.STALL_TIMEOUT.toNanos() / 2));
        assertThat(dropped).hasValue(0);
        long later = System.nanoTime() + ChatTab.STALL_TIMEOUT.toNanos() + 1;
        onSendThread(() -> tab.dropIfStalled(later));
        assertThat(dropped).hasValue(1);
        assertThat(closes).containsExactly(ChatTab.CLOSE_TOO_SLOW + " " + ChatTab.STALLED_REASON);
        assertThat(tab.offer(frame(2))).isFalse();
    }

    @Test
    void aTabThatIsWrittenNothingIsNeverStalled() throws Exception {
        ChatTab tab = tab();
        tab.offer(frame(0));
        await().atMost(Duration.ofSeconds(10)).until(() -> writes.size() == 1);
        onSendThread(() -> tab.dropIfStalled(System.nanoTime() + 10 * ChatTab.STALL_TIMEOUT.toNanos()));
        assertThat(dropped).hasValue(0);
    }

    @Test
    void aTabThatDoesNotReadIsDroppedWhenItsBufferIsFullAndHoldsNoMore() throws Exception {
        reading = false;
        ChatTab tab = tab();
        String big = "{\"content\":\"" + "x".repeat(64 * 1024) + "\"}";
        List<Boolean> taken = new ArrayList<>();
        for (int i = 0; i < 100; i++) taken.add(tab.offer(big));
        int fits = ChatTab.MAX_BUFFERED_BYTES / ChatTab.utf8Length(big);
        assertThat(taken.subList(0, fits)).containsOnly(true);
        assertThat(taken.subList(fits, 100)).containsOnly(false);
        await().atMost(Duration.ofSeconds(10)).until(() -> dropped.get() == 1);
        assertThat(closes).containsExactly(ChatTab.CLOSE_TOO_SLOW + " " + ChatTab.OVERFLOW_REASON);
        // What was handed to Jetty before the drop is all it ever got.
        onSendThread(() -> null);
        assertThat(writes.size()).isLessThanOrEqualTo(fits);
    }

    @Test
    void utf8LengthCountsAsJettyWrites() {
        for (String s : List.of("", "abc", "é", "€uro", "😀", "a😀b")) {
            assertThat(ChatTab.utf8Length(s)).as(s).isEqualTo(s.getBytes(StandardCharsets.UTF_8).length);
        }
    }

    private void onSendThread(Callable<?> c) throws Exception {
        sendThread.submit(c).get(10, TimeUnit.SECONDS);
    }

    private void onSendThread(Runnable r) throws Exception {
        sendThread.submit(r).get(10, TimeUnit.SECONDS);
    }
}
