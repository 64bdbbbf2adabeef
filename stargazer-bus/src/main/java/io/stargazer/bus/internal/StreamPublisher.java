package io.stargazer.bus.internal;

import io.lettuce.core.RedisFuture;
import io.lettuce.core.ScriptOutputType;
import io.lettuce.core.cluster.api.async.RedisClusterAsyncCommands;
import io.lettuce.core.output.ValueOutput;
import io.lettuce.core.protocol.Command;
import io.lettuce.core.protocol.CommandArgs;
import io.lettuce.core.protocol.CommandType;
import io.netty.util.concurrent.EventExecutor;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.Queue;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import io.lettuce.core.RedisCommandTimeoutException;
import io.lettuce.core.RedisConnectionException;
import io.stargazer.bus.BusConnectionException;
import io.stargazer.bus.PublishOutcomeUnknownException;
import io.stargazer.bus.PublishQueueFullException;
import io.stargazer.bus.RedisServerException;

/**
 * Publishes to one stream, coalescing concurrent publishes into server-side batches.
 *
 * <p>The cost of a publish is per command, on the client: so whatever has queued up while earlier batches are
 * on the wire goes out as one command. A lone publish is a plain {@code XADD}; two or more go as one {@code EVAL}
 * of a script that runs the same {@code XADD}s on the server, in order, and returns their ids. At most
 * {@link #MAX_IN_FLIGHT} batches are outstanding per stream; batches are formed from one FIFO queue and written to
 * one connection by one drain loop at a time, so entries reach the stream in submission order.
 *
 * <p>Every batch is formed and handed to Lettuce on one thread, an event loop of the connection ({@link #drain()}):
 * Netty writes at once on its event loop, while a write from any other thread waits in the loop's task queue, so
 * batches sent from both kinds of thread could overtake each other and break the order of one channel.
 *
 * <p>On a Redis Cluster one batch at a time: Lettuce's cluster connection does not keep two commands to one node in
 * order while that node's connection is being opened (queued commands then run last-in first-out, redis/lettuce
 * #1957), nor across a MOVED redirect; with one batch outstanding there is nothing to reorder.
 *
 * <p>Every future completes within its deadline ({@link io.stargazer.bus.BusConfig#publishTimeout()}, counted from the
 * call): with its entry's id, or exceptionally. A publish still waiting in the queue at its deadline fails with a plain
 * {@link BusConnectionException} (nothing was written: retrying cannot duplicate); one that was written and got no
 * answer, or whose connection was lost after the write, fails with {@link PublishOutcomeUnknownException}. The drain
 * taking a publish into a batch and the expiry failing it race (the event loop and the maintenance thread); each
 * publish goes to one of them, by one compare-and-set ({@link Pending#claim}), so a publish the expiry fails as not
 * written is never written, and one the drain took just as its deadline passed belongs to its batch, whose own
 * deadline fails it as of unknown outcome. The queue
 * is bounded ({@link io.stargazer.bus.BusConfig#publishQueueLimit()}): past it a publish fails at once with
 * {@link PublishQueueFullException}. A script that fails part way (only WRONGTYPE or out-of-memory can do that) may
 * have stored the first entries of its batch; their publishers see the error, and a retry makes a duplicate, never a
 * loss. A span's batch (below) gives each publish its own outcome instead, so that one partition's refusal is not
 * the others'.
 *
 * <p>A blocking publish on a single server may instead go out on a connection of the caller's own
 * ({@link CallerConnections}), written and read on the calling thread, together with the other blocking publishes to
 * the stream waiting at that moment ({@link CallerBatches}): when it carries no dedupe key and every earlier
 * write of this process to the stream through the shared connection has been answered or surely not sent
 * ({@link #unanswered}), so that it cannot overtake an earlier publish or {@code Delivery.reply} of the same thread.
 * The other way round, a publish on such a connection left unanswered at its deadline holds the stream's drain until it
 * is settled ({@link CallerConnections#unanswered(String)}): a paused server that resumes may read the shared
 * connection's socket first, and would store what this process wrote there later before it.
 *
 * <p>A batch the server refused because the library's function is gone ("Function not found": an empty restart,
 * {@code FUNCTION FLUSH}) ran nothing, so a bus that follows the library ({@link ServerCode}) writes it again, as a
 * script, instead of failing its publishes; but only where that cannot put it after something written later: the
 * stream's drain is held ({@link Hold}) until every batch written after the refused one is answered, and only if
 * each of those was refused the same way are they all written again, in their order, before anything else; if any of
 * them may have stored an entry (a lone publish's plain {@code XADD} needs no library), the refused ones fail as
 * before. So that a batch is not written as a script while one written before it as a function may still be refused,
 * the drain waits, when the bus has just turned to scripts, for the stream's function calls to be answered
 * ({@link #functionBatches}).
 *
 * <p>On a single server the partitions of the inbound stream share a span: one more publisher of this class
 * ({@link #spanning}), whose batches name several streams ({@link #SPAN_SCRIPT}), so that the plain publishes to six
 * partitions queued at one moment go out as one command, answered at once, as they would to one stream. A partition's
 * publisher hands it a publish that carries no dedupe key, trace fields or relay target, while the bus runs scripts,
 * only when nothing of its own is unanswered ({@link #unanswered}, and no publish of the stream on a connection of its
 * own); the other way round, it writes nothing of its own while a publish of its stream is in the span ({@link #spanned})
 * and starts again when the last is answered. So a thread's publishes to a channel keep their order whichever way each
 * goes, as they do on one stream. Each publish in the span counts as its stream's: in the stream's queue limit, in what
 * the trim guard counts unanswered, and in what keeps its publisher from being retired.
 *
 * <p>A batch a cluster redirected past Lettuce's redirects (MOVED, ASK, TRYAGAIN: during a slot migration whose nodes
 * do not yet agree on the slot's owner; {@link Failures#isRedirect}) ran nowhere either, and is held and written again
 * the same way, {@link #REDIRECT_RETRY} later (each time), until the nodes agree or the publishes' deadlines pass (then
 * they fail with that reply: nothing was written). On a cluster one batch is in flight per stream, so nothing written
 * after it can be overtaken; the batches formed meanwhile are written after it.
 */
final class StreamPublisher {
    /** Two batches in flight keep the connection busy while one is being answered, without shrinking batches. */
    static final int MAX_IN_FLIGHT = 2;
    /** Bytes one batch may carry, so one command never grows unbounded. */
    static final int MAX_BATCH_BYTES = 4 << 20;
    /** How long a batch refused by a cluster's redirect waits before it is written again ({@link Failures#isRedirect}). */
    static final java.time.Duration REDIRECT_RETRY = java.time.Duration.ofMillis(50);

    /**
     * The start of {@link #BATCH_SCRIPT} and {@link #SPAN_SCRIPT}: one XADD's arguments for KEYS[1], its options
     * (ARGV[1] n, ARGV[2 .. 1+n]) and the id; each entry then sets its payload at {@code base + 3} and its trace_id at
     * {@code base + 5}.
     */
    private static final String PLAIN_XADD_ARGS = """
            local n = tonumber(ARGV[1])
            local args = {'XADD', KEYS[1]}
            for i = 1, n do args[#args + 1] = ARGV[1 + i] end
            local base = #args
            args[base + 1] = '*'
            args[base + 2] = 'payload'
            args[base + 4] = 'trace_id'
            local ids = {}
            """;
    static final String BATCH_SCRIPT = PLAIN_XADD_ARGS + """
            for i = n + 2, #ARGV, 2 do
              args[base + 3] = ARGV[i]
              args[base + 5] = ARGV[i + 1]
              ids[#ids + 1] = redis.call(unpack(args))
            end
            return ids
            """;
    /**
     * {@link #BATCH_SCRIPT} for publishes that carry trace context: per entry payload, trace_id, traceparent,
     * tracestate ('' for none). A batch is one kind or the other ({@link #take}), so untraced publishes keep the
     * plain script.
     */
    static final String TRACED_BATCH_SCRIPT = """
            local n = tonumber(ARGV[1])
            local ids = {}
            for i = n + 2, #ARGV, 4 do
              local args = {'XADD', KEYS[1]}
              for j = 1, n do args[#args + 1] = ARGV[1 + j] end
              args[#args + 1] = '*'
              args[#args + 1] = 'payload'
              args[#args + 1] = ARGV[i]
              args[#args + 1] = 'trace_id'
              args[#args + 1] = ARGV[i + 1]
              args[#args + 1] = 'traceparent'
              args[#args + 1] = ARGV[i + 2]
              if ARGV[i + 3] ~= '' then
                args[#args + 1] = 'tracestate'
                args[#args + 1] = ARGV[i + 3]
              end
              ids[#ids + 1] = redis.call(unpack(args))
            end
            return ids
            """;
    /**
     * A span's batch ({@link #spanning}): plain publishes to several streams. KEYS the streams, one per run of entries
     * to the same stream ({@link #take} puts each stream's entries together); ARGV[1] n, ARGV[2 .. 1+n] XADD options,
     * then per run: its count, and per entry payload, trace_id. Returns each entry's id, or
     * {@link #SPAN_ERROR} and the error for one the server refused (a key of the wrong type, out of memory): one
     * partition's refusal is its publishes' alone, as it was with a batch per stream, and not the other partitions'.
     */
    static final String SPAN_SCRIPT = PLAIN_XADD_ARGS + """
            local i = n + 2
            for k = 1, #KEYS do
              args[2] = KEYS[k]
              local last = i + 2 * tonumber(ARGV[i])
              for j = i + 1, last, 2 do
                args[base + 3] = ARGV[j]
                args[base + 5] = ARGV[j + 1]
                local r = redis.pcall(unpack(args))
                if type(r) == 'table' and r.err then r = '!' .. r.err end
                ids[#ids + 1] = r
              end
              i = last + 1
            end
            return ids
            """;
    /** What begins an entry's error in a span's reply ({@link #SPAN_SCRIPT}); an id begins with a digit. */
    private static final byte SPAN_ERROR = '!';
    /**
     * Relay mode: a batch for a role's outbox ({@link Relaying}), each entry naming its target stream. KEYS[1] the outbox;
     * ARGV[1] n, ARGV[2 .. 1+n] XADD options, then per entry: target, dedupe key, payload, trace_id, traceparent,
     * tracestate ('' for none). The entries' layout is the library's sections {@code entry} and {@code outbox}, which {@code sg_outbox} runs.
     */
    static final String OUTBOX_SCRIPT = LibrarySource.section("entry") + LibrarySource.section("outbox") + """
            local n = tonumber(ARGV[1])
            local opts = {}
            for j = 1, n do opts[j] = ARGV[1 + j] end
            return outbox_add(KEYS[1], opts, ARGV, n + 2)
            """;
    private static final byte[] TARGET = "target".getBytes(StandardCharsets.US_ASCII);
    private static final byte[] DEDUPE = "dedupe".getBytes(StandardCharsets.US_ASCII);
    private static final byte[] DEDUPE_KEY = "dedupe_key".getBytes(StandardCharsets.US_ASCII);
    private static final byte[] TRACEPARENT = "traceparent".getBytes(StandardCharsets.US_ASCII);
    private static final byte[] TRACESTATE = "tracestate".getBytes(StandardCharsets.US_ASCII);
    private static final byte[] NONE = new byte[0];
    private static final byte[] WIDTH_PLAIN = {'2'};
    private static final byte[] WIDTH_TRACED = {'4'};
    private static final byte[] PAYLOAD = "payload".getBytes(StandardCharsets.US_ASCII);
    private static final byte[] TRACE_ID = "trace_id".getBytes(StandardCharsets.US_ASCII);

    private final String stream;
    private final RedisClusterAsyncCommands<String, byte[]> redis;
    /** Scripts (EVAL) or the stargazer library's functions (FCALL) for batches; a lone publish is XADD either way. */
    private final ServerCode code;
    private final int maxBatch;
    private final int queueLimit;
    private final byte[] dedupeWindowMillis;
    /** The keyed script's KEYS: the stream and its two dedupe hashes. */
    private final String[] dedupeKeys;
    private final BatchingDrain<Pending> drain;
    /** Plain publishes are marked there: never written again on a new connection ({@link WriteOnce}). */
    private final WriteOnce writeOnce;
    /** Told of a READONLY or MASTERDOWN reply ({@link Redis#notThePrimary}). */
    private final java.util.function.Consumer<String> notThePrimary;
    /** A cluster: one batch outstanding at a time (see the class comment), steps included. */
    private final boolean oneBatchAtATime;
    /** Connections for blocking publishes on the caller's thread; null where they are not used (a cluster, TLS, turned off). */
    private final CallerConnections callers;
    /** The blocking publishes to this stream on those connections, combined; null with {@link #callers}, and in a span. */
    private final CallerBatches ownWay;
    /** The span this stream's plain publishes may go through (see the class comment); null where there is none. */
    private final StreamPublisher span;
    /** This is a span: its batches name their publishes' streams ({@link Pending#owner}), whose counts they are. */
    private final boolean spanning;
    /**
     * This stream's publishes handed to {@link #span} and not yet answered (or skipped unsent). While above 0 nothing of
     * the stream's own is written ({@link #take}); counted in {@link #unanswered()} for the trim guard and the idle sweep.
     */
    private final AtomicInteger spanned = new AtomicInteger();
    /** Publishes submitted and not yet polled by the drain (taken into a batch, or skipped as expired or cancelled). */
    private final AtomicInteger queued = new AtomicInteger();
    /**
     * Writes to this stream through the shared connection not yet answered by Lettuce (or skipped unsent): publishes
     * from {@link #submit} until their batch's reply, failure or cancellation comes back (which may be after their
     * deadline failed them), and {@code Delivery.reply}'s scripts ({@link #submitStep}). Only at 0 may a blocking publish go
     * on a connection of its own. -1: retired by the idle sweep ({@link #retireIfIdle}); a caller holding this publisher
     * then takes the stream's new one.
     */
    private final AtomicInteger unanswered = new AtomicInteger();
    /** Batches written and not yet answered, oldest first: what {@link #expire} looks at. */
    private final Queue<Batch> inFlight = new ConcurrentLinkedQueue<>();
    /** The drain's thread: where every batch is written, the ones a {@link Hold} writes again too. */
    private final EventExecutor loop;
    /** Guards {@link #hold} and, with it, adding to {@link #inFlight} and settling a batch. */
    private final Object holdLock = new Object();
    /** Non-null while a batch refused for want of the library waits for the batches written after it. */
    private Hold hold;
    /**
     * Batches of this stream written as library functions and not yet answered: while the bus runs scripts and this
     * is above 0, nothing more is written ({@link #take}), as a script written now would be stored before such a batch
     * could be written again if the server refuses it.
     */
    private final AtomicInteger functionBatches = new AtomicInteger();
    /** Set when {@link #take} waited for {@link #functionBatches}: the answer that brings it to 0 drains then. */
    private volatile boolean waitedForFunctions;
    /** Whether the batch {@link #take} just formed goes as functions: decided there, with the wait above, used by send. */
    private boolean nextAsFunctions;
    /** Under {@link #holdLock}: the number the next batch put in {@link #inFlight} gets (its place in writing order). */
    private long nextSeq;
    /**
     * Under {@link #holdLock}: the highest number of a batch settled in a way that may have stored its entries (an
     * answer, an error other than the library's refusal, its deadline). A batch refused with a lower number is not
     * written again: it would land after that one. Batches can leave {@link #inFlight} before they are answered (their
     * deadline; a lost connection failing later ones first), so the hold's look at {@link #inFlight} alone cannot see them.
     */
    private long mayHaveStoredUpTo = -1;
    /**
     * Test seam, null in production: run by {@link #expire} between finding a queued publish past its deadline and
     * claiming it, so a test can make the drain take that publish right there, an interleaving otherwise too narrow
     * to reproduce.
     */
    volatile java.util.function.Consumer<Pending> beforeExpiring;

    /**
     * {@code trimArgs}: XADD options between the key and the id, e.g. {@code MAXLEN ~ 100000}; a batch uses its first's.
     * {@code deadline}: System.nanoTime by which the future must complete. {@code trace}: null, or the W3C
     * {@code traceparent} and {@code tracestate} (empty for none) fields to write beside trace_id. {@code target}: null,
     * or (relay mode) the shared stream the entry is for, this publisher's stream being the role's outbox: the dedupe key
     * then travels with the entry and dedupes in the target when the relay adds it there, not here.
     */
    record Pending(byte[] payload, byte[] traceId, List<String> trimArgs, CompletableFuture<String> future, long deadline,
            String dedupeKey, byte[][] trace, byte[] target, java.util.function.Supplier<RedisFuture<byte[]>> step,
            StreamPublisher owner, AtomicInteger state) {
        static final int QUEUED = 0;
        static final int SENT = 1;
        static final int EXPIRED = 2;

        Pending(byte[] payload, byte[] traceId, List<String> trimArgs, CompletableFuture<String> future, long deadline,
                String dedupeKey, byte[][] trace, byte[] target, java.util.function.Supplier<RedisFuture<byte[]>> step,
                StreamPublisher owner) {
            this(payload, traceId, trimArgs, future, deadline, dedupeKey, trace, target, step, owner, new AtomicInteger(QUEUED));
        }

        /**
         * Takes this queued publish for the drain ({@code SENT}) or the expiry ({@code EXPIRED}); false when the other
         * had it first. The future alone cannot decide it: the drain would have to check it and then write, and the
         * expiry could fail it as unwritten in between.
         */
        boolean claim(int owner) {
            return state.compareAndSet(QUEUED, owner);
        }
    }

    /**
     * One command on the wire; {@code settled} once its reply came or its deadline passed, whichever first.
     * {@code asFunctions}: written as an FCALL. {@code stored}: for steps, one of them may have added an entry.
     * {@code seq}: its place in writing order, set under {@link #holdLock} as it is put in {@link #inFlight}.
     */
    private static final class Batch {
        final List<Pending> items;
        final long deadline;
        final boolean asFunctions;
        final AtomicBoolean settled = new AtomicBoolean();
        final AtomicBoolean slotFreed = new AtomicBoolean();
        final AtomicBoolean stored = new AtomicBoolean();
        long seq;

        private Batch(List<Pending> items, long deadline, boolean asFunctions) {
            this.items = items;
            this.deadline = deadline;
            this.asFunctions = asFunctions;
        }

        static Batch of(List<Pending> items, boolean functions) {
            long deadline = items.get(0).deadline;
            for (Pending p : items) deadline = p.deadline - deadline < 0 ? p.deadline : deadline;
            return new Batch(items, deadline, functions && scripted(items));
        }

        /** Written as a script or function (as opposed to a plain XADD or steps): see {@link #write}. */
        private static boolean scripted(List<Pending> items) {
            Pending first = items.get(0);
            return first.step == null && (items.size() > 1 || (first.target == null && first.dedupeKey != null));
        }
    }

    /**
     * A batch refused for want of the library or by a cluster's redirect (the first of {@code refused}), the batches written after it still
     * unanswered ({@code waitingFor}), and what the drain formed meanwhile ({@code parked}, written when the hold ends).
     * {@code spoiled}: one written after it may have stored an entry, so the refused ones fail.
     */
    private static final class Hold {
        final Throwable error;
        /** A batch it holds was refused by a cluster's redirect: written again after {@link #REDIRECT_RETRY}, not at once. */
        boolean redirected;
        final List<Batch> refused = new ArrayList<>();
        final java.util.Set<Batch> waitingFor = java.util.Collections.newSetFromMap(new java.util.IdentityHashMap<>());
        final List<List<Pending>> parked = new ArrayList<>();
        boolean spoiled;
        boolean ending;
        /** {@link #end} has taken {@link #refused} up (written again, or to fail): the expiry leaves them alone then. */
        boolean endBegun;

        Hold(Throwable error) {
            this.error = error;
        }
    }

    /**
     * A stream's publisher: {@code maxInFlight} batches outstanding at most (1 on a cluster, see the class comment); its
     * plain publishes may go through {@code span} (made by {@link #spanning}, on the same connection and loop), or null
     * for none.
     */
    StreamPublisher(String stream, RedisClusterAsyncCommands<String, byte[]> redis, int maxBatch, int maxInFlight, int queueLimit,
            java.time.Duration dedupeWindow, EventExecutor loop, ServerCode code, CallerConnections callers, WriteOnce writeOnce,
            java.util.function.Consumer<String> notThePrimary, StreamPublisher span) {
        this(stream, redis, maxBatch, maxInFlight, queueLimit, dedupeWindow, loop, code, callers, writeOnce, notThePrimary, span, false);
    }

    /**
     * A span (see the class comment): {@code name} names it in logs, never a stream; its publishes come from the
     * streams' publishers made with it. Single server only: its batches name several keys.
     */
    static StreamPublisher spanning(String name, RedisClusterAsyncCommands<String, byte[]> redis, int maxBatch, int queueLimit,
            EventExecutor loop, ServerCode code, WriteOnce writeOnce, java.util.function.Consumer<String> notThePrimary) {
        return new StreamPublisher(name, redis, maxBatch, MAX_IN_FLIGHT, queueLimit, java.time.Duration.ZERO, loop, code, null,
                writeOnce, notThePrimary, null, true);
    }

    private StreamPublisher(String stream, RedisClusterAsyncCommands<String, byte[]> redis, int maxBatch, int maxInFlight, int queueLimit,
            java.time.Duration dedupeWindow, EventExecutor loop, ServerCode code, CallerConnections callers, WriteOnce writeOnce,
            java.util.function.Consumer<String> notThePrimary, StreamPublisher span, boolean spanning) {
        this.writeOnce = writeOnce;
        this.notThePrimary = notThePrimary;
        this.stream = stream;
        this.callers = callers;
        this.span = span;
        this.spanning = spanning;
        this.ownWay = callers == null || spanning ? null : new CallerBatches(stream, maxBatch, MAX_BATCH_BYTES,
                Math.min(CallerBatches.WRITERS, callers.max()), this::sendOwn);
        this.oneBatchAtATime = maxInFlight == 1;
        this.code = code;
        this.dedupeWindowMillis = Long.toString(dedupeWindow.toMillis()).getBytes(StandardCharsets.US_ASCII);
        String[] hashes = Dedupe.hashNames(stream);
        this.dedupeKeys = new String[] {stream, hashes[0], hashes[1]};
        this.redis = redis;
        this.maxBatch = maxBatch;
        this.queueLimit = queueLimit;
        this.loop = loop;
        this.drain = new BatchingDrain<>(maxInFlight, loop, loop::inEventLoop, this::take, this::send);
    }

    String stream() {
        return stream;
    }

    /** Writes through the shared connection not yet answered (see {@link #unanswered}), this stream's in the span included. */
    int unanswered() {
        return Math.max(0, unanswered.get()) + spanned.get();
    }

    /** Nothing queued and nothing written unanswered, in the span included. */
    boolean idle() {
        return drain.idle() && inFlight.isEmpty() && spanned.get() == 0;
    }

    /** When this publisher was last handed a publish (System.nanoTime); read by the idle sweep, exactness not needed. */
    private volatile long lastUsed = System.nanoTime();

    /**
     * Retires this publisher when nothing is unanswered and it had no publish for {@code idleNanos}: the caller (the
     * idle sweep, inside the map's remapping, so atomically with the removal) may then forget it. A publish that got
     * this object before and submits after finds it retired and takes the stream's new publisher, so no write is left
     * behind in a forgotten one that a later blocking publish could overtake.
     */
    boolean retireIfIdle(long idleNanos) {
        if (!drain.idle() || System.nanoTime() - lastUsed < idleNanos || spanned.get() != 0 || !unanswered.compareAndSet(0, -1)) {
            return false;
        }
        if (spanned.get() == 0) return true;
        // A publish went to the span just now (viaSpan counts it before it looks for the retirement): not idle after all.
        unanswered.set(0);
        return false;
    }

    /**
     * Runs {@code call} ({@link #submit} or {@link #submitStep}) on {@code stream}'s current publisher: one the idle
     * sweep retired meanwhile answers null, and since the sweep removed it from the map in the same step, the next
     * lookup makes a new one.
     */
    static CompletableFuture<String> onCurrent(java.util.function.Function<String, StreamPublisher> publishers, String stream,
            java.util.function.Function<StreamPublisher, CompletableFuture<String>> call) {
        CompletableFuture<String> f;
        while ((f = call.apply(publishers.apply(stream))) == null) {
            Thread.onSpinWait();
        }
        return f;
    }

    /** Counts a write handed to the drain; false when retired. */
    private boolean enter() {
        for (;;) {
            int u = unanswered.get();
            if (u < 0) return false;
            if (unanswered.compareAndSet(u, u + 1)) return true;
        }
    }

    /** Those writes were answered (or failed, or were cancelled, or skipped unsent). */
    private void leave(int writes) {
        unanswered.addAndGet(-writes);
    }

    /**
     * {@code dedupeKey}: null for none (see {@link Dedupe}). {@code blocking}: the caller waits for the result on this
     * thread, which may then do the I/O itself (see the class comment); the future is then complete on return. Null when
     * this publisher was retired meanwhile: submit to the stream's current one. {@code limited}: held to the queue limit;
     * false for a publish the guard held while its stream was full and now releases: it was admitted within the limit
     * when it was held ({@link StreamGuard}), and refusing it as room comes would fail a publish that only waited.
     */
    CompletableFuture<String> submit(byte[] payload, byte[] traceId, List<String> trimArgs, long deadline, String dedupeKey,
            byte[][] trace, byte[] target, boolean blocking, boolean limited) {
        lastUsed = System.nanoTime();
        if (blocking && callers != null && dedupeKey == null && target == null && mayGoOwnWay()) {
            Object outcome = ownWay.publish(new CallerBatches.Blocked(payload, traceId, trimArgs, trace, deadline));
            if (outcome instanceof String id) return CompletableFuture.completedFuture(id);
            if (outcome instanceof RuntimeException e) return CompletableFuture.failedFuture(e);
            // Its deadline passed while it waited for its turn: nothing was written, and the shared way would write it late.
            if (outcome == CallerBatches.EXPIRED) return CompletableFuture.failedFuture(notSent());
            // NOT_SENT: the shared way
        }
        if (span != null && dedupeKey == null && target == null && trace == null && unanswered.get() == 0 && !code.functions()
                && (callers == null || !callers.unanswered(stream))) {
            return viaSpan(new Pending(payload, traceId, trimArgs, new CompletableFuture<>(), deadline, null, null, null, null, this), limited);
        }
        return queue(new Pending(payload, traceId, trimArgs, new CompletableFuture<>(), deadline, dedupeKey, trace, target, null, null), limited);
    }

    /**
     * Nothing of this stream is unanswered on the shared connection or on an earlier connection of its own, so a
     * blocking publish written on one now cannot overtake anything of its thread.
     */
    private boolean mayGoOwnWay() {
        return unanswered.get() == 0 && spanned.get() == 0 && !callers.unanswered(stream);
    }

    /**
     * On the writer's thread ({@link CallerBatches}): writes {@code batch} on a connection of its own as one plain XADD
     * each, pipelined, unless something of the stream is unanswered elsewhere (the shared connection, or an earlier
     * connection of its own): then nothing is written and they go the shared way.
     *
     * <p>Plain XADDs, not the batch script the shared way uses: a batch here holds one publish per caller, none of which
     * has returned, so no order is promised among its entries and each gets its own outcome (a refusal is its publish's
     * alone). For the server a script call costs several XADDs' worth beyond its commands (bench/profile-notes.md, stop
     * 54), and pipelined XADDs are read in one system call as the script is. Measured (16 threads, `ProfileMain pub16`,
     * the two jars alternated, 3 JVMs each, an AMD machine): redis-server 10.2–12.5 µs of CPU an entry with the script,
     * 8.5–8.8 pipelined; 47 500–57 600 msg/s against 59 100–61 800 (bench/profile-notes.md, stop 56).
     */
    private void sendOwn(List<CallerBatches.Blocked> batch, long deadline, Object[] outcomes) {
        if (!mayGoOwnWay()) {
            java.util.Arrays.fill(outcomes, CallerBatches.NOT_SENT);
            return;
        }
        @SuppressWarnings("unchecked")
        Command<String, byte[], ?>[] commands = new Command[batch.size()];
        for (int k = 0; k < commands.length; k++) {
            CallerBatches.Blocked b = batch.get(k);
            commands[k] = new Command<>(CommandType.XADD, new ValueOutput<>(Redis.CODEC),
                    xaddArgs(b.payload, b.traceId, b.trimArgs, null, b.trace, null));
        }
        callers.publishAll(stream, commands, deadline, outcomes);
        for (int k = 0; k < outcomes.length; k++) {
            Object reply = outcomes[k];
            outcomes[k] = reply == null ? CallerBatches.NOT_SENT
                    : reply instanceof byte[] id ? new String(id, StandardCharsets.US_ASCII)
                    : reply instanceof RuntimeException ? reply
                    : new IllegalStateException("publish to '" + stream + "' got no id but " + reply);
        }
    }

    /**
     * A publish to this stream on a connection of its own that went unanswered is settled ({@link CallerConnections#settle}):
     * what queued meanwhile is sent.
     */
    void resume() {
        drain.drain();
    }

    /** Publishes and answers submitted and not yet taken into a batch: what counts against the queue limit. */
    int queued() {
        return queued.get();
    }

    /**
     * Writes another command that adds to this stream ({@code Delivery.reply}'s script, which returns the entry's id) in
     * its turn among the publishes: a batch of its own, formed and written by the drain like them, so that a thread's
     * answer and its next publish to the stream reach it in that order. Null when this publisher was retired meanwhile.
     */
    CompletableFuture<String> submitStep(java.util.function.Supplier<RedisFuture<byte[]>> step, long deadline) {
        lastUsed = System.nanoTime();
        // Not held to the queue limit: answers are bounded by the handlers that wait for them, and a full queue of
        // publishes must not fail (and so dead-letter) the deliveries being answered.
        return queue(new Pending(NONE, NONE, List.of(), new CompletableFuture<>(), deadline, null, null, null, step, null), false);
    }

    /**
     * Hands {@code p} to the drain, within its stream's queue limit if {@code limited}, counted as unanswered; null when
     * retired. In a span {@code p} counts against its own stream's limit ({@link Pending#owner}).
     */
    private CompletableFuture<String> queue(Pending p, boolean limited) {
        StreamPublisher counts = counts(p);
        if (counts.queued.incrementAndGet() > queueLimit && limited) {
            counts.queued.decrementAndGet();
            if (p.owner != null) p.owner.spanLeft(1);
            return CompletableFuture.failedFuture(new PublishQueueFullException(counts.stream, queueLimit));
        }
        if (!enter()) {
            counts.queued.decrementAndGet();
            if (p.owner != null) p.owner.spanLeft(1);
            return null;
        }
        drain.offer(p);
        return p.future;
    }

    /**
     * Hands a plain publish of this stream to {@link #span}, counted in {@link #spanned} before it looks whether the idle
     * sweep retired this publisher meanwhile ({@link #retireIfIdle} looks the other way round); null when it did.
     */
    private CompletableFuture<String> viaSpan(Pending p, boolean limited) {
        spanned.incrementAndGet();
        if (unanswered.get() < 0) {
            spanLeft(1);
            return null;
        }
        return span.queue(p, limited);
    }

    /** The publisher whose stream {@code p} is for, whose counts it is in: its own in a span, else this one. */
    private StreamPublisher counts(Pending p) {
        return p.owner == null ? this : p.owner;
    }

    /**
     * {@code n} of this stream's publishes in the span were answered, failed or skipped unsent: when none is left, what
     * queued here meanwhile is written.
     */
    private void spanLeft(int n) {
        if (spanned.addAndGet(-n) == 0 && !drain.queue().isEmpty()) {
            drain.drain(); // closing, the drain's loop may refuse it: BatchingDrain lets that go
        }
    }

    /** Publishes answered, failed or skipped unsent: counted off here, and in a span off their streams' {@link #spanned}. */
    private void leave(List<Pending> items) {
        leave(items.size());
        if (spanning) {
            // One update of each stream's count per run of its publishes (per batch: take groups them), not one per
            // publish: the publishing threads count into the same counters (viaSpan), and a decrement per publish was a
            // tenth of a microsecond of each on the I/O thread (a JFR of the 6-partition row: bench/profile-notes.md).
            StreamPublisher owner = null;
            int run = 0;
            for (Pending p : items) {
                if (p.owner != owner) {
                    if (run > 0) owner.spanLeft(run);
                    owner = p.owner;
                    run = 0;
                }
                run++;
            }
            if (run > 0) owner.spanLeft(run);
        }
    }

    /** A publish polled and never to be written. */
    private void skip(Pending p) {
        leave(1);
        if (p.owner != null) p.owner.spanLeft(1);
    }

    /**
     * Fails each of {@code items} with {@code error} of its own stream's publisher (in a span, its owner's, so that the
     * exception names its stream), made once per run of one stream.
     */
    private void failEach(List<Pending> items, java.util.function.Function<StreamPublisher, RuntimeException> error) {
        StreamPublisher last = null;
        RuntimeException e = null;
        for (Pending p : items) {
            if (counts(p) != last) {
                last = counts(p);
                e = error.apply(last);
            }
            p.future.completeExceptionally(e);
        }
    }

    /**
     * Fails what has passed its deadline (called periodically from the maintenance thread): queued publishes as not
     * sent, written ones as of unknown outcome; an expired batch frees its slot, so a connection that stopped answering
     * does not hold back the publishes after it for longer than their own deadline.
     */
    void expire(long now) {
        // Every queued publish is looked at, not only up to the first with time left: the queue is not in deadline
        // order. A publish released from a hold (held for room in a full stream, or behind a retry of its stream) keeps
        // its call's deadline, and may queue behind one counting from later (a retry's try, a Delivery.reply answer);
        // stopping at that one, while the drain was held, answered it up to a publish timeout late
        // (PublishExpiryRaceIT.aReleasedPublish...). A pass over the queue, bounded by SG_PUBLISH_QUEUE_LIMIT, is cheap.
        for (Pending p : drain.queue()) {
            if (p.deadline - now > 0) continue;
            java.util.function.Consumer<Pending> hook = beforeExpiring;
            if (hook != null) hook.accept(p);
            // Lost to the drain: it may be written already, so its batch answers for it (the reply, or past the batch's
            // deadline, below or next round, unknown outcome). Won: never written; take counts it off when it polls it.
            if (p.claim(Pending.EXPIRED)) {
                p.future.completeExceptionally(counts(p).notSent());
            }
        }
        expireHeld(now);
        for (Batch b : inFlight) {
            if (b.deadline - now <= 0 && settle(b, true)) {
                failEach(b.items, c -> new PublishOutcomeUnknownException(c.stream, "publishing to stream '" + c.stream
                        + "': written, but Redis did not answer within the publish timeout (SG_PUBLISH_TIMEOUT_MS): the entry may or may not be stored", null));
                freeSlot(b);
            }
        }
    }

    /**
     * Fails the publishes a {@link Hold} keeps whose deadline passed: those of a refused batch, to be written again (as
     * refused: nothing of them was stored), and those formed meanwhile (as not sent). A hold lasts until the batches
     * written after the refused one are answered or past their own deadlines, which may be later by up to a publish
     * timeout (a retry's try, a {@code Delivery.reply} answer count from later than a publish released from a wait);
     * before, its publishes were answered then, late (RefusedForLibraryIT.publishesAHoldKeeps...). Each is taken under
     * the hold's lock, where {@link #end} looks at them, so it is either written again or failed here, never both; counted
     * off by {@link #end}, as one its caller cancelled.
     */
    private void expireHeld(long now) {
        List<Pending> refused = new ArrayList<>(0);
        List<Pending> parked = new ArrayList<>(0);
        Throwable error;
        synchronized (holdLock) {
            Hold h = hold;
            if (h == null) return;
            error = h.error;
            if (!h.endBegun) {
                for (Batch b : h.refused) takeLate(b.items, now, refused);
            }
            for (List<Pending> items : h.parked) takeLate(items, now, parked);
        }
        if (!refused.isEmpty()) {
            RuntimeException e = failure(error);
            for (Pending p : refused) p.future.completeExceptionally(e);
        }
        for (Pending p : parked) p.future.completeExceptionally(counts(p).notSent());
    }

    /** Under {@link #holdLock}: those of {@code items} past their deadline, claimed for the expiry, into {@code late}. */
    private static void takeLate(List<Pending> items, long now, List<Pending> late) {
        for (Pending p : items) {
            if (p.deadline - now <= 0 && !p.future.isDone() && p.state.compareAndSet(Pending.SENT, Pending.EXPIRED)) late.add(p);
        }
    }

    /**
     * The bus is closing and has stopped waiting (its timer, which fails queued publishes at their deadlines, is gone):
     * fails every publish still queued, as nothing will drain it any more. Each is claimed as {@link #expire} claims it,
     * so one the drain takes at this moment is answered by its batch instead; the drain counts the others off when it
     * polls them, as it does expired ones.
     */
    void failQueued() {
        for (Pending p : drain.queue()) {
            if (p.claim(Pending.EXPIRED)) {
                StreamPublisher c = counts(p);
                p.future.completeExceptionally(new BusConnectionException("publishing to stream '" + c.stream
                        + "': the bus closed before it could be written: nothing was written", null));
            }
        }
    }

    /**
     * Forms the next batch, on the drain's thread: publishes in queue order with the same trim options and of the same
     * kind (with or without trace fields), expired ones skipped.
     */
    private List<Pending> take(Queue<Pending> queue) {
        if (callers != null && callers.unanswered(stream)) {
            return List.of(); // until that publish is answered or its connection ends: resume()
        }
        if (spanned.get() > 0) {
            return List.of(); // until this stream's publishes in the span are answered: spanLeft
        }
        boolean functions = code.functions() && !spanning;
        if (!functions && functionBatches.get() > 0) {
            waitedForFunctions = true;
            if (functionBatches.get() > 0) return List.of(); // until those are answered (see functionBatches): the last one drains
        }
        nextAsFunctions = functions;
        Pending first;
        while ((first = queue.poll()) != null) {
            counts(first).queued.decrementAndGet();
            if (claimToSend(first)) break;
            skip(first); // never to be written
        }
        if (first == null) {
            return List.of();
        }
        List<Pending> batch = new ArrayList<>(Math.min(maxBatch, 64));
        batch.add(first);
        long bytes = first.payload.length;
        Pending next;
        while (batch.size() < maxBatch && (next = queue.peek()) != null && sameBatch(first, next, bytes)) {
            queue.poll();
            counts(next).queued.decrementAndGet();
            if (!claimToSend(next)) {
                skip(next);
                continue;
            }
            batch.add(next);
            bytes += next.payload.length;
        }
        if (spanning) return groupByStream(batch);
        return batch;
    }

    /**
     * A span's batch grouped by stream ({@link #groupByStream}), with the order its publishes were made in: the i-th made
     * is at {@code submitted[i]}. {@link #finish} answers them in that order, as one stream's are: a thread waiting for
     * room in its window of unanswered publishes is then woken once for its run of answers, not once for each stream's
     * part of it (the 6-partition row's publishing threads parked twice as often per message as one stream's).
     */
    private static final class Grouped extends ArrayList<Pending> {
        final int[] submitted;

        Grouped(List<Pending> items, int[] submitted) {
            super(items);
            this.submitted = submitted;
        }
    }

    /**
     * Puts each stream's publishes of a span's batch together, each stream's in their order, so that its script names
     * a stream once per batch ({@link #SPAN_SCRIPT}) where it named one per entry: a third of the arguments Lettuce
     * encodes and the script reads. Only the order between streams changes, which no reader can see: the script runs
     * at once, and what is blocked reading any of the streams is served after it.
     */
    private static List<Pending> groupByStream(List<Pending> batch) {
        int n = batch.size();
        List<StreamPublisher> owners = new ArrayList<>(8);
        int[] counts = new int[8];
        int[] slot = new int[n];
        int runs = 0;
        StreamPublisher last = null;
        int k = -1;
        for (int i = 0; i < n; i++) {
            StreamPublisher owner = batch.get(i).owner;
            if (owner != last) {
                runs++;
                last = owner;
                k = owners.indexOf(owner);
                if (k < 0) {
                    k = owners.size();
                    owners.add(owner);
                    if (k == counts.length) counts = java.util.Arrays.copyOf(counts, 2 * k);
                }
            }
            slot[i] = k;
            counts[k]++;
        }
        if (runs == owners.size()) return batch; // each stream's publishes are together already
        int[] next = new int[owners.size()];
        for (int j = 1; j < next.length; j++) next[j] = next[j - 1] + counts[j - 1];
        Pending[] grouped = new Pending[n];
        int[] submitted = new int[n];
        for (int i = 0; i < n; i++) {
            int at = next[slot[i]]++;
            grouped[at] = batch.get(i);
            submitted[i] = at;
        }
        return new Grouped(java.util.Arrays.asList(grouped), submitted);
    }

    /**
     * Whether a polled publish is to be written: not failed at its deadline ({@link #expire} claimed it first), and its
     * future not already completed by its caller (cancelled), who then expects nothing of it.
     */
    private static boolean claimToSend(Pending p) {
        return p.claim(Pending.SENT) && !p.future.isDone();
    }

    /**
     * Whether {@code next} may join {@code first}'s batch of {@code bytes}: steps only with steps (each its own command,
     * written one after the other); publishes with the same trim options and of the same kind, within the byte bound.
     */
    private static boolean sameBatch(Pending first, Pending next, long bytes) {
        if (first.step != null || next.step != null) {
            return first.step != null && next.step != null;
        }
        return bytes + next.payload.length <= MAX_BATCH_BYTES && next.trimArgs == first.trimArgs
                && (next.trace == null) == (first.trace == null) && (next.target == null) == (first.target == null);
    }

    private void send(List<Pending> items) {
        Batch batch = Batch.of(items, nextAsFunctions);
        synchronized (holdLock) {
            if (hold != null) {
                hold.parked.add(items); // written when the hold ends, after what it writes again
                return;
            }
            track(batch);
        }
        write(batch);
    }

    /** Under {@link #holdLock}: numbers a batch about to be written and puts it in {@link #inFlight}. */
    private void track(Batch batch) {
        batch.seq = nextSeq++;
        inFlight.add(batch);
    }

    /** Writes a batch already in {@link #inFlight}, on the drain's thread. */
    private void write(Batch batch) {
        List<Pending> items = batch.items;
        if (items.get(0).step != null) {
            sendSteps(batch);
            return;
        }
        if (batch.asFunctions) functionBatches.incrementAndGet();
        List<String> opts = items.get(0).trimArgs;
        RedisFuture<?> reply;
        try {
            boolean dedupe = false;
            boolean allKeyed = true;
            for (Pending p : items) {
                dedupe |= p.dedupeKey != null;
                allKeyed &= p.dedupeKey != null;
            }
            // Written again after a lost connection, a batch whose every entry has a dedupe key adds nothing new; an
            // entry without one would be stored twice: such a batch is written once or fails (WriteOnce).
            boolean once = !allKeyed;
            boolean fn = batch.asFunctions;
            if (spanning) {
                Pending first = items.get(0);
                reply = items.size() == 1 ? first.owner.xadd(first, opts, true) : spanEval(items, opts);
            } else if (items.get(0).target != null) {
                reply = items.size() == 1 ? xadd(items.get(0), opts, once) : outbox(items, opts, once, fn);
            } else {
                reply = dedupe ? evalDedupe(items, opts, once, fn) : items.size() == 1 ? xadd(items.get(0), opts, once)
                        : eval(items, opts, once, fn);
            }
        } catch (RuntimeException e) {
            answered(batch, null, e);
            return;
        }
        reply.whenComplete((result, error) -> answered(batch, result, error));
    }

    /** A batch of publishes was answered (or failed, or was cancelled). */
    private void answered(Batch batch, Object result, Throwable error) {
        if (held(batch, error)) {
            return; // still counted: written again, or failed, when the hold ends
        }
        // Counted off before the callers learn the outcome: a caller's next blocking publish must find it answered.
        leave(batch.items);
        finish(batch, result, error);
    }

    /**
     * Whether the hold takes this answered batch: the first one refused for want of the library (which starts a hold),
     * or one written after it and refused the same way. Any other answer of a batch the hold waits for spoils it.
     */
    private boolean held(Batch batch, Throwable error) {
        if (spanning) return false; // plain scripts on one server: neither a redirect nor the library's refusal can come
        boolean redirect = error != null && Failures.isRedirect(error);
        boolean refused = error != null && (redirect || code.follows() && ServerCode.refusedForLibrary(error));
        boolean taken;
        boolean lastFunction = false;
        synchronized (holdLock) {
            taken = hold(batch, refused, redirect, error);
            // Only now, with the hold set: take() may write scripts again once no function call of this stream is out.
            if (batch.asFunctions) lastFunction = functionBatches.decrementAndGet() == 0;
        }
        if (lastFunction && waitedForFunctions) {
            // The wait in take() is over: what queued behind it goes. Nothing else may drain it: this batch's place
            // may have been given back at its deadline, and the library may be back meanwhile.
            waitedForFunctions = false;
            drain.drain(); // closing, the drain's loop may refuse it: BatchingDrain lets that go
        }
        if (taken && !redirect) code.noticed(error); // after the hold is set: from here on the drain writes scripts
        return taken;
    }

    /** Under {@link #holdLock}: {@link #held}'s decision. */
    private boolean hold(Batch batch, boolean refused, boolean redirect, Throwable error) {
        Hold h = hold;
        if (h == null) {
            // A batch written after this one may have stored its entries already: written again, it would land after them.
            if (!refused || mayHaveStoredUpTo > batch.seq || !batch.settled.compareAndSet(false, true)) return false;
            inFlight.remove(batch);
            h = hold = new Hold(error);
            h.refused.add(batch);
            h.redirected = redirect;
            for (Batch b : inFlight) {
                if (b.seq > batch.seq) h.waitingFor.add(b);
            }
        } else if (!h.waitingFor.remove(batch)) {
            return false;
        } else if (refused && batch.settled.compareAndSet(false, true)) {
            inFlight.remove(batch);
            h.refused.add(batch);
            h.redirected |= redirect;
        } else {
            h.spoiled = true;
            endIfAnswered(h);
            return false;
        }
        endIfAnswered(h);
        return true;
    }

    /**
     * Settles a batch that leaves {@link #inFlight} other than through {@link #held}: false when it was settled
     * already. {@code mayHaveStored}: its outcome spoils a hold that waits for it.
     */
    private boolean settle(Batch b, boolean mayHaveStored) {
        synchronized (holdLock) {
            if (!b.settled.compareAndSet(false, true)) return false;
            inFlight.remove(b);
            if (mayHaveStored && b.seq > mayHaveStoredUpTo) mayHaveStoredUpTo = b.seq;
            Hold h = hold;
            if (h != null && h.waitingFor.remove(b)) {
                h.spoiled |= mayHaveStored;
                endIfAnswered(h);
            }
            return true;
        }
    }

    /** Under {@link #holdLock}: once every batch the hold waits for is answered, ends it on the drain's thread. */
    private void endIfAnswered(Hold h) {
        if (!h.waitingFor.isEmpty() || h.ending) return;
        h.ending = true;
        try {
            if (h.redirected) {
                // The nodes do not agree on the slot's owner yet: give them a moment instead of bouncing between them.
                // A loop that shuts down meanwhile cancels the task: then fail what the hold kept, as below.
                loop.schedule(() -> end(h, false), REDIRECT_RETRY.toMillis(), java.util.concurrent.TimeUnit.MILLISECONDS)
                        .addListener(f -> {
                            if (f.isCancelled()) java.util.concurrent.ForkJoinPool.commonPool().execute(() -> end(h, true));
                        });
                return;
            }
            loop.execute(() -> end(h, false));
        } catch (java.util.concurrent.RejectedExecutionException e) {
            // The bus is closing: nothing is written any more; fail what the hold kept, off this thread and its lock.
            java.util.concurrent.ForkJoinPool.commonPool().execute(() -> end(h, true));
        }
    }

    /**
     * Ends a hold, on the drain's thread: writes the refused batches again (unless spoiled), in order, then what the
     * drain formed meanwhile, before the drain writes anything else; fails the refused ones if spoiled. {@code closing}:
     * the drain's thread is gone (the bus closes), so nothing is written and every publish the hold kept fails. A
     * publish kept past its deadline meanwhile was failed by {@link #expireHeld}, and is not written.
     */
    private void end(Hold h, boolean closing) {
        List<Batch> freed = new ArrayList<>();
        List<Pending> late = new ArrayList<>();
        List<Pending> unsent = new ArrayList<>();
        List<Batch> notWritten = new ArrayList<>();
        boolean first = true;
        for (;;) {
            List<Batch> writes = new ArrayList<>();
            synchronized (holdLock) {
                boolean functions = code.functions();
                if (first && mayHaveStoredUpTo > h.refused.get(0).seq) h.spoiled = true; // see held(): cannot happen, kept as a guard
                if (first && !h.spoiled && !closing) {
                    for (Batch b : h.refused) {
                        List<Pending> live = stillWanted(b.items, late);
                        if (live.isEmpty()) freed.add(b);
                        else writes.add(Batch.of(live, functions)); // takes over b's place on the wire
                    }
                }
                first = false;
                h.endBegun = true;
                for (List<Pending> items : h.parked) {
                    List<Pending> live = closing ? List.of() : stillWanted(items, unsent);
                    if (closing) notWritten.add(Batch.of(items, functions));
                    else if (live.isEmpty()) freed.add(Batch.of(items, functions)); // its place on the wire, never used
                    else writes.add(Batch.of(live, functions));
                }
                h.parked.clear();
                if (writes.isEmpty()) {
                    hold = null;
                    break;
                }
                for (Batch b : writes) track(b);
            }
            for (Batch b : writes) write(b); // a send these cause parks, and is written by the next round
        }
        RuntimeException refusal = failure(h.error);
        for (Pending p : late) p.future.completeExceptionally(refusal);
        for (Pending p : unsent) p.future.completeExceptionally(notSent());
        for (Batch b : notWritten) {
            leave(b.items.size());
            BusConnectionException e = new BusConnectionException("publishing to stream '" + stream
                    + "': the bus closed before it could be written: nothing was written", null);
            for (Pending p : b.items) p.future.completeExceptionally(e);
            freed.add(b);
        }
        if (h.spoiled || closing) {
            for (Batch b : h.refused) {
                leave(b.items.size());
                for (Pending p : b.items) p.future.completeExceptionally(refusal);
                freed.add(b);
            }
        }
        for (Batch b : freed) freeSlot(b); // closing, the drain's loop may refuse it: BatchingDrain lets that go
    }

    /** A publish past its deadline before it was written. */
    private BusConnectionException notSent() {
        return new BusConnectionException("publishing to stream '" + stream
                + "': not sent within the publish timeout (SG_PUBLISH_TIMEOUT_MS): nothing was written", null);
    }

    /**
     * The publishes of a refused or parked batch still to be written: not cancelled by their callers, nor past their
     * deadline (added to {@code late}, failed by the caller outside the lock: nothing of them was stored).
     */
    private List<Pending> stillWanted(List<Pending> items, List<Pending> late) {
        List<Pending> live = new ArrayList<>(items.size());
        long now = System.nanoTime();
        for (Pending p : items) {
            if (p.future.isDone() || p.state.get() == Pending.EXPIRED) { // cancelled, or failed at its deadline (expireHeld)
                leave(1);
            } else if (p.deadline - now <= 0) {
                leave(1);
                late.add(p);
            } else {
                live.add(p);
            }
        }
        return live;
    }

    /**
     * A batch of steps ({@link #submitStep}): each written as its own command, in order; each caller learns its own
     * outcome; the batch frees its slot when the last is answered (or at its deadline, by {@link #expire}).
     */
    private void sendSteps(Batch batch) {
        AtomicInteger left = new AtomicInteger(batch.items.size());
        for (Pending p : batch.items) {
            RedisFuture<byte[]> reply;
            try {
                reply = p.step.get();
            } catch (Throwable e) {
                stepDone(batch, left, p, null, e);
                continue;
            }
            reply.whenComplete((id, e) -> stepDone(batch, left, p, id, e));
        }
        if (!oneBatchAtATime) {
            // Written, in order, on the one connection: the next batch may follow at once, as answers were pipelined
            // before they went through the drain. The batch stays tracked for its deadline.
            freeSlot(batch);
        }
    }

    /** Gives the batch's place on the wire back to the drain, once (expiry, the answer, or early for steps). */
    private void freeSlot(Batch b) {
        if (b.slotFreed.compareAndSet(false, true)) {
            drain.sent();
        }
    }

    private void stepDone(Batch batch, AtomicInteger left, Pending p, byte[] id, Throwable error) {
        if (error != null) code.noticed(error);
        if (error == null || !ServerCode.refusedForLibrary(error)) batch.stored.set(true);
        leave(1);
        boolean last = left.decrementAndGet() == 0;
        if (last && settle(batch, batch.stored.get())) {
            freeSlot(batch);
        }
        if (error != null) {
            p.future.completeExceptionally(failure(error));
        } else {
            p.future.complete(new String(id, StandardCharsets.US_ASCII));
        }
    }

    private RedisFuture<byte[]> xadd(Pending p, List<String> opts, boolean once) {
        CommandArgs<String, byte[]> args = xaddArgs(p.payload, p.traceId, opts, p.dedupeKey, p.trace, p.target);
        return once ? writeOnce.dispatch(redis, new Command<>(CommandType.XADD, new ValueOutput<>(Redis.CODEC), args))
                : redis.dispatch(CommandType.XADD, new ValueOutput<>(Redis.CODEC), args);
    }

    /** One entry's XADD arguments after the command's name, whichever connection carries it. */
    private CommandArgs<String, byte[]> xaddArgs(byte[] payload, byte[] traceId, List<String> opts, String dedupeKey,
            byte[][] trace, byte[] target) {
        CommandArgs<String, byte[]> args = new CommandArgs<>(Redis.CODEC).addKey(stream);
        for (String o : opts) {
            args.add(o);
        }
        args.add("*");
        if (target != null) {
            // The outbox layout of the library's section "outbox" (OUTBOX_SCRIPT): one layout whichever way it is written.
            byte[] dk = dedupeKey == null ? NONE : dedupeKey.getBytes(StandardCharsets.UTF_8);
            args.add(TARGET).addValue(target).add(DEDUPE).addValue(dk);
            args.add(PAYLOAD).addValue(payload).add(TRACE_ID).addValue(traceId);
            if (dedupeKey != null) args.add(DEDUPE_KEY).addValue(dk);
        } else {
            args.add(PAYLOAD).addValue(payload).add(TRACE_ID).addValue(traceId);
        }
        if (trace != null) {
            args.add(TRACEPARENT).addValue(trace[0]);
            if (trace[1].length > 0) args.add(TRACESTATE).addValue(trace[1]);
        }
        return args;
    }

    private RedisFuture<List<Object>> eval(List<Pending> batch, List<String> opts, boolean once, boolean functions) {
        return run(batchScript(batch), new String[] {stream}, batchArgs(batch, opts), once, functions);
    }

    /** A span's batch ({@link #SPAN_SCRIPT}): each run of entries to one stream as its count and their fields, written once. */
    private RedisFuture<List<Object>> spanEval(List<Pending> batch, List<String> opts) {
        int runs = 1;
        for (int i = 1; i < batch.size(); i++) {
            if (batch.get(i).owner != batch.get(i - 1).owner) runs++;
        }
        String[] keys = new String[runs];
        byte[][] argv = new byte[1 + opts.size() + runs + 2 * batch.size()][];
        int i = putOptions(argv, 0, opts);
        int run = -1;
        int countAt = -1;
        int count = 0;
        StreamPublisher last = null;
        for (Pending p : batch) {
            if (p.owner != last) {
                if (countAt >= 0) argv[countAt] = Integer.toString(count).getBytes(StandardCharsets.US_ASCII);
                last = p.owner;
                keys[++run] = last.stream;
                countAt = i++;
                count = 0;
            }
            argv[i++] = p.payload;
            argv[i++] = p.traceId;
            count++;
        }
        argv[countAt] = Integer.toString(count).getBytes(StandardCharsets.US_ASCII);
        return run(SPAN_SCRIPT, keys, argv, true, false);
    }

    /** {@link #BATCH_SCRIPT}, or {@link #TRACED_BATCH_SCRIPT} for a batch of traced publishes (a batch is one kind). */
    private static String batchScript(List<Pending> batch) {
        return batch.get(0).trace() != null ? TRACED_BATCH_SCRIPT : BATCH_SCRIPT;
    }

    /** The batch script's arguments: the XADD options {@code opts}, then each publish's fields. */
    private static byte[][] batchArgs(List<Pending> batch, List<String> opts) {
        boolean traced = batch.get(0).trace() != null;
        byte[][] argv = new byte[1 + opts.size() + (traced ? 4 : 2) * batch.size()][];
        int i = putOptions(argv, 0, opts);
        for (Pending p : batch) {
            argv[i++] = p.payload;
            argv[i++] = p.traceId;
            if (traced) {
                argv[i++] = p.trace[0];
                argv[i++] = p.trace[1];
            }
        }
        return argv;
    }

    /** Relay mode: a batch for the outbox, each entry with its target and dedupe key (see {@link #OUTBOX_SCRIPT}). */
    private RedisFuture<List<Object>> outbox(List<Pending> batch, List<String> opts, boolean once, boolean functions) {
        byte[][] argv = new byte[1 + opts.size() + 6 * batch.size()][];
        int i = putOptions(argv, 0, opts);
        for (Pending p : batch) {
            argv[i++] = p.target;
            argv[i++] = p.dedupeKey == null ? NONE : p.dedupeKey.getBytes(StandardCharsets.UTF_8);
            argv[i++] = p.payload;
            argv[i++] = p.traceId;
            argv[i++] = p.trace == null ? NONE : p.trace[0];
            argv[i++] = p.trace == null ? NONE : p.trace[1];
        }
        return run(OUTBOX_SCRIPT, new String[] {stream}, argv, once, functions);
    }

    /** A batch script (or its function, if {@code functions}), written once if {@code once} ({@link WriteOnce}). */
    private RedisFuture<List<Object>> run(String script, String[] keys, byte[][] argv, boolean once, boolean functions) {
        return once ? writeOnce.dispatch(redis, code.multiCommand(script, functions, keys, argv))
                : code.run(redis, script, functions, ScriptOutputType.MULTI, keys, argv);
    }

    /** Writes the XADD options into a script's arguments from {@code i}: their count, then each; returns the next index. */
    private static int putOptions(byte[][] argv, int i, List<String> opts) {
        argv[i++] = Integer.toString(opts.size()).getBytes(StandardCharsets.US_ASCII);
        for (String o : opts) {
            argv[i++] = o.getBytes(StandardCharsets.US_ASCII);
        }
        return i;
    }

    /** Publishes of which some carry a dedupe key: one script checks and records the keys with the XADDs (see {@link Dedupe}). */
    private RedisFuture<List<Object>> evalDedupe(List<Pending> batch, List<String> opts, boolean once, boolean functions) {
        boolean traced = batch.get(0).trace != null;
        int width = traced ? 4 : 2;
        int c = batch.size();
        byte[][] argv = new byte[4 + opts.size() + c * (1 + width)][];
        argv[0] = dedupeWindowMillis;
        argv[1] = traced ? WIDTH_TRACED : WIDTH_PLAIN;
        int i = putOptions(argv, 2, opts);
        argv[i++] = Integer.toString(c).getBytes(StandardCharsets.US_ASCII);
        for (Pending p : batch) {
            argv[i++] = p.dedupeKey == null ? NONE : p.dedupeKey.getBytes(StandardCharsets.UTF_8);
        }
        for (Pending p : batch) {
            argv[i++] = p.payload;
            argv[i++] = p.traceId;
            if (traced) {
                argv[i++] = p.trace[0];
                argv[i++] = p.trace[1];
            }
        }
        return run(Dedupe.PUBLISH_SCRIPT, dedupeKeys, argv, once, functions);
    }

    private void finish(Batch batch, Object result, Throwable error) {
        if (!settle(batch, true)) {
            return; // expired meanwhile: its publishers were told, its slot freed
        }
        // Refused for want of the library: what is sent next goes as scripts (ServerCode), not as one more refused call.
        if (error != null) code.noticed(error);
        // Free the slot and send what queued meanwhile before running callers' completion stages.
        freeSlot(batch);
        List<Pending> items = batch.items;
        if (error != null) {
            failEach(items, c -> c.failure(error));
            return;
        }
        if (result instanceof byte[] id) {
            items.get(0).future.complete(new String(id, StandardCharsets.US_ASCII));
            return;
        }
        List<?> ids = (List<?>) result;
        int[] submitted = items instanceof Grouped g ? g.submitted : null;
        for (int j = 0; j < items.size(); j++) {
            int i = submitted == null ? j : submitted[j];
            Object id = i < ids.size() ? ids.get(i) : null;
            Pending p = items.get(i);
            if (spanning && id instanceof byte[] b && b.length > 0 && b[0] == SPAN_ERROR) {
                String refusal = new String(b, 1, b.length - 1, StandardCharsets.UTF_8);
                p.future.completeExceptionally(counts(p).failure(new io.lettuce.core.RedisCommandExecutionException(refusal)));
            } else if (id instanceof byte[] b) {
                p.future.complete(new String(b, StandardCharsets.US_ASCII));
            } else {
                p.future.completeExceptionally(new IllegalStateException(
                        "publish batch to '" + counts(p).stream + "' returned no id for entry " + i + " of " + items.size()));
            }
        }
    }

    /**
     * The bus exception for a failed batch. A server's error reply is definite; no reply at all (a timeout, or the
     * connection lost after the write) leaves the outcome unknown, except Lettuce's refusal to write on a connection it
     * knows is down ("not connected"), which sent nothing.
     */
    private RuntimeException failure(Throwable error) {
        Throwable e = Failures.unwrap(error);
        String context = "publishing to stream '" + stream + "'";
        if (e instanceof RedisCommandTimeoutException || e instanceof java.util.concurrent.CancellationException) {
            return new PublishOutcomeUnknownException(stream, context + ": written, but Redis did not answer in time: the entry may or may not be stored", e);
        }
        RuntimeException t = Redis.translate(e, context);
        if (t instanceof RedisServerException rse) {
            if ("READONLY".equals(rse.code()) || "MASTERDOWN".equals(rse.code())) notThePrimary.accept(rse.code());
            return t;
        }
        String m = String.valueOf(e.getMessage());
        boolean notSent = e instanceof RedisConnectionException || m.contains("not connected") || m.contains("Currently not connected");
        if (!notSent && t instanceof BusConnectionException) {
            return new PublishOutcomeUnknownException(stream, context + ": the connection was lost after the write: the entry may or may not be stored ("
                    + m + ")", e);
        }
        return t;
    }
}
