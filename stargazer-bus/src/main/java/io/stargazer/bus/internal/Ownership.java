package io.stargazer.bus.internal;

import io.lettuce.core.LettuceFutures;
import io.lettuce.core.RedisFuture;
import io.lettuce.core.ScriptOutputType;
import io.lettuce.core.cluster.api.async.RedisClusterAsyncCommands;
import io.lettuce.core.output.IntegerOutput;
import io.lettuce.core.protocol.RedisCommand;
import java.util.concurrent.CompletableFuture;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * Which pending entries a consumer still owns, asked and acted on atomically on the server (one-key scripts).
 *
 * <p>A live consumer keeps what it holds: {@link #refreshAsync} resets the idle time of its entries, so another
 * consumer's XAUTOCLAIM (which takes entries idle past the claim time) never takes them from it however slow its
 * handler. And a consumer never runs what is no longer its own: before it runs an entry it took over or is trying
 * again, {@link #confirm} checks that the entry is still pending with it, so an entry acknowledged meanwhile by the
 * consumer it was taken from (which was alive after all) is not run a second time.
 */
final class Ownership {
    /** KEYS[1] stream; ARGV group, consumer, ids...: refreshes the ids still pending with consumer; returns the others. */
    static final String REFRESH = LibrarySource.script("refresh");

    /**
     * KEYS[1] stream; ARGV group, consumer, id, count (1: this is a new delivery, count it). Returns the entry's
     * delivery count when it is pending with consumer, -1 when not (acknowledged, or another consumer's now), -2 when
     * it is pending but was deleted from the stream.
     *
     * <p>The entry keeps its idle time: only {@link #REFRESH} resets it, for all the entries a consumer holds at once.
     * So the entries of one channel that a consumer held when it died (one waiting for its retry, the later ones
     * waiting behind it) become idle past the claim time together and are taken over in one XAUTOCLAIM, in stream
     * order, instead of the later ones first.
     */
    static final String CONFIRM = LibrarySource.script("confirm");

    static final int CHUNK = 200;

    private final byte[] group;
    private final byte[] consumer;
    private final ServerCode code;

    Ownership(String group, String consumer, ServerCode code) {
        this.code = code;
        this.group = group.getBytes(StandardCharsets.UTF_8);
        this.consumer = consumer.getBytes(StandardCharsets.UTF_8);
    }

    /**
     * Refreshes the idle time of {@code ids} still owned ({@link #REFRESH}, in chunks) on the shared connection;
     * completes with the ids no longer owned.
     */
    CompletableFuture<List<String>> refreshAsync(RedisClusterAsyncCommands<String, byte[]> redis,
            String stream, List<String> ids) {
        List<CompletableFuture<List<Object>>> parts = new ArrayList<>();
        for (int from = 0; from < ids.size(); from += CHUNK) {
            List<String> chunk = ids.subList(from, Math.min(ids.size(), from + CHUNK));
            byte[][] argv = new byte[2 + chunk.size()][];
            argv[0] = group;
            argv[1] = consumer;
            for (int i = 0; i < chunk.size(); i++) argv[2 + i] = chunk.get(i).getBytes(StandardCharsets.US_ASCII);
            parts.add(code.<String, byte[], List<Object>>run(redis, REFRESH, ScriptOutputType.MULTI, new String[] {stream}, argv).toCompletableFuture());
        }
        return CompletableFuture.allOf(parts.toArray(CompletableFuture[]::new)).thenApply(v -> {
            List<String> lost = new ArrayList<>();
            for (var f : parts) {
                for (Object o : f.join()) lost.add(o instanceof byte[] b ? new String(b, StandardCharsets.US_ASCII) : String.valueOf(o));
            }
            return lost;
        });
    }

    /**
     * See {@link #CONFIRM}: the delivery count, -1 when not owned, -2 when deleted; waits for the reply (a handler thread).
     * One that counts a delivery is written once ({@link WriteOnce}): Lettuce writes what was unanswered when a connection
     * went (replaced by the dead-peer check, reset) again on the next one, and a check that had reached Redis then ran
     * twice, counting one handler failure as two deliveries (RetryCheckLostReplyIT: dead-lettered after one failure with
     * two allowed). Lost so, it fails as of unknown outcome instead, and the caller does not count again.
     */
    long confirm(RedisClusterAsyncCommands<String, byte[]> redis, WriteOnce once, String stream, String id, boolean countDelivery) {
        boolean functions = code.functions();
        RedisCommand<String, byte[], Long> check = code.command(CONFIRM, functions, new IntegerOutput<>(Redis.CODEC),
                new String[] {stream}, group, consumer, id.getBytes(StandardCharsets.US_ASCII),
                countDelivery ? new byte[] {'1'} : new byte[] {'0'});
        RedisFuture<Long> reply = countDelivery ? once.dispatch(redis, check)
                : ((io.lettuce.core.AbstractRedisAsyncCommands<String, byte[]>) redis).dispatch(check);
        if (functions) reply.whenComplete((r, e) -> { if (e != null) code.noticed(e); });
        Long r = LettuceFutures.awaitOrCancel(reply, Redis.COMMAND_TIMEOUT.toMillis(), TimeUnit.MILLISECONDS);
        return r == null ? -1 : r;
    }
}
