package io.stargazer.bus.internal;

import io.lettuce.core.XGroupCreateArgs;
import io.lettuce.core.XReadArgs;
import io.lettuce.core.cluster.api.sync.RedisClusterCommands;
import io.lettuce.core.output.NestedMultiOutput;
import io.lettuce.core.protocol.AsyncCommand;
import io.lettuce.core.protocol.CommandArgs;
import io.lettuce.core.protocol.CommandType;
import io.stargazer.bus.AsyncMessageHandler;
import io.stargazer.bus.ConsumerConfig;
import io.stargazer.bus.Delivery;
import io.stargazer.bus.Envelope;
import io.stargazer.bus.GroupInfo;
import io.stargazer.bus.RedisServerException;
import io.stargazer.bus.RetryOrder;
import io.stargazer.bus.StargazerException;
import io.stargazer.bus.Subscription;
import io.stargazer.bus.wire.MalformedEntryException;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import java.util.concurrent.atomic.LongAdder;
import java.util.function.Consumer;
import java.util.function.Supplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One subscription: reads one stream with one group and hands each entry to the handler, in per-channel order.
 * Its file is over 400 lines because the reader's turn and the settling of deliveries share the in-flight state;
 * every other part has a class of its own ({@link ReaderLoop}, {@link Lanes}, {@link Ownership},
 * {@link DeadLetters}, {@link IdleConsumerSweep}, {@link AckBatcher}, {@link Failures}, {@link LostReads}).
 *
 * <p>Threads: the reader ({@link ReaderLoop}, its own connection; or, for the inbound partitions of one server, the
 * {@link PartitionReader} they share, which runs the same parts of the turn on its thread) reads, takes over idle
 * entries and keeps this consumer's entries its own; {@code concurrency} handler threads run the handler, one channel at a time through
 * {@link Lanes}; the bus's timer thread fires retry timers; Redis I/O threads complete acknowledgements and
 * dead letters (they only queue work, never block).
 *
 * <p>The timer thread refreshes the idle time of every entry this consumer holds every quarter of the claim time (so
 * a slow handler is never mistaken for a dead one: see {@link Ownership}). The reader's turn, in order: re-read this
 * consumer's own pending entries when due (at start and after any error, so nothing delivered but unanswered is
 * forgotten; the takeover waits for it); take over entries other consumers left idle past the claim time (XAUTOCLAIM);
 * then read new entries, blocking at most a quarter of the claim time.
 * Reading waits while {@code maxInFlight} deliveries are unsettled, so the heap stays bounded. Every turn, at most
 * every {@value #PAUSE_CHECK_MS} ms, it reads the group's pause flag ({@code EventBus.pause}, a key in the stream's
 * slot); while it is set the turn keeps what it holds (the refresh) and takes nothing (no takeover, no read; retries
 * wait), and reads block no longer than until the next check, so a pause or resume is seen within a second.
 *
 * <p>A failed handling is tried again on this consumer after a backoff. With {@link RetryOrder#ORDERED} the entry
 * keeps its channel's lane meanwhile, so the channel's later entries wait; with UNORDERED they go ahead. A failure of
 * Redis itself ({@link Failures#isInfrastructure}) does not count as a delivery and never dead-letters; the handler's
 * own failures do, and the last one is the dead letter's {@code error}.
 *
 * <p>Failures never end the loop silently: NOGROUP re-creates the group where this consumer knows it had reached,
 * a lost connection is retried with backoff (state RECONNECTING), and only a refused permission marks it FAILED.
 */
final class StreamConsumer implements Subscription {
    static final Logger log = LoggerFactory.getLogger(Subscription.class);
    private static final int CLAIM_COUNT = 100;
    /** How often the reader reads the group's pause flag. */
    static final long PAUSE_CHECK_MS = 500;

    private final RedisEventBus bus;
    private final ConsumerConfig cfg;
    private final AsyncMessageHandler handler;
    private final Consumer<Subscription> onClosed;
    /** An entry as the handler sees it: {@link RawEntry#decode} (wire format), or the relay's reading of an outbox entry. */
    private final java.util.function.Function<RawEntry, Envelope> decoder;
    private final byte[] streamKey;
    private final byte[] groupName;
    private final byte[] consumerName;
    private final byte[] pauseKey;
    private final AckBatcher acks;
    private final DeadLetters deadLetters;
    private final Ownership ownership;
    private final IdleConsumerSweep idleSweep;
    private final ExecutorService pool;
    private final Lanes lanes;
    private final Semaphore permits;
    /** This consumer's own reader; null when it reads through {@link #shared}. */
    private final ReaderLoop loop;
    /** The reader shared with the other inbound partitions of its server, or null ({@link #loop}). */
    private final PartitionReader shared;
    /** What the reader runs for this consumer: all of it with a reader of its own; with a shared one, all but {@code turn}. */
    final ReaderLoop.Body readerBody;
    /** How often the timer refreshes what this consumer holds, and the longest a read may block: a quarter of the claim time. */
    private final long heartbeatMillis;
    private volatile ScheduledFuture<?> heartbeatTask;
    /** A refresh is on the wire: the next one waits for it rather than pile up behind a slow link. */
    private final java.util.concurrent.atomic.AtomicBoolean refreshing = new java.util.concurrent.atomic.AtomicBoolean();

    /** Entries handed out and not finally settled, by id: what a history read must not hand out twice. */
    private final ConcurrentHashMap<String, Held> inFlight = new ConcurrentHashMap<>();
    /**
     * Entries of a channel that left {@link #inFlight} (acknowledged or answered by their handler) while that handler
     * still runs: the channel's next entry waits for the attempt to end all the same (either retry order), so a handler
     * that acks and then never returns holds its channel, and the slow-handler WARN must see it here. At most one per
     * channel whose lane waits; entries without a channel are not kept (nothing waits for them).
     */
    private final ConcurrentHashMap<String, Held> settledRunning = new ConcurrentHashMap<>();

    private final AtomicReference<State> state = new AtomicReference<>(State.STARTING);
    private volatile Throwable failure;
    private volatile boolean stopping;
    /** Set by close() just before it interrupts handlers still running after the close timeout: their failures are given back. */
    private volatile boolean interrupting;
    /** Set by close() once its handlers are done: the heartbeat stops refreshing. */
    private volatile boolean beatStopped;
    /** How long close() waits, after interrupting its handlers, for them to give their entries back. */
    static final Duration INTERRUPT_GRACE = Duration.ofSeconds(2);
    /** Handler invocations not yet settled, asynchronous ones included: what close() waits for. */
    private final AtomicInteger running = new AtomicInteger();
    /**
     * Give-backs and dead letters on the wire: close() waits for them, and the bus's close for those settled after this
     * subscription closed, so their connection is not closed under them.
     */
    private final java.util.Set<CompletableFuture<?>> settling = ConcurrentHashMap.newKeySet();
    /** The newest entry id this consumer knows the group has delivered: where a lost group is re-created. */
    private final AtomicReference<String> lastDelivered = new AtomicReference<>();
    /** The group's pause flag as last read (reader thread writes; the timer thread holds retries while it is set). */
    private volatile boolean paused;

    private final LongAdder delivered = new LongAdder();
    private final LongAdder acknowledged = new LongAdder();
    private final LongAdder redelivered = new LongAdder();
    private final LongAdder deadLettered = new LongAdder();
    private final LongAdder failed = new LongAdder();
    /** Handler failures are logged at WARN at most once a second per subscription. */
    private final LogLimit failureWarnings = new LogLimit(Duration.ofSeconds(1));

    // Reader-thread state.
    private long nextClaimAt;
    private long nextCleanupAt;
    private long nextPauseCheckAt;
    private boolean history = true;
    private String historyCursor = "0";
    /** Reads whose reply never came, and the delivery counts of what they delivered put right. */
    private final LostReads lost;

    /**
     * {@code decoder}: the envelope of an entry (its channel decides the lane), or {@link MalformedEntryException} to
     * dead-letter it at once with that reason.
     */
    StreamConsumer(RedisEventBus bus, ConsumerConfig cfg, AsyncMessageHandler handler, Consumer<Subscription> onClosed,
            java.util.function.Function<RawEntry, Envelope> decoder) {
        this(bus, cfg, handler, onClosed, decoder, null);
    }

    /**
     * {@code shared}: the reader this consumer's reads go through, with the other partitions of its server
     * ({@link PartitionReader}); null for a reader of its own.
     */
    StreamConsumer(RedisEventBus bus, ConsumerConfig cfg, AsyncMessageHandler handler, Consumer<Subscription> onClosed,
            java.util.function.Function<RawEntry, Envelope> decoder, PartitionReader shared) {
        this.bus = bus;
        this.decoder = decoder;
        this.cfg = cfg;
        this.handler = handler;
        this.onClosed = onClosed;
        this.streamKey = utf8(cfg.stream());
        this.groupName = utf8(cfg.group());
        this.consumerName = utf8(cfg.consumerName());
        this.pauseKey = utf8(Dedupe.pauseKeyName(cfg.stream(), cfg.group()));
        this.acks = new AckBatcher(bus.redis().sharedAsync(), cfg.stream(), cfg.group());
        this.deadLetters = new DeadLetters(cfg.stream(), cfg.group(), cfg.deadLetterStream(),
                bus.relaying().outboxFor(cfg.deadLetterStream(), null), bus.redis().sharedAsync(), bus.guard(), acks, bus.config().clock(),
                bus.redis().code(), bus.config().dedupeWindow(), bus.redis().cluster());
        this.ownership = new Ownership(cfg.group(), cfg.consumerName(), bus.redis().code());
        this.idleSweep = new IdleConsumerSweep(bus, cfg.stream(), cfg.group(), cfg.consumerName(), cfg.consumerIdleLimit());
        this.pool = shared != null ? shared.handlersFor(cfg) : new HandlerPool(cfg.concurrency(), "stargazer-handler-" + cfg.stream());
        this.lanes = new Lanes(pool);
        this.permits = new Semaphore(cfg.maxInFlight());
        this.heartbeatMillis = Math.max(10, cfg.claimIdle().toMillis() / 4);
        this.lost = new LostReads(new LostReads.Consumer() {
            @Override public boolean holds(String id) { return inFlight.containsKey(id) || acks.acknowledging(id); }
            @Override public boolean setCount(ReaderConnection conn, String id, long minIdleMillis, long count) {
                return StreamConsumer.this.setCount(conn, id, minIdleMillis, count);
            }
            @Override public List<?> pendingAfter(ReaderConnection conn, String afterId, int count) {
                return StreamConsumer.this.pendingAfter(conn, afterId, count);
            }
        }, cfg.stream(), cfg.group(), cfg.batchSize(), log);
        String what = "Subscription to '" + cfg.stream() + "' (group '" + cfg.group() + "', consumer '" + cfg.consumerName() + "')";
        this.readerBody = new ReaderLoop.Body() {
            @Override public void turn(ReaderConnection conn) throws InterruptedException { StreamConsumer.this.turn(conn); }
            @Override public boolean failed(Throwable e) { return StreamConsumer.this.readerFailed(e); }
            @Override public boolean repaired() { return groupRecreated; }
            @Override public void recovered() { state.compareAndSet(State.RECONNECTING, paused ? State.PAUSED : State.RUNNING); }
            @Override public void ending(ReaderConnection conn) {
                try {
                    if (ahead != null) takeAhead(conn, false);
                } finally {
                    // On the wire still, or lost and not yet read again from the pending list (closed while backing off).
                    if (lost.mayHaveLostAtEnd()) {
                        conn.drop(); // silent: the give-back goes on a new connection
                        lost.giveBackAtEnd(conn);
                    }
                }
            }
        };
        this.shared = shared;
        this.loop = shared != null ? null : new ReaderLoop(bus.redis(), "stargazer-reader-" + cfg.stream(), false, what, log, readerBody);
    }

    void start() {
        // Fail fast on a group that cannot be made (wrong type, no permission) before any thread starts.
        bus.ensureGroup(cfg.stream(), cfg.group());
        // A group at 0-0 has delivered nothing, which is a position too: lost, it is re-created at the stream's start,
        // not at its end, so entries written while it was missing (a relay group on an outbox after an empty restart,
        // the gateway's held publishes) are not skipped.
        knowGroupPosition(bus.groups(cfg.stream()));
        String at = lastDelivered.get();
        lost.startAt(at); // what the group delivered before this consumer started is not its lost read
        if (loop != null) loop.start(); // a shared reader starts once all its partitions have
        // On the timer thread, not in the reader's turn: a turn can take several round trips (a takeover, a read of the
        // pending list), and behind a slow link those would add up past the claim time.
        heartbeatTask = bus.timers().scheduleWithFixedDelay(this::heartbeat, heartbeatMillis, heartbeatMillis, TimeUnit.MILLISECONDS);
    }

    // ---- the reader's turn (reader thread) -------------------------------------------------------------------

    private void turn(ReaderConnection conn) throws InterruptedException {
        conn.sync(); // opens the connection when there is none
        long now = System.nanoTime() / 1_000_000;
        // A read sent ahead at the end of the last turn is this turn's read; its reply comes before anything below. It
        // sends the next one only when nothing else is due in this turn: no command of this turn may follow a read
        // sent ahead, whose entries are not held yet (a failure would drop them, a lost group would be re-created
        // behind them, and a long turn would leave them unrefreshed past the claim time).
        boolean tookAhead = ahead != null;
        if (tookAhead) {
            takeAhead(conn, now < nextPauseCheckAt && now < nextClaimAt && now < nextCleanupAt);
        }
        if (upkeep(conn, now)) {
            Thread.sleep(pauseWait(now));
            return;
        }
        if (tookAhead) {
            return;
        }
        int n = acquire(cfg.batchSize());
        if (n == 0) {
            return;
        }
        if (history) {
            readHistory(conn, n);
            return;
        }
        List<RawEntry> entries;
        try {
            newReadSent();
            entries = read(conn, ">", n, blockMillis(now));
        } catch (RuntimeException e) {
            // Nothing was handed out: give the permits back, or a long outage would use them all up and leave the
            // reader unable to read after it reconnects. What was read stays pending in Redis, and the history read
            // that follows a failure (readerFailed) finds it again.
            permits.release(n);
            throw e;
        }
        newReadAnswered(conn, entries, n, true);
    }

    /**
     * The part of a turn before its read: the pause check, the takeover, the idle-consumer sweep and a lost group's
     * re-creation, each when due. True while the group is paused (the turn takes nothing).
     */
    boolean upkeep(ReaderConnection conn, long now) {
        boolean pausedNow = checkPause(conn, now);
        // Not while its own pending list is to be read (at start, after a failure): the takeover takes this consumer's own
        // idle entries too, and after an outage longer than the claim time it took those a lost read had delivered,
        // counting a second delivery that the read of the pending list puts back (LostReads): with one delivery allowed
        // they were dead-lettered unrun (LostReadReplyIT). Read first, their idle time is reset and the takeover leaves them.
        if (!pausedNow && !history && now >= nextClaimAt) {
            nextClaimAt = now + Math.max(50, cfg.claimIdle().toMillis() / 2);
            learnGroupPosition(conn);
            if (claimIdle(conn)) {
                readHistoryAgain();
            }
        }
        if (now >= nextCleanupAt) {
            nextCleanupAt = now + idleSweep.intervalMillis();
            idleSweep.run();
        }
        if (ahead == null && groupMissing.getAndSet(false) && !recreateGroup()) {
            groupMissing.set(true); // Redis could not say where to re-create it: asked again at the next turn
        }
        return pausedNow;
    }

    /** How long a paused reader waits before its next turn: until the next pause check, at most 100 ms. */
    long pauseWait(long now) {
        return Math.max(1, Math.min(100, nextPauseCheckAt - now));
    }

    /** Whether the next read is of this consumer's own pending list (at start, after a failure or a takeover). */
    boolean readingHistory() {
        return history;
    }

    /** One page of this consumer's own pending list, {@code n} permits taken for it, handed out. */
    void readHistory(ReaderConnection conn, int n) {
        // Entries whose acknowledgement failed while Redis was away are in that list: their handlers ran, so they
        // are acknowledged now, and skipped by the read (acknowledging) rather than run a second time.
        acks.resendFailed();
        List<RawEntry> entries;
        Map<String, Long> counts = null;
        try {
            readNumber = reads.incrementAndGet();
            entries = read(conn, historyCursor, n, -1);
            if (!entries.isEmpty()) {
                counts = pendingCounts(conn, entries);
                restoreCounts(conn, entries);
                lost.uncount(conn, entries, counts);
            }
        } catch (RuntimeException e) {
            permits.release(n); // as a read of new entries does
            throw e;
        }
        permits.release(n - entries.size());
        if (entries.isEmpty()) {
            history = false;
            lost.pendingListRead();
        } else {
            historyCursor = entries.get(entries.size() - 1).id();
        }
        // What a read of its own pending list returns may have been acknowledged while the reply was on its way: such
        // entries are checked before they run, as taken-over ones are.
        handOut(entries, counts, true, readNumber, System.nanoTime());
        state.compareAndSet(State.STARTING, State.RUNNING);
    }

    /** A read of new entries is about to go on the wire: numbered, and known to be on it (LostReads). */
    void newReadSent() {
        readNumber = reads.incrementAndGet();
        readSentAt = System.nanoTime();
        lost.newReadSent();
    }

    /**
     * When the read of new entries now on the wire ({@link #readNumber}) was sent: what it delivers was made idle in
     * Redis no earlier ({@link Held#keptSince}). The reader thread's, as {@link #readNumber} is.
     */
    private long readSentAt;

    /**
     * The reply of the read of new entries ({@code n} permits taken for it): the permits it did not use come back, and
     * its entries are handed out. {@code mayReadAhead}: a full batch sends the next read ahead (a reader of its own).
     */
    void newReadAnswered(ReaderConnection conn, List<RawEntry> entries, int n, boolean mayReadAhead) {
        lost.newReadAnswered(entries.isEmpty() ? null : entries.get(entries.size() - 1).id());
        permits.release(n - entries.size());
        if (!entries.isEmpty()) {
            lastDelivered.accumulateAndGet(entries.get(entries.size() - 1).id(), StreamIds::max);
        }
        long readAt = readNumber;
        long sentAt = readSentAt;
        if (mayReadAhead && entries.size() == n) {
            readAhead(conn);
        }
        handOut(entries, null, false, readAt, sentAt);
        state.compareAndSet(State.STARTING, State.RUNNING);
    }

    /** A shared read of new entries this consumer was in was refused (another partition's NOGROUP): it ran and delivered nothing here. */
    void newReadRefused(int n) {
        lost.newReadAnswered(null);
        permits.release(n);
    }

    /**
     * After a blocked read met a NOGROUP (or UNBLOCKED) naming no stream: whether this consumer's group on its stream was
     * lost under it: the group or the stream is gone, or this consumer holds entries and is not among the group's
     * consumers (made again since, by another worker: a consumer is added by its first read). Throws when Redis cannot say.
     */
    boolean groupLostUnderIt() {
        List<Object> consumers;
        try {
            consumers = bus.redis().sharedSync().xinfoConsumers(cfg.stream(), cfg.group());
        } catch (RuntimeException e) {
            StargazerException t = Redis.translate(e, "XINFO CONSUMERS");
            if (t instanceof RedisServerException.NoGroup || t instanceof RedisServerException rse && RedisEventBus.noSuchKey(rse)) return true;
            throw t;
        }
        for (Object c : consumers) {
            if (c instanceof List<?> row && cfg.consumerName().equals(Replies.text(Replies.pairs(row).get("name")))) return false;
        }
        // Not among them, and the group is there. Holding nothing, there is nothing a loss could strand: its name may
        // only have been swept (another worker's IdleConsumerSweep) on a partition quiet past the idle limit, a blocked
        // read not counting as activity.
        return !inFlight.isEmpty() || !acks.idle();
    }

    /** Up to {@code want} in-flight permits, as many as are free now (none: 0); for a shared reader, which must not wait on one partition. */
    int takePermits(int want) {
        // At once, not one by one: a read takes up to a batch (256 by default) of them, and a shared reader takes them
        // for each partition in each turn (a CAS each was about a twentieth of its thread's samples: bench/profile-notes.md).
        while (true) {
            int n = Math.min(want, permits.availablePermits());
            if (n <= 0) return 0;
            if (permits.tryAcquire(n)) return n;
        }
    }

    void givePermits(int n) {
        permits.release(n);
    }

    ConsumerConfig config() {
        return cfg;
    }

    byte[] streamKey() {
        return streamKey;
    }

    // ---- read-ahead (reader thread) ---------------------------------------------------------------------------

    /**
     * The next read of new entries, on the wire while the last full batch is handed out; null when none is. A full
     * batch says there is a backlog: the server reads the next batch and Lettuce parses its reply while this thread
     * decodes and dispatches the last one, so a batch costs the longer of the two, not their sum (one consumer of a
     * backlog, ProfileMain consume: bench/profile-notes.md). Sent without BLOCK, so the commands of the next turn on
     * this connection (pause check, takeover) wait behind it for no longer than a read. It holds in-flight permits like
     * any read, taken only if free: the in-flight bound stays as it is. Its entries are handed out after the batch before
     * them, on this thread, so a channel's order stays as it is.
     */
    private AsyncCommand<byte[], byte[], List<Object>> ahead;
    /** The permits {@link #ahead} holds. */
    private int aheadPermits;
    /** {@link #ahead}'s number among the reads ({@link #reads}): what its entries are handed out with. */
    private long aheadNumber;
    /** When {@link #ahead} was sent ({@link #readSentAt}). */
    private long aheadSentAt;

    /** Sends the next read of new entries ahead, when in-flight places are free and nothing else is due first. */
    private void readAhead(ReaderConnection conn) {
        if (stopping || paused || history || groupMissing.get()) {
            return; // a history read (after a takeover or a failure) or the group's re-creation goes first
        }
        int m = takePermits(cfg.batchSize());
        if (m == 0) {
            return;
        }
        long number = reads.incrementAndGet();
        long sentAt = System.nanoTime();
        try {
            ahead = conn.send(CommandType.XREADGROUP, readArgs(">", m, -1), 0);
            lost.newReadSent();
        } catch (RuntimeException e) {
            permits.release(m);
            return; // the next turn reads as usual, and meets the failure if it lasts
        }
        aheadPermits = m;
        aheadNumber = number;
        aheadSentAt = sentAt;
    }

    /**
     * Takes the reply of the read sent ahead and hands its entries out, sending the next one first when this batch is
     * full too. A failure gives the permits back and is the turn's failure: what the read took stays pending, and the
     * history read after a failure finds it.
     */
    private void takeAhead(ReaderConnection conn, boolean mayChain) {
        AsyncCommand<byte[], byte[], List<Object>> cmd = ahead;
        int n = aheadPermits;
        long readAt = aheadNumber;
        long sentAt = aheadSentAt;
        ahead = null;
        List<RawEntry> entries;
        try {
            entries = RawEntry.parseRead(conn.await(cmd));
        } catch (RuntimeException e) {
            permits.release(n);
            throw readFailed(e);
        }
        lost.newReadAnswered(entries.isEmpty() ? null : entries.get(entries.size() - 1).id());
        permits.release(n - entries.size());
        if (!entries.isEmpty()) {
            lastDelivered.accumulateAndGet(entries.get(entries.size() - 1).id(), StreamIds::max);
        }
        if (mayChain && entries.size() == n) {
            readAhead(conn);
        }
        handOut(entries, null, false, readAt, sentAt);
    }

    /** A failed turn: a read sent ahead went with the dropped connection; its permits come back (its entries: history). */
    private void dropAhead() {
        if (ahead != null) {
            ahead = null;
            permits.release(aheadPermits);
        }
    }

    /**
     * Takes the group's own last-delivered id as known, when it is past what this consumer read: other consumers of the
     * group read too, and a group lost and re-created behind their position would deliver again what they had read and
     * acknowledged. What the group delivers between two of these reads (half the claim time) is still unknown here.
     */
    private void learnGroupPosition(ReaderConnection conn) {
        List<GroupInfo> groups;
        try {
            groups = groups(conn);
        } catch (RuntimeException e) {
            return; // the position this consumer read to stays the known one; a real outage fails the read that follows
        }
        knowGroupPosition(groups);
    }

    /** The stream's groups (XINFO GROUPS) on the reader's connection. */
    private List<GroupInfo> groups(ReaderConnection conn) {
        return Replies.groups((List<?>) call(conn, CommandType.XINFO, new CommandArgs<>(Redis.BYTES).add("GROUPS").addKey(streamKey)));
    }

    /** Keeps this consumer's group's last-delivered id among {@code groups} as known, when it is past the known one. */
    private void knowGroupPosition(List<GroupInfo> groups) {
        String at = lastDeliveredOf(groups);
        if (at != null) lastDelivered.accumulateAndGet(at, StreamIds::max);
    }

    /** This consumer's group's last-delivered id among {@code groups} (XINFO GROUPS); null when missing or unknown. */
    private String lastDeliveredOf(List<GroupInfo> groups) {
        for (GroupInfo g : groups) {
            if (g.name().equals(cfg.group())) return g.lastDeliveredId();
        }
        return null;
    }

    /** Reads the pause flag when due and makes the state follow it; true while the group is paused. */
    private boolean checkPause(ReaderConnection conn, long now) {
        if (now >= nextPauseCheckAt) {
            nextPauseCheckAt = now + PAUSE_CHECK_MS;
            boolean p;
            try {
                p = conn.sync().exists(pauseKey) > 0;
            } catch (RuntimeException e) {
                throw Redis.translate(e, "reading the pause flag of '" + cfg.stream() + "' group '" + cfg.group() + "'");
            }
            if (paused && !p && pauseLostWithGroup(conn)) {
                p = true;
            }
            if (p != paused) {
                paused = p;
                log.atInfo().addKeyValue("stream", cfg.stream()).addKeyValue("group", cfg.group()).addKeyValue("consumer", cfg.consumerName())
                        .addKeyValue("in_flight", inFlight.size()).log(p ? "Group paused: taking no new entries" : "Group resumed");
            }
            if (p) {
                state.compareAndSet(State.RUNNING, State.PAUSED);
                state.compareAndSet(State.STARTING, State.PAUSED);
            } else {
                state.compareAndSet(State.PAUSED, State.RUNNING);
            }
        }
        return paused;
    }

    /**
     * The group's pause flag is gone while this consumer saw it paused: resumed, or lost with the server's data (a Redis
     * that restarted empty, a failover to a replica the flag had not reached), which would start the group consuming
     * into the outage it was paused for, with nobody having resumed it. Told apart by the group: an operator resumes a
     * group that is there; one lost with the server's data is gone too. Then the flag is set again and the group stays
     * paused (re-created at once, as any lost group): true. False, resumed, when the group is there, or the flag cannot
     * be set (a user that may only read it, as the strict worker users: said in a WARN). What it gets wrong: a group
     * destroyed while paused and then resumed before being made again stays paused, until resumed once more (the
     * group is made again meanwhile).
     */
    private boolean pauseLostWithGroup(ReaderConnection conn) {
        boolean groupThere;
        try {
            groupThere = groups(conn).stream().anyMatch(g -> g.name().equals(cfg.group()));
        } catch (RedisServerException e) {
            if (!RedisEventBus.noSuchKey(e)) throw e;
            groupThere = false;
        }
        if (groupThere || !setPauseAgain()) return false;
        groupLost(reads.get()); // seen missing now: what was read before is of the lost group, and it is made again
        return true;
    }

    /**
     * Sets the group's pause flag again, lost with the group while this consumer saw it paused, before the group is made
     * again: a consumer that checks the flag after the group is back must find it (one that looked between the two may
     * read until its next check, half a second). True when the flag is there now; false when this consumer's user may
     * not set it (the strict users read it only; said in a WARN: the group is no longer paused). Any other failure
     * (a server refusing writes, read-only after a failover, out of reach) is thrown: tried again at the next turn,
     * the consumer staying paused meanwhile.
     */
    private boolean setPauseAgain() {
        boolean set;
        try {
            set = bus.setPauseFlag(cfg.stream(), cfg.group());
        } catch (RuntimeException e) {
            StargazerException t = Redis.translate(e, "setting the pause flag of '" + cfg.stream() + "' group '" + cfg.group() + "' again");
            if (!(t instanceof RedisServerException.AccessDenied)) throw t;
            log.atWarn().addKeyValue("stream", cfg.stream()).addKeyValue("group", cfg.group())
                    .log("The group's pause flag was lost with the group (the server lost its data?) and this consumer may not set it "
                            + "again (" + t.getMessage() + "); the group is no longer paused: pause it again if it should be");
            return false;
        }
        if (set) {
            log.atWarn().addKeyValue("stream", cfg.stream()).addKeyValue("group", cfg.group())
                    .log("The group's pause flag was lost with the group (the server restarted empty, or lost its data); set again, "
                            + "the group stays paused: resume it (stargazer resume) when what it was paused for is back");
        }
        return true;
    }

    private void readHistoryAgain() {
        history = true;
        historyCursor = "0";
    }

    /** What the reader does after a failed turn: true to retry after the backoff, false to stop for good. */
    private boolean readerFailed(Throwable e) {
        dropAhead();
        readHistoryAgain();
        // A server's error reply says the read ran and delivered nothing (NOGROUP, a refusal); no reply at all leaves it unknown.
        boolean unknown = !(e instanceof RedisServerException);
        lost.connectionFailed(unknown);
        if (e instanceof RedisServerException.AccessDenied) {
            failure = e;
            state.set(State.FAILED);
            log.atError().addKeyValue("stream", cfg.stream()).addKeyValue("group", cfg.group())
                    .addKeyValue("consumer", cfg.consumerName()).log("Subscription failed: " + e.getMessage());
            return false;
        }
        failure = e;
        state.updateAndGet(s -> s == State.STOPPED || s == State.FAILED ? s : State.RECONNECTING);
        groupRecreated = false;
        if (e instanceof RedisServerException.NoGroup) {
            lostThrough.accumulateAndGet(reads.get(), Math::max); // the reader hands out nothing between
            groupRecreated = recreateGroup();
        }
        return true;
    }

    /**
     * The reader's last failure was a lost group, and it re-created it: its next turn goes at once. Before, it waited
     * out the backoff (up to {@link ReaderLoop#MAX_BACKOFF_MS}) first: a stall after an empty restart.
     * Reader thread only.
     */
    private boolean groupRecreated;

    /**
     * The reader's reads (XREADGROUP, XAUTOCLAIM) so far, numbered in order as they are sent; each entry carries its read's
     * number ({@link Held#readAt}). A NOGROUP reply says the group was missing when its command ran, so the entries of
     * reads sent before that command was sent were in the lost group. One read after it was sent may be of a group
     * re-created meanwhile (by another consumer, before this one's reader met NOGROUP), and the reply can come after that
     * read (found by the review of the group-loss fixes: a late refresh reply counted as a loss for entries of the new
     * group, so one of them taken over and acknowledged elsewhere ran here again). Numbered when sent, not when handed
     * out: a read that ran before the group was lost and was handed out after another command had met NOGROUP was
     * counted as of the new group (the second review), and its entries, pending nowhere once the group was re-created,
     * were let go as acknowledged.
     */
    private final java.util.concurrent.atomic.AtomicLong reads = new java.util.concurrent.atomic.AtomicLong();

    /** The number of the reader's last read ({@link #reads}), which its entries are handed out with. Reader thread only. */
    private long readNumber;

    /**
     * The entries read up to this number ({@link #reads}) were in a group this consumer found missing since. Found pending
     * nowhere, such an entry is tried again here, its only chance; one read later and found pending nowhere was
     * acknowledged (by a consumer that took it over, or by this one through an answer whose reply was lost) and is not
     * run again.
     */
    private final java.util.concurrent.atomic.AtomicLong lostThrough = new java.util.concurrent.atomic.AtomicLong();

    /**
     * Set when something other than the reader's read met NOGROUP (a retry's ownership check, the heartbeat's refresh):
     * the reader re-creates the group at its next turn. The read alone is not enough: while every in-flight place is
     * held by entries waiting for a retry the reader takes no read, so it would never meet NOGROUP, and those retries'
     * checks would fail with it for ever.
     */
    private final java.util.concurrent.atomic.AtomicBoolean groupMissing = new java.util.concurrent.atomic.AtomicBoolean();

    /**
     * Counts a loss of the group met outside the reader's read by a command sent when {@link #reads} was
     * {@code readsAtSend}, and has the reader re-create it (a BUSYGROUP when it was re-created already).
     */
    private void groupLost(long readsAtSend) {
        lostThrough.accumulateAndGet(readsAtSend, Math::max);
        groupMissing.set(true);
    }

    /**
     * Whether {@code e} says the group (or its stream) is missing: NOGROUP, also when a script met it on Redis 6.2, which
     * reports a script's failed call as {@code ERR Error running script ...: @user_script:N: NOGROUP ...} (Redis 7 keeps
     * the call's own code).
     */
    static boolean isNoGroup(Throwable e) {
        StargazerException t = Redis.translate(e, "");
        if (t instanceof RedisServerException.NoGroup) {
            return true;
        }
        return t instanceof RedisServerException rse && "ERR".equals(rse.code()) && rse.getMessage() != null
                && SCRIPT_NOGROUP.matcher(rse.getMessage()).find();
    }

    private static final java.util.regex.Pattern SCRIPT_NOGROUP =
            java.util.regex.Pattern.compile("ERR Error running script .*@user_script:\\d+: NOGROUP ");

    /** Whether {@code h}'s group was lost since it was read (see {@link #lostThrough}). */
    private boolean groupLostSince(Held h) {
        return h.readAt <= lostThrough.get();
    }

    /**
     * Re-creates a lost group where this consumer knows the group had reached, so entries stored after that are
     * delivered however long the group was gone (Redis restarted empty, or the group was destroyed). A stream that is
     * new (its last id below that point, or missing) is read from its start. What the group had delivered to other
     * consumers and not yet seen acknowledged is gone with it: logged as such.
     */
    private boolean recreateGroup() {
        if (paused) {
            try {
                setPauseAgain(); // lost with the group? Set before the group is back, or the next check sees a resume
            } catch (RuntimeException e) {
                log.atDebug().addKeyValue("stream", cfg.stream()).log("Could not set the pause flag again: " + e.getMessage());
                return false; // made again at a later turn, the flag first
            }
        }
        String known = lastDelivered.get();
        String start;
        try {
            start = groupStart(known);
        } catch (RuntimeException e) {
            // Not knowing whether the stream is there is not the same as its being new: re-created at "0", the group
            // would deliver every entry still in the stream again. The next read fails with NOGROUP and asks again.
            log.atDebug().addKeyValue("stream", cfg.stream()).log("Could not look at the stream to re-create its consumer group: "
                    + Redis.translate(e, "re-creating group").getMessage());
            return false;
        }
        try {
            bus.redis().sharedSync().xgroupCreate(XReadArgs.StreamOffset.from(cfg.stream(), start), cfg.group(),
                    XGroupCreateArgs.Builder.mkstream());
            var warn = log.atWarn().addKeyValue("stream", cfg.stream()).addKeyValue("group", cfg.group()).addKeyValue("start", start);
            if ("$".equals(start)) {
                warn.log("Consumer group was lost and re-created at the stream's end: this consumer had not yet read from it, so "
                        + "it cannot know what the group had delivered; entries added while the group was missing are skipped");
            } else {
                warn.log("Consumer group was lost and re-created after the last entry this consumer read ("
                        + ("0".equals(start) ? "the stream is new: from its start"
                                : "0-0".equals(start) ? "the group had delivered nothing: from the stream's start" : start)
                        + "); entries other consumers of the group held unacknowledged are no longer pending and are not redelivered");
            }
        } catch (RuntimeException e) {
            RuntimeException t = Redis.translate(e, "re-creating group");
            if (!(t instanceof RedisServerException rse && "BUSYGROUP".equals(rse.code()))) {
                log.atDebug().addKeyValue("stream", cfg.stream()).log("Could not re-create consumer group: " + t.getMessage());
                return false;
            }
        }
        return true;
    }

    /**
     * Where to re-create the lost group: "0" for a stream that is missing or new (its last id below {@code known}),
     * {@code known} otherwise, "$" when this consumer read nothing yet. The stream's last id comes from XINFO STREAM; a
     * consumer whose user may not run it (ACL rules made by an earlier version: docs/security.md) goes by
     * {@code known}: ids grow with the clock, so a stream re-created after a restart has its ids above it. Throws when
     * Redis cannot say whether the stream exists.
     */
    private String groupStart(String known) {
        var sync = bus.redis().sharedSync();
        if (sync.exists(cfg.stream()) == 0) {
            return "0";
        }
        String last;
        try {
            last = Replies.text(Replies.pairs(sync.xinfoStream(cfg.stream())).get("last-generated-id"));
        } catch (RuntimeException e) {
            if (!(Redis.translate(e, "XINFO STREAM") instanceof RedisServerException.AccessDenied)) {
                throw e;
            }
            return known == null ? "$" : known;
        }
        if (last == null || "0-0".equals(last)) {
            return "0";
        }
        if (known == null) {
            return "$";
        }
        return StreamIds.compare(last, known) < 0 ? "0" : known;
    }

    /** The longest this consumer's read of new entries may block now: until its next pause check or takeover is due. */
    long blockMillis(long nowMillis) {
        long block = Math.min(cfg.blockTimeout().toMillis(), heartbeatMillis);
        block = Math.min(block, Math.min(nextClaimAt, nextPauseCheckAt) - nowMillis);
        return Math.max(1, block);
    }

    /** Takes up to {@code want} in-flight permits, waiting briefly if none is free. */
    private int acquire(int want) throws InterruptedException {
        if (!permits.tryAcquire(1, Math.min(100, heartbeatMillis), TimeUnit.MILLISECONDS)) {
            return 0;
        }
        return 1 + takePermits(want - 1);
    }

    /** XREADGROUP of up to {@code count} entries after {@code id}; the caller numbers the read ({@link #readNumber}) first. */
    private List<RawEntry> read(ReaderConnection conn, String id, int count, long blockMillis) {
        CommandArgs<byte[], byte[]> args = readArgs(id, count, blockMillis);
        if (blockMillis < 0) {
            return RawEntry.parseRead(call(conn, CommandType.XREADGROUP, args));
        }
        try {
            return RawEntry.parseRead(conn.read(CommandType.XREADGROUP, args, blockMillis));
        } catch (RuntimeException e) {
            throw readFailed(e);
        }
    }

    /** XREADGROUP's arguments: up to {@code count} of this consumer's entries after {@code id}; BLOCK when {@code blockMillis >= 0}. */
    private CommandArgs<byte[], byte[]> readArgs(String id, int count, long blockMillis) {
        CommandArgs<byte[], byte[]> args = new CommandArgs<>(Redis.BYTES).add("GROUP").add(groupName).add(consumerName)
                .add("COUNT").add(count);
        if (blockMillis >= 0) {
            args.add("BLOCK").add(blockMillis);
        }
        return args.add("STREAMS").addKey(streamKey).add(id);
    }

    private RuntimeException readFailed(RuntimeException e) {
        return Redis.translate(e, "XREADGROUP on '" + cfg.stream() + "' group '" + cfg.group() + "'");
    }

    private Object call(ReaderConnection conn, CommandType type, CommandArgs<byte[], byte[]> args) {
        try {
            return conn.sync().dispatch(type, new NestedMultiOutput<>(Redis.BYTES), args);
        } catch (RuntimeException e) {
            throw Redis.translate(e, type.name() + " on '" + cfg.stream() + "' group '" + cfg.group() + "'");
        }
    }

    /**
     * Puts back the delivery count of entries this consumer already holds that a read of its own pending list or its
     * takeover pass (a refresh came late) returned again: Redis counted that read as a delivery, and the count is what
     * handlers are told and what dead-lettering goes by. The read has just reset the entry's idle time, so no other
     * consumer can have taken it since; XCLAIM ... RETRYCOUNT sets the count, JUSTID leaves it otherwise as it is.
     */
    private void restoreCounts(ReaderConnection conn, List<RawEntry> read) {
        for (RawEntry e : read) {
            Held h = inFlight.get(e.id());
            if (h == null) {
                continue;
            }
            setCount(conn, e.id(), 0, h.count);
        }
    }

    /**
     * Sets the delivery count of {@code id}, pending here, to {@code count} (XCLAIM to this consumer, RETRYCOUNT,
     * JUSTID), if it has been idle at least {@code minIdleMillis}; true when it was.
     */
    private boolean setCount(ReaderConnection conn, String id, long minIdleMillis, long count) {
        Object claimed = call(conn, CommandType.XCLAIM, new CommandArgs<>(Redis.BYTES).addKey(streamKey).add(groupName)
                .add(consumerName).add(minIdleMillis).add(id).add("RETRYCOUNT").add(count).add("JUSTID"));
        return claimed instanceof List<?> l && !l.isEmpty();
    }

    /** XPENDING of this consumer: up to {@code count} rows (id, consumer, idle, count) after {@code afterId}. */
    private List<?> pendingAfter(ReaderConnection conn, String afterId, int count) {
        CommandArgs<byte[], byte[]> args = new CommandArgs<>(Redis.BYTES).addKey(streamKey).add(groupName)
                .add("(" + afterId).add("+").add(count).add(consumerName);
        return call(conn, CommandType.XPENDING, args) instanceof List<?> rows ? rows : List.of();
    }

    /** XAUTOCLAIM entries idle past the claim time; returns true when a deleted entry needs a history read (6.2). */
    private boolean claimIdle(ReaderConnection conn) {
        String cursor = "0-0";
        boolean sawNil = false;
        int rounds = 0;
        do {
            int n = Math.min(CLAIM_COUNT, permits.availablePermits());
            if (n == 0) {
                return sawNil;
            }
            CommandArgs<byte[], byte[]> args = new CommandArgs<>(Redis.BYTES).addKey(streamKey).add(groupName).add(consumerName)
                    .add(cfg.claimIdle().toMillis()).add(cursor).add("COUNT").add(n);
            readNumber = reads.incrementAndGet();
            lost.claimSent();
            Object reply = call(conn, CommandType.XAUTOCLAIM, args);
            lost.claimAnswered();
            if (!(reply instanceof List<?> parts) || parts.size() < 2) {
                return sawNil;
            }
            cursor = new String((byte[]) parts.get(0), StandardCharsets.US_ASCII);
            boolean[] nil = new boolean[1];
            List<RawEntry> claimed = RawEntry.parseList(parts.get(1), nil);
            sawNil |= nil[0];
            if (parts.size() > 2 && parts.get(2) instanceof List<?> deleted && !deleted.isEmpty()) {
                log.atWarn().addKeyValue("stream", cfg.stream()).addKeyValue("group", cfg.group()).addKeyValue("count", deleted.size())
                        .log("Pending entries were deleted from the stream before being handled; the server dropped them");
            }
            restoreCounts(conn, claimed);
            claimed.removeIf(e -> inFlight.containsKey(e.id()) || acks.acknowledging(e.id()));
            if (!claimed.isEmpty()) {
                int got = takePermits(claimed.size());
                List<RawEntry> take = claimed.subList(0, got);
                Map<String, Long> counts;
                try {
                    counts = pendingCounts(conn, take);
                } catch (RuntimeException e) {
                    permits.release(got);
                    throw e;
                }
                log.atInfo().addKeyValue("stream", cfg.stream()).addKeyValue("group", cfg.group())
                        .addKeyValue("consumer", cfg.consumerName()).addKeyValue("count", take.size())
                        .log("Took over entries idle past the claim time");
                handOut(take, counts, true, readNumber, System.nanoTime());
            }
        } while (!"0-0".equals(cursor) && ++rounds < 10 && !stopping && (loop == null || !loop.stopping()));
        return sawNil;
    }

    /** Delivery counts of these entries, from the group's pending list. */
    private Map<String, Long> pendingCounts(ReaderConnection conn, List<RawEntry> entries) {
        Map<String, Long> counts = new HashMap<>();
        if (entries.isEmpty()) {
            return counts;
        }
        CommandArgs<byte[], byte[]> args = new CommandArgs<>(Redis.BYTES).addKey(streamKey).add(groupName)
                .add(entries.get(0).id()).add(entries.get(entries.size() - 1).id()).add(Math.max(entries.size() * 2L, 16))
                .add(consumerName);
        Object reply = call(conn, CommandType.XPENDING, args);
        if (reply instanceof List<?> rows) {
            for (Object row : rows) {
                if (row instanceof List<?> r && r.size() >= 4) {
                    counts.put(new String((byte[]) r.get(0), StandardCharsets.US_ASCII), (Long) r.get(3));
                }
            }
        }
        return counts;
    }

    /**
     * A WARN for each handler running longer than the claim time, and again every claim time it goes on: the entry is
     * kept (refreshed) however long its handler runs, so one that never returns (a call without a timeout) holds its
     * entry, an in-flight place and, its channel's later entries waiting behind it, the channel, and nothing else says
     * so. The bus does not stop it: only the handler knows whether its work may be cut short (docs/reliability.md).
     */
    private void warnSlowHandlers() {
        long now = System.nanoTime();
        long limit = cfg.claimIdle().toNanos();
        for (Held h : inFlight.values()) {
            warnIfSlow(h, now, limit, "A handler has been running longer than the claim time; its entry is kept, and its "
                    + "channel's later entries wait behind it");
        }
        // Either retry order: a channel's next entry starts once the attempt before it has ended (Lanes).
        for (Held h : settledRunning.values()) {
            warnIfSlow(h, now, limit, "A handler has been running longer than the claim time after settling its entry; its "
                    + "channel's later entries wait until it returns");
        }
    }

    private void warnIfSlow(Held h, long now, long limit, String message) {
        long since = slowSince(h, now, limit);
        if (since == 0) return;
        log.atWarn().addKeyValue("stream", cfg.stream()).addKeyValue("group", cfg.group()).addKeyValue("stream_msg_id", h.id)
                .addKeyValue("channel_id", h.envelope.channelId()).addKeyValue("running_ms", (now - since) / 1_000_000)
                .log(message);
    }

    /**
     * When its running handler started, if it has run longer than {@code limit} and was not warned about within the last
     * {@code limit} (then marked warned); else 0. The start is read once, so the line reports the attempt it checked.
     */
    private static long slowSince(Held h, long now, long limit) {
        long since = h.runningSince;
        long warned = h.slowWarnedAt;
        if (since == 0 || now - since < limit || (warned != 0 && now - warned < limit)) return 0;
        h.slowWarnedAt = now;
        return since;
    }

    /**
     * Keeps every entry this consumer holds its own: resets their idle time well before the claim time (every quarter
     * of it), whether a handler is running them or they wait for a retry. Entries found to be no longer ours (taken
     * over while this consumer could not reach Redis, or acknowledged) are given up unless a handler is running them.
     */
    private void heartbeat() {
        // Not stopped by close() until its handlers are done: while it waits for them they are still this consumer's,
        // and another consumer must not take them over meanwhile.
        if (beatStopped) {
            return;
        }
        acks.resendFailed(); // an outage that no reader reconnect followed (only the shared connection was lost)
        warnSlowHandlers();
        if (inFlight.isEmpty() || !refreshing.compareAndSet(false, true)) {
            return;
        }
        List<String> ids = new ArrayList<>(inFlight.keySet());
        long readsAtSend = reads.get();
        long sentAt = System.nanoTime();
        CompletableFuture<List<String>> reply = ownership.refreshAsync(bus.redis().sharedAsync(), cfg.stream(), ids);
        var seam = refreshReplies;
        if (seam != null) reply = seam.apply(reply);
        reply.whenComplete((lost, e) -> {
            refreshing.set(false);
            if (e != null) {
                if (isNoGroup(e)) groupLost(readsAtSend);
                log.atDebug().addKeyValue("stream", cfg.stream()).log("Refreshing held entries failed: " + e.getMessage());
                return; // tried again at the next beat; the connection's own health check replaces a dead one
            }
            kept(ids, lost, sentAt);
            int newlyLost = 0;
            for (String id : lost) {
                Held h = inFlight.get(id);
                // Marked; one waiting for a retry is let go at once unless its group was lost meanwhile: pending
                // nowhere then, the retry is its only chance (dropping it lost the message). attemptOnce decides the rest.
                if (h != null && !h.lost) {
                    h.lost = true;
                    newlyLost++;
                    if (h.waitingForRetry() && !groupLostSince(h)) {
                        // Taken over or acknowledged elsewhere: its permit and its channel's lane go now, not when the
                        // retry would have been due (up to maxRetryBackoff later).
                        h.cancelRetry();
                        finish(h, false);
                    }
                }
            }
            if (newlyLost > 0) {
                log.atWarn().addKeyValue("stream", cfg.stream()).addKeyValue("group", cfg.group()).addKeyValue("consumer", cfg.consumerName())
                        .addKeyValue("count", newlyLost)
                        .log("Entries this consumer held are no longer pending with it (acknowledged, or taken over while it could not reach Redis, or its group was lost)");
            }
        });
    }

    /** Entries a refresh sent at {@code sentAt} found still this consumer's ({@code ids} less {@code lost}): kept since then. */
    private void kept(List<String> ids, List<String> lost, long sentAt) {
        java.util.Set<String> gone = lost.isEmpty() ? java.util.Set.of() : new java.util.HashSet<>(lost);
        for (String id : ids) {
            Held h = inFlight.get(id);
            if (h != null && !gone.contains(id) && sentAt - h.keptSince > 0) h.keptSince = sentAt;
        }
    }

    /**
     * Whether {@code h} may have been idle in Redis for half the claim time or more: the refreshes that keep it did not
     * come (this process was stopped, a GC pause or a suspended VM, or could not reach Redis), so another consumer may
     * have taken it over meanwhile and be running it. A live consumer refreshes what it holds every quarter of the claim
     * time, so otherwise it never is.
     */
    private boolean mayHaveBeenTakenOver(Held h) {
        return System.nanoTime() - h.keptSince >= cfg.claimIdle().toNanos() / 2;
    }

    /**
     * Refreshes {@code h} alone before its first run ({@link Ownership#REFRESH}: kept, atomically, if still pending here),
     * or marks it lost when it is not. Before, an entry read as new ran on the marks of the heartbeat alone: after a stop
     * past the claim time its turn came as the process resumed, before the heartbeat's refresh had answered, and it ran
     * beside the consumer that had taken it over (FrozenConsumerIT). When Redis cannot say, it runs: at least once.
     */
    private void refreshBeforeRun(Held h) {
        long readsAtSend = reads.get();
        long sentAt = System.nanoTime();
        try {
            List<String> gone = ownership.refreshAsync(bus.redis().sharedAsync(), cfg.stream(), List.of(h.id)).join();
            if (gone.isEmpty()) {
                if (sentAt - h.keptSince > 0) h.keptSince = sentAt;
            } else {
                h.lost = true;
            }
        } catch (RuntimeException e) {
            Throwable cause = Failures.unwrap(e);
            if (isNoGroup(cause)) {
                groupLost(readsAtSend);
                h.lost = true; // pending nowhere: it runs (attemptOnce), as one the heartbeat found so
            }
            log.atDebug().addKeyValue("stream", cfg.stream()).addKeyValue("stream_msg_id", h.id)
                    .log("Refreshing an entry before its run failed; running it: " + cause);
        }
    }

    // ---- handing out ---------------------------------------------------------------------------------------

    /**
     * Hands entries to the lanes; each holds one permit until it is finally settled or given up. {@code confirmFirst}:
     * check before running each that it is still pending with this consumer (taken over, or read from the pending list).
     * {@code readAt}: the number of the read that returned {@code entries} ({@link #reads}); {@code sentAt}: when it was
     * sent ({@link Held#keptSince}).
     */
    private void handOut(List<RawEntry> entries, Map<String, Long> counts, boolean confirmFirst, long readAt, long sentAt) {
        for (RawEntry e : entries) {
            if (confirmFirst) lost.handedOut(e.id()); // a read of new entries has just passed all of its own
            long count = counts == null ? 1 : counts.getOrDefault(e.id(), 1L);
            if (e.deleted()) {
                log.atWarn().addKeyValue("stream", cfg.stream()).addKeyValue("group", cfg.group()).addKeyValue("stream_msg_id", e.id())
                        .log("Pending entry was deleted from the stream before being handled; dropping it");
                acks.ack(e.id());
                permits.release();
                continue;
            }
            if (inFlight.containsKey(e.id()) || acks.acknowledging(e.id())) {
                // Already held here, or settled and its XACK not yet applied: a read of the pending list found it again.
                permits.release();
                continue;
            }
            if (count > cfg.maxDeliveries()) {
                deadLetters.send(e, count, overDelivered(count)).thenAccept(done -> { if (done) deadLettered.increment(); });
                permits.release();
                continue;
            }
            Envelope envelope;
            try {
                envelope = decoder.apply(e);
            } catch (MalformedEntryException ex) {
                deadLetters.send(e, count, "malformed: " + ex.getMessage()).thenAccept(done -> { if (done) deadLettered.increment(); });
                permits.release();
                continue;
            }
            Held h = new Held(e, envelope, count, counts == null || counts.containsKey(e.id()), confirmFirst, readAt);
            h.keptSince = sentAt;
            inFlight.put(e.id(), h);
            try {
                lanes.dispatch(envelope.channelId(), e.id(), nextAttempt(h));
            } catch (RejectedExecutionException closing) {
                // Read as the pool shut down (a read ahead taken at the reader's end): never run.
                if (neverRun(h)) giveBackUnrun(h);
                else finish(h, false);
            }
        }
    }

    /**
     * One handling of {@code h}, on a handler thread. Returns what its lane waits for: with ORDERED retries the
     * entry's final settlement (so the channel waits through retries), otherwise this attempt alone.
     */
    private CompletionStage<?> attempt(Held h) {
        h.handedOver = false;
        try {
            return attemptOnce(h);
        } catch (RuntimeException e) {
            // An attempt settles its handler's failures itself: what throws here is the bus's own code or an observer
            // (tracing, metrics). Left held, the entry would never run again (its ownership refreshed forever) and an
            // ORDERED lane could stay taken; let go instead, it stays pending in Redis and comes back through a claim.
            log.atError().addKeyValue("stream", cfg.stream()).addKeyValue("stream_msg_id", h.id).setCause(e)
                    .log("Running an entry failed outside its handler; it stays pending and will be taken over after the claim time");
            finish(h, false);
            return null;
        }
    }

    private CompletionStage<?> attemptOnce(Held h) {
        if (stopping && neverRun(h)) {
            giveBackUnrun(h);
            return null;
        }
        if (stopping || h.done.isDone()) {
            finish(h, false);
            return null;
        }
        if (!h.lost && !h.confirmFirst && mayHaveBeenTakenOver(h)) {
            refreshBeforeRun(h);
        }
        if (h.lost && ownedByAnother(h.id)) {
            // The heartbeat (or the refresh above) found it no longer pending here while it waited for its lane or for
            // this process to run again, and another consumer holds it now: running it here would handle it twice. One
            // pending nowhere still runs: its group may have been lost and re-created after it, and then this is its only
            // chance (docs/reliability.md).
            log.atInfo().addKeyValue("stream", cfg.stream()).addKeyValue("group", cfg.group()).addKeyValue("stream_msg_id", h.id)
                    .log("Entry was taken over by another consumer while it waited here (for its channel, or while this consumer "
                            + "was stopped or cut off from Redis past the claim time); not running it here");
            finish(h, false);
            return null;
        }
        int keptBefore;
        synchronized (h) {
            keptBefore = h.retriesInLane;
        }
        if (h.confirmFirst) {
            long count;
            long readsAtSend = reads.get();
            try {
                count = ownership.confirm(bus.redis().sharedAsync(), bus.redis().writeOnce(), cfg.stream(), h.id, h.countNextAttempt);
            } catch (RuntimeException e) {
                // Cannot tell whether it is still ours: try again later, as after any infrastructure failure. A lost
                // group counts as seen lost (so the retry still runs once the group is re-created past it, pending
                // nowhere) and has the reader re-create it.
                if (isNoGroup(e)) groupLost(readsAtSend);
                RuntimeException t = Redis.translate(e, "confirming entry " + h.id);
                // An error reply says the check ran nothing (its only write is its last step): a delivery it was to
                // count (the handler's failure before this retry) is still to be counted by the next one. Before, the
                // refusal reset it, and the entry ran once more than maxDeliveries allows. No reply at all leaves it
                // unknown whether it counted: then not counted again (at least once, never dead-lettered early).
                scheduleRetry(h, t, true, h.countNextAttempt && t instanceof RedisServerException);
                return laneStage(h, CompletableFuture.completedFuture(null), keptBefore);
            }
            if (count == -1) {
                // Not run: one this consumer has not run yet (taken over, or read again from its pending list), and one
                // held since the group was last lost here (acknowledged meanwhile: by a consumer that took it over, or by
                // this one through an answer whose reply was lost), or held by another. One it ran and now retries,
                // pending nowhere since its group was lost, ...
                if (!h.ran || !groupLostSince(h) || ownedByAnother(h.id)) {
                    log.atInfo().addKeyValue("stream", cfg.stream()).addKeyValue("group", cfg.group()).addKeyValue("stream_msg_id", h.id)
                            .log("Entry is no longer pending with this consumer (acknowledged, or taken over); not running it");
                    finish(h, false);
                    return null;
                }
                // ... had its group lost and re-created after it, so this retry is its only chance (or a consumer that
                // took it over acknowledged it: then it runs twice, the cheaper mistake; docs/reliability.md).
                count = h.count + (h.countNextAttempt ? 1 : 0);
                log.atWarn().addKeyValue("stream", cfg.stream()).addKeyValue("group", cfg.group()).addKeyValue("stream_msg_id", h.id)
                        .log("Entry is pending with no consumer of its group (the group was lost, or another consumer acknowledged it); trying it again here");
            }
            if (count == -2) {
                acks.ack(h.id);
                finish(h, false);
                return null;
            }
            h.count = count;
            h.confirmFirst = false;
            if (count > cfg.maxDeliveries()) {
                // The count read when it was taken over can be missing (a long pending list cuts the reply short) and
                // defaults to 1; the confirmed one is exact, and an entry past its limit is not run again.
                deadLetterHeld(h, overDelivered(count));
                return laneStage(h, CompletableFuture.completedFuture(null), keptBefore);
            }
        }
        DeliveryImpl d = new DeliveryImpl(h, h.count);
        h.attempt = d;
        h.ran = true;
        delivered.increment();
        if (h.count > 1) redelivered.increment();
        // Observers (metrics, tracing): read once per attempt; when none is installed nothing else is done.
        BusHooks hooks = bus.hooks();
        long now = System.nanoTime();
        long start = hooks == BusHooks.NONE ? 0 : now;
        BusTracing tracing = bus.tracing();
        BusTracing.Process span = tracing == null ? null : endedOnce(tracing.process(cfg.stream(), cfg.group(), h.id, h.count,
                h.raw.text(RawEntry.TRACEPARENT), h.raw.text(RawEntry.TRACESTATE), h.envelope.traceId()));
        d.span = span;
        CompletionStage<?> stage;
        CompletableFuture<Void> attemptDone = new CompletableFuture<>();
        running.incrementAndGet();
        h.runningSince = now | 1; // never 0 while running
        // The attempt's end as the rest of the consumer waits for it (a retry in its lane, the channel's release): after
        // this bookkeeping, so that a retry started from it cannot have its own start undone here (runningSince zeroed).
        h.attemptEnd = attemptDone.whenComplete((r, e) -> {
            d.ended = true;
            h.runningSince = 0;
            settledRunning.remove(h.id, h);
            running.decrementAndGet();
        });
        try {
            try {
                stage = handler.handle(d);
                if (stage == null) stage = CompletableFuture.completedFuture(null);
            } catch (Error err) {
                attemptDone.complete(null);
                if (span != null) span.end(err);
                abandon(h, err);
                throw err;
            } catch (Throwable t) {
                stage = CompletableFuture.failedFuture(t);
            }
            // Registered inside the span's scope: a handler that finished on this thread is settled here, so the bus's
            // log lines about it (a retry, a dead letter) carry its trace ids in the MDC of a tracing logger.
            settle(h, d, stage, hooks, start, span, attemptDone);
        } finally {
            if (span != null) span.closeScope();
        }
        Runnable seam = beforeLaneStage;
        if (seam != null) seam.run();
        return laneStage(h, attemptDone, keptBefore);
    }

    /**
     * Test seam, null in production: run on the handler thread after an attempt was settled and before its lane stage
     * is decided, so a test can let the entry's retry start right there, an interleaving otherwise too narrow to
     * reproduce (OrderedRetryLaneIT).
     */
    volatile Runnable beforeLaneStage;

    /**
     * Test seam, null in production: given each reply of the heartbeat's refresh, returns the one the heartbeat acts on,
     * so a test can hold a NOGROUP reply until the group was re-created and read from (a slow connection's order,
     * otherwise too narrow to reproduce: GroupLossIT).
     */
    volatile java.util.function.UnaryOperator<CompletableFuture<List<String>>> refreshReplies;

    /** Whether a settle after an automatic ack was warned about (DeliveryImpl.tooLate). */
    private final java.util.concurrent.atomic.AtomicBoolean lateSettleWarned = new java.util.concurrent.atomic.AtomicBoolean();

    /** Whether another consumer holds {@code id} in the group's pending list; false when it cannot tell. */
    private boolean ownedByAnother(String id) {
        try {
            return heldByAnother(bus.redis().sharedSync().xpending(cfg.stream(), cfg.group(), io.lettuce.core.Range.create(id, id),
                    io.lettuce.core.Limit.from(1)));
        } catch (RuntimeException e) {
            return false; // at least once: run it
        }
    }

    /**
     * {@link #ownedByAnother} for a Redis reply's callback, which must not block; fails when it cannot be told (the
     * give-back then leaves the entry rather than guess).
     */
    private CompletableFuture<Boolean> ownedByAnotherAsync(String id) {
        try {
            return bus.redis().sharedAsync().xpending(cfg.stream(), cfg.group(), io.lettuce.core.Range.create(id, id),
                    io.lettuce.core.Limit.from(1)).toCompletableFuture().thenApply(this::heldByAnother);
        } catch (RuntimeException e) {
            return CompletableFuture.failedFuture(e);
        }
    }

    /**
     * Whether the group's read position (XINFO GROUPS, asynchronously) is before entry {@code id}: re-created before it
     * (by a consumer whose last read is older, or an operator at 0), the group delivers it again. A group still missing
     * counts as past it: this consumer re-creates it after the last entry it read. Fails when it cannot be told.
     */
    private CompletableFuture<Boolean> groupBeforeAsync(String id) {
        try {
            return bus.redis().sharedAsync().xinfoGroups(cfg.stream()).toCompletableFuture()
                    .thenApply(reply -> {
                        String at = lastDeliveredOf(Replies.groups(reply));
                        return at != null && StreamIds.compare(at, id) < 0;
                    });
        } catch (RuntimeException e) {
            return CompletableFuture.failedFuture(e);
        }
    }

    private boolean heldByAnother(List<io.lettuce.core.models.stream.PendingMessage> rows) {
        return !rows.isEmpty() && !cfg.consumerName().equals(rows.get(0).getConsumer());
    }

    /** Whether the heartbeat found entry {@code id}, still held here, no longer pending with this consumer (tests). */
    boolean heldButLost(String id) {
        Held h = inFlight.get(id);
        return h != null && h.lost;
    }

    /** Deliveries of {@code channel} waiting for its lane (tests). */
    int waitingInLane(String channel) {
        return lanes.waiting(channel);
    }

    private void settle(Held h, DeliveryImpl d, CompletionStage<?> stage, BusHooks hooks, long start, BusTracing.Process span,
            CompletableFuture<Void> attemptDone) {
        stage.whenComplete((r, error) -> {
            d.returned = true;
            Throwable cause = error == null ? null : Failures.unwrap(error);
            // The handler's outcome is known: an observer that throws here must not keep it from being settled (the
            // exception would vanish into this stage, and the entry, its permit and an ORDERED lane stay held forever).
            if (hooks != BusHooks.NONE) observe(h, "metrics", () -> hooks.handled(this, System.nanoTime() - start, cause));
            if (span != null) observe(h, "tracing", () -> span.end(cause));
            try {
                if (cause instanceof Error err) {
                    abandon(h, err);
                } else if (cause instanceof LeavePending given) {
                    d.giveBack(given);
                } else if (cause != null && interrupting) {
                    // close() interrupted it: the failure says nothing about the entry, and on its last allowed
                    // delivery a plain nack would dead-letter a healthy message.
                    d.giveBack(new LeavePending("interrupted by close() after the close timeout: " + Failures.describe(cause)));
                } else if (cause != null) {
                    d.nack(cause);
                } else if (!cfg.manualAck()) {
                    d.autoAcked = d.ack(); // one given back at close is acknowledged late there (lateAfterGiveBack)
                }
            } catch (RuntimeException e) {
                log.atError().addKeyValue("stream", cfg.stream()).addKeyValue("stream_msg_id", h.id).setCause(e)
                        .log("Settling an entry failed; it stays pending and will be taken over after the claim time");
                finish(h, false);
            }
            CompletableFuture<String> answer = d.replying;
            if (answer == null) {
                attemptDone.complete(null);
            } else {
                answer.whenComplete((id, e) -> attemptDone.complete(null)); // the lane waits until the answer is stored
            }
        });
    }

    /** {@code span} whose end takes effect once: at the handler's outcome, or when close() gave its entry back first. */
    private static BusTracing.Process endedOnce(BusTracing.Process span) {
        AtomicBoolean ended = new AtomicBoolean();
        return new BusTracing.Process() {
            @Override public void closeScope() { span.closeScope(); }

            @Override
            public void end(Throwable error) {
                if (ended.compareAndSet(false, true)) span.end(error);
            }
        };
    }

    /** Runs an observer's end-of-handling call; one that throws is logged, and the entry is settled all the same. */
    private void observe(Held h, String what, Runnable call) {
        try {
            call.run();
        } catch (Throwable e) {
            log.atError().addKeyValue("stream", cfg.stream()).addKeyValue("stream_msg_id", h.id).setCause(e)
                    .log("A " + what + " observer threw when a handling ended; the entry is settled as its handler's outcome says");
        }
    }

    /**
     * What the lane waits for after an attempt: ORDERED holds the lane until the entry is finally settled, unless the
     * handler returned without settling (manual acknowledgement: the application acknowledges later, the lane goes on).
     *
     * <p>Whether the lane is let go is decided under the entry's lock, as {@link #retry} decides whether the next attempt
     * runs in the lane: a retry that is scheduled, or that already started inside the lane ({@code retriesInLane} moved
     * since this attempt began), keeps it. Deciding by the retry flag alone let the lane go when the retry's timer fired
     * before this stage was reached, and the channel's next entry ran beside the retry.
     */
    private CompletionStage<?> laneStage(Held h, CompletableFuture<Void> attemptDone, int keptBefore) {
        if (cfg.retryOrder() != RetryOrder.ORDERED) {
            return attemptDone;
        }
        CompletableFuture<Void> held;
        boolean fresh;
        synchronized (h) {
            // A lane already let go (a retry that was handed back to the lanes) is not this attempt's to hold.
            fresh = h.lane == null || h.lane.isDone();
            if (fresh) {
                h.lane = new CompletableFuture<>();
                h.laneReleased = false;
            }
            held = h.lane;
        }
        if (fresh) {
            // Settled (acknowledged, answered, dead-lettered, given back): the channel goes on once the attempt that
            // settled it has ended, not while its handler still runs. Before, a retry running in this lane that settled
            // its entry and then went on working let the channel's next entry run beside it.
            h.done.whenComplete((r, e) -> {
                CompletableFuture<Void> end = h.attemptEnd;
                if (end == null) held.complete(null);
                else end.whenComplete((x, y) -> held.complete(null));
            });
        }
        attemptDone.whenComplete((r, e) -> {
            boolean release;
            synchronized (h) {
                release = !h.retrying && h.retriesInLane == keptBefore && !held.isDone();
                if (release) h.laneReleased = true; // settled, or left to a manual ack
            }
            if (release) held.complete(null);
        });
        return held;
    }

    // ---- settling ------------------------------------------------------------------------------------------

    private void settledAck(Held h, boolean alreadyAcknowledged) {
        if (!alreadyAcknowledged) acks.ack(h.id);
        acknowledged.increment();
        finish(h, true);
    }

    private void settledNack(Held h, Throwable reason) {
        failed.increment();
        boolean infrastructure = Failures.isInfrastructure(reason);
        Throwable notRetryable = Failures.notRetryable(reason);
        if (notRetryable != null) {
            // Trying again cannot cure it: retried, it would hold its channel up for every allowed delivery.
            deadLetterHeld(h, "not retryable, on delivery " + h.count + ": " + Failures.describe(notRetryable));
            return;
        }
        if (!infrastructure && h.count >= cfg.maxDeliveries()) {
            deadLetterHeld(h, "handler failed on delivery " + h.count + " of " + cfg.maxDeliveries() + ": " + Failures.describe(reason));
            return;
        }
        logFailure(h, reason, infrastructure);
        scheduleRetry(h, reason, infrastructure);
    }

    /** Dead-letters a held entry, its channel's lane held until the dead letter is stored. */
    private CompletableFuture<Boolean> deadLetterHeld(Held h, String why) {
        h.retrying = true;
        CompletableFuture<Boolean> stored = deadLetters.send(h.raw, h.count, why).whenComplete((done, e) -> {
            if (e == null) {
                if (done) deadLettered.increment();
                finish(h, false);
            } else {
                deadLetterAgain(h, why);
            }
        });
        settling.add(stored);
        stored.whenComplete((r, e) -> settling.remove(stored));
        return stored;
    }

    /**
     * Dead-lettering {@code h} failed (Redis out of reach, the outbox full): it is tried again after the infrastructure
     * backoff, the entry held meanwhile (and with ORDERED retries its channel). Before, it was let go at once: its
     * channel went on, and the entry came back through a claim and ran again after the channel's later entries. At
     * close it stays pending, to be dead-lettered by whoever takes it over.
     */
    private void deadLetterAgain(Held h, String why) {
        if (stopping) {
            finish(h, false);
            return;
        }
        h.infrastructureFailures++;
        long backoff = Failures.backoffMillis(cfg.retryBackoff(), Failures.MAX_INFRASTRUCTURE_BACKOFF.compareTo(cfg.maxRetryBackoff()) < 0
                ? Failures.MAX_INFRASTRUCTURE_BACKOFF : cfg.maxRetryBackoff(), h.infrastructureFailures);
        try {
            h.retryTask = bus.timers().schedule(() -> {
                h.retryTask = null;
                if (stopping || h.done.isDone() || inFlight.get(h.id) != h || h.lost) {
                    finish(h, false); // let go meanwhile (closing, or found no longer this consumer's)
                    return;
                }
                // Still this consumer's? One taken over meanwhile (this one cut off past the claim time) is its new
                // owner's to dead-letter or run: dead-lettering it here would acknowledge what another holds.
                ownership.refreshAsync(bus.redis().sharedAsync(), cfg.stream(), List.of(h.id)).whenComplete((lost, e) -> {
                    if (e == null && lost.isEmpty()) {
                        deadLetterHeld(h, why);
                    } else if (e != null && !isNoGroup(e)) {
                        deadLetterAgain(h, why); // cannot tell yet: later
                    } else {
                        finish(h, false);
                    }
                });
            }, backoff, TimeUnit.MILLISECONDS);
        } catch (RejectedExecutionException closing) {
            finish(h, false);
        }
    }

    /** Why an entry delivered {@code count} times is dead-lettered without running. */
    private String overDelivered(long count) {
        return "delivered " + count + " times, more than the " + cfg.maxDeliveries() + " allowed (a consumer may have died handling it)";
    }

    /** Tries {@code h} again after its backoff; an infrastructure failure is not counted as a delivery. */
    private void scheduleRetry(Held h, Throwable reason, boolean infrastructure) {
        scheduleRetry(h, reason, infrastructure, !infrastructure);
    }

    /** {@code countNext}: the next attempt's check counts a delivery (the handler's failure before it). */
    private void scheduleRetry(Held h, Throwable reason, boolean infrastructure, boolean countNext) {
        long backoff;
        if (infrastructure) {
            h.infrastructureFailures++;
            backoff = Failures.backoffMillis(cfg.retryBackoff(), Failures.MAX_INFRASTRUCTURE_BACKOFF.compareTo(cfg.maxRetryBackoff()) < 0
                    ? Failures.MAX_INFRASTRUCTURE_BACKOFF : cfg.maxRetryBackoff(), h.infrastructureFailures);
        } else {
            backoff = Failures.backoffMillis(cfg.retryBackoff(), cfg.maxRetryBackoff(), h.count);
        }
        h.confirmFirst = true;
        h.countNextAttempt = countNext;
        h.retrying = true;
        try {
            h.retryTask = bus.timers().schedule(() -> retry(h), backoff, TimeUnit.MILLISECONDS);
        } catch (RejectedExecutionException closing) {
            finish(h, false);
        }
    }

    /** On the timer thread: hands the entry back to a handler thread, in its lane or (ORDERED) holding it. */
    private void retry(Held h) {
        h.retryTask = null;
        if (stopping) {
            finish(h, false);
            return;
        }
        if (paused) {
            // A paused group's delivery counts must not climb: the retry waits for the resume.
            try {
                h.retryTask = bus.timers().schedule(() -> retry(h), PAUSE_CHECK_MS, TimeUnit.MILLISECONDS);
            } catch (RejectedExecutionException closing) {
                finish(h, false);
            }
            return;
        }
        boolean inLane;
        CompletableFuture<Void> yielded = null;
        synchronized (h) {
            // Decided together with laneStage's release (see there): the lane is either still held, and the attempt
            // runs in it, or let go, and the attempt goes back to the lanes.
            h.retrying = false;
            inLane = cfg.retryOrder() == RetryOrder.ORDERED && h.lane != null && !h.laneReleased;
            if (inLane && lanes.olderWaiting(h.envelope.channelId(), h.id)) {
                // An older entry of the channel waits for this lane: one that let it go unsettled (manual ack, as a
                // batch listener does) and was nacked since. Run ahead of it, this retry would reorder the channel;
                // back in the lanes, which start the oldest first, it runs after it.
                yielded = h.lane;
                inLane = false;
            }
            if (inLane) {
                h.retriesInLane++;
            } else {
                h.lane = null;
                h.laneReleased = false;
            }
        }
        try {
            Supplier<CompletionStage<?>> next = nextAttempt(h);
            if (inLane) {
                // The lane is still held by this entry, and so is the channel: the attempt that failed may not have
                // ended yet (a handler that nacked and goes on working, an asynchronous one whose stage completes
                // after its nack). The retry starts once it has, as one handed back to the lanes does; before, it ran
                // beside it.
                CompletableFuture<Void> end = h.attemptEnd;
                if (end != null && !end.isDone()) {
                    end.whenComplete((r, e) -> runInLane(h, next));
                } else {
                    pool.execute(next::get);
                }
            } else {
                lanes.dispatch(h.envelope.channelId(), h.id, next);
            }
        } catch (RejectedExecutionException closing) {
            finish(h, false);
        } finally {
            if (yielded != null) yielded.complete(null); // queued first, so the lane goes on to the oldest waiting
        }
    }

    /** A retry that kept its lane, started once the attempt before it has ended. */
    private void runInLane(Held h, Supplier<CompletionStage<?>> next) {
        try {
            pool.execute(next::get);
        } catch (RejectedExecutionException closing) {
            finish(h, false);
        }
    }

    /**
     * {@code h}'s next attempt, to hand to a lane or the pool: marked {@link Held#handedOver} until it starts, so that
     * close() lets go of it if it never does.
     */
    private Supplier<CompletionStage<?>> nextAttempt(Held h) {
        h.handedOver = true;
        return () -> attempt(h);
    }

    /** The handler threw an Error: no nack (it says nothing about the entry); it stays pending and comes back via a claim. */
    /**
     * Leaves the entry pending in Redis, for a takeover after the claim time, with this delivery uncounted: Redis
     * counted it when it was read, and the consumer that takes it over goes by that count (dead-lettering it past
     * maxDeliveries without running it). XCLAIM ... RETRYCOUNT puts the count back, as restoreCounts does; if that
     * fails the delivery stays counted, which is what any failure would have done.
     *
     * <p>Only while the entry is still pending with this consumer: another consumer may have taken it over before this
     * one's refresh noticed, and an XCLAIM would take it back from that one, to be run again beside it after the claim
     * time (found by the review of Delivery.release). The ownership refresh checks and resets the entry's idle time in
     * one script, so no takeover (which needs the claim time of idleness) can come between it and the XCLAIM after it.
     */
    private void giveBack(Held h, LeavePending given) {
        CompletableFuture<Void> done = new CompletableFuture<>();
        settling.add(done);
        done.whenComplete((r, e) -> settling.remove(done));
        long readsAtSend = reads.get();
        try {
            ownership.refreshAsync(bus.redis().sharedAsync(), cfg.stream(), List.of(h.id)).whenComplete((lost, e) -> {
                if (e == null && lost.isEmpty()) {
                    putBackCount(h, given, done);
                    return;
                }
                if (e != null && !isNoGroup(e)) {
                    log.atWarn().addKeyValue("stream", cfg.stream()).addKeyValue("stream_msg_id", h.id)
                            .log("Could not give back an entry (its ownership could not be checked); it stays counted: " + e);
                    finish(h, false);
                    done.complete(null);
                    return;
                }
                if (e != null) groupLost(readsAtSend); // missing now: pending nowhere once re-created
                h.lost = true;
                if (!groupLostSince(h)) {
                    // Taken over, or acknowledged elsewhere: its new owner has it, or it is done.
                    notGivenBack(h, given);
                    done.complete(null);
                    return;
                }
                ownedByAnotherAsync(h.id).thenCompose(another -> another ? CompletableFuture.completedFuture(Fate.HELD_BY_ANOTHER)
                        : groupBeforeAsync(h.id).thenApply(before -> before ? Fate.DELIVERED_AGAIN : Fate.PENDING_NOWHERE))
                        .whenComplete((fate, x) -> afterGroupLoss(h, given, fate, x, done));
            });
        } catch (RuntimeException e) {
            finish(h, false);
            done.complete(null);
        }
    }

    /**
     * Read here, its delivery counted by that read (a read of new entries, of the pending list, or a takeover), and not
     * run: nothing about it says it failed. Not one whose count is a default ({@link Held#countKnown}: XPENDING did not
     * list it), which put back would wipe its real count. Before, no entry re-read from the pending list or taken over
     * was given back: one closed twice before it ran (waiting behind a handler that outlasted close()) stayed counted,
     * and with one delivery allowed was dead-lettered unrun.
     */
    private static boolean neverRun(Held h) {
        return !h.ran && h.countKnown && !h.countNextAttempt && !h.retrying && !h.done.isDone();
    }

    /**
     * Gives back an entry read and never run because the subscription closed first (it waited for its channel, or came
     * in the last read). Left counted, the consumer taking it over counted a second delivery, and with one delivery
     * allowed dead-lettered it unrun (ClosingWithHandlersIT.aConsumerClosedInTheMiddleOfABacklog...).
     */
    private void giveBackUnrun(Held h) {
        givenBackUnrun.increment();
        giveBack(h, new LeavePending(NOT_RUN));
    }

    private static final String NOT_RUN = "not run: the subscription closed first";
    /** Entries given back by {@link #giveBackUnrun}: one line at close for all of them, not one each. */
    private final LongAdder givenBackUnrun = new LongAdder();

    /** Where an entry given back after its group was lost is, as far as the give-back can tell. */
    private enum Fate { HELD_BY_ANOTHER, DELIVERED_AGAIN, PENDING_NOWHERE }

    private void afterGroupLoss(Held h, LeavePending given, Fate fate, Throwable checkFailed, CompletableFuture<Void> done) {
        if (fate == Fate.PENDING_NOWHERE) {
            keepPendingNowhere(h, given, done);
            return;
        }
        if (checkFailed != null) {
            // A dead letter on a guess would be a second copy of an entry the group may deliver again.
            log.atWarn().addKeyValue("stream", cfg.stream()).addKeyValue("group", cfg.group()).addKeyValue("stream_msg_id", h.id)
                    .log("An entry given back after its consumer group was lost is let go, not dead-lettered: whether the group "
                            + "delivers it again could not be checked (" + Failures.describe(checkFailed) + "); if it does not, entry "
                            + h.id + " is not run again: " + given.getMessage());
            finish(h, false);
        } else if (fate == Fate.DELIVERED_AGAIN) {
            log.atInfo().addKeyValue("stream", cfg.stream()).addKeyValue("group", cfg.group()).addKeyValue("stream_msg_id", h.id)
                    .log("An entry given back after its consumer group was lost is let go: the group was re-created before it "
                            + "and delivers it again: " + given.getMessage());
            finish(h, false);
        } else {
            notGivenBack(h, given);
        }
        done.complete(null);
    }

    /**
     * An entry given back after its group was lost (and re-created past it, or still missing) is pending nowhere: no
     * consumer of the group would be given it again, and it was read and not handled. (Or it was handled and
     * acknowledged in a group re-created before it, now past it: Redis keeps nothing to tell the two apart, and a copy
     * beats a loss; docs/reliability.md.) Kept as a dead letter instead,
     * for an operator to replay (as a Kafka consumer's uncommitted record is delivered again, never skipped in silence).
     */
    private void keepPendingNowhere(Held h, LeavePending given, CompletableFuture<Void> done) {
        log.atWarn().addKeyValue("stream", cfg.stream()).addKeyValue("group", cfg.group()).addKeyValue("stream_msg_id", h.id)
                .log("An entry given back is pending nowhere (its consumer group was lost since it was read); dead-lettered so it is not lost: "
                        + given.getMessage());
        deadLetterHeld(h, "given back (" + given.getMessage() + ") after its consumer group was lost: pending nowhere, "
                + "the group past it, no consumer of the group would be given it again (unless another consumer of a group "
                + "re-created before it already handled it: check before replaying)").whenComplete((r, x) -> done.complete(null));
    }

    private void notGivenBack(Held h, LeavePending given) {
        log.atInfo().addKeyValue("stream", cfg.stream()).addKeyValue("stream_msg_id", h.id)
                .log("Not giving back an entry no longer pending with this consumer: " + given.getMessage());
        finish(h, false);
    }

    private void putBackCount(Held h, LeavePending given, CompletableFuture<Void> done) {
        log.atLevel(NOT_RUN.equals(given.getMessage()) ? org.slf4j.event.Level.DEBUG : org.slf4j.event.Level.INFO)
                .addKeyValue("stream", cfg.stream()).addKeyValue("stream_msg_id", h.id)
                .log("Given back, left pending and not counted: " + given.getMessage());
        CommandArgs<String, byte[]> args = new CommandArgs<>(Redis.CODEC).addKey(cfg.stream()).add(cfg.group()).add(cfg.consumerName())
                .add(0).add(h.id).add("RETRYCOUNT").add(Math.max(0, h.count - 1)).add("JUSTID");
        try {
            bus.redis().sharedAsync().dispatch(CommandType.XCLAIM, new NestedMultiOutput<>(Redis.CODEC), args).whenComplete((r, e) -> {
                if (e != null) {
                    log.atWarn().addKeyValue("stream", cfg.stream()).addKeyValue("stream_msg_id", h.id)
                            .log("Could not put back the delivery count of an entry given back; it stays counted: " + e);
                }
                finish(h, false);
                done.complete(null);
            });
        } catch (RuntimeException e) {
            finish(h, false);
            done.complete(null);
        }
    }

    private void abandon(Held h, Error err) {
        log.atError().addKeyValue("stream", cfg.stream()).addKeyValue("stream_msg_id", h.id)
                .log("Handler threw " + err + "; the entry stays pending and will be taken over after the claim time");
        finish(h, false);
    }

    /** The entry leaves this consumer: acknowledged, dead-lettered, or left pending in Redis. */
    private void finish(Held h, boolean acked) {
        h.retrying = false;
        if (inFlight.remove(h.id, h)) {
            permits.release();
            // Only a handler settling its entry before it returned can run on past it; an entry without a channel has
            // no lane waiting for it (it ran at once), so nothing is held and nothing needs saying.
            DeliveryImpl a = h.attempt;
            if (h.runningSince != 0 && a != null && !a.returned && h.envelope.channelId() != null) {
                settledRunning.put(h.id, h);
                if (h.runningSince == 0) settledRunning.remove(h.id, h); // its attempt ended meanwhile
            }
        }
        h.done.complete(acked);
    }

    private void logFailure(Held h, Throwable reason, boolean infrastructure) {
        long skipped = failureWarnings.take();
        if (skipped >= 0) {
            log.atWarn().addKeyValue("stream", cfg.stream()).addKeyValue("group", cfg.group()).addKeyValue("stream_msg_id", h.id)
                    .addKeyValue("channel_id", h.envelope.channelId()).addKeyValue("delivery", h.count)
                    .log((infrastructure ? "Handler failed because Redis could not serve it, or a stream it writes to is full (not counted as a delivery)"
                            : "Handler failed on delivery " + h.count + " of " + cfg.maxDeliveries()) + "; will try again: "
                            + Failures.describe(reason) + LogLimit.more(skipped, "failures"));
        } else {
            log.atDebug().addKeyValue("stream", cfg.stream()).addKeyValue("stream_msg_id", h.id).log("Handler failed: " + Failures.describe(reason));
        }
    }

    /** One entry this consumer holds, across its attempts. */
    private static final class Held {
        final RawEntry raw;
        final String id;
        final Envelope envelope;
        /** Completes (true when acknowledged) when the entry leaves this consumer. */
        final CompletableFuture<Boolean> done = new CompletableFuture<>();
        volatile long count;
        /** Check ownership (and count the delivery, if {@link #countNextAttempt}) before the next attempt runs. */
        volatile boolean confirmFirst;
        volatile boolean countNextAttempt;
        volatile boolean retrying;
        /** ORDERED: what the entry's lane waits for, while it holds it; {@link #laneReleased} once it let go. */
        volatile CompletableFuture<Void> lane;
        volatile boolean laneReleased;
        /** ORDERED: retries that started inside the lane this entry held; guarded by this Held's lock. */
        int retriesInLane;
        volatile boolean lost;
        /** A handler ran it here: it was this consumer's, so found pending nowhere it is tried again (attemptOnce). */
        volatile boolean ran;
        /**
         * {@link #count} is the entry's delivery count as Redis had it when read here (a read of new entries: 1; a read
         * of the pending list or a takeover: when XPENDING listed it), so it may be put back by one when given back.
         */
        final boolean countKnown;
        volatile ScheduledFuture<?> retryTask;
        /** An attempt of it was handed to its lane or the pool and has not started ({@link #nextAttempt}). */
        volatile boolean handedOver;
        int infrastructureFailures;
        /** {@link System#nanoTime()} when its running handler started, 0 while none runs; the last WARN about it. */
        volatile long runningSince;
        volatile long slowWarnedAt;
        /** The delivery of its latest attempt: what close() gives back when that attempt outlasts it. */
        volatile DeliveryImpl attempt;
        /** Completes when its latest attempt has ended (handler returned, stage and answer complete); null before one. */
        volatile CompletableFuture<Void> attemptEnd;

        /** The number of the read that fetched it ({@link #reads}). */
        final long readAt;
        /**
         * {@link System#nanoTime()} no later than the last time its idle time in Redis was reset by this consumer: when the
         * read that delivered it was sent, then when each refresh that found it still here was sent. Another consumer
         * may take it over once it has been idle for the claim time, so this bounds how long it may have been.
         */
        volatile long keptSince;

        Held(RawEntry raw, Envelope envelope, long count, boolean countKnown, boolean confirmFirst, long readAt) {
            this.readAt = readAt;
            this.countKnown = countKnown;
            this.raw = raw;
            this.id = raw.id();
            this.envelope = envelope;
            this.count = count;
            this.confirmFirst = confirmFirst; // it may have been acknowledged meanwhile
        }

        boolean waitingForRetry() {
            return retrying;
        }

        void cancelRetry() {
            ScheduledFuture<?> t = retryTask;
            if (t != null) t.cancel(false);
        }
    }

    /** One attempt's view of a held entry, given to the handler. */
    final class DeliveryImpl implements Delivery {
        final Held held;
        final long count;
        final AtomicInteger settled = new AtomicInteger();
        /** Acknowledged by the subscription when its handler returned (automatic acknowledgement). */
        volatile boolean autoAcked;
        /** The answer being stored by {@link #reply}, if any: the lane waits for it. */
        volatile CompletableFuture<String> replying;
        /** This attempt's handler returned and its stage (and an answer it made) completed. */
        volatile boolean ended;
        /** This attempt's handler returned and its stage completed (an answer it made may still be on the wire). */
        volatile boolean returned;
        /** Given back by close() while its handler still ran ({@link #giveBackStillRunning}). */
        volatile boolean givenBackAtClose;
        /** This attempt's process span (tracing installed), ended once. */
        volatile BusTracing.Process span;

        DeliveryImpl(Held held, long count) {
            this.held = held;
            this.count = count;
        }

        @Override public Envelope envelope() { return held.envelope; }
        @Override public String id() { return held.id; }
        @Override public String stream() { return cfg.stream(); }
        @Override public String group() { return cfg.group(); }
        @Override public long deliveryCount() { return count; }
        @Override public boolean settled() { return settled.get() != 0; }
        @Override public String traceparent() { return held.raw.text(RawEntry.TRACEPARENT); }

        @Override
        public boolean ack() {
            if (!settled.compareAndSet(0, 1)) {
                if (lateAfterGiveBack()) return acknowledgeLateSuccess(held);
                return tooLate("ack");
            }
            settledAck(held, false);
            return true;
        }

        /**
         * Whether this is the first settle of a handler close() gave back while it ran ({@link #giveBackStillRunning}):
         * its success still counts, as an automatic acknowledgement's does ({@code settle}), so that the entry does not
         * run again. Its nack or release changes nothing: the entry is pending and uncounted already.
         */
        private boolean lateAfterGiveBack() {
            return givenBackAtClose && settled.compareAndSet(4, 5);
        }

        @Override
        public boolean nack() {
            return nack(null);
        }

        @Override
        public boolean nack(Throwable reason) {
            if (!settled.compareAndSet(0, 2)) return tooLate("nack");
            settledNack(held, reason);
            return true;
        }

        @Override
        public boolean release() {
            return giveBack(new LeavePending("released by its handler"));
        }

        /**
         * A settle that came after the subscription's automatic ack: the handler returned before settling (handed the
         * delivery to another thread) and its outcome is lost. Said once per subscription, as such code does it for
         * every entry: without manualAck the call does nothing.
         */
        private boolean tooLate(String call) {
            if (autoAcked && lateSettleWarned.compareAndSet(false, true)) {
                log.atWarn().addKeyValue("stream", cfg.stream()).addKeyValue("group", cfg.group()).addKeyValue("stream_msg_id", held.id)
                        .log("Delivery." + call + "() called after the subscription acknowledged the entry when its handler returned;"
                                + " it has no effect. A handler that settles later, on another thread, needs manual acknowledgement"
                                + " (ConsumerConfig.manualAck, @StargazerListener(manualAck = true)). Said once per subscription");
            }
            return false;
        }

        /** Settles this delivery by leaving its entry pending, uncounted; false when it was settled already. */
        boolean giveBack(LeavePending why) {
            if (!settled.compareAndSet(0, 4)) return tooLate("release");
            StreamConsumer.this.giveBack(held, why);
            return true;
        }

        @Override
        public CompletableFuture<String> reply(String stream, Envelope answer) {
            return answerWith(() -> bus.answer(stream, answer, cfg.stream(), cfg.group(), held.id));
        }

        /** The entry's fields as Redis returned them (the relay adds an outbox entry's to its target). */
        RawEntry raw() {
            return held.raw;
        }

        /**
         * Settles this delivery by {@code step}, which stores something for it and, where it says so, acknowledges it
         * in the same script: {@link #reply}, and the relay's move of an outbox entry. A failure is a nack with its cause.
         */
        CompletableFuture<String> answerWith(java.util.function.Supplier<CompletableFuture<RedisEventBus.Answered>> step) {
            if (!settled.compareAndSet(0, 3)) {
                if (lateAfterGiveBack()) return answerLate(step);
                throw new IllegalStateException("delivery " + held.id + " of '" + cfg.stream() + "' is already settled");
            }
            CompletableFuture<String> id = new CompletableFuture<>();
            replying = id;
            CompletableFuture<RedisEventBus.Answered> stored;
            try {
                stored = step.get();
            } catch (RuntimeException e) {
                stored = CompletableFuture.failedFuture(e);
            }
            stored.whenComplete((a, e) -> {
                if (e != null) {
                    settledNack(held, Failures.unwrap(e));
                    id.completeExceptionally(Failures.unwrap(e));
                } else {
                    settledAck(held, a.acknowledged());
                    id.complete(a.id());
                }
            });
            return id;
        }

        /**
         * The answer of a handler close() gave back while it ran: stored and the entry acknowledged in one step as any
         * answer (a consumer that took the entry over meanwhile and answered it too adds nothing: the answer's dedupe key
         * is the entry's). The entry was given back already, so nothing else of this subscription's is settled.
         */
        private CompletableFuture<String> answerLate(java.util.function.Supplier<CompletableFuture<RedisEventBus.Answered>> step) {
            log.atInfo().addKeyValue("stream", cfg.stream()).addKeyValue("group", cfg.group()).addKeyValue("stream_msg_id", held.id)
                    .log("A handler close() gave back while it ran has answered; the answer is stored and its entry acknowledged");
            CompletableFuture<RedisEventBus.Answered> stored;
            try {
                stored = step.get();
            } catch (RuntimeException e) {
                stored = CompletableFuture.failedFuture(e);
            }
            // An answer stored the two-step way (tracing on, a stream at its SAFE cap, across cluster slots) did not
            // acknowledge the entry: acknowledged here, as answerWith does, or it stayed pending and ran again on its taker.
            return stored.thenApply(a -> {
                if (!a.acknowledged()) acknowledgeLateSuccess(held); // not once the bus has closed: it stays pending then
                return a.id();
            });
        }

        @Override
        public String toString() {
            return "Delivery{" + cfg.stream() + "/" + cfg.group() + " " + held.id + " #" + count + " " + held.envelope + "}";
        }
    }

    // ---- Subscription --------------------------------------------------------------------------------------

    @Override public State state() { return state.get(); }
    @Override public Throwable failure() { return failure; }
    @Override public String stream() { return cfg.stream(); }
    @Override public String group() { return cfg.group(); }
    @Override public String consumerName() { return cfg.consumerName(); }

    @Override
    public Stats stats() {
        return new Stats(delivered.sum(), acknowledged.sum(), redelivered.sum(), deadLettered.sum(), failed.sum(), inFlight.size());
    }

    @Override
    public void close() {
        close(cfg.closeTimeout());
    }

    @Override
    public void close(Duration timeout) {
        if (stopping) {
            return;
        }
        stopping = true;
        try {
            long join = Math.max(1000, cfg.blockTimeout().toMillis() + 1000);
            if (loop != null) loop.stop(join);
            else shared.leave(this, join);
            for (Held h : List.copyOf(inFlight.values())) {
                if (h.waitingForRetry()) {
                    h.cancelRetry();
                    finish(h, false); // stays pending in Redis for whoever reads next
                }
            }
            pool.shutdown();
            if (!awaitHandlers(System.nanoTime() + timeout.toNanos())) {
                log.atWarn().addKeyValue("stream", cfg.stream()).addKeyValue("group", cfg.group())
                        .addKeyValue("in_flight", inFlight.size())
                        .log("Handlers did not finish in time; interrupting them, their entries stay pending for other consumers");
                interrupting = true;
                pool.shutdownNow();
                if (!awaitHandlers(System.nanoTime() + INTERRUPT_GRACE.toNanos())) giveBackStillRunning();
            }
            // What never started: left in its channel's lane when the pool shut down, or dropped from the pool's
            // queue by shutdownNow. A task that starts late gives its entry back itself (attemptOnce); two give-backs
            // of one entry put the same count back.
            // A retry handed back to the lanes or the pool that never started is let go as one still waiting for its
            // backoff is (above): it stays pending in Redis, for whoever takes it over. Before, it stayed held, counted in
            // flight by the closed subscription for good (ClosingWithHandlersIT.aRetryWaitingInItsChannelsLane...).
            for (Held h : List.copyOf(inFlight.values())) {
                if (neverRun(h)) giveBackUnrun(h);
                else if (h.handedOver) finish(h, false);
            }
            awaitSettling(System.nanoTime() + INTERRUPT_GRACE.toNanos());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            interrupting = true;
            pool.shutdownNow();
        }
        beatStopped = true;
        ScheduledFuture<?> beat = heartbeatTask;
        if (beat != null) beat.cancel(false);
        acks.resendFailed();
        acks.flush(5, TimeUnit.SECONDS);
        state.set(failure instanceof RedisServerException.AccessDenied ? State.FAILED : State.STOPPED);
        onClosed.accept(this);
        log.atInfo().addKeyValue("stream", cfg.stream()).addKeyValue("group", cfg.group()).addKeyValue("consumer", cfg.consumerName())
                .addKeyValue("delivered", delivered.sum()).addKeyValue("acknowledged", acknowledged.sum())
                .addKeyValue("given_back_unrun", givenBackUnrun.sum()).log("Subscription closed");
    }

    /**
     * Gives back the entries of handlers still running after close()'s timeout and its interrupt, as interrupted ones
     * are given back: an asynchronous handler whose stage has not completed (the interrupt reaches no thread of it), or
     * one deaf to interrupts. Left so, the entry stayed counted and the consumer taking it over dead-lettered it unrun
     * on its last allowed delivery. What the handler ends with later is too late to settle it (Delivery.settled).
     */
    private void giveBackStillRunning() {
        for (Held h : List.copyOf(inFlight.values())) {
            DeliveryImpl d = h.attempt;
            if (d != null && !d.ended) {
                d.givenBackAtClose = true;
                LeavePending why = new LeavePending("still running when close() stopped waiting for it (its close timeout, then the interrupt)");
                d.giveBack(why);
                // Its delivery has ended here: so does its span (a stage that completes later does not end it again).
                // Left open, a stage that never completes kept it open for good (a long task timer counting it forever).
                BusTracing.Process span = d.span;
                if (span != null) observe(h, "tracing", () -> span.end(why));
            }
        }
    }

    /**
     * A handler close() gave back while it ran has succeeded after all: its entry is acknowledged now, so it does not run
     * again (unless a consumer took it over meanwhile, after the claim time: then it runs there too, as any entry whose
     * consumer was thought gone). Not counted as acknowledged by this subscription, whose delivery ended as given back.
     */
    private boolean acknowledgeLateSuccess(Held h) {
        if (bus.isClosed()) {
            log.atInfo().addKeyValue("stream", cfg.stream()).addKeyValue("group", cfg.group()).addKeyValue("stream_msg_id", h.id)
                    .log("A handler close() gave back while it ran has succeeded after the bus closed; its entry stays pending "
                            + "and runs again on the consumer that takes it over");
            return false;
        }
        log.atInfo().addKeyValue("stream", cfg.stream()).addKeyValue("group", cfg.group()).addKeyValue("stream_msg_id", h.id)
                .log("A handler close() gave back while it ran has succeeded; its entry is acknowledged");
        acks.ack(h.id);
        return true;
    }

    /**
     * Waits until every handler invocation has returned and every asynchronous one has settled (its stage, and an
     * answer it made, complete), or until {@code deadline}; true when they all did.
     */
    private boolean awaitHandlers(long deadline) throws InterruptedException {
        while (!pool.isTerminated() || running.get() > 0) {
            long left = deadline - System.nanoTime();
            if (left <= 0) return false;
            long wait = Math.min(TimeUnit.NANOSECONDS.toMillis(left) + 1, 10);
            if (pool.isTerminated()) {
                Thread.sleep(wait); // only asynchronous stages are left, which no pool call waits for
            } else {
                pool.awaitTermination(wait, TimeUnit.MILLISECONDS);
            }
        }
        return true;
    }

    /**
     * True when nothing this closed subscription holds can still be settled: no delivery held, no give-back, dead
     * letter or acknowledgement on the wire, and its reader ended (one still waiting on a silent read gives back what
     * that read delivered when it ends). The bus's close need not wait for it.
     */
    boolean settledAll() {
        return inFlight.isEmpty() && settling.isEmpty() && acks.idle() && (loop != null ? loop.ended() : shared.left(this));
    }

    /**
     * Called by the bus's close after this subscription closed: waits until {@code deadline} for what its deliveries'
     * late settlements sent (give-backs, dead letters, acknowledgements). Deliveries nobody settled are not waited for.
     */
    void awaitSettlements(long deadline) {
        try {
            // A reader still on a silent read: what its ending gives back goes on the wire first.
            if (loop != null) loop.awaitEnd(deadline);
            else shared.awaitLeft(this, deadline);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        awaitSettling(deadline);
        acks.resendFailed();
        acks.flush(Math.max(0, deadline - System.nanoTime()), TimeUnit.NANOSECONDS);
    }

    private void awaitSettling(long deadline) {
        for (CompletableFuture<?> f : List.copyOf(settling)) {
            try {
                f.get(Math.max(0, deadline - System.nanoTime()), TimeUnit.NANOSECONDS);
            } catch (Exception e) {
                return; // given up waiting: the count stays as Redis has it (logged by the give-back)
            }
        }
    }

    // ---- small things --------------------------------------------------------------------------------------

    private static byte[] utf8(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }
}
