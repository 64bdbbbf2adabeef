package io.stargazer.bus.internal;

import io.stargazer.bus.ConfigException;
import io.stargazer.bus.ConsumerConfig;
import io.stargazer.bus.Delivery;
import io.stargazer.bus.Envelope;
import io.stargazer.bus.EnvelopeTooLargeException;
import io.stargazer.bus.EventBus;
import io.stargazer.bus.BusConnectionException;
import io.stargazer.bus.PublishOptions;
import io.stargazer.bus.StargazerException;
import io.stargazer.bus.wire.WireFormat;
import io.stargazer.bus.Subscription;
import io.stargazer.bus.Topology;
import io.stargazer.bus.tools.ToolException;
import io.stargazer.bus.tools.ToolRegistry;
import io.stargazer.bus.tools.ToolRequest;
import io.stargazer.bus.tools.ToolService;
import io.stargazer.bus.tools.ToolServiceConfig;
import io.stargazer.bus.wire.MalformedEntryException;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.LongAdder;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The tools side of tool calls (see {@link ToolService}): a subscription to the tools stream with the tools group
 * whose handler answers what needs no tool (expired, unknown; no room, once the request's lease is looked up) and
 * hands the rest to a fixed pool of tool threads; a request is acknowledged when the future the handler returned
 * completes, that is once its reply is stored.
 */
final class RedisToolService implements ToolService {
    private static final Logger log = LoggerFactory.getLogger(ToolService.class);
    private static final ThreadLocal<ToolRequest> CURRENT = new ThreadLocal<>();
    /** The handler only sorts requests and hands them over; two threads keep one slow publish from stalling it. */
    private static final int HANDLER_THREADS = 2;
    /** A reply's dedupe key is this and its request_id (docs/once.md). */
    static final String REPLY_KEY_PREFIX = "tool-reply:";
    /**
     * The publish meters' name of every reply stream outside this topology's reply prefix: reply_to is the request's
     * to choose, and a series per name would let requests add series without bound.
     */
    public static final String OTHER_REPLY_DESTINATION = "{reply_to}";

    private final EventBus bus;
    private final ToolRegistry registry;
    private final ToolServiceConfig cfg;
    private final Semaphore room;
    private final HandlerPool tools;
    private final Set<CompletableFuture<Void>> outstanding = ConcurrentHashMap.newKeySet();
    private final AtomicBoolean closed = new AtomicBoolean();
    /** Set by close() just before it interrupts the tools still running (its close timeout has passed). */
    private volatile boolean interruptingTools;
    private final AtomicInteger running = new AtomicInteger();
    private final AtomicInteger queued = new AtomicInteger();
    private final LongAdder received = new LongAdder();
    private final LongAdder succeeded = new LongAdder();
    private final LongAdder errors = new LongAdder();
    private final LongAdder expired = new LongAdder();
    private final LongAdder overloaded = new LongAdder();
    private final LongAdder malformed = new LongAdder();
    private final LongAdder unanswered = new LongAdder();
    private Subscription subscription;
    private String consumerName;
    /**
     * This instance's name on the leases it takes: its consumer name and a token of its own. The consumer name alone
     * is not this instance's: another started under it (a node restarted with its node id while the old process still
     * runs, a service started again while a tool of its last run ignores the interrupt) reads that consumer's pending
     * requests as its own, and took a running tool's lease for its own and ran the tool again (ToolsSameConsumerNameIT).
     */
    private String runOwner;
    /** Run-once memory of requests; null on a bus that is not this library's own (then at least once, as before). */
    private final ToolRuns runs;

    /** One request being answered: what the reply needs, and the future that settles its delivery. */
    /**
     * {@code trace}: the delivery's trace context (BusTracing), carried to the thread that answers; null when not tracing.
     * {@code once}: the options of a reply sent once (its dedupe key), made when the request was read.
     */
    private record Job(Delivery delivery, String requestId, String tool, String replyTo, String traceId, long deadlineMs,
                       Map<String, Object> args, CompletableFuture<Void> done, Object trace, PublishOptions once) {
        /** This delivery's name on the request's lease ({@link ToolRuns}); {@code instance}: the service's {@code runOwner}. */
        String owner(String instance) {
            return ToolRuns.owner(instance, delivery.id());
        }
    }

    private RedisToolService(EventBus bus, ToolRegistry registry, ToolServiceConfig cfg, ConsumerConfig consumer) {
        this.bus = bus;
        this.registry = registry;
        this.cfg = cfg;
        this.room = new Semaphore(cfg.maxConcurrent() + cfg.maxQueued());
        this.runs = bus instanceof RedisEventBus rb ? new ToolRuns(rb.redis().sharedAsync(), rb.redis().code(), bus.topology().toolsStream(),
                bus.config().dedupeWindow(), consumer.claimIdle()) : null;
        this.tools = new HandlerPool(cfg.maxConcurrent(), "stargazer-tool");
    }

    static ToolService start(EventBus bus, ToolRegistry registry, ToolServiceConfig config) {
        Objects.requireNonNull(registry, "registry");
        Objects.requireNonNull(config, "config");
        Objects.requireNonNull(bus, "bus");
        Topology t = bus.topology();
        int capacity = config.maxConcurrent() + config.maxQueued();
        ConsumerConfig.Builder cb = config.consumer().apply(bus.consumer(t.toolsStream(), t.toolsGroup()));
        if (config.consumerName() != null) cb.consumerName(config.consumerName());
        if (config.claimIdle() != null) cb.claimIdle(config.claimIdle());
        // Read only while there is room (plus the read-ahead to answer overloaded), so idle instances get the rest.
        cb.maxInFlight(capacity + config.readAhead())
                .batchSize(Math.min(128, capacity + config.readAhead()))
                .concurrency(HANDLER_THREADS)
                .closeTimeout(config.closeTimeout());
        ConsumerConfig cc = cb.build();
        RedisToolService s = new RedisToolService(bus, registry, config, cc);
        s.consumerName = cc.consumerName();
        s.runOwner = cc.consumerName() + "|" + WireFormat.newTraceId().substring(0, 16);
        try {
            s.subscription = bus.subscribeAsync(cc, s::handle);
        } catch (RuntimeException e) {
            // Both were started by the constructor; a start retried after a failure would otherwise add threads for good.
            s.tools.shutdownNow();
            if (s.runs != null) s.runs.close();
            throw e;
        }
        log.atInfo().addKeyValue("stream", t.toolsStream()).addKeyValue("group", t.toolsGroup())
                .addKeyValue("consumer", s.consumerName).addKeyValue("tools", registry.names().size())
                .addKeyValue("max_concurrent", config.maxConcurrent()).log("Tool service started");
        return s;
    }

    static Optional<ToolRequest> currentRequest() {
        return Optional.ofNullable(CURRENT.get());
    }

    // ---- sorting requests (subscription handler threads) ---------------------------------------------------

    private CompletableFuture<Void> handle(Delivery d) {
        received.increment();
        Envelope req = d.envelope();
        String requestId = req.string(ToolWire.REQUEST_ID);
        String replyTo = req.string(ToolWire.REPLY_TO);
        if (requestId == null || requestId.isEmpty() || !usableStream(replyTo)) {
            malformed.increment();
            log.atWarn().addKeyValue("stream", d.stream()).addKeyValue("stream_msg_id", d.id())
                    .addKeyValue("delivery", d.deliveryCount())
                    .log("Tools request cannot be answered: it has no text request_id or no usable reply_to");
            return CompletableFuture.failedFuture(new MalformedEntryException(
                    "tools request without a text 'request_id' or a usable 'reply_to' stream name: cannot be answered"));
        }
        // Made here, not where the reply is sent: a request_id that cannot key its reply is known before the tool runs.
        PublishOptions once;
        try {
            once = PublishOptions.dedupeKey(REPLY_KEY_PREFIX + requestId);
        } catch (ConfigException e) {
            malformed.increment();
            String why = "tools request_id '" + Settings.printable(requestId, 64) + "' cannot be answered once: "
                    + replyKeyProblem(requestId, e);
            log.atWarn().addKeyValue("stream", d.stream()).addKeyValue("stream_msg_id", d.id())
                    .addKeyValue("delivery", d.deliveryCount()).log(why);
            return CompletableFuture.failedFuture(new MalformedEntryException(why));
        }
        if (closed.get()) {
            // Leave it pending: another instance takes it over after the claim time.
            return CompletableFuture.failedFuture(new LeavePending("tool service is closing"));
        }
        String tool = req.get(ToolWire.TOOL) instanceof String s ? s : null;
        Object rawDeadline = req.get(ToolWire.DEADLINE_MS);
        Long givenDeadline = deadlineMillis(rawDeadline);
        long deadline = givenDeadline == null ? 0 : givenDeadline;
        Object rawArgs = req.get(ToolWire.ARGS);
        @SuppressWarnings("unchecked")
        Map<String, Object> args = rawArgs == null ? Map.of() : rawArgs instanceof Map<?, ?> m ? (Map<String, Object>) m : null;
        BusTracing tracing = bus instanceof RedisEventBus r ? r.tracing() : null;
        Job job = new Job(d, requestId, tool, replyTo, req.traceId(), deadline, args, new CompletableFuture<>(),
                tracing == null ? null : tracing.current(), once);
        track(job.done);

        byte[] kept = runs == null ? null : runs.unstored(requestId);
        if (kept != null) {
            // This instance ran the tool and Redis did not take its reply: store and send that, never run it again.
            settling(job, () -> {
                Envelope reply = storedReply(requestId, kept);
                log.atInfo().addKeyValue("tool", tool).addKeyValue("request_id", requestId)
                        .log("Request tried again after its tool returned here; storing and sending the reply kept since then");
                // An "overloaded" kept from a store that failed was counted when it was made (refuse).
                finishThenAnswer(job, reply, kept, Boolean.TRUE.equals(reply.get(ToolWire.OK)) ? succeeded
                        : ToolException.OVERLOADED.equals(errorType(reply)) ? null : errors);
            });
            return job.done;
        }
        long now = bus.config().clock().millis();
        if (givenDeadline == null) {
            String why = "'deadline_ms' must be a whole number of Unix milliseconds, not " + typeName(rawDeadline) + " ("
                    + Settings.printable(String.valueOf(rawDeadline), 64) + ")";
            // WARN: a worker in another language sends it wrong on every call; each is answered, not run.
            log.atWarn().addKeyValue("tool", tool).addKeyValue("request_id", requestId).addKeyValue("reply_to", replyTo).log(why);
            answerError(job, ToolException.BAD_ARGUMENTS, why);
        } else if (deadline > 0 && now >= deadline) {
            answerExpired(job, now);
        } else if (tool == null) {
            answerError(job, ToolException.UNKNOWN_TOOL, "the request names no tool ('tool' is missing or not text)");
        } else if (registry.find(tool).isEmpty()) {
            answerError(job, ToolException.UNKNOWN_TOOL, "no tool named '" + tool + "'");
        } else if (args == null) {
            answerError(job, ToolException.BAD_ARGUMENTS, "'args' must be a map, not " + typeName(rawArgs));
        } else if (runs == null) {
            if (room.tryAcquire()) {
                queue(job);
            } else {
                overloaded.increment();
                answer(job, overloadedReply(job), null, false);
            }
        } else {
            // The lease first, then a place in the room: a copy of a request running or answered (here or elsewhere)
            // never holds a place, not even for the lookup's round trip. Before, every request took its place first and
            // a copy gave it back once the lookup said "copy", so copies read in a burst held the room while their
            // lookups were under way and requests read just after them were answered "overloaded" with the room far
            // from full of running and waiting tools (ToolsCopiesInABurstIT).
            String owner = job.owner(runOwner);
            // In settling too: a lookup that throws before it is sent fails the delivery, not leaves it unsettled.
            settling(job, () -> runs.begin(requestId, owner).whenComplete((start, e) -> settling(job, () -> {
                if (e != null) {
                    job.done.completeExceptionally(Redis.translate(e, "taking the lease of request " + requestId));
                } else if (start.kind() == ToolRuns.Start.Kind.RUN) {
                    if (closed.get()) {
                        // Read before close(), looked up after: left pending like the requests read while closing,
                        // not refused for a room close() is emptying ("overloaded" is stored as its outcome).
                        runs.abandon(requestId);
                        job.done.completeExceptionally(new LeavePending("tool service is closing"));
                    } else if (room.tryAcquire()) {
                        queue(job);
                    } else {
                        refuse(job);
                    }
                } else if (start.kind() == ToolRuns.Start.Kind.DONE) {
                    log.atInfo().addKeyValue("tool", tool).addKeyValue("request_id", requestId)
                            .log("Request already answered; sending the stored reply instead of running the tool again");
                    answer(job, storedReply(requestId, start.stored()), null, true);
                } else {
                    leasedElsewhere(job, start.owner());
                }
            })));
        }
        return job.done;
    }

    /** The {@code error.type} of a reply, or null. */
    private static Object errorType(Envelope reply) {
        return reply.get(ToolWire.ERROR) instanceof Map<?, ?> m ? m.get(ToolWire.ERROR_TYPE) : null;
    }

    private Envelope overloadedReply(Job job) {
        return error(job, ToolException.OVERLOADED, "tools instance '" + consumerName + "' is running " + running.get()
                + " tools with " + queued.get() + " waiting; try again later");
    }

    /** A copy of a request whose lease {@code owner} holds: the holder answers it (or, if it is this entry, later). */
    private void leasedElsewhere(Job job, String owner) {
        if (owner.endsWith("|" + job.delivery.id())) {
            // Taken over from an instance whose lease has not lapsed yet: try again when it has.
            job.done.completeExceptionally(new BusConnectionException("request " + job.requestId + " is still leased by '"
                    + owner + "'; trying again when the lease lapses", null));
        } else {
            log.atInfo().addKeyValue("tool", job.tool).addKeyValue("request_id", job.requestId).addKeyValue("running_on", owner)
                    .log("Request sent twice: it is running on another instance, which answers it");
            job.done.complete(null);
        }
    }

    /**
     * No room here for a request this instance holds the lease of (neither running nor answered anywhere): the refusal
     * is stored as the request's outcome, as a tool's reply is, before it is sent. The reply's dedupe key lets only the
     * first answer of a request through, so a copy that ran the tool after an "overloaded" had gone out would have its
     * result dropped, and the caller, told to try again, would run the tool a second time under a new request id.
     */
    private void refuse(Job job) {
        Envelope reply;
        byte[] encoded;
        try {
            reply = overloadedReply(job);
            encoded = WireFormat.encode(reply);
        } catch (RuntimeException bad) {
            runs.abandon(job.requestId); // the lease taken, not renewed for ever
            throw bad;
        }
        overloaded.increment();
        finishThenAnswer(job, reply, encoded, null);
    }

    /**
     * A request's {@code deadline_ms} in Unix ms: 0 when absent (no deadline); null when it is not a whole number. The
     * wire format says int; a whole float is taken too (a JavaScript number, a rounded Python float), since its meaning
     * is plain. Before, anything but an int was silently "no deadline", so a float deadline long past still ran the tool.
     */
    static Long deadlineMillis(Object v) {
        if (v == null) return 0L;
        if (v instanceof Long l) return l;
        if (v instanceof Integer || v instanceof Short || v instanceof Byte) return ((Number) v).longValue();
        if (v instanceof java.math.BigInteger big) {
            // Only a uint64 above Long.MAX_VALUE decodes as a BigInteger: later than any clock.
            return big.bitLength() < 64 ? big.longValue() : big.signum() > 0 ? Long.MAX_VALUE : null;
        }
        if (v instanceof Double || v instanceof Float) {
            double d = ((Number) v).doubleValue();
            if (Double.isFinite(d) && d == Math.rint(d) && Math.abs(d) < 0x1p63) return (long) d;
        }
        return null;
    }

    /** Why {@code tool-reply:<requestId>} is refused as a dedupe key, in the request_id's terms. */
    private static String replyKeyProblem(String requestId, ConfigException refused) {
        int longest = PublishOptions.MAX_DEDUPE_KEY_LENGTH - REPLY_KEY_PREFIX.length();
        if (requestId.length() > longest) {
            return "it is " + requestId.length() + " characters long, at most " + longest + " (its reply's dedupe key is '"
                    + REPLY_KEY_PREFIX + "<request_id>', at most " + PublishOptions.MAX_DEDUPE_KEY_LENGTH + ")";
        }
        for (int i = 0; i < requestId.length(); i++) {
            if (Character.isISOControl(requestId.charAt(i))) {
                return "it has a control character at index " + i + ", which a dedupe key ('" + REPLY_KEY_PREFIX
                        + "<request_id>') may not have";
            }
        }
        return "its reply's dedupe key '" + REPLY_KEY_PREFIX + "<request_id>' is refused (" + refused.getMessage() + ")";
    }

    private static Envelope storedReply(String requestId, byte[] stored) {
        try {
            return WireFormat.decode(stored);
        } catch (RuntimeException e) {
            throw new StargazerException("the reply stored for request '" + Settings.printable(requestId, 64)
                    + "' cannot be read: " + e.getMessage(), e);
        }
    }

    /**
     * Runs a step of answering {@code job}; whatever it throws fails the job (a failed delivery: tried again, then
     * dead-lettered). The steps run in completion stages, where an exception would otherwise be dropped with the stage
     * and leave the request pending, unanswered, for good.
     */
    private void settling(Job job, Runnable step) {
        try {
            step.run();
        } catch (RuntimeException e) {
            log.atWarn().addKeyValue("tool", job.tool).addKeyValue("request_id", job.requestId)
                    .addKeyValue("error_class", e.getClass().getName()).log("Could not answer the request: " + e.getMessage());
            job.done.completeExceptionally(e);
        }
    }

    private void queue(Job job) {
        queued.incrementAndGet();
        try {
            tools.execute(new JobTask(job));
        } catch (RejectedExecutionException e) {
            queued.decrementAndGet();
            room.release();
            if (runs != null) runs.abandon(job.requestId);
            job.done.completeExceptionally(new LeavePending("tool service is closing"));
        }
    }

    /** A queued job, recognisable when close() takes it back out of the queue. */
    private final class JobTask implements Runnable {
        final Job job;

        JobTask(Job job) {
            this.job = job;
        }

        @Override
        public void run() {
            RedisToolService.this.run(job);
        }
    }

    private void track(CompletableFuture<Void> done) {
        outstanding.add(done);
        done.whenComplete((r, e) -> outstanding.remove(done));
    }

    // ---- running tools (tool threads) ----------------------------------------------------------------------

    private void run(Job job) {
        queued.decrementAndGet();
        running.incrementAndGet();
        Envelope reply;
        String outcome;
        long started = System.nanoTime();
        try {
            long now = bus.config().clock().millis();
            if (job.deadlineMs > 0 && now >= job.deadlineMs) {
                if (runs != null) runs.abandon(job.requestId);
                answerExpired(job, now);
                return;
            }
            ToolRegistry.Tool tool = registry.find(job.tool).orElseThrow();
            CURRENT.set(new ToolRequest(job.requestId, job.tool, job.traceId, job.delivery.deliveryCount(), job.deadlineMs));
            try {
                tool.check().check(job.args);
                Object result = tool.function().apply(job.args);
                reply = ok(job, result);
                outcome = "ok";
            } catch (IllegalArgumentException e) {
                reply = error(job, ToolException.BAD_ARGUMENTS, describe(e));
                outcome = ToolException.BAD_ARGUMENTS;
            } catch (Exception e) {
                if (e instanceof InterruptedException) Thread.currentThread().interrupt();
                if (interruptingTools) {
                    // Stopped by close(), not failed: 'tool_failed' would be a wrong, final answer (stored for any
                    // takeover too). It stays pending, for another instance to run once the lease has lapsed.
                    if (runs != null) runs.abandon(job.requestId);
                    log.atWarn().addKeyValue("tool", job.tool).addKeyValue("request_id", job.requestId)
                            .log("Tool interrupted by close(); not answered, the request stays pending for another instance");
                    job.done.completeExceptionally(new LeavePending("tool service closed while tool '" + job.tool + "' ran"));
                    return;
                }
                reply = error(job, ToolException.TOOL_FAILED, describe(e));
                outcome = ToolException.TOOL_FAILED;
                log.atWarn().addKeyValue("tool", job.tool).addKeyValue("request_id", job.requestId)
                        .addKeyValue("trace_id", job.traceId).addKeyValue("error_class", e.getClass().getName())
                        .log("Tool failed");
            } finally {
                CURRENT.remove();
            }
        } catch (RuntimeException e) {
            reply = error(job, ToolException.TOOL_FAILED, describe(e));
            outcome = ToolException.TOOL_FAILED;
        } catch (Error e) {
            // Not the tool's answer but the JVM in trouble (OutOfMemoryError, StackOverflowError, ...): nothing is sent
            // to the caller. The subscription gets the Error with the request, which stays pending (for a retry, or
            // another instance), and the tool thread rethrows it to its uncaught-exception handler.
            log.atError().addKeyValue("tool", job.tool).addKeyValue("request_id", job.requestId)
                    .addKeyValue("error_class", e.getClass().getName()).log("Tool run ended with an Error; not answered");
            if (runs != null) runs.abandon(job.requestId);
            job.done.completeExceptionally(e);
            throw e;
        } finally {
            running.decrementAndGet();
            room.release();
        }
        if (log.isDebugEnabled()) {
            log.atDebug().addKeyValue("tool", job.tool).addKeyValue("request_id", job.requestId).addKeyValue("trace_id", job.traceId)
                    .addKeyValue("delivery", job.delivery.deliveryCount()).addKeyValue("outcome", outcome)
                    .addKeyValue("duration_ms", (System.nanoTime() - started) / 1_000_000).log("Tool ran");
        }
        LongAdder counter = outcome.equals("ok") ? succeeded : errors;
        if (runs == null) {
            answer(job, reply, counter, false);
            return;
        }
        // Remember the reply before sending it: a request taken over from here on gets it instead of a second run.
        byte[] encoded;
        try {
            encoded = WireFormat.encode(reply);
            if (encoded.length > bus.config().maxEnvelopeBytes() && Boolean.TRUE.equals(reply.get(ToolWire.OK))) {
                // Checked before it is stored, not when it is sent: stored, the result would be the request's outcome for
                // the dedupe window (a copy or a takeover sent it again, only to be refused), kept at its full size.
                reply = tooLarge(job, encoded.length, bus.config().maxEnvelopeBytes());
                counter = errors;
                encoded = WireFormat.encode(reply);
            }
        } catch (RuntimeException e) {
            runs.abandon(job.requestId);
            answer(job, reply, counter, false);
            return;
        }
        finishThenAnswer(job, reply, encoded, counter);
    }

    /**
     * Stores a run's reply, then sends what is stored: the reply, or the one an earlier run of the request stored
     * (which a copy of the request may have been given). A reply Redis could not take is not sent: the request stays
     * pending and its retry here stores and sends it (ToolRuns keeps it). Before, it was sent unstored and the retry,
     * finding its own lease and no reply, ran the tool again.
     */
    private void finishThenAnswer(Job job, Envelope reply, byte[] encoded, LongAdder counter) {
        runs.finish(job.requestId, job.owner(runOwner), encoded).whenComplete((f, e) -> settling(job, () -> {
            if (e == null) {
                answer(job, f.earlier() ? storedReply(job.requestId, f.reply()) : reply, counter, true);
                return;
            }
            StargazerException why = Redis.translate(e, "storing the reply of request " + job.requestId);
            if (Failures.isInfrastructure(why)) {
                log.atWarn().addKeyValue("tool", job.tool).addKeyValue("request_id", job.requestId)
                        .log("Could not store the tool's reply; it is kept here and stored and sent when Redis answers (the request "
                                + "stays pending): " + why.getMessage());
                job.done.completeExceptionally(why);
                return;
            }
            // Redis refused the script itself, and would refuse it on every retry: an answer sent unstored (a copy of the
            // request may run the tool again) is better than none.
            runs.abandon(job.requestId);
            log.atWarn().addKeyValue("tool", job.tool).addKeyValue("request_id", job.requestId)
                    .log("Redis refused to store the tool's reply; sending it unstored: " + why.getMessage());
            answer(job, reply, counter, true);
        }));
    }

    // ---- answering -----------------------------------------------------------------------------------------

    private void answerExpired(Job job, long now) {
        answer(job, error(job, ToolException.TIMEOUT, "the deadline passed " + (now - job.deadlineMs)
                + " ms before the tool could run; it was not run"), expired, runs != null);
    }

    private void answerError(Job job, String type, String message) {
        answer(job, error(job, type, message), errors, runs != null);
    }

    /**
     * Stores the reply, then completes the job's future (which acknowledges the request). A result too large for
     * the envelope limit is answered {@code tool_failed} instead; any other failure to store, or to send, leaves the
     * request pending, to be answered on a later delivery.
     */
    private void answer(Job job, Envelope reply, LongAdder counter, boolean once) {
        settling(job, () -> send(job, reply, counter, once));
    }

    private void send(Job job, Envelope reply, LongAdder counter, boolean once) {
        long late = job.deadlineMs > 0 ? bus.config().clock().millis() - job.deadlineMs : 0;
        if (late > cfg.lateReplyLimit().toMillis()) {
            // Its caller gave up long ago, and may be gone with its reply stream: an XADD would make that stream
            // again, without the expiry its client gave it, and nothing would ever read or delete it.
            unanswered.increment();
            // DEBUG: a backlog taken over after an outage can hold many; they are counted (stats().unanswered()).
            log.atDebug().addKeyValue("tool", job.tool).addKeyValue("request_id", job.requestId).addKeyValue("reply_to", job.replyTo)
                    .log("Not answered: its deadline passed " + late + " ms ago, more than lateReplyLimit ("
                            + cfg.lateReplyLimit().toMillis() + " ms)");
            job.done.complete(null);
            return;
        }
        // A tool's reply is sent with a key of its request, so sending a stored reply again adds nothing. So are the
        // service's own answers (deadline passed, no such tool, bad arguments, overloaded) where replies are
        // remembered: a request taken over or sent again after its deadline, whose tool ran and was answered, would
        // otherwise get a second answer ("it was not run") beside the first.
        PublishOptions options = once ? job.once : PublishOptions.NONE;
        CompletableFuture<String> sent;
        BusTracing tracing = job.trace == null ? null : ((RedisEventBus) bus).tracing();
        if (tracing == null) {
            sent = publishReply(job.replyTo, reply, options);
        } else {
            // On a tool thread or a Redis I/O thread: the answer joins the request's trace.
            try (BusTracing.Scope scope = tracing.restore(job.trace)) {
                sent = publishReply(job.replyTo, reply, options);
            }
        }
        sent.whenComplete((id, e) -> settling(job, () -> {
            if (e == null) {
                if (counter != null) counter.increment();
                job.done.complete(null);
                return;
            }
            Throwable cause = e instanceof CompletionException && e.getCause() != null ? e.getCause() : e;
            if (cause instanceof EnvelopeTooLargeException tooLarge && Boolean.TRUE.equals(reply.get(ToolWire.OK))) {
                answer(job, tooLarge(job, tooLarge.size(), tooLarge.limit()), errors, once);
                return;
            }
            log.atWarn().addKeyValue("tool", job.tool).addKeyValue("request_id", job.requestId)
                    .addKeyValue("reply_to", job.replyTo).log("Could not store the reply; the request stays pending: " + cause.getMessage());
            job.done.completeExceptionally(cause);
        }));
    }

    private Envelope ok(Job job, Object result) {
        LinkedHashMap<String, Object> m = new LinkedHashMap<>();
        m.put(ToolWire.REQUEST_ID, job.requestId);
        m.put(ToolWire.OK, true);
        m.put(ToolWire.RESULT, result);
        m.put(ToolWire.ERROR, null);
        if (job.traceId != null) m.put(ToolWire.TRACE_ID, job.traceId);
        try {
            return Envelope.of(m);
        } catch (IllegalArgumentException e) {
            return error(job, ToolException.TOOL_FAILED, "the result cannot be sent: " + e.getMessage());
        }
    }

    private static Envelope error(Job job, String type, String message) {
        LinkedHashMap<String, Object> m = new LinkedHashMap<>();
        m.put(ToolWire.REQUEST_ID, job.requestId);
        m.put(ToolWire.OK, false);
        m.put(ToolWire.ERROR, Map.of(ToolWire.ERROR_TYPE, type, ToolWire.ERROR_MESSAGE, message));
        if (job.traceId != null) m.put(ToolWire.TRACE_ID, job.traceId);
        return Envelope.of(m);
    }

    /** The answer to a result that encodes to {@code size} bytes, over the envelope limit. */
    private static Envelope tooLarge(Job job, long size, long limit) {
        return error(job, ToolException.TOOL_FAILED, "the result encodes to " + size + " bytes, over the envelope limit of "
                + limit + " bytes");
    }

    private static String describe(Throwable e) {
        String m = e.getMessage();
        return m == null || m.isEmpty() ? e.getClass().getSimpleName() : m;
    }

    private static String typeName(Object v) {
        return v == null ? "nil" : v instanceof byte[] ? "bytes" : v instanceof List<?> ? "a list" : v.getClass().getSimpleName();
    }

    /** The reply, metered under its stream's name inside the reply prefix, else {@link #OTHER_REPLY_DESTINATION}. */
    private CompletableFuture<String> publishReply(String replyTo, Envelope reply, PublishOptions options) {
        if (bus instanceof RedisEventBus rb && !replyTo.startsWith(bus.topology().toolsReplyStreamPrefix() + ":")) {
            return rb.publishAsync(replyTo, reply, options, OTHER_REPLY_DESTINATION);
        }
        return bus.publishAsync(replyTo, reply, options);
    }

    private static boolean usableStream(String name) {
        if (name == null) return false;
        try {
            Topology.checkName("reply_to", name);
            return true;
        } catch (RuntimeException e) {
            return false;
        }
    }

    // ---- the rest ------------------------------------------------------------------------------------------

    @Override
    public Subscription subscription() {
        return subscription;
    }

    @Override
    public ToolServiceConfig config() {
        return cfg;
    }

    @Override
    public Stats stats() {
        return new Stats(received.sum(), succeeded.sum(), errors.sum(), expired.sum(), overloaded.sum(), malformed.sum(),
                running.get(), queued.get(), unanswered.sum());
    }

    @Override
    public void close() {
        if (!closed.compareAndSet(false, true)) {
            return;
        }
        long deadline = System.nanoTime() + cfg.closeTimeout().toNanos();
        // Requests still waiting for a tool thread are left pending for other instances rather than run now.
        List<Runnable> waiting = new ArrayList<>();
        tools.drainQueued(waiting);
        tools.shutdown();
        for (Runnable r : waiting) {
            queued.decrementAndGet();
            room.release();
            if (r instanceof JobTask t) {
                if (runs != null) runs.abandon(t.job.requestId);
                t.job.done.completeExceptionally(new LeavePending("tool service closed before the tool ran"));
            }
        }
        try {
            if (!tools.awaitTermination(cfg.closeTimeout().toMillis(), TimeUnit.MILLISECONDS)) {
                log.atWarn().addKeyValue("consumer", consumerName).addKeyValue("running", running.get())
                        .log("Tools did not finish in time; their requests stay pending for other instances");
                interruptingTools = true;
                tools.shutdownNow();
            }
            for (CompletableFuture<Void> f : List.copyOf(outstanding)) {
                long left = deadline - System.nanoTime();
                if (left <= 0) break;
                try {
                    f.get(left, TimeUnit.NANOSECONDS);
                } catch (java.util.concurrent.TimeoutException | java.util.concurrent.ExecutionException e) {
                    // not answered in time, or failed: stays pending
                }
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        subscription.close();
        if (runs != null) runs.close();
        for (CompletableFuture<Void> f : List.copyOf(outstanding)) {
            f.completeExceptionally(new LeavePending("tool service closed before the request was answered"));
        }
        log.atInfo().addKeyValue("consumer", consumerName).addKeyValue("received", received.sum())
                .addKeyValue("succeeded", succeeded.sum()).log("Tool service closed");
    }
}
