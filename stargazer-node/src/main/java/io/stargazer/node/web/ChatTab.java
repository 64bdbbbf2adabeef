// One browser tab of the web chat: its channel, its WebSocket, the frames waiting to be written to it, the last
// answer it was sent and its message rate. A tab that stops reading holds only its own bounded buffer and is then
// closed; it never holds a thread.
package io.stargazer.node.web;

import java.nio.ByteBuffer;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import org.eclipse.jetty.websocket.api.BatchMode;
import org.eclipse.jetty.websocket.api.RemoteEndpoint;
import org.eclipse.jetty.websocket.api.Session;
import org.eclipse.jetty.websocket.api.WriteCallback;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Writes go out in batches, never one round trip per frame: {@link #offer} only queues (from any thread, never
 * blocking), and the gateway's send thread hands everything queued to Jetty in one go with its non-blocking
 * {@code sendString(text, callback)}, in batch mode so that Jetty packs the frames into few socket writes, the last
 * frame flushing them. Jetty's callbacks (on its threads, or on the send thread when a write completes at once) only
 * count; when the last frame of a batch is written, the next batch is handed back to the send thread. So no caller
 * ever blocks on a tab's socket: not a Redis I/O thread completing a publish, not a subscription handler thread
 * delivering an answer, not the send thread itself.
 *
 * <p>A tab is dropped only when it does not read: when a batch has been on its way for {@link #STALL_TIMEOUT}
 * without one frame of it getting out (checked by {@link #dropIfStalled} on the send thread), or, as a backstop that
 * keeps memory bounded, when more than {@link #MAX_BUFFERED_BYTES} (UTF-8) would wait for it, queued or being
 * written. A tab that reads, however many frames come at once, keeps getting them. A dropped tab's queue is emptied,
 * it is closed with status 1008 and a reason, and its connection is cut {@link #DISCONNECT_AFTER} later, whether or
 * not the close frame got through (a tab that reads nothing cannot receive it; one that reads again meanwhile finds
 * it after what was already on its way). Jetty stops reading from a tab it has closed this way, and cuts it at once
 * when a frame arrives from it.
 */
final class ChatTab {
    private static final Logger log = LoggerFactory.getLogger(ChatTab.class);
    /** How long a batch may be on its way without a frame of it written before the tab counts as not reading. */
    static final Duration STALL_TIMEOUT = Duration.ofSeconds(10);
    /** Bytes that may wait for one tab, queued or being written (a single larger frame is still sent). */
    static final int MAX_BUFFERED_BYTES = 2 << 20;
    /** WebSocket status "policy violation": the tab broke the rule of reading what it is sent. */
    static final int CLOSE_TOO_SLOW = 1008;
    static final String STALLED_REASON = "too slow: nothing read for " + STALL_TIMEOUT.toSeconds() + " s";
    static final String OVERFLOW_REASON = "too slow: more than " + (MAX_BUFFERED_BYTES >> 20) + " MiB waiting to be read";
    static final Duration DISCONNECT_AFTER = Duration.ofSeconds(10);

    final String channel;
    private final Session session;
    private final RemoteEndpoint remote;
    private final ScheduledExecutorService sendThread;
    private final Runnable onDrop;
    private final RateLimit rate;
    private final ArrayDeque<String> queue = new ArrayDeque<>();
    private long queuedBytes;
    /** Bytes of the batch Jetty is writing: counted until its last frame is written. */
    private long writingBytes;
    /** Frames of the batch Jetty is writing whose callback has not come back yet. */
    private int writesPending;
    /** When a frame of the batch on its way last got out (or the batch started). */
    private long lastProgressNanos;
    /** A drain has been handed to the send thread and has not run yet. */
    private boolean drainScheduled;
    /** Closed by its browser, failed, or dropped: nothing more is queued or written. */
    private boolean gone;
    /** The outbound entry id of the last answer sent to the tab, or null. */
    private String lastAnswerId;
    private final WriteCallback written = new WriteCallback() {
        @Override
        public void writeSuccess() {
            frameWritten();
        }

        @Override
        public void writeFailed(Throwable x) {
            log.atDebug().addKeyValue("channel_id", channel).log("Write to a tab failed: " + x);
            closed();
        }
    };
    private final WriteCallback pinged = new WriteCallback() {
        @Override
        public void writeFailed(Throwable x) {
            written.writeFailed(x);
        }
    };

    ChatTab(String channel, Session session, ScheduledExecutorService sendThread, Runnable onDrop, RateLimit rate) {
        this.channel = channel;
        this.session = session;
        this.remote = session.getRemote();
        this.sendThread = sendThread;
        this.onDrop = onDrop;
        this.rate = rate;
    }

    /** Whether the tab may publish one more message now (its token bucket); any thread. */
    boolean tryPublish() {
        return rate.tryTake(System.nanoTime());
    }

    /** Queues a frame for the tab; never blocks, from any thread. False when the tab is gone or has just been dropped. */
    boolean offer(String frame) {
        return offer(frame, utf8Length(frame));
    }

    /**
     * Queues the answer stored at outbound entry {@code entryId}, unless the tab was already sent that entry or a later
     * one: an entry read again after a lost acknowledgement. The gateway reads its stream in order and one channel's
     * answers one at a time, so anything at or below the last id sent was sent. False when skipped or the tab is gone.
     */
    boolean offerAnswer(String entryId, String frame) {
        synchronized (this) {
            if (lastAnswerId != null && io.stargazer.bus.StreamEntry.compareIds(entryId, lastAnswerId) <= 0) {
                return false;
            }
            lastAnswerId = entryId;
        }
        return offer(frame);
    }

    private boolean offer(String frame, int bytes) {
        boolean start = false;
        boolean overflow = false;
        synchronized (this) {
            if (gone) {
                return false;
            }
            long buffered = queuedBytes + writingBytes;
            if (buffered > 0 && buffered + bytes > MAX_BUFFERED_BYTES) {
                overflow = true;
                forget();
            } else {
                queue.add(frame);
                queuedBytes += bytes;
                start = !drainScheduled && writesPending == 0;
                drainScheduled |= start;
            }
        }
        if (overflow) {
            onSendThread(() -> drop(OVERFLOW_REASON));
            return false;
        }
        if (start) {
            onSendThread(this::drain);
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
            forget();
        }
    }

    private void forget() {
        gone = true;
        queue.clear();
        queuedBytes = 0;
        writingBytes = 0;
    }

    /** Keeps a quiet tab's connection alive; skipped while anything waits or is being written. Send thread. */
    void ping() {
        synchronized (this) {
            if (gone || writesPending > 0 || !queue.isEmpty()) {
                return;
            }
        }
        try {
            remote.sendPing(ByteBuffer.allocate(0), pinged);
        } catch (RuntimeException e) {
            pinged.writeFailed(e);
        }
    }

    /** Send thread: drops the tab if the batch on its way has not moved for {@link #STALL_TIMEOUT}. */
    void dropIfStalled(long nowNanos) {
        synchronized (this) {
            if (gone || writesPending == 0 || nowNanos - lastProgressNanos < STALL_TIMEOUT.toNanos()) {
                return;
            }
            forget();
        }
        drop(STALLED_REASON);
    }

    /** Send thread: hands everything queued to Jetty as one batch, flushed by its last frame. */
    private void drain() {
        List<String> batch;
        synchronized (this) {
            drainScheduled = false;
            if (gone || queue.isEmpty()) {
                return;
            }
            batch = new ArrayList<>(queue);
            queue.clear();
            writingBytes = queuedBytes;
            queuedBytes = 0;
            writesPending = batch.size();
            lastProgressNanos = System.nanoTime();
        }
        try {
            // Only this thread writes to the tab, so the mode cannot change under another writer.
            remote.setBatchMode(BatchMode.ON);
            for (int i = 0; i < batch.size(); i++) {
                if (i == batch.size() - 1) {
                    remote.setBatchMode(BatchMode.OFF); // the last frame flushes the batch
                }
                remote.sendString(batch.get(i), written);
            }
        } catch (RuntimeException e) {
            written.writeFailed(e);
        }
    }

    /** A frame of the batch got out (Jetty's thread, or the send thread): progress; the next batch when it was the last. */
    private void frameWritten() {
        boolean next = false;
        synchronized (this) {
            lastProgressNanos = System.nanoTime();
            if (writesPending > 0 && --writesPending == 0) {
                writingBytes = 0;
                next = !gone && !queue.isEmpty() && !drainScheduled;
                drainScheduled |= next;
            }
        }
        if (next) {
            onSendThread(this::drain);
        }
    }

    /** Send thread: closes a tab that does not read with the reason, and cuts it off if the close cannot be delivered. */
    private void drop(String reason) {
        onDrop.run();
        log.atWarn().addKeyValue("channel_id", channel).addKeyValue("reason", reason)
                .log("Closed a web chat tab that does not read what it is sent (" + reason + ")");
        try {
            session.close(CLOSE_TOO_SLOW, reason);
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

    /** The length of {@code s} in UTF-8, as Jetty will write it (a lone surrogate, written as '?', counts 3: an upper bound). */
    static int utf8Length(String s) {
        int n = 0;
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c < 0x80) {
                n++;
            } else if (c < 0x800) {
                n += 2;
            } else if (Character.isHighSurrogate(c) && i + 1 < s.length() && Character.isLowSurrogate(s.charAt(i + 1))) {
                n += 4;
                i++;
            } else {
                n += 3;
            }
        }
        return n;
    }
}
