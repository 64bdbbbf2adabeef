// Spring Data Redis doing the bus's job: StreamOperations to publish, StreamMessageListenerContainer to consume.
package io.stargazer.bench;

import io.stargazer.bus.wire.WireFormat;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import java.util.concurrent.atomic.LongAdder;
import org.springframework.data.redis.connection.RedisStandaloneConfiguration;
import org.springframework.data.redis.connection.RedisStreamCommands.XAddOptions;
import org.springframework.data.redis.connection.lettuce.LettuceConnectionFactory;
import org.springframework.data.redis.connection.stream.Consumer;
import org.springframework.data.redis.connection.stream.MapRecord;
import org.springframework.data.redis.connection.stream.ReadOffset;
import org.springframework.data.redis.connection.stream.StreamOffset;
import org.springframework.data.redis.connection.stream.StreamRecords;
import org.springframework.data.redis.core.RedisTemplate;
import org.springframework.data.redis.core.StreamOperations;
import org.springframework.data.redis.serializer.RedisSerializer;
import org.springframework.data.redis.stream.StreamMessageListenerContainer.StreamMessageListenerContainerOptions;
import org.springframework.data.redis.stream.StreamMessageListenerContainer;
import org.springframework.data.redis.stream.Subscription;

/**
 * The documented Spring Data Redis way, outside a Spring context: a {@link RedisTemplate} with byte[] serializers on
 * a {@link LettuceConnectionFactory}; each publish encodes the envelope and adds {@code payload} and
 * {@code trace_id} with {@code MAXLEN ~}; the listener container reads with the group, decodes, and acknowledges
 * each record through {@link StreamOperations#acknowledge}.
 */
final class SpringPeer implements AutoCloseable {
    private static final byte[] PAYLOAD = "payload".getBytes(StandardCharsets.US_ASCII);
    private static final byte[] TRACE = "trace_id".getBytes(StandardCharsets.US_ASCII);
    private static final XAddOptions CAP = XAddOptions.maxlen(Ctx.MAXLEN).approximateTrimming(true);

    final LettuceConnectionFactory factory;
    private final RedisTemplate<byte[], byte[]> template;
    final StreamOperations<byte[], byte[], byte[]> ops;

    SpringPeer(Ctx ctx) {
        this(ctx.redisUrl);
    }

    SpringPeer(io.stargazer.bus.RedisUrl url) {
        RedisStandaloneConfiguration conf = new RedisStandaloneConfiguration(url.host(), url.port());
        conf.setDatabase(url.database());
        if (url.password() != null) conf.setPassword(url.password());
        if (url.user() != null) conf.setUsername(url.user());
        factory = new LettuceConnectionFactory(conf);
        factory.afterPropertiesSet();
        factory.start();
        template = new RedisTemplate<>();
        template.setConnectionFactory(factory);
        template.setKeySerializer(RedisSerializer.byteArray());
        template.setValueSerializer(RedisSerializer.byteArray());
        template.setHashKeySerializer(RedisSerializer.byteArray());
        template.setHashValueSerializer(RedisSerializer.byteArray());
        template.afterPropertiesSet();
        ops = template.opsForStream();
    }

    void publish(byte[] stream, int i) {
        publish(stream, Envelopes.envelope(i));
    }

    /** Encodes and adds one envelope, as the bus's entry: {@code payload} and {@code trace_id}, {@code MAXLEN ~}. */
    void publish(byte[] stream, io.stargazer.bus.Envelope envelope) {
        Map<byte[], byte[]> fields = new LinkedHashMap<>(4);
        fields.put(PAYLOAD, WireFormat.encode(envelope));
        fields.put(TRACE, WireFormat.traceIdFor(envelope).getBytes(StandardCharsets.UTF_8));
        MapRecord<byte[], byte[], byte[]> record = StreamRecords.newRecord().in(stream).ofMap(fields);
        ops.add(record, CAP);
    }

    /** Decodes a record read by a listener container into the envelope. */
    static io.stargazer.bus.Envelope decode(MapRecord<byte[], byte[], byte[]> r) {
        Map<String, byte[]> fields = new HashMap<>(4);
        r.getValue().forEach((k, v) -> fields.put(new String(k, StandardCharsets.UTF_8), v));
        return WireFormat.decodeEntry(fields);
    }

    static double publishBlocking(Ctx ctx, int threads) throws Exception {
        String stream = ctx.key("spring-pub" + threads);
        byte[] key = Ctx.bytes(stream);
        try (SpringPeer peer = new SpringPeer(ctx)) {
            return Throughput.blocking(threads, ctx.warm, ctx.measure, i -> peer.publish(key, i));
        } finally {
            ctx.reset(stream);
        }
    }

    /**
     * Entries consumed per second from a backlog of {@code n}; stops after {@code cap} if not done by then (Spring's
     * per-record acknowledgement makes a million entries take minutes here), counting what was acknowledged by then.
     */
    static double consumeBacklog(Ctx ctx, long n, Duration cap) throws Exception {
        String stream = ctx.key("spring-backlog");
        String group = "bench-group";
        byte[] key = Ctx.bytes(stream);
        try (SpringPeer peer = new SpringPeer(ctx)) {
            ctx.createGroup(stream, group);
            ctx.prefill(stream, n);
            LongAdder done = new LongAdder();
            AtomicReference<Throwable> failure = new AtomicReference<>();
            StreamMessageListenerContainerOptions<byte[], MapRecord<byte[], byte[], byte[]>> options =
                    StreamMessageListenerContainerOptions.builder().serializer(RedisSerializer.byteArray())
                            .batchSize(StargazerRows.CONSUME_BATCH).pollTimeout(Duration.ofMillis(100))
                            .errorHandler(e -> failure.compareAndSet(null, e)).build();
            StreamMessageListenerContainer<byte[], MapRecord<byte[], byte[], byte[]>> container =
                    StreamMessageListenerContainer.create(peer.factory, options);
            long t0 = System.nanoTime();
            Subscription subscription = container.receive(Consumer.from(group, "bench-consumer"),
                    StreamOffset.create(key, ReadOffset.lastConsumed()), r -> {
                        decode(r);
                        peer.ops.acknowledge(group, r);
                        done.increment();
                    });
            container.start();
            try {
                long deadline = System.nanoTime() + TimeUnit.MINUTES.toNanos(5);
                long stopAt = t0 + cap.toNanos();
                while (done.sum() < n || ctx.pending(stream, group) > 0) {
                    if (failure.get() != null) throw new IllegalStateException("Spring consumer failed", failure.get());
                    if (System.nanoTime() > deadline) throw new IllegalStateException("Spring consumer stalled at " + done.sum());
                    if (System.nanoTime() > stopAt) return done.sum() / ((System.nanoTime() - t0) / 1e9);
                    Thread.sleep(2);
                }
                return n / ((System.nanoTime() - t0) / 1e9);
            } finally {
                stop(container, subscription);
            }
        } finally {
            ctx.reset(stream);
        }
    }

    /**
     * Stops {@code container} and waits (up to 5 s) until {@code subscription}'s poll task has left its loop. The
     * container's {@code stop} only cancels: a read still blocked then goes on for up to its poll timeout, and if the
     * connection factory is destroyed meanwhile it fails against the closed client ("Connection is already closed", or
     * Netty's "cannot be started once stopped" from the stopped timer), noise in a child JVM's output that looks like
     * a failure of the run.
     */
    static void stop(StreamMessageListenerContainer<?, ?> container, Subscription subscription) throws InterruptedException {
        container.stop();
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
        while (subscription.isActive() && System.nanoTime() < deadline) Thread.sleep(1);
    }

    @Override
    public void close() {
        factory.destroy();
    }
}
