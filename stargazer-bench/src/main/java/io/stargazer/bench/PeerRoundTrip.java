// The round trip done with Spring Data Redis and with Redisson: each side written as the library's documentation shows.
package io.stargazer.bench;

import io.stargazer.bus.Envelope;
import io.stargazer.bus.RedisUrl;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.Consumer;
import org.redisson.api.RFuture;
import org.redisson.api.RStream;
import org.redisson.api.StreamMessageId;
import org.redisson.api.stream.StreamReadGroupArgs;
import org.springframework.data.redis.connection.stream.MapRecord;
import org.springframework.data.redis.connection.stream.ReadOffset;
import org.springframework.data.redis.connection.stream.StreamOffset;
import org.springframework.data.redis.serializer.RedisSerializer;
import org.springframework.data.redis.stream.StreamMessageListenerContainer;
import org.springframework.data.redis.stream.StreamMessageListenerContainer.StreamMessageListenerContainerOptions;
import org.springframework.data.redis.stream.Subscription;

/**
 * Gateway and worker sides of the round trip for the two Java peers, on the same streams and entries as the bus
 * ({@code payload} + {@code trace_id}, {@code MAXLEN ~}), each acknowledging an entry only after handling it, as the
 * bus does:
 * <ul>
 *   <li>Spring Data Redis: publishing is {@code StreamOperations.add} (blocking; Spring has no asynchronous
 *       StreamOperations), so the gateway sends from a pool of {@value #SPRING_SENDERS} threads, as a web gateway's
 *       request threads would; consuming is a {@code StreamMessageListenerContainer} with a consumer group whose
 *       listener handles the record and calls {@code StreamOperations.acknowledge}, the documented way. The worker's
 *       listener publishes the echo with {@code add} and then acknowledges.</li>
 *   <li>Redisson: publishing is {@code RStream.addAsync}; consuming is a loop of {@code RStream.readGroup} (new entries,
 *       {@value #READ_COUNT} at a time, waiting up to 100 ms) on a thread of its own, then {@code ackAsync}. The worker
 *       publishes each echo with {@code addAsync} and acknowledges the batch once its echoes are stored, without
 *       waiting for that before the next read.</li>
 * </ul>
 */
final class PeerRoundTrip {
    static final int SPRING_SENDERS = 16;
    /** Entries per read, as the bus's consumer default (batch 128). */
    static final int READ_COUNT = 128;
    private static final Duration POLL = Duration.ofMillis(100);

    private PeerRoundTrip() {
    }

    /** The worker side for {@code mode} ("spring-data-redis" or "redisson"), for {@link WorkerMain}. */
    static WorkerMain.Echo echo(String mode, RedisUrl url) {
        return switch (mode) {
            case Result.SPRING -> new SpringEcho(url);
            case Result.REDISSON -> new RedissonEcho(url);
            default -> throw new IllegalArgumentException("unknown worker mode " + mode);
        };
    }

    /** The gateway side for {@code impl}, in the harness JVM. */
    static RoundTrip.Gateway gateway(String impl, Ctx ctx) {
        return switch (impl) {
            case Result.SPRING -> new SpringGateway(ctx.redisUrl);
            case Result.REDISSON -> new RedissonGateway(ctx.redisUrl);
            default -> throw new IllegalArgumentException("unknown peer " + impl);
        };
    }

    /**
     * Starts a listener container on {@code stream} with {@code group} (decode, handle, acknowledge, per record);
     * returns what stops it and waits for its poll task to end ({@link SpringPeer#stop}).
     */
    private static AutoCloseable container(SpringPeer peer, String stream,
            String group, String consumer, Consumer<Envelope> handle) {
        AtomicBoolean stopped = new AtomicBoolean();
        // A read still blocked when the run's keys are dropped fails (NOGROUP, UNBLOCKED): expected then, not worth a trace.
        StreamMessageListenerContainerOptions<byte[], MapRecord<byte[], byte[], byte[]>> options =
                StreamMessageListenerContainerOptions.builder().serializer(RedisSerializer.byteArray()).batchSize(READ_COUNT)
                        .pollTimeout(POLL).errorHandler(e -> {
                            if (!stopped.get()) System.err.println("spring listener container (" + consumer + "): " + e);
                        }).build();
        StreamMessageListenerContainer<byte[], MapRecord<byte[], byte[], byte[]>> c = StreamMessageListenerContainer.create(peer.factory, options);
        Subscription subscription = c.receive(org.springframework.data.redis.connection.stream.Consumer.from(group, consumer),
                StreamOffset.create(Ctx.bytes(stream), ReadOffset.lastConsumed()), r -> {
                    handle.accept(SpringPeer.decode(r));
                    peer.ops.acknowledge(group, r);
                });
        c.start();
        return () -> {
            stopped.set(true);
            SpringPeer.stop(c, subscription);
        };
    }

    private static final class SpringGateway implements RoundTrip.Gateway {
        private final SpringPeer peer;
        private final ExecutorService senders = Executors.newFixedThreadPool(SPRING_SENDERS, r -> {
            Thread t = new Thread(r, "spring-gateway-sender");
            t.setDaemon(true);
            return t;
        });

        SpringGateway(RedisUrl url) {
            peer = new SpringPeer(url);
        }

        @Override
        public String impl() {
            return Result.SPRING;
        }

        @Override
        public AutoCloseable receive(String outbound, String group, Consumer<Envelope> onEcho) {
            return container(peer, outbound, group, "bench-gateway", onEcho);
        }

        @Override
        public void send(String inbound, Envelope envelope, Consumer<Throwable> onFailure) {
            byte[] key = Ctx.bytes(inbound);
            senders.execute(() -> {
                try {
                    peer.publish(key, envelope);
                } catch (Throwable e) {
                    onFailure.accept(e);
                }
            });
        }

        @Override
        public void close() {
            senders.shutdownNow();
            peer.close();
        }
    }

    private static final class SpringEcho implements WorkerMain.Echo {
        private final SpringPeer peer;

        SpringEcho(RedisUrl url) {
            peer = new SpringPeer(url);
        }

        @Override
        public AutoCloseable start(String inbound, String outbound, String group) {
            byte[] out = Ctx.bytes(outbound);
            return container(peer, inbound, group, "bench-worker", e -> peer.publish(out, e));
        }

        @Override
        public void close() {
            peer.close();
        }
    }

    /**
     * A readGroup loop on a thread of its own: each batch is handed to {@code handle}, which returns when the batch may
     * be acknowledged (a future), and is acknowledged then.
     */
    private static final class RedissonLoop implements AutoCloseable {
        private final AtomicBoolean stop = new AtomicBoolean();
        private final Thread thread;

        RedissonLoop(RStream<byte[], byte[]> stream, String group, String consumer,
                java.util.function.Function<Map<StreamMessageId, Map<byte[], byte[]>>, CompletableFuture<?>> handle) {
            StreamReadGroupArgs read = StreamReadGroupArgs.neverDelivered().count(READ_COUNT).timeout(POLL);
            thread = new Thread(() -> {
                while (!stop.get()) {
                    Map<StreamMessageId, Map<byte[], byte[]>> batch;
                    try {
                        batch = stream.readGroup(group, consumer, read);
                    } catch (RuntimeException e) {
                        if (stop.get()) return;
                        System.err.println("redisson readGroup failed: " + e);
                        continue;
                    }
                    if (batch == null || batch.isEmpty()) continue;
                    StreamMessageId[] ids = batch.keySet().toArray(StreamMessageId[]::new);
                    handle.apply(batch).whenComplete((r, e) -> {
                        if (e == null) {
                            RFuture<Long> ack = stream.ackAsync(group, ids);
                            ack.whenComplete((n, ae) -> {
                                if (ae != null) System.err.println("redisson ack failed: " + ae);
                            });
                        }
                    });
                }
            }, "redisson-reader-" + consumer);
            thread.setDaemon(true);
            thread.start();
        }

        @Override
        public void close() throws InterruptedException {
            stop.set(true);
            thread.join(TimeUnit.SECONDS.toMillis(5));
        }
    }

    private static final class RedissonGateway implements RoundTrip.Gateway {
        private final RedissonPeer peer;

        RedissonGateway(RedisUrl url) {
            peer = new RedissonPeer(url);
        }

        @Override
        public String impl() {
            return Result.REDISSON;
        }

        @Override
        public AutoCloseable receive(String outbound, String group, Consumer<Envelope> onEcho) {
            return new RedissonLoop(peer.stream(outbound), group, "bench-gateway", batch -> {
                for (Map<byte[], byte[]> entry : batch.values()) onEcho.accept(RedissonPeer.decode(entry));
                return CompletableFuture.completedFuture(null);
            });
        }

        @Override
        public void send(String inbound, Envelope envelope, Consumer<Throwable> onFailure) {
            peer.stream(inbound).addAsync(RedissonPeer.args(envelope)).whenComplete((id, e) -> {
                if (e != null) onFailure.accept(e);
            });
        }

        @Override
        public void close() {
            peer.close();
        }
    }

    private static final class RedissonEcho implements WorkerMain.Echo {
        private final RedissonPeer peer;

        RedissonEcho(RedisUrl url) {
            peer = new RedissonPeer(url);
        }

        @Override
        public AutoCloseable start(String inbound, String outbound, String group) {
            RStream<byte[], byte[]> out = peer.stream(outbound);
            return new RedissonLoop(peer.stream(inbound), group, "bench-worker", batch -> {
                CompletableFuture<?>[] adds = new CompletableFuture<?>[batch.size()];
                int i = 0;
                for (Map<byte[], byte[]> entry : batch.values()) {
                    adds[i++] = out.addAsync(RedissonPeer.args(RedissonPeer.decode(entry))).toCompletableFuture();
                }
                return CompletableFuture.allOf(adds);
            });
        }

        @Override
        public void close() {
            peer.close();
        }
    }
}
