// Test helper: a web chat tab without a browser, over java.net.http's WebSocket client.
package io.stargazer.node;

import static org.awaitility.Awaitility.await;

import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.WebSocket;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.stream.Collectors;

final class ChatSocket implements WebSocket.Listener, AutoCloseable {
    private final List<Map<String, Object>> frames = new CopyOnWriteArrayList<>();
    private final StringBuilder partial = new StringBuilder();
    private final WebSocket socket;
    /** The close the node sent ("code reason"), or null while open. */
    private volatile String closedWith;

    ChatSocket(int port) {
        this(port, true);
    }

    /** @param awaitHello whether to wait for the node's hello (a tab the node refuses never gets one) */
    ChatSocket(int port, boolean awaitHello) {
        this.socket = HttpClient.newHttpClient().newWebSocketBuilder()
                .buildAsync(URI.create("ws://127.0.0.1:" + port + "/ws/chat"), this).join();
        if (awaitHello) await().atMost(Duration.ofSeconds(10)).until(() -> channelId() != null);
    }

    @Override
    public CompletionStage<?> onClose(WebSocket ws, int statusCode, String reason) {
        closedWith = statusCode + " " + reason;
        return null;
    }

    /** The status code and reason of the close the node sent, or null while it has sent none. */
    String closedWith() {
        return closedWith;
    }

    @Override
    @SuppressWarnings("unchecked")
    public CompletionStage<?> onText(WebSocket ws, CharSequence data, boolean last) {
        partial.append(data);
        if (last) {
            frames.add((Map<String, Object>) Json.parse(partial.toString()));
            partial.setLength(0);
        }
        ws.request(1);
        return null;
    }

    String channelId() {
        return frames.stream().filter(f -> "hello".equals(f.get("kind"))).map(f -> (String) f.get("channel_id"))
                .findFirst().orElse(null);
    }

    void say(String content) {
        sendFrame(Json.write(Map.of("content", content)));
    }

    /** Sends one text frame as it is, JSON or not. */
    void sendFrame(String text) {
        socket.sendText(text, true).join();
    }

    /** The messages of the error frames received so far, in order. */
    List<String> errors() {
        return frames.stream().filter(f -> "error".equals(f.get("kind"))).map(f -> String.valueOf(f.get("message")))
                .collect(Collectors.toList());
    }

    /** The contents of the answers received so far, in order. */
    List<String> answers() {
        return frames.stream().filter(f -> "message".equals(f.get("kind"))).map(f -> String.valueOf(f.get("content")))
                .collect(Collectors.toList());
    }

    List<Map<String, Object>> frames() {
        return frames;
    }

    @Override
    public void close() {
        socket.sendClose(WebSocket.NORMAL_CLOSURE, "bye");
    }
}
