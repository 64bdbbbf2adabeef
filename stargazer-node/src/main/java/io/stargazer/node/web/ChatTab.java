// One browser tab of the web chat: its channel, its WebSocket, the frames waiting to be written to it, the last
// answer it was sent and its message rate. A tab that stops reading, or from which nothing comes back, holds only its
// own bounded buffer and is then closed; it never holds a thread.
package io.stargazer.node.web;

import java.nio.ByteBuffer;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.LongSupplier;
import org.eclipse.jetty.io.Connection;
import org.eclipse.jetty.websocket.api.BatchMode;
import org.eclipse.jetty.websocket.api.RemoteEndpoint;
import org.eclipse.jetty.websocket.api.Session;
import org.eclipse.jetty.websocket.api.WriteCallback;
import org.eclipse.jetty.websocket.common.WebSocketSession;
import org.eclipse.jetty.websocket.core.internal.WebSocketCoreSession;
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
 *
 * <p>A tab whose machine is gone (switched off, off the network: no FIN or RST ever comes) reads nothing and sends
 * nothing, yet small writes to it still complete into the kernel's buffers, and each write keeps Jetty's idle timeout
 * from firing, so it would be held until TCP gives up (some 15 minutes on Linux). So every {@link #ping} that goes out
 * waits for anything to come back from the tab (its pong, which browsers send by themselves, or any other frame):
 * when nothing at all has been read from its connection {@link #PONG_TIMEOUT} after the ping, the tab is dropped as
 * above (checked by {@link #dropIfStalled}), with {@link #SILENT_REASON}.
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
    /** WebSocket status "going away": the gateway stops, and the page reconnects (to another gateway, if there is one). */
    static final int CLOSE_GOING_AWAY = 1001;
    static final String STOPPING_REASON = "the gateway is shutting down";
    /** How long after a ping something (its pong, or any frame) must have come from the tab. */
    static final Duration PONG_TIMEOUT = Duration.ofSeconds(20);
    static final String SILENT_REASON = "gone: nothing came back for " + PONG_TIMEOUT.toSeconds() + " s after a ping";
    private static final AtomicBoolean toldCannotHear = new AtomicBoolean();

    final String channel;
    private final Session session;
    private final RemoteEndpoint remote;
    private final ScheduledExecutorService sendThread;
    private final Runnable onDrop;
    private final RateLimit rate;
    /** Bytes read from the tab's connection so far (pongs included); null where the session cannot say. */
    private final LongSupplier bytesRead;
    /** A ping has gone out and nothing has come from the tab since: {@link #pingSentNanos}, {@link #readAtPing}. */
    private boolean awaitingPong;
    private long pingSentNanos;
    private long readAtPing;
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
    /** Answers in {@link #queue}, not yet handed to Jetty. */
    private int answersQueued;
    /** Answers that were queued when the tab went: never handed to Jetty, so never sent. */
    private int answersLost;
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
        this.bytesRead = bytesReadOf(session);
    }

    /**
     * What Jetty has read from the session's connection so far: every frame counts, pongs too, which Jetty hands to
     * no listener Javalin registers. Only Jetty's connection counts them, reached through its core session, an internal
     * class of the Jetty that Javalin's version pins (should an upgrade change it, the WARN below says so and DeadTabIT
     * fails). Null when the session is not Jetty's own.
     */
    private static LongSupplier bytesReadOf(Session session) {
        if (session instanceof WebSocketSession s && s.getCoreSession() instanceof WebSocketCoreSession core) {
            return () -> {
                Connection c = core.getConnection();
                return c == null ? 0 : c.getBytesIn();
            };
        }
        if (toldCannotHear.compareAndSet(false, true)) {
            log.atWarn().log("Cannot tell whether web chat tabs answer pings (" + session.getClass().getName()
                    + " is not Jetty's session): a tab whose machine is gone is held until TCP gives up on it");
        }
        return null;
    }

    /** Whether the tab may publish one more message now (its token bucket); any thread. */
    boolean tryPublish() {
        return rate.tryTake(System.nanoTime());
    }

    /** Queues a frame for the tab; never blocks, from any thread. False when the tab is gone or has just been dropped. */
    boolean offer(String frame) {
        return offer(frame, utf8Length(frame), false);
    }

    /**
     * Queues the answer stored at outbound entry {@code entryId}, unless the tab was already sent that entry or a later
     * one: an entry read again after a lost acknowledgement. The gateway reads its stream in order and one channel's
     * answers one at a time, so anything at or below the last id sent was sent. False when skipped or the tab is gone.
     */
    boolean offerAnswer(String entryId, String frame) {
        synchronized (this) {
            if (gone) {
                return false;
            }
            if (lastAnswerId != null && io.stargazer.bus.StreamEntry.compareIds(entryId, lastAnswerId) <= 0) {
                return false;
            }
            lastAnswerId = entryId;
        }
        return offer(frame, utf8Length(frame), true);
    }

    private boolean offer(String frame, int bytes, boolean answer) {
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
                answersQueued += answer ? 1 : 0;
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

    /**
     * Closes the tab with {@link #CLOSE_GOING_AWAY} as its gateway stops, on the send thread: the close frame follows
     * the frames handed to it before. From any thread.
     */
    void goingAway() {
        onSendThread(() -> {
            if (gone()) {
                return;
            }
            try {
                session.close(CLOSE_GOING_AWAY, STOPPING_REASON);
            } catch (RuntimeException e) {
                log.atDebug().addKeyValue("channel_id", channel).log("Closing a tab as the gateway stops failed: " + e);
            }
        });
    }

    /** How many answers went with the tab unsent (queued when it closed or was dropped), counted once. */
    synchronized int takeLostAnswers() {
        int n = answersLost;
        answersLost = 0;
        return n;
    }

    private void forget() {
        gone = true;
        answersLost += answersQueued;
        answersQueued = 0;
        queue.clear();
        queuedBytes = 0;
        writingBytes = 0;
    }

    /**
     * Keeps a quiet tab's connection alive, and asks it for a sign of life ({@link #PONG_TIMEOUT}); skipped while
     * anything waits or is being written (what is on its way is watched by {@link #STALL_TIMEOUT}). Send thread.
     */
    void ping(long nowNanos) {
        long read = bytesRead == null ? 0 : bytesRead.getAsLong();
        synchronized (this) {
            if (gone || writesPending > 0 || !queue.isEmpty()) {
                return;
            }
            // A ping still unanswered keeps its time: the deadline runs from the first one nothing came back for.
            if (bytesRead != null && (!awaitingPong || read != readAtPing)) {
                awaitingPong = true;
                pingSentNanos = nowNanos;
                readAtPing = read;
            }
        }
        try {
            remote.sendPing(ByteBuffer.allocate(0), pinged);
        } catch (RuntimeException e) {
            pinged.writeFailed(e);
        }
    }

    /**
     * Send thread: drops the tab if the batch on its way has not moved for {@link #STALL_TIMEOUT}, or if nothing has
     * come from it within {@link #PONG_TIMEOUT} of a ping.
     */
    void dropIfStalled(long nowNanos) {
        long read = bytesRead == null ? 0 : bytesRead.getAsLong();
        String reason;
        synchronized (this) {
            if (gone) {
                return;
            }
            if (awaitingPong && read != readAtPing) {
                awaitingPong = false;
            }
            if (writesPending > 0 && nowNanos - lastProgressNanos >= STALL_TIMEOUT.toNanos()) {
                reason = STALLED_REASON;
            } else if (awaitingPong && nowNanos - pingSentNanos >= PONG_TIMEOUT.toNanos()) {
                reason = SILENT_REASON;
            } else {
                return;
            }
            forget();
        }
        drop(reason);
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
            answersQueued = 0;
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

    /**
     * Send thread: closes a tab that does not read, or from which nothing comes back, with the reason, and cuts it off
     * if the close cannot be delivered.
     */
    private void drop(String reason) {
        onDrop.run();
        log.atWarn().addKeyValue("channel_id", channel).addKeyValue("reason", reason)
                .log("Closed a web chat tab (" + reason + ")");
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
