package io.stargazer.bus.internal;

import io.lettuce.core.ScriptOutputType;
import io.lettuce.core.protocol.CommandArgs;
import io.lettuce.core.protocol.CommandType;
import io.stargazer.bus.Envelope;
import io.stargazer.bus.EventBus;
import io.stargazer.bus.PublishOutcomeUnknownException;
import io.stargazer.bus.StargazerException;
import io.stargazer.bus.tools.ToolClient;
import io.stargazer.bus.tools.ToolClientConfig;
import io.stargazer.bus.tools.ToolException;
import io.stargazer.bus.tools.ToolTimeoutException;
import io.stargazer.bus.wire.MalformedEntryException;
import io.stargazer.bus.wire.WireFormat;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.ScheduledThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.LongAdder;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The worker side of tool calls (see {@link ToolClient}): publishes requests on the shared connection's coalescing
 * publisher, and reads the private reply stream with plain {@code XREAD} (no group: nobody else reads it) on one
 * thread with a connection of its own, completing the waiting call each reply names.
 */
final class RedisToolClient implements ToolClient {
    private static final Logger log = LoggerFactory.getLogger(ToolClient.class);
    private static final int TRIM_EVERY = 1000;

    /** Reply streams read in this process: a second reader of one stream would count the other's replies as late. */
    private static final Set<String> ACTIVE = ConcurrentHashMap.newKeySet();

    /**
     * Makes the reply stream exist with an expiry before any request names it, and returns its last id: the reader
     * starts after it, so it cannot miss a reply however fast it comes, and skips what a previous run left.
     */
    static final String INIT_SCRIPT = LibrarySource.script("reply_stream_init", "expire_at_least");

    /** Refreshes the expiry, drops replies already read (ids below ARGV[2]) and caps what is unread. */
    static final String MAINTAIN_SCRIPT = LibrarySource.script("reply_stream_maintain", "expire_at_least");

    private final RedisEventBus bus;
    private final ToolClientConfig cfg;
    private final String replyStream;
    private final byte[] replyKey;
    private final String activeKey;
    private final String toolsStream;
    private final ConcurrentHashMap<String, Call> pending = new ConcurrentHashMap<>();
    private final ScheduledThreadPoolExecutor timer;
    private final AtomicBoolean closed = new AtomicBoolean();
    private final long tickMillis;

    private final ReaderLoop loop;
    private String lastId;
    /**
     * The latest deadline of any call made, and the longest timeout (Unix ms, ms): a tools service may answer until
     * its lateReplyLimit past a deadline, so the stream is kept until replyTtl past it, also after close() or a
     * crash, and never deleted; an answer to a stream already gone would make it again without an expiry.
     */
    private final AtomicLong lastDeadline = new AtomicLong();
    private final AtomicLong longestTimeout = new AtomicLong();
    // Reader-thread state.
    private long nextTick;
    private int readSinceTrim;

    private final LongAdder calls = new LongAdder();
    private final LongAdder completed = new LongAdder();
    private final LongAdder failed = new LongAdder();
    private final LongAdder timedOut = new LongAdder();
    private final LongAdder lateReplies = new LongAdder();

    private static final class Call {
        final String tool;
        final String requestId;
        final long startNanos;
        final CompletableFuture<Object> future = new CompletableFuture<>();
        volatile ScheduledFuture<?> timeoutTask;
        /** Why the request may not have been stored: its publish got no answer (null: it was stored, or not yet known). */
        volatile Throwable publishUnknown;

        Call(String tool, String requestId, long startNanos) {
            this.tool = tool;
            this.requestId = requestId;
            this.startNanos = startNanos;
        }

        Duration waited() {
            return Duration.ofNanos(System.nanoTime() - startNanos);
        }

        void cancelTimer() {
            ScheduledFuture<?> t = timeoutTask;
            if (t != null) t.cancel(false);
        }
    }

    private RedisToolClient(RedisEventBus bus, ToolClientConfig cfg) {
        this.bus = bus;
        this.cfg = cfg;
        this.replyStream = bus.topology().toolsReplyStream(bus.config().nodeId());
        this.replyKey = replyStream.getBytes(StandardCharsets.UTF_8);
        this.toolsStream = bus.topology().toolsStream();
        this.activeKey = bus.redis().url() + "|" + replyStream;
        this.tickMillis = Math.max(100, Math.min(1000, cfg.replyTtl().toMillis() / 3));
        this.timer = new ScheduledThreadPoolExecutor(1, r -> {
            Thread t = new Thread(r, "stargazer-tools-timer");
            t.setDaemon(true);
            return t;
        });
        timer.setRemoveOnCancelPolicy(true); // completed calls must not leave their timeout tasks queued
        this.loop = new ReaderLoop(bus.redis(), "stargazer-tools-reader-" + bus.config().nodeId(), true,
                "Tool client reader of '" + replyStream + "'", log, this::turn);
    }

    static ToolClient create(EventBus bus, ToolClientConfig config) {
        Objects.requireNonNull(config, "config");
        if (!(bus instanceof RedisEventBus rb)) {
            throw new IllegalArgumentException("ToolClient needs an EventBus made by EventBus.connect, not " + bus);
        }
        RedisToolClient c = new RedisToolClient(rb, config);
        if (!ACTIVE.add(c.activeKey)) {
            throw new IllegalStateException("a ToolClient already reads reply stream '" + c.replyStream
                    + "' in this process; share it (one per worker) or give the bus another node id");
        }
        try {
            byte[] id = (byte[]) rb.redis().code().run(rb.redis().sharedSync(), INIT_SCRIPT, ScriptOutputType.VALUE,
                    new String[] {c.replyStream}, Long.toString(config.replyTtl().toMillis()).getBytes(StandardCharsets.US_ASCII));
            c.lastId = new String(id, StandardCharsets.US_ASCII);
        } catch (RuntimeException e) {
            ACTIVE.remove(c.activeKey);
            c.timer.shutdownNow();
            throw Redis.translate(e, "creating tools reply stream '" + c.replyStream + "'");
        }
        if (!rb.closeWith(c)) {
            ACTIVE.remove(c.activeKey);
            c.timer.shutdownNow();
            throw new StargazerException("the bus is closed; cannot create a tool client for reply stream '" + c.replyStream + "'");
        }
        c.loop.start();
        log.atInfo().addKeyValue("reply_stream", c.replyStream).addKeyValue("tools_stream", c.toolsStream)
                .log("Tool client started");
        return c;
    }

    // ---- calls ---------------------------------------------------------------------------------------------

    @Override
    public CompletableFuture<Object> call(String tool, Map<String, ?> args, Duration timeout) {
        return call(tool, args, timeout, null);
    }

    @Override
    public CompletableFuture<Object> call(String tool, Map<String, ?> args, Duration timeout, String traceId) {
        Objects.requireNonNull(tool, "tool");
        if (timeout == null || timeout.isNegative() || timeout.isZero() || timeout.compareTo(ToolClient.MAX_TIMEOUT) > 0) {
            return CompletableFuture.failedFuture(new IllegalArgumentException("timeout must be a positive duration of at most "
                    + ToolClient.MAX_TIMEOUT + ", not " + timeout));
        }
        if (closed.get()) {
            return CompletableFuture.failedFuture(new StargazerException("the tool client is closed; cannot call tool '" + tool + "'"));
        }
        String requestId = WireFormat.newTraceId();
        long deadline = bus.config().clock().millis() + timeout.toMillis();
        Envelope request;
        try {
            request = Envelope.builder()
                    .put(ToolWire.REQUEST_ID, requestId)
                    .put(ToolWire.TOOL, tool)
                    .put(ToolWire.ARGS, args == null ? Map.of() : args)
                    .put(ToolWire.REPLY_TO, replyStream)
                    .put(ToolWire.DEADLINE_MS, deadline)
                    .put(ToolWire.TRACE_ID, traceId == null || traceId.isEmpty() ? WireFormat.newTraceId() : traceId)
                    .build();
            if ((traceId == null || traceId.isEmpty()) && bus.tracing() != null) {
                request = request.without(ToolWire.TRACE_ID); // the publish takes the active trace's id (wire format)
            }
        } catch (IllegalArgumentException e) {
            return CompletableFuture.failedFuture(e);
        }
        // Before the call is registered, and so before close() can see it: the stream is kept for its answer.
        keepReplyStreamFor(deadline, timeout.toMillis());
        Call c = new Call(tool, requestId, System.nanoTime());
        BusHooks hooks = bus.hooks();
        if (hooks != BusHooks.NONE) {
            c.future.whenComplete((r, e) -> hooks.toolCalled(tool, outcome(e), System.nanoTime() - c.startNanos));
        }
        pending.put(requestId, c);
        calls.increment();
        // close() sets closed before it fails what is pending: a call registered after its sweep sees closed here, and
        // whichever of the two removes the call completes it (its timer may already be shut down).
        if (closed.get()) {
            failClosed(c);
            return c.future;
        }
        try {
            c.timeoutTask = timer.schedule(() -> timedOut(c), timeout.toNanos(), TimeUnit.NANOSECONDS);
        } catch (java.util.concurrent.RejectedExecutionException closing) {
            failClosed(c);
            return c.future;
        }
        // A caller that cancels its future gives up the call: forget it, so its reply counts as late.
        c.future.whenComplete((r, e) -> {
            if (c.future.isCancelled() && pending.remove(c.requestId, c)) {
                c.cancelTimer();
            }
        });
        bus.publishAsync(toolsStream, request).whenComplete((id, error) -> {
            if (error == null) return;
            if (Failures.unwrap(error) instanceof PublishOutcomeUnknownException unknown) {
                // Written, with no answer (a paused or cut-off Redis): it may be stored and answered in time, so the call
                // waits for its reply until its own timeout. Failing it now would drop that answer as late, and a caller
                // trying again under a new request_id would run the tool twice.
                c.publishUnknown = unknown;
                log.atDebug().addKeyValue("tool", tool).addKeyValue("request_id", requestId)
                        .log("A tool request's publish got no answer; the call waits for its reply until its timeout");
                return;
            }
            if (pending.remove(requestId, c)) {
                c.cancelTimer();
                failed.increment();
                c.future.completeExceptionally(Redis.translate(error, "publishing a request for tool '" + tool + "'"));
            }
        });
        return c.future;
    }

    @Override
    public Object callBlocking(String tool, Map<String, ?> args, Duration timeout) {
        CompletableFuture<Object> f = call(tool, args, timeout);
        try {
            return f.get();
        } catch (ExecutionException e) {
            Throwable cause = e.getCause();
            if (cause instanceof RuntimeException re) throw re;
            if (cause instanceof Error err) throw err;
            throw new StargazerException("tool call '" + tool + "' failed: " + cause, cause);
        } catch (InterruptedException e) {
            f.cancel(false);
            Thread.currentThread().interrupt();
            throw new StargazerException("interrupted while waiting for tool '" + tool + "'", e);
        }
    }

    private void timedOut(Call c) {
        if (!pending.remove(c.requestId, c)) {
            return;
        }
        timedOut.increment();
        Duration waited = c.waited();
        Throwable unknown = c.publishUnknown;
        String reason = "no reply within " + millis(waited) + (unknown == null ? ""
                : " (the request's publish got no answer, so it may never have been stored: " + unknown.getMessage() + ")");
        c.future.completeExceptionally(new ToolTimeoutException(c.tool, c.requestId, waited, false, reason,
                "tool '" + c.tool + "' (request " + c.requestId + "): " + reason));
    }

    // ---- the reader ----------------------------------------------------------------------------------------

    /** One turn of the reader loop (its thread): keep the reply stream alive and trimmed, then read replies. */
    private void turn(ReaderConnection conn) {
        conn.sync(); // opens the connection when there is none
        long now = System.nanoTime() / 1_000_000;
        if (now >= nextTick || readSinceTrim >= TRIM_EVERY) {
            maintain(conn);
            nextTick = now + tickMillis;
            readSinceTrim = 0;
        }
        long block = Math.max(1, Math.min(cfg.blockTimeout().toMillis(), nextTick - now));
        List<RawEntry> entries = read(conn, block);
        for (RawEntry e : entries) {
            handle(e);
            lastId = e.id();
        }
        readSinceTrim += entries.size();
    }

    private List<RawEntry> read(ReaderConnection conn, long blockMillis) {
        CommandArgs<byte[], byte[]> args = new CommandArgs<>(Redis.BYTES).add("COUNT").add(cfg.readBatchSize())
                .add("BLOCK").add(blockMillis).add("STREAMS").addKey(replyKey).add(lastId);
        Object reply;
        try {
            reply = conn.read(CommandType.XREAD, args, blockMillis);
        } catch (RuntimeException e) {
            throw Redis.translate(e, "XREAD on '" + replyStream + "'");
        }
        return RawEntry.parseRead(reply);
    }

    /**
     * Notes a call's deadline. Each tick sets the stream's expiry to replyTtl plus the longest timeout seen, which
     * covers every call made until the next tick; a call with a longer timeout than any before extends it at once,
     * so that a worker that dies right after it still leaves its stream for the answer.
     */
    private void keepReplyStreamFor(long deadline, long timeoutMillis) {
        lastDeadline.accumulateAndGet(deadline, Math::max);
        if (longestTimeout.getAndAccumulate(timeoutMillis, Math::max) >= timeoutMillis) return;
        // It only ever lengthens the expiry.
        extendExpiry(expiryMillis()).whenComplete((ok, e) -> {
            if (e != null) log.atDebug().addKeyValue("reply_stream", replyStream).log("Could not extend the reply stream's expiry; the next tick does: " + e);
        });
    }

    /** The maintenance function without its trim of what was read: makes the expiry at least {@code millis}. */
    private CompletableFuture<Long> extendExpiry(long millis) {
        return bus.redis().code().<String, byte[], Long>run(bus.redis().sharedAsync(), MAINTAIN_SCRIPT, ScriptOutputType.INTEGER,
                new String[] {replyStream}, maintainArgs(millis, "0-0")).toCompletableFuture();
    }

    /** MAINTAIN_SCRIPT's arguments: the expiry to have at least, the last id read ("0-0": trim nothing read), the cap. */
    private byte[][] maintainArgs(long expiryMillis, String lastRead) {
        return new byte[][] {ascii(Long.toString(expiryMillis)), ascii(lastRead), ascii(Long.toString(cfg.replyStreamMaxlen()))};
    }

    private long expiryMillis() {
        return cfg.replyTtl().toMillis() + longestTimeout.get();
    }

    private void maintain(ReaderConnection conn) {
        try {
            bus.redis().code().run(conn.sync(), MAINTAIN_SCRIPT, ScriptOutputType.INTEGER, new byte[][] {replyKey},
                    maintainArgs(expiryMillis(), lastId));
        } catch (RuntimeException e) {
            throw Redis.translate(e, "maintaining reply stream '" + replyStream + "'");
        }
    }

    private void handle(RawEntry e) {
        if (e.deleted()) {
            return;
        }
        Envelope reply;
        try {
            reply = e.decode();
        } catch (MalformedEntryException ex) {
            lateReplies.increment();
            log.atWarn().addKeyValue("reply_stream", replyStream).addKeyValue("stream_msg_id", e.id())
                    .log("Dropped a reply that cannot be decoded: " + ex.getMessage());
            return;
        }
        String requestId = reply.string(ToolWire.REQUEST_ID);
        Call c = requestId == null ? null : pending.remove(requestId);
        if (c == null) {
            lateReplies.increment();
            log.atDebug().addKeyValue("reply_stream", replyStream).addKeyValue("request_id", requestId)
                    .log("Dropped a reply that matches no waiting call (late)");
            return;
        }
        c.cancelTimer();
        BusTracing tracing = bus.tracing();
        if (tracing != null) {
            // The reply's arrival, continuing the tools service's answer: the call's future completes inside it.
            BusTracing.Process span = tracing.process(replyStream, null, e.id(), 1, e.text(RawEntry.TRACEPARENT), e.text(RawEntry.TRACESTATE),
                    reply.traceId());
            try {
                complete(c, reply);
            } finally {
                span.closeScope();
                span.end(null);
            }
            return;
        }
        complete(c, reply);
    }

    private static String outcome(Throwable e) {
        if (e == null) return "ok";
        Throwable cause = Failures.unwrap(e);
        return cause instanceof ToolException te ? te.type() : cause instanceof java.util.concurrent.CancellationException ? "cancelled" : "error";
    }

    private void complete(Call c, Envelope reply) {
        if (Boolean.TRUE.equals(reply.get(ToolWire.OK))) {
            completed.increment();
            c.future.complete(reply.get(ToolWire.RESULT));
            return;
        }
        Object error = reply.get(ToolWire.ERROR);
        String type = error instanceof Map<?, ?> m && m.get(ToolWire.ERROR_TYPE) instanceof String s ? s : ToolException.TOOL_FAILED;
        String message = error instanceof Map<?, ?> m && m.get(ToolWire.ERROR_MESSAGE) instanceof String s ? s
                : "the tools service answered not ok without an error message";
        if (ToolException.TIMEOUT.equals(type)) {
            timedOut.increment();
            c.future.completeExceptionally(new ToolTimeoutException(c.tool, c.requestId, c.waited(), true, message,
                    "tool '" + c.tool + "' (request " + c.requestId + ") was not run, the tools service answered timeout: " + message));
        } else {
            failed.increment();
            c.future.completeExceptionally(new ToolException(c.tool, c.requestId, type, message,
                    "tool '" + c.tool + "' (request " + c.requestId + ") failed with " + type + ": " + message));
        }
    }


    // ---- the rest ------------------------------------------------------------------------------------------

    @Override
    public String replyStream() {
        return replyStream;
    }

    @Override
    public ToolClientConfig config() {
        return cfg;
    }

    /** Fails {@code c} as cut short by close, unless its answer, timeout or the other side of the race settled it first. */
    private void failClosed(Call c) {
        if (pending.remove(c.requestId, c)) {
            c.cancelTimer();
            failed.increment();
            c.future.completeExceptionally(new StargazerException("the tool client closed before tool '" + c.tool
                    + "' (request " + c.requestId + ") answered"));
        }
    }

    @Override
    public Stats stats() {
        return new Stats(calls.sum(), completed.sum(), failed.sum(), timedOut.sum(), lateReplies.sum(), pending.size());
    }

    /**
     * Fails the calls in flight at once, then waits for Redis at most the bus's dead-peer timeout in all (the reader to
     * stop, the reply stream's last expiry to be set), so a paused or unreachable Redis cannot hold it longer. Before,
     * each of those waited the command timeout in turn and the calls waited with them: about 23 s, 13 s for the calls,
     * while Redis was paused (ToolsReconnectIT).
     */
    @Override
    public void close() {
        if (!closed.compareAndSet(false, true)) {
            return;
        }
        long waitUntil = System.nanoTime() + bus.config().deadPeerTimeout().toNanos();
        for (Call c : List.copyOf(pending.values())) {
            failClosed(c);
        }
        try {
            // A reader still blocked when this ends (Redis silent) stops when its read returns: stopping is set.
            loop.stop(Math.max(1, Math.min(cfg.blockTimeout().toMillis() + 2000, remainingMillis(waitUntil))));
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        timer.shutdownNow();
        // Not deleted: answers may still come until lateReplyLimit past the last deadline, this client's or those of an
        // earlier client of the same stream (a worker restarted with its node id), and an answer to a deleted stream
        // would make it again, for good. It expires replyTtl past the last deadline, or as it was set, if later.
        long keep = lastDeadline.get() + cfg.replyTtl().toMillis() - bus.config().clock().millis();
        try {
            if (keep > 0) {
                extendExpiry(keep).get(remainingMillis(waitUntil), TimeUnit.MILLISECONDS);
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } catch (ExecutionException | java.util.concurrent.TimeoutException | RuntimeException e) {
            log.atWarn().addKeyValue("reply_stream", replyStream)
                    .log("Could not set the reply stream's last expiry within the dead-peer timeout; it expires as set at the "
                            + "last tick: " + (e instanceof ExecutionException ? e.getCause() : e));
        } finally {
            ACTIVE.remove(activeKey);
            bus.forget(this);
        }
        log.atInfo().addKeyValue("reply_stream", replyStream).addKeyValue("calls", calls.sum())
                .addKeyValue("late_replies", lateReplies.sum()).log("Tool client closed");
    }

    private static long remainingMillis(long untilNanos) {
        return Math.max(0, TimeUnit.NANOSECONDS.toMillis(untilNanos - System.nanoTime()));
    }

    private static byte[] ascii(String s) {
        return s.getBytes(StandardCharsets.US_ASCII);
    }

    static String millis(Duration d) {
        return d.toMillis() + " ms";
    }
}
