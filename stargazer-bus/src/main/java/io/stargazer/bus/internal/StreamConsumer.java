package io.stargazer.bus.internal;

import io.lettuce.core.cluster.api.async.RedisClusterAsyncCommands;
import io.lettuce.core.cluster.api.sync.RedisClusterCommands;
import io.lettuce.core.output.NestedMultiOutput;
import io.lettuce.core.protocol.CommandArgs;
import io.lettuce.core.protocol.CommandType;
import io.stargazer.bus.AsyncMessageHandler;
import io.stargazer.bus.ConsumerConfig;
import io.stargazer.bus.ConsumerInfo;
import io.stargazer.bus.Delivery;
import io.stargazer.bus.Envelope;
import io.stargazer.bus.RedisServerException;
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
import java.util.concurrent.DelayQueue;
import java.util.concurrent.Delayed;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Semaphore;
import java.util.concurrent.ThreadFactory;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import java.util.concurrent.atomic.LongAdder;
import java.util.function.Consumer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One subscription: a reader thread that owns a dedicated connection for blocking reads and claims, a pool of
 * handler threads fed in per-channel order, and acknowledgements batched on the shared connection.
 *
 * <p>The reader loop, in order of priority: re-read this consumer's own pending entries (at start and after any
 * error, so nothing delivered-but-unanswered is forgotten); take over entries other consumers left idle past
 * the claim time (XAUTOCLAIM); redeliver its own nacked entries whose backoff has passed (XCLAIM); then read new
 * entries with BLOCK. Reading waits while {@code maxInFlight} deliveries are unsettled, so the heap stays bounded.
 *
 * <p>Failures never end the loop silently: NOGROUP re-creates the group, a lost connection is retried with
 * backoff (state RECONNECTING), and only a refused permission (NOPERM, WRONGPASS) marks it FAILED.
 */
final class StreamConsumer implements Subscription {
    private static final Logger log = LoggerFactory.getLogger(Subscription.class);
    private static final long MAX_RECONNECT_BACKOFF_MS = 5000;
    private static final int CLAIM_COUNT = 100;

    private final RedisEventBus bus;
    private final ConsumerConfig cfg;
    private final AsyncMessageHandler handler;
    private final Consumer<Subscription> onClosed;
    private final byte[] streamKey;
    private final byte[] groupName;
    private final byte[] consumerName;
    private final RedisClusterAsyncCommands<String, byte[]> shared;
    private final AckBatcher acks;
    private final ExecutorService pool;
    private final OrderedDispatcher dispatcher;
    private final Semaphore permits;
    private final Thread reader;

    /** Deliveries handed out and not settled, by entry id: what a history read must not hand out twice. */
    private final ConcurrentHashMap<String, DeliveryImpl> inFlight = new ConcurrentHashMap<>();
    private final DelayQueue<Retry> retries = new DelayQueue<>();

    private final AtomicReference<State> state = new AtomicReference<>(State.STARTING);
    private volatile Throwable failure;
    private volatile boolean stopping;
    private final ReaderConnection conn;

    private final LongAdder delivered = new LongAdder();
    private final LongAdder acknowledged = new LongAdder();
    private final LongAdder redelivered = new LongAdder();
    private final LongAdder deadLettered = new LongAdder();
    private final LongAdder failed = new LongAdder();

    private long nextClaimAt;
    private long nextHeartbeatAt;
    private long nextCleanupAt;

    StreamConsumer(RedisEventBus bus, ConsumerConfig cfg, AsyncMessageHandler handler, Consumer<Subscription> onClosed) {
        this.bus = bus;
        this.cfg = cfg;
        this.handler = handler;
        this.onClosed = onClosed;
        this.streamKey = utf8(cfg.stream());
        this.groupName = utf8(cfg.group());
        this.consumerName = utf8(cfg.consumerName());
        this.shared = bus.redis().sharedAsync();
        this.acks = new AckBatcher(shared, cfg.stream(), cfg.group());
        this.pool = Executors.newFixedThreadPool(cfg.concurrency(), threads("stargazer-handler-" + cfg.stream(), true));
        this.dispatcher = new OrderedDispatcher(pool);
        this.permits = new Semaphore(cfg.maxInFlight());
        this.conn = new ReaderConnection(bus.redis(), "reader connection");
        this.reader = threads("stargazer-reader-" + cfg.stream(), false).newThread(this::run);
    }

    void start() {
        // Fail fast on a group that cannot be made (wrong type, no permission) before any thread starts.
        bus.ensureGroup(cfg.stream(), cfg.group());
        reader.start();
    }

    // ---- the reader loop -----------------------------------------------------------------------------------

    private void run() {
        long backoff = 100;
        String historyCursor = "0";
        boolean history = true;
        while (!stopping) {
            try {
                conn.sync(); // opens the connection when there is none
                long now = System.currentTimeMillis();
                if (now >= nextClaimAt) {
                    nextClaimAt = now + Math.max(50, cfg.claimIdle().toMillis() / 2);
                    if (claimIdle()) {
                        history = true;
                        historyCursor = "0";
                    }
                }
                if (now >= nextHeartbeatAt) {
                    nextHeartbeatAt = now + Math.max(50, cfg.claimIdle().toMillis() / 4);
                    heartbeat();
                }
                if (now >= nextCleanupAt) {
                    nextCleanupAt = now + Math.max(1000, Math.min(60_000, cfg.consumerIdleLimit().toMillis() / 4));
                    removeIdleConsumers();
                }
                if (redeliverDue()) {
                    history = true;
                    historyCursor = "0";
                }
                int n = acquire(cfg.batchSize());
                if (n == 0) {
                    continue;
                }
                List<RawEntry> entries;
                Map<String, Long> counts = null;
                try {
                    entries = history ? read(historyCursor, n, -1) : read(">", n, blockMillis());
                    if (history && !entries.isEmpty()) {
                        counts = pendingCounts(entries);
                    }
                } catch (RuntimeException e) {
                    // Nothing was handed out: give the permits back, or a long outage would use them all up and
                    // leave the reader unable to read after it reconnects. What was read stays pending in Redis.
                    permits.release(n);
                    throw e;
                }
                permits.release(n - entries.size());
                if (history) {
                    if (entries.isEmpty()) {
                        history = false;
                    } else {
                        historyCursor = entries.get(entries.size() - 1).id();
                    }
                }
                handOut(entries, counts);
                recovered();
                backoff = 100;
            } catch (RedisServerException.NoGroup e) {
                trouble(e, "Consumer group is gone; re-creating it");
                recreateGroup();
                history = true;
                historyCursor = "0";
            } catch (RedisServerException.AccessDenied e) {
                failure = e;
                state.set(State.FAILED);
                log.atError().addKeyValue("stream", cfg.stream()).addKeyValue("group", cfg.group())
                        .addKeyValue("consumer", cfg.consumerName()).log("Subscription failed: " + e.getMessage());
                break;
            } catch (Throwable e) {
                if (stopping) {
                    break;
                }
                trouble(e, "Subscription lost Redis; reconnecting");
                conn.drop();
                sleep(backoff);
                backoff = Math.min(backoff * 2, MAX_RECONNECT_BACKOFF_MS);
                history = true;
                historyCursor = "0";
            }
        }
        conn.drop();
    }



    private void recovered() {
        State before = state.getAndUpdate(s -> s == State.STARTING || s == State.RECONNECTING ? State.RUNNING : s);
        if (before == State.RECONNECTING) {
            log.atInfo().addKeyValue("stream", cfg.stream()).addKeyValue("group", cfg.group())
                    .addKeyValue("consumer", cfg.consumerName()).log("Subscription recovered");
        }
    }

    /** Logs a problem once per episode (the first time after running normally) and marks the state. */
    private void trouble(Throwable e, String message) {
        failure = e;
        State before = state.getAndUpdate(s -> s == State.STOPPED || s == State.FAILED ? s : State.RECONNECTING);
        if (before != State.RECONNECTING) {
            log.atWarn().addKeyValue("stream", cfg.stream()).addKeyValue("group", cfg.group())
                    .addKeyValue("consumer", cfg.consumerName()).log(message + ": " + e.getMessage());
        } else {
            log.atDebug().addKeyValue("stream", cfg.stream()).addKeyValue("group", cfg.group())
                    .addKeyValue("consumer", cfg.consumerName()).log(message + " (still): " + e.getMessage());
        }
    }

    private void recreateGroup() {
        try {
            // A missing stream is made empty with the group at its start, so entries added meanwhile are not skipped.
            Long exists = bus.redis().sharedSync().exists(cfg.stream());
            String start = exists != null && exists > 0 ? "$" : "0";
            bus.redis().sharedSync().xgroupCreate(io.lettuce.core.XReadArgs.StreamOffset.from(cfg.stream(), start),
                    cfg.group(), io.lettuce.core.XGroupCreateArgs.Builder.mkstream());
            log.atInfo().addKeyValue("stream", cfg.stream()).addKeyValue("group", cfg.group()).addKeyValue("start", start)
                    .log("Re-created consumer group");
        } catch (RuntimeException e) {
            RuntimeException t = Redis.translate(e, "re-creating group");
            if (!(t instanceof RedisServerException rse && "BUSYGROUP".equals(rse.code()))) {
                trouble(t, "Could not re-create consumer group");
                sleep(500);
            }
        }
    }

    private long blockMillis() {
        long block = cfg.blockTimeout().toMillis();
        Retry next = retries.peek();
        if (next != null) {
            block = Math.min(block, Math.max(1, next.getDelay(TimeUnit.MILLISECONDS)));
        }
        block = Math.min(block, Math.max(1, nextClaimAt - System.currentTimeMillis()));
        return Math.max(1, block);
    }

    /** Takes up to {@code want} in-flight permits, waiting briefly if none is free. */
    private int acquire(int want) throws InterruptedException {
        if (!permits.tryAcquire(1, 100, TimeUnit.MILLISECONDS)) {
            return 0;
        }
        int got = 1;
        while (got < want && permits.tryAcquire()) {
            got++;
        }
        return got;
    }

    // ---- Redis commands on the reader's own connection -----------------------------------------------------

    private List<RawEntry> read(String id, int count, long blockMillis) {
        CommandArgs<byte[], byte[]> args = new CommandArgs<>(Redis.BYTES).add("GROUP").add(groupName).add(consumerName)
                .add("COUNT").add(count);
        if (blockMillis >= 0) {
            args.add("BLOCK").add(blockMillis);
        }
        args.add("STREAMS").addKey(streamKey).add(id);
        Object reply = call(CommandType.XREADGROUP, args);
        // One stream read: Lettuce's nested output gives [name, entries] (the outer one-element array merged
        // into the output list), or [[name, entries]]; a timed-out BLOCK gives [null].
        if (!(reply instanceof List<?> top) || top.isEmpty() || top.get(0) == null) {
            return List.of();
        }
        List<?> streamReply = top.get(0) instanceof List<?> inner ? inner : top;
        return streamReply.size() < 2 ? List.of() : RawEntry.parseList(streamReply.get(1), null);
    }

    private Object call(CommandType type, CommandArgs<byte[], byte[]> args) {
        RedisClusterCommands<byte[], byte[]> sync = conn.sync();
        try {
            List<Object> out = sync.dispatch(type, new NestedMultiOutput<>(Redis.BYTES), args);
            return out;
        } catch (RuntimeException e) {
            throw Redis.translate(e, type.name() + " on '" + cfg.stream() + "' group '" + cfg.group() + "'");
        }
    }

    /** XAUTOCLAIM entries idle past the claim time; returns true when a deleted entry needs a history read (6.2). */
    private boolean claimIdle() {
        String cursor = "0-0";
        boolean sawNil = false;
        int rounds = 0;
        do {
            int n = permits.availablePermits() == 0 ? 0 : Math.min(CLAIM_COUNT, permits.availablePermits());
            if (n == 0) {
                return sawNil;
            }
            CommandArgs<byte[], byte[]> args = new CommandArgs<>(Redis.BYTES).addKey(streamKey).add(groupName).add(consumerName)
                    .add(cfg.claimIdle().toMillis()).add(cursor).add("COUNT").add(n);
            Object reply = call(CommandType.XAUTOCLAIM, args);
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
            claimed.removeIf(e -> inFlight.containsKey(e.id()));
            if (!claimed.isEmpty()) {
                int got = 0;
                while (got < claimed.size() && permits.tryAcquire()) got++;
                List<RawEntry> take = claimed.subList(0, got);
                Map<String, Long> counts;
                try {
                    counts = pendingCounts(take);
                } catch (RuntimeException e) {
                    permits.release(got);
                    throw e;
                }
                log.atInfo().addKeyValue("stream", cfg.stream()).addKeyValue("group", cfg.group())
                        .addKeyValue("consumer", cfg.consumerName()).addKeyValue("count", take.size())
                        .log("Took over entries idle past the claim time");
                handOut(take, counts);
            }
        } while (!"0-0".equals(cursor) && ++rounds < 10 && !stopping);
        return sawNil;
    }

    /** Delivery counts of these entries, from the group's pending list. */
    private Map<String, Long> pendingCounts(List<RawEntry> entries) {
        Map<String, Long> counts = new HashMap<>();
        if (entries.isEmpty()) {
            return counts;
        }
        CommandArgs<byte[], byte[]> args = new CommandArgs<>(Redis.BYTES).addKey(streamKey).add(groupName)
                .add(entries.get(0).id()).add(entries.get(entries.size() - 1).id()).add(Math.max(entries.size() * 2L, 16))
                .add(consumerName);
        Object reply = call(CommandType.XPENDING, args);
        if (reply instanceof List<?> rows) {
            for (Object row : rows) {
                if (row instanceof List<?> r && r.size() >= 4) {
                    counts.put(new String((byte[]) r.get(0), StandardCharsets.US_ASCII), (Long) r.get(3));
                }
            }
        }
        return counts;
    }

    /** Redelivers this consumer's nacked entries whose backoff has passed; true when a deleted one was met (6.2). */
    private boolean redeliverDue() {
        List<Retry> due = new ArrayList<>();
        Retry r;
        while (due.size() < CLAIM_COUNT && (r = retries.poll()) != null) {
            due.add(r);
        }
        boolean sawNil = false;
        for (Retry retry : due) {
            if (!permits.tryAcquire()) {
                retries.add(retry); // full: try again when something settles
                continue;
            }
            // min-idle just under the backoff: if another consumer took the entry over meanwhile, leave it to them.
            CommandArgs<byte[], byte[]> args = new CommandArgs<>(Redis.BYTES).addKey(streamKey).add(groupName).add(consumerName)
                    .add(Math.max(0, retry.backoffMillis * 9 / 10)).add(retry.id);
            boolean[] nil = new boolean[1];
            List<RawEntry> got;
            try {
                got = RawEntry.parseList(call(CommandType.XCLAIM, args), nil);
            } catch (RuntimeException e) {
                permits.release();
                retries.add(retry); // not lost: tried again after the reconnect
                throw e;
            }
            sawNil |= nil[0];
            if (got.isEmpty()) {
                permits.release();
            } else {
                handOut(got, Map.of(retry.id, retry.deliveryCount + 1));
            }
        }
        return sawNil;
    }

    /** Resets the idle time of deliveries still being handled, so a slow handler is not mistaken for a dead consumer. */
    private void heartbeat() {
        long threshold = System.currentTimeMillis() - cfg.claimIdle().toMillis() / 2;
        List<String> ids = new ArrayList<>();
        for (DeliveryImpl d : inFlight.values()) {
            if (d.touchedAt < threshold) {
                ids.add(d.id);
                d.touchedAt = System.currentTimeMillis();
            }
        }
        if (ids.isEmpty()) {
            return;
        }
        CommandArgs<byte[], byte[]> args = new CommandArgs<>(Redis.BYTES).addKey(streamKey).add(groupName).add(consumerName)
                .add(cfg.claimIdle().toMillis() / 4);
        for (String id : ids) args.add(id);
        args.add("JUSTID");
        call(CommandType.XCLAIM, args);
    }

    private static final String DELETE_IF_IDLE = """
            local p = redis.call('XPENDING', KEYS[1], ARGV[1], '-', '+', 1, ARGV[2])
            if #p == 0 then return redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], ARGV[2]) end
            return -1
            """;

    /** Removes consumers idle past the limit with nothing pending; the pending check and removal are one script. */
    private void removeIdleConsumers() {
        for (ConsumerInfo c : bus.consumers(cfg.stream(), cfg.group())) {
            if (c.pending() == 0 && c.idleMillis() > cfg.consumerIdleLimit().toMillis() && !c.name().equals(cfg.consumerName())) {
                try {
                    Object r = bus.redis().sharedSync().eval(DELETE_IF_IDLE, io.lettuce.core.ScriptOutputType.INTEGER,
                            new String[] {cfg.stream()}, utf8(cfg.group()), utf8(c.name()));
                    if (r instanceof Long l && l >= 0) {
                        log.atInfo().addKeyValue("stream", cfg.stream()).addKeyValue("group", cfg.group())
                                .addKeyValue("consumer", c.name()).addKeyValue("idle_ms", c.idleMillis())
                                .log("Removed idle consumer with nothing pending");
                    }
                } catch (RuntimeException e) {
                    log.atDebug().addKeyValue("consumer", c.name()).setCause(e).log("Idle consumer removal failed");
                }
            }
        }
    }

    // ---- handing out and settling --------------------------------------------------------------------------

    /** Hands entries to the handler pool; each holds one permit, released when it settles or is skipped. */
    private void handOut(List<RawEntry> entries, Map<String, Long> counts) {
        for (RawEntry e : entries) {
            long count = counts == null ? 1 : counts.getOrDefault(e.id(), 1L);
            if (e.deleted()) {
                log.atWarn().addKeyValue("stream", cfg.stream()).addKeyValue("group", cfg.group()).addKeyValue("stream_msg_id", e.id())
                        .log("Pending entry was deleted from the stream before being handled; dropping it");
                acks.ack(e.id());
                permits.release();
                continue;
            }
            if (inFlight.containsKey(e.id())) {
                permits.release(); // already being handled here: a history read found it again
                continue;
            }
            if (count > cfg.maxDeliveries()) {
                deadLetter(e, "delivered " + count + " times, more than the " + cfg.maxDeliveries()
                        + " allowed (a consumer may have died handling it)");
                permits.release();
                continue;
            }
            Envelope envelope;
            try {
                envelope = e.decode();
            } catch (MalformedEntryException ex) {
                deadLetter(e, "malformed: " + ex.getMessage());
                permits.release();
                continue;
            }
            DeliveryImpl d = new DeliveryImpl(e, envelope, count);
            inFlight.put(e.id(), d);
            delivered.increment();
            if (count > 1) redelivered.increment();
            dispatcher.dispatch(envelope.channelId(), () -> invoke(d));
        }
    }

    private CompletionStage<?> invoke(DeliveryImpl d) {
        CompletionStage<?> stage;
        try {
            stage = handler.handle(d);
            if (stage == null) stage = CompletableFuture.completedFuture(null);
        } catch (Throwable t) {
            stage = CompletableFuture.failedFuture(t);
        }
        return stage.whenComplete((r, error) -> {
            if (error != null) {
                d.nack(error instanceof java.util.concurrent.CompletionException && error.getCause() != null ? error.getCause() : error);
            } else if (!cfg.manualAck()) {
                d.ack();
            }
        });
    }

    private void settledAck(DeliveryImpl d) {
        if (inFlight.remove(d.id, d)) {
            permits.release();
        }
        acks.ack(d.id);
        acknowledged.increment();
    }

    private void settledNack(DeliveryImpl d, Throwable reason) {
        failed.increment();
        if (d.count >= cfg.maxDeliveries()) {
            String why = "handler failed on delivery " + d.count + " of " + cfg.maxDeliveries()
                    + (reason == null ? " (nacked)" : ": " + reason);
            deadLetter(d.raw, why);
            if (inFlight.remove(d.id, d)) permits.release();
            return;
        }
        long backoff = Math.min(cfg.maxRetryBackoff().toMillis(), cfg.retryBackoff().toMillis() << Math.min(20, d.count - 1));
        retries.add(new Retry(d.id, d.count, backoff, System.currentTimeMillis() + backoff));
        if (inFlight.remove(d.id, d)) permits.release();
        log.atDebug().addKeyValue("stream", cfg.stream()).addKeyValue("stream_msg_id", d.id).addKeyValue("delivery", d.count)
                .addKeyValue("backoff_ms", backoff).log("Delivery failed; will redeliver");
    }

    /**
     * Copies the entry to the dead-letter stream with its fields byte for byte plus error, source_stream, source_id
     * and group, then acknowledges it. If the copy fails the entry stays pending and is dead-lettered on a later claim.
     */
    private void deadLetter(RawEntry e, String error) {
        String dead = cfg.deadLetterStream();
        if (bus.guard().isFull(dead)) {
            // A SAFE dead-letter stream that a lagging group keeps full: leave the entry pending, it is
            // dead-lettered on a later claim once there is room. Never drop it.
            log.atWarn().addKeyValue("stream", cfg.stream()).addKeyValue("stream_msg_id", e.id()).addKeyValue("dead_letter_stream", dead)
                    .log("Dead-letter stream is full; the entry stays pending");
            return;
        }
        CommandArgs<String, byte[]> args = new CommandArgs<>(Redis.CODEC).addKey(dead);
        for (String o : bus.guard().trimArgsFor(dead)) args.add(o);
        args.add("*");
        for (byte[] f : e.flatFields()) args.add(f);
        args.add("error").add(utf8(error)).add("source_stream").add(streamKey).add("source_id").add(utf8(e.id()))
                .add("group").add(groupName);
        shared.dispatch(CommandType.XADD, new io.lettuce.core.output.ValueOutput<>(Redis.CODEC), args).whenComplete((id, err) -> {
            if (err != null) {
                log.atWarn().addKeyValue("stream", cfg.stream()).addKeyValue("stream_msg_id", e.id())
                        .log("Dead-lettering failed; the entry stays pending: " + err.getMessage());
                return;
            }
            acks.ack(e.id());
            bus.guard().countPublish(dead);
            deadLettered.increment();
            log.atWarn().addKeyValue("stream", cfg.stream()).addKeyValue("group", cfg.group()).addKeyValue("stream_msg_id", e.id())
                    .addKeyValue("dead_letter_stream", cfg.deadLetterStream()).log("Dead-lettered entry: " + error);
        });
    }

    private final class DeliveryImpl implements Delivery {
        final RawEntry raw;
        final String id;
        final Envelope envelope;
        final long count;
        final AtomicInteger settled = new AtomicInteger();
        volatile long touchedAt = System.currentTimeMillis();

        DeliveryImpl(RawEntry raw, Envelope envelope, long count) {
            this.raw = raw;
            this.id = raw.id();
            this.envelope = envelope;
            this.count = count;
        }

        @Override public Envelope envelope() { return envelope; }
        @Override public String id() { return id; }
        @Override public String stream() { return cfg.stream(); }
        @Override public String group() { return cfg.group(); }
        @Override public long deliveryCount() { return count; }
        @Override public boolean settled() { return settled.get() != 0; }

        @Override
        public boolean ack() {
            if (!settled.compareAndSet(0, 1)) return false;
            settledAck(this);
            return true;
        }

        @Override
        public boolean nack() {
            return nack(null);
        }

        @Override
        public boolean nack(Throwable reason) {
            if (!settled.compareAndSet(0, 2)) return false;
            settledNack(this, reason);
            return true;
        }

        @Override
        public String toString() {
            return "Delivery{" + cfg.stream() + "/" + cfg.group() + " " + id + " #" + count + " " + envelope + "}";
        }
    }

    private static final class Retry implements Delayed {
        final String id;
        final long deliveryCount;
        final long backoffMillis;
        final long dueAt;

        Retry(String id, long deliveryCount, long backoffMillis, long dueAt) {
            this.id = id;
            this.deliveryCount = deliveryCount;
            this.backoffMillis = backoffMillis;
            this.dueAt = dueAt;
        }

        @Override
        public long getDelay(TimeUnit unit) {
            return unit.convert(dueAt - System.currentTimeMillis(), TimeUnit.MILLISECONDS);
        }

        @Override
        public int compareTo(Delayed o) {
            return Long.compare(dueAt, ((Retry) o).dueAt);
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
        conn.unblock(); // wake the blocked read now instead of waiting out its BLOCK time
        try {
            reader.join(Math.max(1000, cfg.blockTimeout().toMillis() + 1000));
            pool.shutdown();
            if (!pool.awaitTermination(timeout.toMillis(), TimeUnit.MILLISECONDS)) {
                log.atWarn().addKeyValue("stream", cfg.stream()).addKeyValue("group", cfg.group())
                        .addKeyValue("in_flight", inFlight.size())
                        .log("Handlers did not finish in time; their entries stay pending for other consumers");
                pool.shutdownNow();
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            pool.shutdownNow();
        }
        acks.flush(5, TimeUnit.SECONDS);
        state.set(failure instanceof RedisServerException.AccessDenied ? State.FAILED : State.STOPPED);
        onClosed.accept(this);
        log.atInfo().addKeyValue("stream", cfg.stream()).addKeyValue("group", cfg.group()).addKeyValue("consumer", cfg.consumerName())
                .addKeyValue("delivered", delivered.sum()).addKeyValue("acknowledged", acknowledged.sum()).log("Subscription closed");
    }

    // ---- small things --------------------------------------------------------------------------------------

    private static byte[] utf8(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }

    private static void sleep(long ms) {
        try {
            Thread.sleep(ms);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    private static ThreadFactory threads(String prefix, boolean daemon) {
        AtomicInteger n = new AtomicInteger();
        return r -> {
            Thread t = new Thread(r, prefix + "-" + n.incrementAndGet());
            t.setDaemon(daemon);
            return t;
        };
    }
}
