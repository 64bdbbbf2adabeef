package io.stargazer.bus.internal;

import io.lettuce.core.ScriptOutputType;
import io.lettuce.core.cluster.api.async.RedisClusterAsyncCommands;
import io.stargazer.bus.Backpressure;
import io.stargazer.bus.BackpressureException;
import io.stargazer.bus.BusConfig;
import io.stargazer.bus.PublishQueueFullException;
import io.stargazer.bus.TrimPolicy;
import java.nio.charset.StandardCharsets;
import java.util.ArrayDeque;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Function;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Keeps each stream within its cap under the configured {@link TrimPolicy}, off the publish path.
 *
 * <p>EVICT: every XADD carries {@code MAXLEN ~ cap} (the original's behaviour). SAFE: XADD carries no trim (Redis
 * 8.2+: {@code ACKED MAXLEN ~ cap}, the server's own safe trim); instead, once a stream may have reached its cap
 * (the last known length plus what this process has published since), one Lua script on the stream's own key
 * computes the oldest entry any group still needs (its oldest pending entry, or the one after its last delivered)
 * and trims below it with {@code XTRIM MINID ~}; a stream with no group it trims to its cap ({@code MAXLEN ~}), unless
 * this process saw a group on it, which was lost and may be re-created behind what was stored since: such a stream is
 * held full for a while instead ({@link #holdsForLostGroups}). Under
 * SAFE no XADD carries {@code MAXLEN}, a stream without groups' included: whether a stream has groups is decided in
 * the script that trims, never from what this process saw earlier, since a group may have been created since. If the
 * stream is still at its cap, it is full: publishes wait
 * ({@link Backpressure#BLOCK}, parked in order) or fail ({@link Backpressure#REJECT}) until a re-check, every
 * {@value #FULL_RECHECK_MS} ms while full, finds room. A publish is still one round trip in the common case. Dead-letter streams
 * are exempt under both policies ({@link #keptWhole}).
 *
 * <p>The script uses only commands that see no entry's content (EXISTS, XLEN, XINFO GROUPS, XPENDING) plus XTRIM,
 * so a publisher whose ACL user may append to a stream but not read it (docs/security.md) can
 * still keep that stream within its cap.
 */
final class StreamGuard {
    /** Told how long each held publish waited (metrics); {@link BusHooks#NONE} unless a binder is installed. */
    private final java.util.function.Supplier<BusHooks> hooks;
    private static final Logger log = LoggerFactory.getLogger("io.stargazer.bus.trim");
    static final long FULL_RECHECK_MS = 50;
    /** The most a stream with no group may grow past its cap between two checks of one process ({@link #noGroupSlack}). */
    static final long NO_GROUP_SLACK_MAX = 10_000;

    /**
     * How many publishes of this process a stream with no group takes between checks: a tenth of the cap, at most
     * {@value #NO_GROUP_SLACK_MAX}. Such a stream is trimmed to its cap, so it sits there after each check; without
     * this slack every publish would find it at its cap and check it again, and each check as it completes too.
     */
    static long noGroupSlack(long cap) {
        return Math.min(cap / 10, NO_GROUP_SLACK_MAX);
    }

    /**
     * KEYS[1] stream; ARGV[1] cap; ARGV[2] '1' to hold: finding no group, trim nothing ({@link #holdsForLostGroups}).
     * Returns {length after, lagging group or '', has groups 0/1, trimmed 0/1}.
     * Stream ids are compared as (ms, seq) pairs of Lua numbers: exact below 2^53, which millisecond times are.
     */
    static final String TRIM_SCRIPT = """
            local key = KEYS[1]
            local cap = tonumber(ARGV[1])
            local hold = ARGV[2] == '1'
            if redis.call('EXISTS', key) == 0 then return {0, '', 0, 0} end
            local len = redis.call('XLEN', key)
            local groups = redis.call('XINFO', 'GROUPS', key)
            if #groups == 0 then
              if len > cap and not hold then redis.call('XTRIM', key, 'MAXLEN', '~', cap) end
              return {redis.call('XLEN', key), '', 0, 0}
            end
            if len < cap then return {len, '', 1, 0} end
            local function parse(id)
              local d = string.find(id, '-', 1, true)
              return tonumber(string.sub(id, 1, d - 1)), tonumber(string.sub(id, d + 1))
            end
            local function less(a, b)
              local am, as = parse(a)
              local bm, bs = parse(b)
              return am < bm or (am == bm and as < bs)
            end
            local safe, lagging = nil, ''
            for _, g in ipairs(groups) do
              local name, last
              for i = 1, #g, 2 do
                if g[i] == 'name' then name = g[i + 1] end
                if g[i] == 'last-delivered-id' then last = g[i + 1] end
              end
              local ms, seq = parse(last)
              local bound = ms .. '-' .. (seq + 1)
              local p = redis.call('XPENDING', key, name)
              if p[1] > 0 and less(p[2], bound) then bound = p[2] end
              if safe == nil or less(bound, safe) then safe, lagging = bound, name end
            end
            -- Only to the safe bound, never down to a share of the cap: finding the id at a position would take
            -- XRANGE, which returns entries, and a publisher (a gateway on the inbound stream) may not read them.
            local target = safe
            redis.call('XTRIM', key, 'MINID', '~', target)
            if redis.call('XLEN', key) >= cap then
              -- Approximate trimming removes whole nodes only; exact trimming still stops at the same safe id.
              redis.call('XTRIM', key, 'MINID', target)
            end
            return {redis.call('XLEN', key), lagging, 1, 1}
            """;

    private final BusConfig config;
    private final RedisClusterAsyncCommands<String, byte[]> redis;
    private final ServerCode code;
    private final ScheduledExecutorService scheduler;
    private final Function<String, StreamPublisher> publishers;
    private final List<String> evictArgs;
    private final List<String> safeArgs;
    /**
     * A tenth of the cap, at most {@value #NO_GROUP_SLACK_MAX}: how far a stream without groups may grow between two
     * checks, and how far past where a check was due publishes go while it is in flight ({@link #overdue}).
     */
    private final long noGroupSlack;
    /** The trim script's ARGV[1]: the cap. */
    private final byte[] capArg;
    private static final byte[] HOLD = {'1'};
    private static final byte[] NO_HOLD = {'0'};
    private final ConcurrentHashMap<String, State> states = new ConcurrentHashMap<>();

    /** Per stream: what this process knows of its length and whether it is full. */
    final class State {
        final String stream;
        final AtomicLong sinceCheck = new AtomicLong();
        final AtomicBoolean checking = new AtomicBoolean();
        /** Set by the first publish from here, which looks at the stream; a length of 0 cannot tell (the look may find it empty). */
        final AtomicBoolean looked = new AtomicBoolean();
        volatile long lastLength;
        /** What the last check found; it only spaces the checks out: a group may have been created since. */
        volatile boolean hasGroups = true;
        /**
         * A check found a group on the stream: one that later finds none sees the groups lost (Redis restarted empty,
         * XGROUP DESTROY), not a stream nobody reads, and holds it at its cap for a while ({@link #holdsForLostGroups}).
         */
        volatile boolean sawGroups;
        /** When a check first found the stream at its cap without the groups it had (System.nanoTime); 0 when not so. */
        volatile long groupsGoneSince;
        volatile boolean full;
        volatile String laggingGroup = "";
        /** Publishes held while full, in arrival order; guarded by itself. With the publisher's queue, within SG_PUBLISH_QUEUE_LIMIT. */
        final ArrayDeque<Parked> parked = new ArrayDeque<>();
        volatile boolean anyParked;
        /** When the check in flight began (System.nanoTime); 0 while none runs or one is starting. */
        volatile long checkBegan;
        /** Checks completed, and the last one's failure (null once one succeeds): for {@link #toString}. */
        volatile long checksDone;
        volatile Throwable checkFailure;
        /** A failing check was warned about; cleared when one succeeds ({@link #failed}). */
        volatile boolean failureWarned;

        State(String stream) {
            this.stream = stream;
        }

        /**
         * What this process knows of the stream and its checks, for a diagnosis: why a stream at its cap was not held
         * or trimmed is in these fields (a check in flight for long, checks failing, a length plus count below the cap).
         */
        @Override
        public String toString() {
            boolean inFlight = checking.get();
            Throwable f = checkFailure;
            return "stream '" + stream + "': full=" + full + ", lastLength=" + lastLength + ", sinceCheck=" + sinceCheck.get()
                    + ", cap=" + config.streamMaxlen() + ", hasGroups=" + hasGroups + ", looked=" + looked.get() + ", parked=" + anyParked
                    + ", checksDone=" + checksDone + ", checking=" + inFlight
                    + (inFlight ? inFlightFor() : "")
                    + ", lastCheckFailure=" + (f == null ? "none" : f.toString());
        }

        private String inFlightFor() {
            long began = checkBegan;
            return began == 0 ? " (starting)" : " (for " + (System.nanoTime() - began) / 1_000_000 + " ms)";
        }

        List<String> trimArgs() {
            return config.trimPolicy() == TrimPolicy.EVICT ? evictArgs : safeArgs;
        }
    }

    /**
     * {@code waitUntil}: when its wait for room ends; {@code deadline}: when the publish as a whole must end
     * (System.nanoTime); {@code destination}: the stream as its meters name it (a tools reply on a caller's own
     * reply_to is metered as {@code {reply_to}}, not one series per name a caller chose).
     */
    record Parked(byte[] payload, byte[] traceId, CompletableFuture<String> future, long waitUntil, long deadline, String dedupeKey,
            byte[][] trace, byte[] target, long parkedAt, String destination) {
    }

    /** Test seam: how a trim check's completion is run (by default at once, on the thread that completes it). */
    volatile java.util.function.Consumer<Runnable> completeVia = Runnable::run;

    StreamGuard(BusConfig config, RedisClusterAsyncCommands<String, byte[]> redis, ServerCode code, ScheduledExecutorService scheduler,
            ServerVersion version, Function<String, StreamPublisher> publishers, java.util.function.Supplier<BusHooks> hooks) {
        this.config = config;
        this.hooks = hooks;
        this.redis = redis;
        this.code = code;
        this.scheduler = scheduler;
        this.publishers = publishers;
        String cap = Long.toString(config.streamMaxlen());
        this.evictArgs = List.of("MAXLEN", "~", cap);
        this.capArg = cap.getBytes(StandardCharsets.US_ASCII);
        this.safeArgs = version.hasAckedTrimming() ? List.of("ACKED", "MAXLEN", "~", cap) : List.of();
        this.noGroupSlack = noGroupSlack(config.streamMaxlen());
    }

    /** Forgets what it knows of {@code stream} unless the stream is full or has publishes waiting. */
    void forgetIfQuiet(String stream) {
        states.computeIfPresent(stream, (k, st) -> st.full || st.anyParked || st.checking.get() ? st : null);
    }

    /** What this process knows of {@code stream}'s length and checks ({@link State#toString}), for a diagnosis. */
    String describe(String stream) {
        State st = states.get(stream);
        return st == null ? "stream '" + stream + "': nothing known (not published to, or forgotten while idle)" : st.toString();
    }

    State state(String stream) {
        return states.computeIfAbsent(stream, State::new);
    }

    /**
     * Publishes through the stream's publisher, or holds or refuses the publish while the stream is full, or holds it
     * for the answer of a check in flight that is overdue ({@link #overdue}). The fast path is three volatile reads.
     * {@code target}: null, or (relay mode) the shared stream an entry for the outbox {@code stream} is for
     * (StreamPublisher.Pending). {@code limited}: held to SG_PUBLISH_QUEUE_LIMIT; false
     * for a publish that was admitted within it while it waited elsewhere (behind a retry: {@link RetryLanes}).
     */
    CompletableFuture<String> publish(String stream, byte[] payload, byte[] traceId, long deadlineNanos, String dedupeKey,
            byte[][] trace, byte[] target, boolean blocking, boolean limited, String destination) {
        State s = state(stream);
        if (config.trimPolicy() == TrimPolicy.SAFE && (s.full || s.anyParked || overdue(s))) {
            if (config.backpressure() == Backpressure.REJECT && s.full) {
                recheckSoon(s);
                return CompletableFuture.failedFuture(rejected(s));
            }
            CompletableFuture<String> f = new CompletableFuture<>();
            synchronized (s.parked) {
                // Under REJECT a publish is held only for a check's answer, never at a stream known full: the check that
                // was in flight at the test above may have found the stream full and refused those waiting (rejectParked)
                // before this lock was taken. Held, this one waited for a later check, or SG_BACKPRESSURE_TIMEOUT_MS.
                if (config.backpressure() == Backpressure.REJECT && s.full) {
                    recheckSoon(s);
                    return CompletableFuture.failedFuture(rejected(s));
                }
                // Looked at again under the lock that the completing check releases held publishes under: one that
                // finds the check still in flight here is released by it (it ends the check before taking the lock).
                if (s.full || !s.parked.isEmpty() || overdue(s)) {
                    // Held publishes take memory as queued ones do: one limit bounds both, so however long the stream
                    // stays full, this stream's publishes waiting here and in its publisher stay within it.
                    int limit = config.publishQueueLimit();
                    if (limited && s.parked.size() + publishers.apply(stream).queued() >= limit) {
                        return CompletableFuture.failedFuture(new PublishQueueFullException(stream, limit));
                    }
                    long now = System.nanoTime();
                    long bound = now + config.backpressureTimeout().toNanos();
                    long waitUntil = deadlineNanos - bound < 0 ? deadlineNanos : bound;
                    s.parked.add(new Parked(payload, traceId, f, waitUntil, deadlineNanos, dedupeKey, trace, target, now, destination));
                    s.anyParked = true;
                    recheckSoon(s);
                    return f;
                }
            }
        }
        CompletableFuture<String> id = submit(stream, payload, traceId, s.trimArgs(), deadlineNanos, dedupeKey, trace, target, blocking, limited);
        published(s);
        return id;
    }

    /** The stream's publishes waiting in this process: held here while it is full, and queued in its publisher. */
    int waiting(String stream) {
        State s = states.get(stream);
        int held = 0;
        if (s != null) {
            synchronized (s.parked) {
                held = s.parked.size();
            }
        }
        return held + publishers.apply(stream).queued();
    }

    /**
     * Hands a publish to the stream's publisher, held to its queue limit if {@code limited}; one the idle sweep retired
     * meanwhile is replaced by the map's new one.
     */
    private CompletableFuture<String> submit(String stream, byte[] payload, byte[] traceId, List<String> trimArgs, long deadline,
            String dedupeKey, byte[][] trace, byte[] target, boolean blocking, boolean limited) {
        return StreamPublisher.onCurrent(publishers, stream,
                p -> p.submit(payload, traceId, trimArgs, deadline, dedupeKey, trace, target, blocking, limited));
    }

    /** Counts a publish; when the stream may have reached its cap, checks it in the background. */
    private void published(State s) {
        long since = s.sinceCheck.incrementAndGet();
        // The first publish to this stream from here looks at it: its length and whether it has groups.
        boolean first = !s.looked.get() && s.looked.compareAndSet(false, true);
        if (first || checkDue(s, s.lastLength, since)) {
            check(s);
        }
    }

    /** Under SAFE: whether the stream, {@code length} at the last check and {@code since} publishes from here after it, may be at its cap. */
    private boolean checkDue(State s, long length, long since) {
        return config.trimPolicy() == TrimPolicy.SAFE && length + since >= config.streamMaxlen()
                && (s.hasGroups || since >= noGroupSlack);
    }

    /**
     * A check is in flight and this process has published past the cap by more than {@link #noGroupSlack} since the
     * check it knows of: the publish waits for that check's answer. Without it a check whose answer was slow (its
     * connection's I/O thread not scheduled on a busy machine, while blocking publishes go on their own connections)
     * let a publisher take the stream past its cap by as many as it could publish meanwhile: with a cap of 1 000 and
     * REJECT, TrimPolicyIT saw 1 664 publishes accepted before the first refusal.
     */
    private boolean overdue(State s) {
        // Not while checks fail (a user without XINFO, say): their answer bounds nothing, and waiting for each one would
        // only slow publishing down to a failed round trip per batch; that failure is warned about instead (failed()).
        return s.checking.get() && s.checkFailure == null && checkDue(s, s.lastLength, s.sinceCheck.get() - noGroupSlack);
    }

    private void recheckSoon(State s) {
        if (!s.checking.get()) {
            try {
                scheduler.schedule(() -> check(s), FULL_RECHECK_MS, TimeUnit.MILLISECONDS);
            } catch (java.util.concurrent.RejectedExecutionException closing) {
                // The bus is closing: failParked answers what is held.
            }
        }
    }

    /** Under REJECT, the publishes that waited for a check's answer ({@link #overdue}) and found the stream full: refused. */
    private void rejectParked(State s) {
        java.util.List<Parked> refused = new java.util.ArrayList<>();
        synchronized (s.parked) {
            Parked p;
            while ((p = s.parked.poll()) != null) refused.add(p);
            s.anyParked = false;
        }
        // Failed outside the lock, as expireParked does: a future's callbacks may publish to this stream again.
        for (Parked p : refused) p.future.completeExceptionally(rejected(s));
    }

    /** The refusal of a publish to {@code s}, full under SG_BACKPRESSURE=reject: what this process knows of it. */
    private BackpressureException rejected(State s) {
        return new BackpressureException(s.stream, s.lastLength, config.streamMaxlen(), s.laggingGroup,
                "publish rejected (SG_BACKPRESSURE=reject)");
    }

    /** Fails every held publish (the bus is closing): none was written. */
    void failParked() {
        for (State s : states.values()) {
            synchronized (s.parked) {
                Parked p;
                while ((p = s.parked.poll()) != null) {
                    p.future.completeExceptionally(new BackpressureException(s.stream, s.lastLength, config.streamMaxlen(), s.laggingGroup,
                            "the bus closed while the publish waited for room: nothing was written"));
                }
                s.anyParked = false;
            }
        }
    }

    /**
     * Under SAFE, whether a check of {@code s} must not trim it for want of a group: this process saw a group on it,
     * and it has not yet been at its cap without one for SG_BACKPRESSURE_TIMEOUT_MS. A consumer that was running
     * re-creates its lost group at the last entry it knew delivered, before everything stored since
     * (docs/reliability.md, "A consumer group that disappears"): trimming those as a stream nobody reads lost them
     * silently. The script itself tells (ARGV[2]), since only it sees whether the groups are still there: a check
     * that went by what the last one found trimmed a stream whose groups were lost since (Redis restarted empty) at
     * its first look. A group gone for good does not hold the stream for ever: past that time it is trimmed as a
     * stream without groups.
     */
    private boolean holdsForLostGroups(State s, long now) {
        long since = s.groupsGoneSince;
        return config.trimPolicy() == TrimPolicy.SAFE && s.sawGroups
                && (since == 0 || now - since < config.backpressureTimeout().toNanos());
    }

    /**
     * Runs the trim script once (never two at a time per stream: a check runs until its reply is applied,
     * {@link #applyResult}) and acts on what it finds.
     */
    void check(State s) {
        if (!s.checking.compareAndSet(false, true)) {
            return;
        }
        long began = System.nanoTime();
        s.checkBegan = began;
        try {
            boolean hold = holdsForLostGroups(s, began);
            long sinceAtStart = s.sinceCheck.get();
            // Publishes handed over before this check and not yet answered may land after its XLEN: counted as if they
            // came after it, or a burst that is still on the wire when a check runs leaves the stream over its cap.
            long unansweredAtStart = publishers.apply(s.stream).unanswered();
            code.<String, byte[], List<Object>>run(redis, TRIM_SCRIPT, ScriptOutputType.MULTI, new String[] {s.stream}, capArg, hold ? HOLD : NO_HOLD)
                    .whenComplete((r, e) -> completeVia.accept(() -> completed(s, r, e, hold, sinceAtStart, unansweredAtStart)));
        } catch (RuntimeException e) {
            // Thrown before the script was sent: with the flag left set, no check of this stream could ever run again.
            // Publishes held for its answer go, as when a sent check fails (completed).
            endCheck(s);
            failed(s, e);
            if (!s.full) releaseParked(s);
            recheckSoon(s);
        }
    }

    private void completed(State s, List<Object> r, Throwable e, boolean hold, long sinceAtStart, long unansweredAtStart) {
        s.checksDone++; // one check at a time: no lost update
        if (e != null) {
            endCheck(s);
            failed(s, e);
            // Publishes held only for this check's answer go, as they would have without it: a failing check (a user
            // without XINFO, an outage of the connection it runs on) is warned about, it does not stop publishing.
            if (!s.full) releaseParked(s);
            if (s.full || s.anyParked) recheckSoon(s);
            expireParked(s);
            return;
        }
        s.checkFailure = null;
        s.failureWarned = false;
        long length;
        try {
            length = applyResult(s, r, hold, sinceAtStart);
        } catch (Throwable bug) {
            // Said loudly: the completion's caller (Lettuce) would drop it unseen, and with the flag left set no check of
            // this stream could run again. Only here: past endCheck another check may be running, its flag not ours.
            endCheck(s);
            s.checkFailure = bug;
            log.atError().addKeyValue("stream", s.stream).addKeyValue("state", s).setCause(bug).log("Trim check's reply could not be applied");
            recheckSoon(s);
            if (bug instanceof Error error) throw error;
            return;
        }
        // Only now may another check start: one that began before this check's count was taken off sinceCheck read
        // that count too, and took it off again when it completed. The stream's estimate then fell short by about the
        // cap, so no publish checked it again (a stream at its cap, its group caught up and Redis out of memory, stayed
        // untrimmed: BusAcceptanceFunctionsIT failed once in CI so).
        boolean full = s.full;
        endCheck(s);
        if (full) {
            recheckSoon(s);
            if (config.backpressure() == Backpressure.REJECT) rejectParked(s);
            else expireParked(s);
        } else {
            releaseParked(s);
            // Publishes made while this check ran started none of their own (one check at a time): if they may have
            // taken the stream to its cap again, check again now, or it stays over the cap until the next publish.
            if (checkDue(s, length, s.sinceCheck.get() + unansweredAtStart)) {
                check(s);
            }
        }
    }

    /** The check in flight is over: another may start. */
    private static void endCheck(State s) {
        s.checkBegan = 0;
        s.checking.set(false);
    }

    /**
     * A check that failed while the stream may be at its cap is said at WARN, once until one succeeds: meanwhile
     * publishes wait for room or, if Redis is out of memory, fail, and the operator must be able to see why. Elsewhere
     * (a stream far from its cap) a failed check costs nothing yet: DEBUG.
     */
    private void failed(State s, Throwable e) {
        s.checkFailure = e;
        if (!s.failureWarned && (s.full || s.anyParked || s.lastLength + s.sinceCheck.get() >= config.streamMaxlen())) {
            s.failureWarned = true;
            log.atWarn().addKeyValue("stream", s.stream).addKeyValue("state", s).setCause(e)
                    .log("Trim check failed while the stream may be at its cap; retried while it is held full, or at the next publish");
        } else {
            log.atDebug().addKeyValue("stream", s.stream).setCause(e).log("Trim check failed");
        }
    }

    /**
     * {@code held}: the check asked the script to hold; a stream it found at its cap without groups was then not
     * trimmed, and stays full even if SG_BACKPRESSURE_TIMEOUT_MS ran out meanwhile (the next check trims it): released
     * onto a stream nobody trimmed, held publishes took it past its cap, and the log said it was trimmed. Updates the
     * stream's state only, while the check still counts as running ({@link #completed} ends it); returns the length found.
     */
    private long applyResult(State s, List<?> r, boolean held, long sinceAtStart) {
        long length = Replies.num(r.get(0));
        String lagging = String.valueOf(Replies.text(r.get(1)));
        boolean hasGroups = Replies.num(r.get(2)) == 1;
        s.sinceCheck.addAndGet(-sinceAtStart);
        s.lastLength = length;
        s.hasGroups = hasGroups;
        s.laggingGroup = lagging;
        boolean safe = config.trimPolicy() == TrimPolicy.SAFE;
        boolean atCap = length >= config.streamMaxlen();
        long now = System.nanoTime();
        if (hasGroups) {
            s.sawGroups = true;
            s.groupsGoneSince = 0;
        } else if (safe && s.sawGroups && atCap && s.groupsGoneSince == 0) {
            s.groupsGoneSince = now == 0 ? 1 : now;
        }
        boolean heldForLostGroups = !hasGroups && atCap && held;
        boolean full = safe && atCap && (hasGroups || heldForLostGroups);
        if (full && !s.full) {
            log.atWarn().addKeyValue("stream", s.stream).addKeyValue("length", length).addKeyValue("maxlen", config.streamMaxlen())
                    .addKeyValue("group", lagging).addKeyValue("backpressure", config.backpressure().name().toLowerCase())
                    .log(hasGroups ? "Stream is at its cap and a group lags: holding publishes instead of trimming unread entries"
                            : "Stream is at its cap and has lost the consumer groups it had (Redis restarted empty, or they were "
                            + "deleted): holding publishes instead of trimming entries a re-created group would read, for up to "
                            + "SG_BACKPRESSURE_TIMEOUT_MS (" + config.backpressureTimeout().toMillis() + " ms)");
        } else if (!full && s.full && !hasGroups && s.groupsGoneSince != 0) {
            log.atWarn().addKeyValue("stream", s.stream).addKeyValue("length", length).addKeyValue("maxlen", config.streamMaxlen())
                    .log("No consumer group came back to the stream within SG_BACKPRESSURE_TIMEOUT_MS: trimmed to its cap as a "
                            + "stream without groups");
        } else if (!full && s.full) {
            log.atInfo().addKeyValue("stream", s.stream).addKeyValue("length", length).log("Stream has room again");
        }
        s.full = full;
        return length;
    }

    /**
     * Sends held publishes in their order, once there is room: all of them, past the queue limit if need be, since
     * each was admitted within it when it was held; new publishes wait for this lock, so none overtakes them.
     */
    private void releaseParked(State s) {
        synchronized (s.parked) {
            Parked p;
            while ((p = s.parked.poll()) != null) {
                CompletableFuture<String> target = p.future;
                try {
                    hooks.get().backpressureWaited(p.destination, System.nanoTime() - p.parkedAt, true);
                    submit(s.stream, p.payload, p.traceId, s.trimArgs(), p.deadline, p.dedupeKey, p.trace, p.target, false, false).whenComplete((id, e) -> {
                        if (e != null) target.completeExceptionally(e);
                        else target.complete(id);
                    });
                } catch (RuntimeException e) {
                    // Taken off the deque already: answered here, or its caller would wait for ever. The others still go.
                    target.completeExceptionally(e);
                }
                s.sinceCheck.incrementAndGet();
            }
            s.anyParked = false;
        }
    }

    /**
     * Fails the held publishes whose wait is over, in every stream: run by the bus's timer, since a trim check may not
     * complete for as long as Redis does not answer (Lettuce's command timeout), and a held publish must end by its
     * own deadline all the same.
     */
    void expireParked(long now) {
        for (State s : states.values()) {
            if (s.anyParked) expireParked(s, now);
        }
    }

    private void expireParked(State s) {
        expireParked(s, System.nanoTime());
    }

    /**
     * Each is looked at, not only the oldest: a publish that first waited elsewhere (behind a retry) arrives with an
     * older deadline, so the waits do not end in arrival order.
     */
    private void expireParked(State s, long now) {
        java.util.List<Parked> over = new java.util.ArrayList<>();
        synchronized (s.parked) {
            // Taken out under the lock, failed after it: a future's callbacks may publish to this stream again (a caller,
            // or RetryLanes letting the publishes behind a retry go), which holds a publish in this same deque.
            for (java.util.Iterator<Parked> it = s.parked.iterator(); it.hasNext(); ) {
                Parked p = it.next();
                if (p.waitUntil - now <= 0) {
                    it.remove();
                    over.add(p);
                }
            }
            s.anyParked = !s.parked.isEmpty();
        }
        for (Parked p : over) {
            boolean byDeadline = p.waitUntil == p.deadline;
            BackpressureException waited = new BackpressureException(s.stream, s.lastLength, config.streamMaxlen(), s.laggingGroup,
                    "waited " + (now - p.parkedAt) / 1_000_000 + " ms for room, until "
                    + (byDeadline ? "the publish timeout (SG_PUBLISH_TIMEOUT_MS)" : "the backpressure timeout (SG_BACKPRESSURE_TIMEOUT_MS)")
                    + ": nothing was written");
            try {
                hooks.get().backpressureWaited(p.destination, now - p.parkedAt, false);
            } catch (RuntimeException e) {
                // Taken off the deque already: answered all the same, as on release (releaseParked), and the others too.
                waited.addSuppressed(e);
                log.atWarn().addKeyValue("stream", s.stream).setCause(e).log("A metrics hook failed as a held publish's wait ended");
            }
            p.future.completeExceptionally(waited);
        }
    }

    /**
     * Dead-letter streams named by their consumers' {@code deadLetterStream} where it is not the topology's suffix (those
     * ending in {@link io.stargazer.bus.Topology#deadLetterSuffix()} need no entry here).
     */
    private final java.util.Set<String> deadLetterStreams = ConcurrentHashMap.newKeySet();

    /** {@code stream} holds dead letters: the bus never trims it ({@link #keptWhole}). */
    void deadLetterStream(String stream) {
        deadLetterStreams.add(stream);
    }

    /**
     * Whether the bus leaves {@code stream} uncapped: a dead-letter stream. A dead letter has already been acknowledged on
     * its source stream, so it is its only copy, and it has no group to protect it: under either policy the cap would
     * delete the oldest of an outage's dead letters before anyone replayed them (docs/operating.md, "Dead letters").
     * They are kept until the operator purges them.
     */
    boolean keptWhole(String stream) {
        return stream.endsWith(config.topology().deadLetterSuffix()) || deadLetterStreams.contains(stream);
    }

    /** XADD options for a write this guard does not route (dead letters, answers, the relay's moves): the same cap rules. */
    List<String> trimArgsFor(String stream) {
        return keptWhole(stream) ? List.of() : state(stream).trimArgs();
    }

    boolean isFull(String stream) {
        return !keptWhole(stream) && state(stream).full;
    }

    void countPublish(String stream) {
        if (!keptWhole(stream)) published(state(stream));
    }
}
