// Redisson doing the bus's job with RStream: add / addAsync to publish, readGroup + ack to consume.
package io.stargazer.bench;

import io.stargazer.bus.wire.WireFormat;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import org.redisson.Redisson;
import org.redisson.api.RFuture;
import org.redisson.api.RStream;
import org.redisson.api.RedissonClient;
import org.redisson.api.StreamMessageId;
import org.redisson.api.stream.StreamAddArgs;
import org.redisson.api.stream.StreamReadGroupArgs;
import org.redisson.client.codec.ByteArrayCodec;
import org.redisson.config.Config;

/**
 * Redisson's {@link RStream} with {@link ByteArrayCodec}: each publish encodes the envelope and adds
 * {@code payload} and {@code trace_id} with {@code MAXLEN ~}; the consumer loop reads a batch with the group,
 * decodes each entry and acknowledges the batch (asynchronously, so the next read does not wait for it).
 */
final class RedissonPeer implements AutoCloseable {
    private static final byte[] PAYLOAD = "payload".getBytes(StandardCharsets.US_ASCII);
    private static final byte[] TRACE = "trace_id".getBytes(StandardCharsets.US_ASCII);

    private final RedissonClient client;

    RedissonPeer(Ctx ctx) {
        this(ctx.redisUrl);
    }

    RedissonPeer(io.stargazer.bus.RedisUrl url) {
        Config config = new Config();
        var single = config.useSingleServer().setAddress("redis://" + url.host() + ":" + url.port())
                .setDatabase(url.database());
        if (url.password() != null) single.setPassword(new String(url.password()));
        if (url.user() != null) single.setUsername(url.user());
        client = Redisson.create(config);
    }

    RStream<byte[], byte[]> stream(String name) {
        return client.getStream(name, ByteArrayCodec.INSTANCE);
    }

    static StreamAddArgs<byte[], byte[]> args(int i) {
        return args(Envelopes.envelope(i));
    }

    /** Decodes an entry read with {@code readGroup} into the envelope. */
    static io.stargazer.bus.Envelope decode(Map<byte[], byte[]> entry) {
        Map<String, byte[]> fields = new HashMap<>(4);
        entry.forEach((k, v) -> fields.put(new String(k, StandardCharsets.UTF_8), v));
        return WireFormat.decodeEntry(fields);
    }

    /** One envelope as the bus's entry: {@code payload} and {@code trace_id}, {@code MAXLEN ~}. */
    static StreamAddArgs<byte[], byte[]> args(io.stargazer.bus.Envelope envelope) {
        byte[] payload = WireFormat.encode(envelope);
        byte[] trace = WireFormat.traceIdFor(envelope).getBytes(StandardCharsets.UTF_8);
        return StreamAddArgs.entries(PAYLOAD, payload, TRACE, trace).trimNonStrict().maxLen((int) Ctx.MAXLEN).noLimit();
    }

    static double publishBlocking(Ctx ctx, int threads) throws Exception {
        String name = ctx.key("redisson-pub" + threads);
        try (RedissonPeer peer = new RedissonPeer(ctx)) {
            RStream<byte[], byte[]> s = peer.stream(name);
            return Throughput.blocking(threads, ctx.warm, ctx.measure, i -> s.add(args(i)));
        } finally {
            ctx.reset(name);
        }
    }

    static double publishAsync(Ctx ctx, int window) throws Exception {
        String name = ctx.key("redisson-pubasync");
        try (RedissonPeer peer = new RedissonPeer(ctx)) {
            RStream<byte[], byte[]> s = peer.stream(name);
            return Throughput.async(window, ctx.warm, ctx.measure, i -> s.addAsync(args(i)).toCompletableFuture());
        } finally {
            ctx.reset(name);
        }
    }

    static double consumeBacklog(Ctx ctx, long n) throws Exception {
        String name = ctx.key("redisson-backlog");
        String group = "bench-group";
        try (RedissonPeer peer = new RedissonPeer(ctx)) {
            ctx.createGroup(name, group);
            ctx.prefill(name, n);
            RStream<byte[], byte[]> s = peer.stream(name);
            StreamReadGroupArgs read = StreamReadGroupArgs.neverDelivered().count(StargazerRows.CONSUME_BATCH);
            AtomicReference<Throwable> failure = new AtomicReference<>();
            List<RFuture<Long>> acks = new ArrayList<>();
            long t0 = System.nanoTime();
            long done = 0;
            long deadline = t0 + TimeUnit.MINUTES.toNanos(5);
            while (done < n) {
                if (System.nanoTime() > deadline) throw new IllegalStateException("Redisson consumer stalled at " + done);
                Map<StreamMessageId, Map<byte[], byte[]>> batch = s.readGroup(group, "bench-consumer", read);
                if (batch.isEmpty()) continue;
                for (Map<byte[], byte[]> entry : batch.values()) decode(entry);
                RFuture<Long> ack = s.ackAsync(group, batch.keySet().toArray(StreamMessageId[]::new));
                ack.whenComplete((r, e) -> {
                    if (e != null) failure.compareAndSet(null, e);
                });
                acks.add(ack);
                done += batch.size();
            }
            for (RFuture<Long> a : acks) a.toCompletableFuture().get(60, TimeUnit.SECONDS);
            while (ctx.pending(name, group) > 0) Thread.sleep(1);
            if (failure.get() != null) throw new IllegalStateException("Redisson ack failed", failure.get());
            return n / ((System.nanoTime() - t0) / 1e9);
        } finally {
            ctx.reset(name);
        }
    }

    @Override
    public void close() {
        client.shutdown();
    }
}
