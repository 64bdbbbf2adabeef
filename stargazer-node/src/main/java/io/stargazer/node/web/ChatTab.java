// One browser tab of the web chat: its channel, its WebSocket, and the bounded queue of frames waiting to be written
// to it. A tab that stops reading fills only its own queue and is then closed; it never holds a thread.
package io.stargazer.node.web;

import java.nio.ByteBuffer;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import org.eclipse.jetty.websocket.api.Session;
import org.eclipse.jetty.websocket.api.WriteCallback;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Writes are asynchronous and one at a time: {@link #offer} only queues, the gateway's send thread starts each write
 * with Jetty's non-blocking {@code sendString(text, callback)}, and the callback (on a Jetty thread) hands the next
 * write back to the send thread. So no caller ever blocks on a tab's socket: not a Redis I/O thread completing a
 * publish, not a subscription handler thread delivering an answer, not the send thread itself.
 *
 * <p>A tab whose queue would pass {@link #MAX_QUEUED_FRAMES} frames or {@link #MAX_QUEUED_CHARS} characters is
 * dropped: its queue is emptied, it is closed with status 1008 and a reason, and its connection is cut
 * {@link #DISCONNECT_AFTER} later, whether or not the close frame got through (a tab that reads nothing cannot
 * receive it; one that reads again meanwhile finds it after what was already on its way). Jetty stops reading from
 * a tab it has closed this way, and cuts it at once when a frame arrives from it.
 */
final class ChatTab {
    private static final Logger log = LoggerFactory.getLogger(ChatTab.class);
    /** Frames a tab may have waiting (besides the one being written) before it is dropped. */
    static final int MAX_QUEUED_FRAMES = 256;
    /** Characters of text a tab may have waiting before it is dropped (a single larger frame is still sent). */
    static final int MAX_QUEUED_CHARS = 1 << 20;
    /** WebSocket status "policy violation": the tab broke the rule of reading what it is sent. */
    static final int CLOSE_TOO_SLOW = 1008;
    static final String TOO_SLOW_REASON = "too slow: more than " + MAX_QUEUED_FRAMES + " frames waiting to be read";
    static final Duration DISCONNECT_AFTER = Duration.ofSeconds(10);

    final String channel;
    private final Session session;
    private final ScheduledExecutorService sendThread;
    private final Runnable onDrop;
    private final ArrayDeque<String> queue = new ArrayDeque<>();
    private int queuedChars;
    /** A write (or ping) has been started and its callback has not yet come back. */
    private boolean writing;
    /** Closed by its browser, failed, or dropped: nothing more is queued or written. */
    private boolean gone;
    private final WriteCallback next = new WriteCallback() {
        @Override
        public void writeSuccess() {
            onSendThread(ChatTab.this::writeNext);
        }

        @Override
        public void writeFailed(Throwable x) {
            log.atDebug().addKeyValue("channel_id", channel).log("Write to a tab failed: " + x);
            closed();
        }
    };

    ChatTab(String channel, Session session, ScheduledExecutorService sendThread, Runnable onDrop) {
        this.channel = channel;
        this.session = session;
        this.sendThread = sendThread;
        this.onDrop = onDrop;
    }

    /** Queues a frame for the tab; never blocks, from any thread. False when the tab is gone or has just been dropped. */
    boolean offer(String frame) {
        boolean start = false;
        boolean overflow = false;
        synchronized (this) {
            if (gone) {
                return false;
            }
            if (!queue.isEmpty() && (queue.size() >= MAX_QUEUED_FRAMES || queuedChars + frame.length() > MAX_QUEUED_CHARS)) {
                overflow = true;
                gone = true;
                queue.clear();
                queuedChars = 0;
            } else {
                queue.add(frame);
                queuedChars += frame.length();
                start = !writing;
                writing = true;
            }
        }
        if (overflow) {
            onSendThread(this::drop);
            return false;
        }
        if (start) {
            onSendThread(this::writeNext);
        }
        return true;
    }

    /** Whether the tab has been closed or dropped; its frames are then ignored. */
    synchronized boolean gone() {
        return gone;
    }

    /** The browser closed the tab (or its connection failed): forget what was waiting. */
    void closed() {
        synchronized (this) {
            gone = true;
            queue.clear();
            queuedChars = 0;
        }
    }

    /** Keeps a quiet tab's connection alive; skipped while a write is under way (that is traffic enough). Send thread. */
    void ping() {
        synchronized (this) {
            if (gone || writing) {
                return;
            }
            writing = true;
        }
        try {
            session.getRemote().sendPing(ByteBuffer.allocate(0), next);
        } catch (RuntimeException e) {
            next.writeFailed(e);
        }
    }

    /** Send thread: starts the next write, or notes that there is none. */
    private void writeNext() {
        String frame;
        synchronized (this) {
            frame = gone ? null : queue.poll();
            if (frame == null) {
                writing = false;
                return;
            }
            queuedChars -= frame.length();
        }
        try {
            session.getRemote().sendString(frame, next);
        } catch (RuntimeException e) {
            next.writeFailed(e);
        }
    }

    /** Send thread: closes an overflowing tab with the reason, and cuts it off if the close cannot be delivered. */
    private void drop() {
        onDrop.run();
        log.atWarn().addKeyValue("channel_id", channel).addKeyValue("max_queued_frames", MAX_QUEUED_FRAMES)
                .log("Closed a web chat tab that does not read what it is sent (" + TOO_SLOW_REASON + ")");
        try {
            session.close(CLOSE_TOO_SLOW, TOO_SLOW_REASON);
            // Jetty counts the close as done once queued (isOpen() turns false), yet a tab that reads nothing never
            // lets it out: the connection would linger until the idle timeout.
            sendThread.schedule(session::disconnect, DISCONNECT_AFTER.toMillis(), TimeUnit.MILLISECONDS);
        } catch (RuntimeException e) {
            log.atDebug().addKeyValue("channel_id", channel).log("Closing a dropped tab failed: " + e);
        }
    }

    private void onSendThread(Runnable r) {
        try {
            sendThread.execute(r);
        } catch (RejectedExecutionException e) {
            closed(); // the gateway is stopping: its tabs go with it
        }
    }
}
