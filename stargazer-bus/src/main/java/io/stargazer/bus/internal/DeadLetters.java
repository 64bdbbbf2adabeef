package io.stargazer.bus.internal;

import io.stargazer.bus.StargazerException;

import io.lettuce.core.cluster.api.async.RedisClusterAsyncCommands;
import io.lettuce.core.output.ValueOutput;
import io.lettuce.core.protocol.CommandArgs;
import io.lettuce.core.protocol.CommandType;
import java.nio.charset.StandardCharsets;
import java.time.Clock;
import io.lettuce.core.ScriptOutputType;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Moves entries of one stream and group to its dead-letter stream: the entry's fields byte for byte, plus
 * {@code error}, {@code source_stream}, {@code source_id}, {@code group}, {@code deliveries} and {@code dead_at_ms}
 * (wire format, "Malformed entries and dead letters"); then acknowledges the entry in its group so it blocks
 * nothing. If the copy fails, the entry stays pending and is dead-lettered again on a later delivery: never dropped.
 *
 * <p>Stored once: if the acknowledgement after the copy is lost (the connection dropped as it went out, the process
 * died), the entry stays pending and whoever takes it over dead-letters it again. The copy is therefore written with
 * the key {@code dead:<length of the source stream's name>:<source stream>:<source id>:<group>} ({@link Dedupe#DEAD_LETTER_SCRIPT}, kept for the dedupe
 * window in the dead-letter stream's dedupe hashes), and a second copy of it adds nothing and is only acknowledged. In
 * relay mode the key travels in the outbox entry's header and the relay dedupes it in the dead-letter stream. Not
 * deduped: a dead-letter stream whose name has a '}' but no hash tag, on a Redis Cluster (its hashes lie in another
 * slot), an entry whose fields and the dead letter's own come to more than {@value #MAX_SCRIPT_FIELDS} names and values
 * (about 3490 fields), a server setup that refuses the script (then stored at least once, by a plain XADD: see
 * {@link #refusedOnce}), and a takeover later than the window.
 *
 * <p>Thread-safe; the copy is sent on the shared connection and its completion (the acknowledgement) runs on the
 * Redis I/O thread, where it only queues the XACK.
 */
final class DeadLetters {
    private static final Logger log = LoggerFactory.getLogger(DeadLetters.class);

    /**
     * Field names and values a dead letter may have to go through the script: Lua unpacks a call's arguments onto a
     * stack of about 8000 slots. Only a hostile entry has more (thousands of fields); it is written by a plain XADD.
     */
    static final int MAX_SCRIPT_FIELDS = 7000;

    private final String stream;
    private final String group;
    private final String deadStream;
    /** Relay mode: the outbox the dead letters go through (null: written to the dead-letter stream directly). */
    private final String outbox;
    private final RedisClusterAsyncCommands<String, byte[]> redis;
    private final StreamGuard guard;
    private final AckBatcher acks;
    private final Clock clock;
    private final ServerCode code;
    private final byte[] windowMillis;
    /** The dead-letter stream's dedupe hashes ({@link Dedupe#hashNames}); null where they are not in its slot (see above). */
    private final String[] dedupeKeys;

    DeadLetters(String stream, String group, String deadStream, String outbox, RedisClusterAsyncCommands<String, byte[]> redis,
            StreamGuard guard, AckBatcher acks, Clock clock, ServerCode code, java.time.Duration window, boolean cluster) {
        this.code = code;
        this.windowMillis = utf8(Long.toString(window.toMillis()));
        String[] hashes = Dedupe.hashNames(deadStream);
        this.dedupeKeys = cluster && !Dedupe.hashesInSlot(deadStream) ? null : new String[] {deadStream, hashes[0], hashes[1]};
        this.stream = stream;
        this.outbox = outbox;
        this.group = group;
        this.deadStream = deadStream;
        this.redis = redis;
        this.guard = guard;
        // Written directly, it is never trimmed; through an outbox, the outbox is kept within its cap as any other.
        if (outbox == null) guard.deadLetterStream(deadStream);
        this.acks = acks;
        this.clock = clock;
    }

    /**
     * Dead-letters {@code e} after {@code deliveries} deliveries (0 when unknown) because of {@code error}. Completes
     * true once copied and acknowledged; false when its dead letter was stored already and it is only acknowledged;
     * exceptionally when nothing was done and the entry stays pending (the outbox the dead letter goes through is full,
     * or the copy failed): the caller may try again.
     */
    CompletableFuture<Boolean> send(RawEntry e, long deliveries, String error) {
        String written = outbox == null ? deadStream : outbox;
        if (guard.isFull(written)) {
            // Relay mode: the outbox the dead letter goes through is at its SAFE cap (the relay lags). Leave the entry
            // pending, it is dead-lettered on a later delivery once there is room. Never drop it. (A dead-letter stream
            // written directly is never full: StreamGuard.keptWhole.)
            log.atWarn().addKeyValue("stream", stream).addKeyValue("stream_msg_id", e.id()).addKeyValue("dead_letter_stream", deadStream)
                    .addKeyValue("outbox", written).log("Outbox for the dead letter is full; the entry stays pending");
            return CompletableFuture.failedFuture(new StargazerException("the outbox '" + written + "' the dead letter goes through is full"));
        }
        String key = Dedupe.deadLetterKey(stream, e.id(), group);
        List<byte[]> fields = new ArrayList<>(e.flatFields());
        fields.addAll(List.of(utf8("error"), utf8(error), utf8("source_stream"), utf8(stream), utf8("source_id"), utf8(e.id()),
                utf8("group"), utf8(group)));
        if (deliveries > 0) fields.addAll(List.of(utf8("deliveries"), utf8(Long.toString(deliveries))));
        fields.addAll(List.of(utf8("dead_at_ms"), utf8(Long.toString(clock.millis()))));
        List<String> opts = guard.trimArgsFor(written);
        CompletableFuture<Boolean> done = new CompletableFuture<>();
        try {
            write(written, opts, key, fields).exceptionallyCompose(err -> refusedOnce(err) ? plainWrite(written, opts, fields, err)
                    : CompletableFuture.failedStage(err)).whenComplete((id, err) -> {
                if (err != null) {
                    log.atWarn().addKeyValue("stream", stream).addKeyValue("stream_msg_id", e.id())
                            .log("Dead-lettering failed; the entry stays pending: " + err.getMessage());
                    done.completeExceptionally(err);
                    return;
                }
                acks.ack(e.id());
                if (id instanceof List<?> r && !r.isEmpty() && Long.valueOf(0).equals(r.get(0))) {
                    log.atInfo().addKeyValue("stream", stream).addKeyValue("group", group).addKeyValue("stream_msg_id", e.id())
                            .addKeyValue("dead_letter_stream", deadStream)
                            .log("Entry's dead letter was stored already (its acknowledgement was lost): acknowledged, not stored again");
                    done.complete(false);
                    return;
                }
                guard.countPublish(written);
                log.atWarn().addKeyValue("stream", stream).addKeyValue("group", group).addKeyValue("stream_msg_id", e.id())
                        .addKeyValue("dead_letter_stream", deadStream).log("Dead-lettered entry: " + error);
                done.complete(true);
            });
        } catch (RuntimeException ex) {
            log.atWarn().addKeyValue("stream", stream).addKeyValue("stream_msg_id", e.id())
                    .log("Dead-lettering failed; the entry stays pending: " + ex.getMessage());
            done.completeExceptionally(ex);
        }
        return done;
    }

    /**
     * Whether the dead-letter script or function was refused for what this process's server setup lacks, not for the
     * entry: an ACL user made before library version 5 (no {@code +fcall|sg_dead_letter}: NOPERM), or a library rolled
     * back under a running bus ("Function not found"). Every poison entry would then stay pending for ever; it is
     * stored at least once instead, by the XADD the user may run.
     */
    private static boolean refusedOnce(Throwable err) {
        String m = String.valueOf(Failures.unwrap(err).getMessage());
        return m.startsWith("NOPERM") || m.contains("Function not found");
    }

    private final java.util.concurrent.atomic.AtomicBoolean warnedRefused = new java.util.concurrent.atomic.AtomicBoolean();

    private CompletionStage<Object> plainWrite(String written, List<String> opts, List<byte[]> fields, Throwable refused) {
        if (warnedRefused.compareAndSet(false, true)) {
            log.atWarn().addKeyValue("dead_letter_stream", deadStream)
                    .log("Storing a dead letter once was refused (" + Failures.unwrap(refused).getMessage() + "): dead letters are stored by a plain"
                            + " XADD, at least once; make the ACL users again (stargazer acl) and provision the library (stargazer provision)");
        }
        return xadd(written, opts, null, fields);
    }

    /**
     * The copy, written once per key: through the dead-letter script, or in relay mode as an outbox entry whose header
     * carries the key, or (hashes in another slot) as a plain XADD.
     */
    private CompletionStage<Object> write(String written, List<String> opts, String key, List<byte[]> fields) {
        if (outbox == null && dedupeKeys != null && fields.size() <= MAX_SCRIPT_FIELDS) {
            byte[][] argv = new byte[3 + opts.size() + fields.size()][];
            int i = 0;
            argv[i++] = windowMillis;
            argv[i++] = utf8(Integer.toString(opts.size()));
            for (String o : opts) argv[i++] = utf8(o);
            argv[i++] = utf8(key);
            for (byte[] f : fields) argv[i++] = f;
            return code.<String, byte[], Object>run(redis, Dedupe.DEAD_LETTER_SCRIPT, ScriptOutputType.MULTI, dedupeKeys, argv);
        }
        return xadd(written, opts, key, fields);
    }

    /** A plain XADD of the dead letter; in relay mode an outbox entry with the target and {@code key} ('' for none) first. */
    private CompletionStage<Object> xadd(String written, List<String> opts, String key, List<byte[]> fields) {
        CommandArgs<String, byte[]> args = new CommandArgs<>(Redis.CODEC).addKey(written);
        for (String o : opts) args.add(o);
        args.add("*");
        // An outbox entry: the target and the dead letter's key, then its fields (docs/functions.md, "Relay mode").
        if (outbox != null) args.add("target").add(utf8(deadStream)).add("dedupe").add(utf8(key == null ? "" : key));
        for (byte[] f : fields) args.add(f);
        return redis.dispatch(CommandType.XADD, new ValueOutput<String, byte[]>(Redis.CODEC), args).thenApply(id -> (Object) id);
    }

    private static byte[] utf8(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }
}
