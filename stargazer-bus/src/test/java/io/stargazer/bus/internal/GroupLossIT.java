package io.stargazer.bus.internal;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.lettuce.core.Consumer;
import io.lettuce.core.XClaimArgs;
import io.lettuce.core.XGroupCreateArgs;
import io.lettuce.core.XReadArgs;
import io.stargazer.bus.ConsumerConfig;
import io.stargazer.bus.Delivery;
import io.stargazer.bus.Envelope;
import io.stargazer.bus.EventBus;
import io.stargazer.bus.NodeRole;
import io.stargazer.bus.Topology;
import io.stargazer.bus.testing.Closer;
import io.stargazer.bus.testing.RawRedis;
import io.stargazer.bus.testing.TestRedis;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * A NOGROUP reply tells of the group as it was when its command ran. The seam {@link StreamConsumer#refreshReplies}
 * holds the heartbeat's NOGROUP reply until the group was re-created (by someone else, as another consumer does after
 * an empty restart) and this consumer has read an entry from the new group: the order a slow connection produces.
 */
@Timeout(value = 2, unit = TimeUnit.MINUTES)
class GroupLossIT {
    private static final Duration WAIT = Duration.ofSeconds(20);
    private final Closer closer = new Closer();

    @AfterEach
    void closeAll() throws Exception {
        closer.close();
    }

    /**
     * Before, the late reply counted as a loss of the group for every entry held then, the new group's included: one of
     * them that failed, and that another consumer then took over and acknowledged, was found pending nowhere and run
     * here again at its retry, as if its group had been lost since it was read.
     */
    @Test
    void aLateNoGroupReplyDoesNotCountAsALossForEntriesReadFromTheNewGroup() throws Exception {
        EventBus bus = closer.add(TestRedis.bus(NodeRole.WORKER));
        RawRedis raw = closer.add(new RawRedis(TestRedis.url()));
        Topology t = bus.topology();
        String stream = t.inboundStream();
        String group = t.workerGroup();
        bus.ensureGroup(stream, group);
        AtomicReference<Delivery> first = new AtomicReference<>();
        AtomicInteger secondRuns = new AtomicInteger();
        // One in-flight place: while the first entry holds it the reader takes no read, so only the heartbeat meets the loss.
        StreamConsumer sub = (StreamConsumer) closer.add(bus.subscribe(ConsumerConfig.builder(stream, group).consumerName("a")
                .manualAck(true).maxInFlight(1).concurrency(1).claimIdle(Duration.ofSeconds(2)).blockTimeout(Duration.ofMillis(100))
                .retryBackoff(Duration.ofSeconds(3)).maxRetryBackoff(Duration.ofSeconds(3)).maxDeliveries(10).closeTimeout(Duration.ofSeconds(1))
                .build(), d -> {
                    if (d.envelope().content().equals("first")) {
                        first.set(d);
                    } else {
                        secondRuns.incrementAndGet();
                        throw new IllegalStateException("the second fails here");
                    }
                }));
        CompletableFuture<Void> gate = new CompletableFuture<>();
        closer.add(() -> gate.complete(null));
        AtomicReference<Throwable> heldReply = new AtomicReference<>();
        sub.refreshReplies = reply -> reply.handle((lost, e) -> {
            if (e != null && StreamConsumer.isNoGroup(e) && heldReply.compareAndSet(null, e)) {
                return gate.<List<String>>thenCompose(v -> CompletableFuture.failedFuture(e));
            }
            return e == null ? CompletableFuture.completedFuture(lost) : CompletableFuture.<List<String>>failedFuture(e);
        }).thenCompose(f -> f);

        bus.publish(stream, Envelope.of("channel_id", "c1", "content", "first"));
        await("first held").atMost(WAIT).until(() -> first.get() != null);
        raw.sync().xgroupDestroy(RawRedis.b(stream), RawRedis.b(group));
        await("a refresh met NOGROUP, its reply held").atMost(WAIT).until(() -> heldReply.get() != null);
        try {
            raw.sync().xgroupCreate(XReadArgs.StreamOffset.latest(RawRedis.b(stream)), RawRedis.b(group), XGroupCreateArgs.Builder.mkstream());
        } catch (io.lettuce.core.RedisBusyException alreadyRecreated) {
            // the consumer re-created it itself: the reply is late all the same
        }
        first.get().ack(); // frees the in-flight place: the reader reads from the new group
        String second = bus.publish(stream, Envelope.of("channel_id", "c2", "content", "second"));
        await("the second ran and failed").atMost(WAIT).until(() -> secondRuns.get() == 1);

        gate.complete(null); // the late NOGROUP reply
        // Another consumer takes the second over and handles it (as it would with this one cut off for the claim time).
        raw.sync().xclaim(RawRedis.b(stream), Consumer.from(RawRedis.b(group), RawRedis.b("taker")), XClaimArgs.Builder.minIdleTime(0), second);
        raw.sync().xack(RawRedis.b(stream), RawRedis.b(group), second);

        await("the second is not run again here past its retry").during(Duration.ofSeconds(5)).atMost(Duration.ofSeconds(8))
                .until(() -> secondRuns.get() == 1);
    }
}
