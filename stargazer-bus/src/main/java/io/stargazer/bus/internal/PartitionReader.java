package io.stargazer.bus.internal;

import io.lettuce.core.protocol.CommandArgs;
import io.lettuce.core.protocol.CommandType;
import io.stargazer.bus.ConsumerConfig;
import io.stargazer.bus.RedisServerException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import org.slf4j.Logger;

/**
 * One reader for the inbound partitions of one server ({@code EventBus.subscribeInbound} with
 * {@code SG_INBOUND_PARTITIONS} > 1, not on a cluster): each turn reads the new entries of every partition with one
 * {@code XREADGROUP ... STREAMS p1 .. pN > .. >} instead of one blocked reader per partition, so a message costs one
 * partition's share of a read and of a reader's wake-up (bench/profile-notes.md, "6 partitions"). Everything else a
 * reader does stays each partition's own ({@link StreamConsumer}): the pause check, takeover, idle sweep, a lost group's
 * re-creation, the reads of its pending list, lost reads, in-flight permits, handlers and acknowledgements, run one
 * partition after the other on this reader's thread and connection. The partitions' handlers run on one pool of as
 * many threads as their pools of their own had together, each partition with its share ({@link PoolShare}: its own
 * {@code concurrency} at most, its own close), so a thread awake and free takes any partition's next task instead of
 * each share of a read waking a thread in each partition's pool.
 *
 * <p>Threads: the reader, {@code stargazer-reader-<inbound stream>} ({@link ReaderLoop}), on which every partition's
 * reader work runs, as it ran on the partition's own reader thread; the handler pool's, {@code
 * stargazer-handler-<inbound stream>-N} and {@code -watch} ({@link HandlerPool}), on which every partition's handlers
 * run. {@link #leave} and the accessors may be called from any thread. A partition with fewer free in-flight places
 * than a quarter of a batch is left out of a read, and the read
 * then blocks at most {@value #SHORT_BLOCK_MS} ms, so it is read again soon after its handlers free places; with none
 * ready the reader polls, 1 ms doubling to {@value #MAX_POLL_MS} ms.
 *
 * <p>Failures: a lost connection, a permission refused, a server that cannot serve (READONLY, LOADING, ...) are every
 * partition's (each re-reads its pending list, as a reader of its own does). A refusal of one partition's own key or
 * group (WRONGTYPE, NOGROUP) is its alone: it fails, is tried again after its own backoff, and the others read on; for
 * them a shared read it failed ran and delivered nothing. A NOGROUP naming no stream (a blocked read's on Redis 7.0)
 * has each partition in the read ask whether its group was lost under it ({@link StreamConsumer#groupLostUnderIt}).
 */
final class PartitionReader {
    /** The longest a read blocks while a partition waits for a free in-flight place, or has its pending list to read. */
    static final long SHORT_BLOCK_MS = 5;
    /** The longest wait between two looks while no partition has room for a read. */
    static final long MAX_POLL_MS = 10;

    private final String what;
    private final Logger log;
    private final ReaderLoop loop;
    /** The partitions read, in order; a partition that left is removed (by this reader's thread). */
    private final List<StreamConsumer> parts = new CopyOnWriteArrayList<>();
    /** Partitions whose subscription is closing, each with what completes once this reader no longer reads for it. */
    private final Map<StreamConsumer, CompletableFuture<Void>> leaving = new ConcurrentHashMap<>();
    /**
     * The partitions' handler threads, one pool for them all, each partition with its share ({@link PoolShare}); shut
     * down when the last share has terminated.
     */
    private final PoolShare.Shared handlers;
    private volatile boolean started;
    /** The reader's thread was started (by {@link #start}); guarded by {@code this}. */
    private boolean threadStarted;

    // Reader-thread state.
    /** How long the next look waits while no partition has room for a read ({@link #MAX_POLL_MS}). */
    private long poll = 1;
    /** The loop's connection (one for its life), for what a partition let go after a failure gives back. */
    private ReaderConnection conn;
    /** The partition whose own work (upkeep, a read of its pending list) is running, or null. */
    private StreamConsumer current;
    /** The partitions in the shared read on the wire, with the permits each took for it; empty between reads. */
    private final Map<StreamConsumer, Integer> inRead = new HashMap<>();
    /** The partitions the last failure was given to: whose repair ({@link StreamConsumer#readerBody}) counts. */
    private final List<StreamConsumer> failedLast = new ArrayList<>();
    /**
     * Partitions whose own work failed (a refusal of their key or group) while the others were read: when each is tried
     * again ({@code [0]}, ms) and its next backoff ({@code [1]}).
     */
    private final Map<StreamConsumer, long[]> troubled = new HashMap<>();
    /** The last failure was a NOGROUP that named no stream: the next read goes at once and names it. */
    private boolean unnamedGroupLoss;

    /** {@code handlerThreads}: the shared handler pool's size, the sum of the partitions' {@code concurrency}. */
    PartitionReader(Redis redis, String inboundStream, Logger log, int handlerThreads) {
        this.what = "Subscription to the partitions of '" + inboundStream + "'";
        this.log = log;
        this.handlers = new PoolShare.Shared(new HandlerPool(handlerThreads, "stargazer-handler-" + inboundStream));
        this.loop = new ReaderLoop(redis, "stargazer-reader-" + inboundStream, false, what, log, new ReaderLoop.Body() {
            @Override public void turn(ReaderConnection conn) throws InterruptedException { PartitionReader.this.turn(conn); }
            @Override public boolean failed(Throwable e) { return PartitionReader.this.failed(e); }
            @Override public boolean repaired() {
                if (unnamedGroupLoss) return true; // retried at once, as a repair is
                for (StreamConsumer c : failedLast) {
                    if (c.readerBody.repaired()) return true;
                }
                return false;
            }
            @Override public void recovered() {
                for (StreamConsumer c : parts) {
                    if (!troubled.containsKey(c)) c.readerBody.recovered(); // one failing on its own recovers on its own
                }
            }
            @Override public void ending(ReaderConnection conn) { end(conn); }
        });
    }

    /** A partition's share of the handler threads: at most {@code concurrency} of its tasks at once ({@link PoolShare}). */
    PoolShare handlersFor(ConsumerConfig cfg) {
        return handlers.share(cfg.concurrency(), "stargazer-handler-" + cfg.stream());
    }

    /** Adds a partition; before {@link #start} only. */
    void add(StreamConsumer c) {
        if (started) throw new IllegalStateException("add after start");
        parts.add(c);
    }

    /** Starts reading, once every partition has started (its group made, its position known). */
    synchronized void start() {
        started = true;
        for (Map.Entry<StreamConsumer, CompletableFuture<Void>> l : leaving.entrySet()) {
            parts.remove(l.getKey()); // closed before the reader started: never read
            l.getValue().complete(null);
        }
        if (parts.isEmpty()) return;
        loop.start(); // under the lock: a leave sees the thread started, or the partition out of the reader's list
        threadStarted = true;
    }

    // ---- the turn (reader thread) ---------------------------------------------------------------------------

    private void turn(ReaderConnection conn) throws InterruptedException {
        this.conn = conn;
        letGo(conn); // before anything that can fail: a partition closing while Redis is away is let go all the same
        conn.sync(); // opens the connection when there is none
        long now = System.nanoTime() / 1_000_000;
        long block = Long.MAX_VALUE;
        long pausedWait = Long.MAX_VALUE;
        boolean waitingForPlaces = false;
        boolean readHistory = false;
        List<StreamConsumer> ready = new ArrayList<>(parts.size());
        int count = Integer.MAX_VALUE;
        for (StreamConsumer c : parts) {
            if (leaving.containsKey(c)) continue; // let go at the next turn
            long[] trouble = troubled.get(c);
            if (trouble != null && now < trouble[0]) {
                block = Math.min(block, trouble[0] - now); // tried again when its backoff ends
                continue;
            }
            current = c;
            int n = 0;
            try {
                if (c.upkeep(conn, now)) {
                    recovered(c); // its own part of the turn went through: PAUSED, not RECONNECTING
                    pausedWait = Math.min(pausedWait, c.pauseWait(now));
                    continue;
                }
                n = c.takePermits(c.config().batchSize());
                if (n < leastShare(c)) {
                    // Too few free places for a share of the read (COUNT is one for all): waits until its handlers
                    // free more, rather than cut every partition's batch down to its few.
                    c.givePermits(n);
                    waitingForPlaces = true;
                    continue;
                }
                if (c.readingHistory()) {
                    c.readHistory(conn, n); // its next page, or its first read of new entries, comes at the next turn
                    readHistory = true;
                    recovered(c);
                    continue;
                }
            } catch (RedisServerException refused) {
                // This partition's own refusal (its stream's key, its group): its own failure, the others read on.
                if (refused instanceof RedisServerException.AccessDenied || Failures.TRANSIENT_CODES.contains(refused.code())) {
                    throw refused; // the server's, not this partition's: every partition's failure
                }
                partitionFailed(c, refused);
                long[] next = troubled.get(c);
                if (next != null) block = Math.min(block, Math.max(1, next[0] - now));
                continue;
            }
            ready.add(c);
            inRead.put(c, n);
            count = Math.min(count, n);
            block = Math.min(block, c.blockMillis(now));
        }
        current = null;
        if (ready.isEmpty()) {
            // Nothing to read now: wait for a free in-flight place (polled; a reader of its own waits on its permits),
            // or, all paused, for the next pause check.
            if (readHistory) return;
            long idle = Math.min(pausedWait, block); // a paused partition's next check, a failed one's next try
            if (waitingForPlaces || idle == Long.MAX_VALUE) {
                Thread.sleep(poll);
                poll = Math.min(poll * 2, MAX_POLL_MS);
            } else {
                Thread.sleep(Math.max(1, Math.min(100, idle)));
            }
            return;
        }
        if (waitingForPlaces || readHistory) block = Math.min(block, SHORT_BLOCK_MS);
        block = Math.min(block, pausedWait); // a paused partition's resume is seen at its next check
        // One COUNT for every stream of the read: the smallest share any partition has room for, the rest given back.
        for (StreamConsumer c : ready) {
            int n = inRead.get(c);
            if (n > count) {
                c.givePermits(n - count);
                inRead.put(c, count);
            }
        }
        poll = 1;
        Map<String, List<RawEntry>> read = read(conn, ready, count, Math.max(1, block));
        // Each partition's share is handed out, and its permits settled, whatever another's hand-out throws.
        RuntimeException first = null;
        for (StreamConsumer c : ready) {
            inRead.remove(c);
            try {
                c.newReadAnswered(conn, read.getOrDefault(c.config().stream(), List.of()), count, false);
                recovered(c);
            } catch (RuntimeException e) {
                if (first == null) first = e;
            }
        }
        if (first != null) throw first;
    }

    /**
     * The fewest free in-flight places a partition joins a read with: a quarter of its batch (or of its
     * {@code maxInFlight}, when that is smaller), at least one.
     */
    private static int leastShare(StreamConsumer c) {
        return Math.max(1, Math.min(c.config().batchSize(), c.config().maxInFlight()) / 4);
    }

    /**
     * A partition's own work was refused: its failure alone (it reads its pending list again, RECONNECTING until its
     * next good turn), logged once per episode; the read of this turn goes on without it.
     */
    private void partitionFailed(StreamConsumer c, RedisServerException e) {
        if (!c.readerBody.failed(e)) return;
        long[] t = troubled.get(c);
        long now = System.nanoTime() / 1_000_000;
        if (t == null) {
            log.atWarn().log(what + ": '" + c.config().stream() + "' failed; reading the others, trying it again: " + e.getMessage());
            troubled.put(c, new long[] {now + 100, 200});
        } else {
            // As a reader of its own backs off (ReaderLoop): 100 ms doubling to a second; a repaired group at once (below).
            t[0] = now + t[1];
            t[1] = Math.min(t[1] * 2, ReaderLoop.MAX_BACKOFF_MS);
        }
        if (c.readerBody.repaired()) troubled.get(c)[0] = now;
    }

    /** A partition that failed on its own has had a good turn. */
    private void recovered(StreamConsumer c) {
        if (!troubled.isEmpty() && troubled.remove(c) != null) {
            c.readerBody.recovered();
            log.atInfo().log(what + ": '" + c.config().stream() + "' recovered");
        }
    }

    /** The shared read: {@code XREADGROUP GROUP g c COUNT count BLOCK block STREAMS k1 .. kn > .. >}, by stream. */
    private Map<String, List<RawEntry>> read(ReaderConnection conn, List<StreamConsumer> ready, int count, long block) {
        StreamConsumer first = ready.get(0);
        CommandArgs<byte[], byte[]> args = new CommandArgs<>(Redis.BYTES).add("GROUP")
                .add(first.config().group().getBytes(StandardCharsets.UTF_8))
                .add(first.config().consumerName().getBytes(StandardCharsets.UTF_8))
                .add("COUNT").add(count).add("BLOCK").add(block).add("STREAMS");
        for (StreamConsumer c : ready) args.addKey(c.streamKey());
        for (int i = 0; i < ready.size(); i++) args.add(">");
        for (StreamConsumer c : ready) c.newReadSent();
        try {
            return RawEntry.parseReadByStream(conn.read(CommandType.XREADGROUP, args, block));
        } catch (RuntimeException e) {
            throw Redis.translate(e, "XREADGROUP on the partitions of group '" + first.config().group() + "'");
        }
    }

    // ---- failures (reader thread) ---------------------------------------------------------------------------

    /**
     * A failed turn, given to the partitions it concerns (class comment). The permits of a read on the wire come back
     * first. False, the reader ending, only when every partition gave up (a refused permission).
     */
    private boolean failed(Throwable e) {
        boolean retry = failedTurn(e);
        letGoNow(); // the partitions that asked to leave go now, not after the backoff
        return retry;
    }

    private boolean failedTurn(Throwable e) {
        failedLast.clear();
        unnamedGroupLoss = false;
        StreamConsumer owner = current;
        current = null;
        if (owner == null && StreamConsumer.isNoGroup(e)) owner = namedIn(e);
        if (owner == null && !inRead.isEmpty() && (StreamConsumer.isNoGroup(e) || streamDeleted(e))) {
            // A blocked read whose group was destroyed (Redis 7.0: "the consumer group this client was blocked on no
            // longer exists") or whose stream was deleted ("UNBLOCKED the stream key no longer exists") names no
            // stream. The read delivered nothing; each partition in it asks whether its own group was lost (another
            // worker may have made it again already, so its presence alone does not say), and only those that were
            // count the loss: counted by the others, entries of theirs pending nowhere would run a second time.
            Map<StreamConsumer, Integer> read = new HashMap<>(inRead);
            inRead.clear();
            for (Map.Entry<StreamConsumer, Integer> r : read.entrySet()) {
                StreamConsumer c = r.getKey();
                c.newReadRefused(r.getValue());
                boolean lost;
                try {
                    lost = c.groupLostUnderIt();
                } catch (RuntimeException unknown) {
                    lost = true; // Redis cannot say: taken as lost, as a reader of its own takes this reply
                }
                if (lost) {
                    failedLast.add(c);
                    c.readerBody.failed(new RedisServerException.NoGroup("NOGROUP",
                            "NOGROUP group '" + c.config().group() + "' of '" + c.config().stream() + "' was lost under a blocked read", e));
                }
            }
            unnamedGroupLoss = true;
            return true;
        }
        for (Map.Entry<StreamConsumer, Integer> r : inRead.entrySet()) {
            if (owner != null && r.getKey() != owner) r.getKey().newReadRefused(r.getValue()); // ran, delivered nothing
            else r.getKey().givePermits(r.getValue());
        }
        inRead.clear();
        if (owner != null && StreamConsumer.isNoGroup(e)) {
            failedLast.add(owner);
            return owner.readerBody.failed(e);
        }
        boolean retry = false;
        for (StreamConsumer c : parts) {
            failedLast.add(c);
            retry |= c.readerBody.failed(e);
        }
        return retry;
    }

    /** {@code UNBLOCKED the stream key no longer exists}: a blocked read's stream was deleted (or changed type). */
    private static boolean streamDeleted(Throwable e) {
        return e instanceof RedisServerException rse && "UNBLOCKED".equals(rse.code());
    }

    /** The partition a NOGROUP reply names ({@code No such key '<stream>' or consumer group ...}), or null. */
    private StreamConsumer namedIn(Throwable e) {
        String m = e.getMessage();
        if (m == null) return null;
        for (StreamConsumer c : parts) {
            if (m.contains("'" + c.config().stream() + "'")) return c;
        }
        return null;
    }

    // ---- leaving (any thread) and the end (reader thread) ---------------------------------------------------

    /**
     * The subscription of {@code c} is closing: this reader stops reading for it and runs its end (what a lost read of it
     * delivered is given back), waiting up to {@code joinMillis}. The last partition to leave stops the reader.
     */
    void leave(StreamConsumer c, long joinMillis) throws InterruptedException {
        CompletableFuture<Void> done = leaving.computeIfAbsent(c, k -> new CompletableFuture<>());
        boolean last;
        synchronized (this) {
            if (!threadStarted) {
                parts.remove(c); // start() will not read it (or started no thread: every partition had left)
                done.complete(null);
                return;
            }
            last = leaving.keySet().containsAll(parts);
        }
        if (loop.ended()) {
            done.complete(null); // ended (its end let every partition go), or never started: nothing was read
            return;
        }
        if (last) {
            loop.stop(joinMillis); // its ending lets every partition go
            return;
        }
        loop.wake(); // a blocked read ends now: the next turn lets it go
        // As a reader of its own whose read does not end: after joinMillis the subscription's close goes on.
        await(done, System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(joinMillis));
    }

    /** Waits for {@code done} until {@code deadlineNanos}, or until the reader has ended (its end lets every partition go). */
    private void await(CompletableFuture<Void> done, long deadlineNanos) throws InterruptedException {
        long left;
        while (!done.isDone() && !loop.ended() && (left = deadlineNanos - System.nanoTime()) > 0) {
            try {
                done.get(Math.min(left, TimeUnit.MILLISECONDS.toNanos(50)), TimeUnit.NANOSECONDS);
            } catch (ExecutionException | TimeoutException e) {
                // looked at again
            }
        }
    }

    /** Whether this reader no longer reads for {@code c} (it left, or the reader ended). */
    boolean left(StreamConsumer c) {
        CompletableFuture<Void> done = leaving.get(c);
        return (done != null && done.isDone()) || loop.ended();
    }

    /** Waits until {@link #left} or {@code deadlineNanos}. */
    void awaitLeft(StreamConsumer c, long deadlineNanos) throws InterruptedException {
        CompletableFuture<Void> done = leaving.get(c);
        if (done != null) await(done, deadlineNanos);
    }

    /** After a failed turn (its connection dropped): the partitions that asked to leave go now, not after the backoff. */
    private void letGoNow() {
        if (conn != null) letGo(conn);
    }

    /** At the start of a turn: the partitions that asked to leave get their end, and are read no more. */
    private void letGo(ReaderConnection conn) {
        for (Map.Entry<StreamConsumer, CompletableFuture<Void>> l : leaving.entrySet()) {
            if (l.getValue().isDone()) continue;
            troubled.remove(l.getKey());
            if (parts.remove(l.getKey())) endOne(l.getKey(), conn);
            l.getValue().complete(null);
        }
    }

    /** The reader ends: every partition still read gets its end; every partition waiting to leave is let go. */
    private void end(ReaderConnection conn) {
        for (StreamConsumer c : parts) endOne(c, conn);
        for (CompletableFuture<Void> done : leaving.values()) done.complete(null);
    }

    private void endOne(StreamConsumer c, ReaderConnection conn) {
        try {
            c.readerBody.ending(conn);
        } catch (RuntimeException e) {
            log.atDebug().log(what + ": '" + c.config().stream() + "' could not finish its last read: " + e.getMessage());
        }
    }
}
