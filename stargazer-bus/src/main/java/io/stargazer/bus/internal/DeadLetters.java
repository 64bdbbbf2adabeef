package io.stargazer.bus.internal;

import io.lettuce.core.cluster.api.async.RedisClusterAsyncCommands;
import io.lettuce.core.output.ValueOutput;
import io.lettuce.core.protocol.CommandArgs;
import io.lettuce.core.protocol.CommandType;
import java.nio.charset.StandardCharsets;
import java.time.Clock;
import java.util.concurrent.CompletableFuture;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Moves entries of one stream and group to its dead-letter stream: the entry's fields byte for byte, plus
 * {@code error}, {@code source_stream}, {@code source_id}, {@code group}, {@code deliveries} and {@code dead_at_ms}
 * (wire format, "Malformed entries and dead letters"); then acknowledges the entry in its group so it blocks
 * nothing. If the copy fails, the entry stays pending and is dead-lettered again on a later delivery: never dropped.
 *
 * <p>Thread-safe; the copy is sent on the shared connection and its completion (the acknowledgement) runs on the
 * Redis I/O thread, where it only queues the XACK.
 */
final class DeadLetters {
    private static final Logger log = LoggerFactory.getLogger(DeadLetters.class);

    private final String stream;
    private final String group;
    private final String deadStream;
    /** Relay mode: the outbox the dead letters go through (null: written to the dead-letter stream directly). */
    private final String outbox;
    private final RedisClusterAsyncCommands<String, byte[]> redis;
    private final StreamGuard guard;
    private final AckBatcher acks;
    private final Clock clock;

    DeadLetters(String stream, String group, String deadStream, String outbox, RedisClusterAsyncCommands<String, byte[]> redis,
            StreamGuard guard, AckBatcher acks, Clock clock) {
        this.stream = stream;
        this.outbox = outbox;
        this.group = group;
        this.deadStream = deadStream;
        this.redis = redis;
        this.guard = guard;
        this.acks = acks;
        this.clock = clock;
    }

    /**
     * Dead-letters {@code e} after {@code deliveries} deliveries (0 when unknown) because of {@code error}. Completes
     * true once copied and acknowledged, false when it stays pending (the dead-letter stream is full, or the copy failed).
     */
    CompletableFuture<Boolean> send(RawEntry e, long deliveries, String error) {
        String written = outbox == null ? deadStream : outbox;
        if (guard.isFull(written)) {
            // A SAFE dead-letter stream that a lagging group keeps full: leave the entry pending, it is dead-lettered
            // on a later delivery once there is room. Never drop it.
            log.atWarn().addKeyValue("stream", stream).addKeyValue("stream_msg_id", e.id()).addKeyValue("dead_letter_stream", deadStream)
                    .log("Dead-letter stream is full; the entry stays pending");
            return CompletableFuture.completedFuture(false);
        }
        CommandArgs<String, byte[]> args = new CommandArgs<>(Redis.CODEC).addKey(written);
        for (String o : guard.trimArgsFor(written)) args.add(o);
        args.add("*");
        // An outbox entry: the target and no dedupe key, then the dead letter's fields (docs/functions.md, "Relay mode").
        if (outbox != null) args.add("target").add(utf8(deadStream)).add("dedupe").add(new byte[0]);
        for (byte[] f : e.flatFields()) args.add(f);
        args.add("error").add(utf8(error)).add("source_stream").add(utf8(stream)).add("source_id").add(utf8(e.id()))
                .add("group").add(utf8(group));
        if (deliveries > 0) args.add("deliveries").add(utf8(Long.toString(deliveries)));
        args.add("dead_at_ms").add(utf8(Long.toString(clock.millis())));
        CompletableFuture<Boolean> done = new CompletableFuture<>();
        try {
            redis.dispatch(CommandType.XADD, new ValueOutput<>(Redis.CODEC), args).whenComplete((id, err) -> {
                if (err != null) {
                    log.atWarn().addKeyValue("stream", stream).addKeyValue("stream_msg_id", e.id())
                            .log("Dead-lettering failed; the entry stays pending: " + err.getMessage());
                    done.complete(false);
                    return;
                }
                acks.ack(e.id());
                guard.countPublish(written);
                log.atWarn().addKeyValue("stream", stream).addKeyValue("group", group).addKeyValue("stream_msg_id", e.id())
                        .addKeyValue("dead_letter_stream", deadStream).log("Dead-lettered entry: " + error);
                done.complete(true);
            });
        } catch (RuntimeException ex) {
            log.atWarn().addKeyValue("stream", stream).addKeyValue("stream_msg_id", e.id())
                    .log("Dead-lettering failed; the entry stays pending: " + ex.getMessage());
            done.complete(false);
        }
        return done;
    }

    private static byte[] utf8(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }
}
