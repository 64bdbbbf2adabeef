package io.stargazer.bus.internal;

import io.lettuce.core.ScriptOutputType;
import io.lettuce.core.cluster.api.async.RedisClusterAsyncCommands;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Tools run once per request: the tools service's memory of each request_id, kept in Redis beside the tools stream
 * (in its cluster slot, so each step is one script).
 *
 * <p>Before a tool runs, {@link #begin} takes a lease on the request ({@code <tools stream>:run:<request_id>}, held
 * while the tool runs and renewed every {@link #RENEW_EVERY}) unless a result is stored already
 * ({@code <tools stream>:result:<request_id>}, the encoded reply, kept for the dedupe window). When the tool returns,
 * {@link #finish} stores its reply and drops the lease in one script, before the reply is sent. So a request taken
 * over after a crash, or sent twice, gets the stored reply instead of running the tool again; and while a live
 * instance runs it, a second copy of the request does not start it again. A tool whose instance died while it ran is
 * run again once its lease has lapsed: whether its effect happened cannot be known (docs/tools.md).
 *
 * <p>Threads: {@link #begin} and {@link #finish} are called from the service's threads and answer on Redis I/O
 * threads; one daemon thread renews leases.
 */
final class ToolRuns implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(io.stargazer.bus.tools.ToolService.class);
    /**
     * The shortest a lease outlives its last renewal. A lease is at least the claim time too ({@link #lease}): an
     * outage that lapses it also lets another instance take the request over, so it adds no way of running twice.
     */
    static final Duration MIN_LEASE = Duration.ofSeconds(10);
    /** How often leases are renewed (and taken back when they lapsed during an outage). */
    static final Duration RENEW_EVERY = Duration.ofSeconds(3);

    static final String BEGIN = LibrarySource.script("tool_begin", "tool_keys");
    static final String RENEW = LibrarySource.script("tool_renew", "tool_keys");
    /** The owner's renewal alone, which Redis out of memory still runs under the library ({@code allow-oom}). */
    static final String KEEP = LibrarySource.script("tool_keep", "tool_keys");
    static final String FINISH = LibrarySource.script("tool_finish", "tool_keys");

    /** What {@link #begin} found. {@code stored}: the reply already stored ({@code DONE}); {@code owner}: who holds it ({@code BUSY}). */
    record Start(Kind kind, byte[] stored, String owner) {
        enum Kind { RUN, DONE, BUSY }
    }

    private final RedisClusterAsyncCommands<String, byte[]> redis;
    private final ServerCode code;
    private final String toolsStream;
    private final byte[] windowMillis;
    private final Duration lease;
    private final byte[] leaseMillis;
    /** Leases this instance holds, by run key. */
    private final Map<String, Lease> held = new ConcurrentHashMap<>();
    private final ScheduledExecutorService renewer;
    /** Set by {@link #close}: only the leases of tools still running are renewed from then on. */
    private volatile boolean closed;

    /** What {@link #finish} stored. {@code earlier}: another run had stored a reply before, which {@code reply} is then. */
    record Finish(boolean earlier, byte[] reply) {
    }

    /**
     * A lease held here: its request and the value it set. {@code lost}: another run holds or finished it.
     * {@code reply}: the encoded reply of a run that returned here and is not stored yet.
     */
    private static final class Lease {
        final String requestId;
        final byte[] owner;
        volatile boolean lost;
        volatile byte[] reply;

        Lease(String requestId, byte[] owner) {
            this.requestId = requestId;
            this.owner = owner;
        }
    }

    /** {@code claimIdle}: the tools service's claim time; the lease lasts at least that long. */
    ToolRuns(RedisClusterAsyncCommands<String, byte[]> redis, ServerCode code, String toolsStream, Duration window, Duration claimIdle) {
        this.redis = redis;
        this.code = code;
        this.toolsStream = toolsStream;
        this.windowMillis = ascii(Long.toString(window.toMillis()));
        this.lease = lease(claimIdle);
        this.leaseMillis = ascii(Long.toString(lease.toMillis()));
        this.renewer = Executors.newSingleThreadScheduledExecutor(r -> {
            Thread t = new Thread(r, "stargazer-tool-leases");
            t.setDaemon(true);
            return t;
        });
        long every = Math.min(RENEW_EVERY.toMillis(), lease.toMillis() / 3);
        renewer.scheduleWithFixedDelay(this::renew, every, every, TimeUnit.MILLISECONDS);
    }

    /** How long a lease lasts past its last renewal, for a service whose claim time is {@code claimIdle}. */
    static Duration lease(Duration claimIdle) {
        return claimIdle.compareTo(MIN_LEASE) > 0 ? claimIdle : MIN_LEASE;
    }

    Duration lease() {
        return lease;
    }

    /**
     * The lease holder's name for entry {@code entryId} taken by the service instance named {@code instance} (its
     * consumer name and a token of its own): a retry of the entry on that instance finds its own lease, any other
     * instance finds it held. It ends with {@code "|" + entryId}, which tells a copy from the same entry taken over.
     */
    static String owner(String instance, String entryId) {
        return instance + "|" + entryId;
    }

    CompletableFuture<Start> begin(String requestId, String owner) {
        String runKey = runKey(requestId);
        return code.<String, byte[], List<Object>>run(redis, BEGIN, ScriptOutputType.MULTI, new String[] {resultKey(requestId), runKey}, ascii(owner), leaseMillis)
                .toCompletableFuture().thenApply(r -> {
                    String kind = text(r.get(0));
                    byte[] value = (byte[]) r.get(1);
                    if (kind.equals("done")) {
                        return new Start(Start.Kind.DONE, value, null);
                    }
                    if (kind.equals("run")) {
                        held.put(runKey, new Lease(requestId, utf8(owner)));
                        return new Start(Start.Kind.RUN, null, null);
                    }
                    return new Start(Start.Kind.BUSY, null, new String(value, StandardCharsets.UTF_8));
                });
    }

    /**
     * Stores the encoded reply of a run, unless a reply is stored already, and gives up its lease; completes when
     * stored. Until then the reply is kept here and the lease stays held (and renewed): a retry of the request on this
     * instance stores and sends it ({@link #unstored}) instead of running the tool again, and each renewal tries to store it. Before,
     * the lease was let go first and a reply Redis did not take was forgotten: the retry, finding its own lease and no
     * reply, ran the tool a second time.
     */
    CompletableFuture<Finish> finish(String requestId, String owner, byte[] reply) {
        String runKey = runKey(requestId);
        Lease l = held.computeIfAbsent(runKey, k -> new Lease(requestId, utf8(owner)));
        l.reply = reply;
        return store(runKey, l);
    }

    /** The reply of a run of {@code requestId} that returned here and is not stored yet, or null. */
    byte[] unstored(String requestId) {
        Lease l = held.get(runKey(requestId));
        return l == null ? null : l.reply;
    }

    private CompletableFuture<Finish> store(String runKey, Lease l) {
        byte[] reply = l.reply;
        CompletableFuture<List<Object>> stored;
        try {
            stored = code.<String, byte[], List<Object>>run(redis, FINISH, ScriptOutputType.MULTI, new String[] {resultKey(l.requestId), runKey},
                    reply, windowMillis, l.owner).toCompletableFuture();
        } catch (RuntimeException e) {
            return CompletableFuture.failedFuture(e);
        }
        return stored.thenApply(r -> {
            held.remove(runKey, l);
            return text(r.get(0)).equals("done") ? new Finish(true, (byte[]) r.get(1)) : new Finish(false, reply);
        });
    }

    /** Gives up a lease without a result (the run could not be finished here); it lapses after {@link #lease} anyway. */
    void abandon(String requestId) {
        held.remove(runKey(requestId));
    }

    private void renew() {
        if (closed && noneRunning()) {
            renewer.shutdown();
            return;
        }
        for (Map.Entry<String, Lease> e : held.entrySet()) {
            Lease l = e.getValue();
            // Closed: a reply Redis did not take is given up, as close() warned; only a running tool's lease is kept.
            if (closed && l.reply != null) continue;
            // Renewed also while it holds a reply Redis did not take: a store can fail where a renewal does not (Redis
            // out of memory refuses the reply's SET, not the lease's PEXPIRE). Before, the store was tried instead of
            // the renewal, the lease lapsed, and an instance that took the request over ran its tool a second time.
            if (!l.lost) renewLease(e.getKey(), l);
            if (l.reply != null) {
                // Storing it also settles the lease; a retry of the request finds it stored then.
                store(e.getKey(), l).whenComplete((f, x) -> {
                    if (x == null) log.atInfo().addKeyValue("request_id", l.requestId).log("Stored a tool's reply that Redis could not take when the tool returned");
                });
            }
        }
    }

    private void renewLease(String runKey, Lease l) {
        try {
            String[] keys = {resultKey(l.requestId), runKey};
            code.<String, byte[], Long>run(redis, RENEW, ScriptOutputType.INTEGER, keys, l.owner, leaseMillis).whenComplete((r, x) -> {
                // A run finished (or given up) meanwhile is not news: its own finish may be what the renewal found.
                if (r != null && held.get(runKey) == l) renewed(l, r);
                // Out of memory Redis refuses a function that may add data as a whole (a script only at its SET): the
                // owner's PEXPIRE alone still runs, so the lease does not lapse while the tool runs or its reply waits.
                if (x != null && isOutOfMemory(x)) keep(runKey, keys, l);
            });
        } catch (RuntimeException ignored) {
            // not connected: the next renewal tries again, and takes the lease back if it lapsed meanwhile
        }
    }

    private void keep(String runKey, String[] keys, Lease l) {
        try {
            code.<String, byte[], Long>run(redis, KEEP, ScriptOutputType.INTEGER, keys, l.owner, leaseMillis).whenComplete((r, x) -> {
                // -2 (lapsed, nobody holds it) is taken back by the next renewal Redis lets add the key.
                if (r != null && r == 0 && held.get(runKey) == l) renewed(l, 0);
            });
        } catch (RuntimeException ignored) {
            // not connected: the next renewal tries again
        }
    }

    private static boolean isOutOfMemory(Throwable x) {
        return String.valueOf(Failures.unwrap(x).getMessage()).startsWith("OOM");
    }

    /** What a renewal found. Only a lapse is news: each is logged once, as the promise to copies of the request is at stake. */
    private void renewed(Lease l, long outcome) {
        if (outcome == 2) {
            log.atWarn().addKeyValue("request_id", l.requestId).addKeyValue("lease_ms", lease.toMillis())
                    .log("The run lease of a running tool had lapsed (Redis paused or unreachable for longer than the lease); "
                            + "taken back. A copy of the request that came in that gap may have started the tool again");
        } else if (outcome == 0 || outcome == -1) {
            l.lost = true;
            log.atWarn().addKeyValue("request_id", l.requestId).addKeyValue("this_run", new String(l.owner, StandardCharsets.UTF_8))
                    .log(outcome == 0
                            ? "The run lease of a running tool lapsed and another run of the request holds it now: the tool runs twice"
                            : "The run lease of a running tool lapsed and another run of the request has finished: the tool ran twice");
        }
    }

    private String runKey(String requestId) {
        return Dedupe.slotKey(toolsStream, "run:" + requestId);
    }

    private String resultKey(String requestId) {
        return Dedupe.slotKey(toolsStream, "result:" + requestId);
    }

    @Override
    public void close() {
        closed = true;
        // A tool deaf to close()'s interrupt still runs: its lease is renewed until it returns. Let lapse, the instance
        // that takes the request over ran the tool a second time beside it (ToolDeafToCloseIT).
        if (noneRunning()) renewer.shutdownNow();
        long unstored = held.values().stream().filter(l -> l.reply != null).count();
        if (unstored > 0) {
            log.atWarn().addKeyValue("requests", unstored).log("Closed with tool replies Redis has not taken yet: their requests stay "
                    + "pending, and whoever takes them over runs their tools again");
        }
    }

    /** No lease held here is of a tool still running (each is of a reply Redis has not taken, or there is none). */
    private boolean noneRunning() {
        return held.values().stream().allMatch(l -> l.reply != null);
    }

    private static byte[] ascii(String s) {
        return s.getBytes(StandardCharsets.US_ASCII);
    }

    private static byte[] utf8(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }

    private static String text(Object o) {
        return o instanceof byte[] b ? new String(b, StandardCharsets.UTF_8) : String.valueOf(o);
    }
}
