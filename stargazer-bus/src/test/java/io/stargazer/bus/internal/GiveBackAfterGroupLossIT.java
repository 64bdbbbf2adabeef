package io.stargazer.bus.internal;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.lettuce.core.Consumer;
import io.lettuce.core.RedisBusyException;
import io.lettuce.core.XGroupCreateArgs;
import io.lettuce.core.XReadArgs;
import io.stargazer.bus.ConsumerConfig;
import io.stargazer.bus.DeadLetterFilter;
import io.stargazer.bus.Delivery;
import io.stargazer.bus.Envelope;
import io.stargazer.bus.EventBus;
import io.stargazer.bus.NodeRole;
import io.stargazer.bus.testing.Closer;
import io.stargazer.bus.testing.RawRedis;
import io.stargazer.bus.testing.TestRedis;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * A give-back (Delivery.release, close's) of an entry whose group this consumer saw lost: the group may have been
 * re-created before the entry (by another consumer whose last delivered id is older, or an operator's XGROUP CREATE ...
 * 0), and then delivers it again; a dead letter besides would be a second copy, run twice when replayed. Found by the
 * second review of the give-back's dead letter (d0ba335).
 */
@Timeout(value = 2, unit = TimeUnit.MINUTES)
class GiveBackAfterGroupLossIT {
    private static final Duration WAIT = Duration.ofSeconds(20);
    private final Closer closer = new Closer();

    @AfterEach
    void closeAll() throws Exception {
        closer.close();
    }

    private record Setup(EventBus bus, RawRedis raw, String stream, String group, String id,
            AtomicReference<Delivery> held, AtomicInteger runs) {}

    /** A holds X (one in-flight place); the group is destroyed, A sees it lost, and it is re-created at 0. */
    private Setup groupRecreatedBeforeTheHeldEntry() throws Exception {
        EventBus bus = closer.add(TestRedis.bus(NodeRole.WORKER));
        RawRedis raw = closer.add(new RawRedis(TestRedis.url()));
        String stream = bus.topology().inboundStream();
        String group = bus.topology().workerGroup();
        bus.ensureGroup(stream, group);
        AtomicReference<Delivery> held = new AtomicReference<>();
        AtomicInteger runs = new AtomicInteger();
        StreamConsumer sub = (StreamConsumer) closer.add(bus.subscribe(ConsumerConfig.builder(stream, group).consumerName("a")
                .manualAck(true).maxInFlight(1).concurrency(1).claimIdle(Duration.ofSeconds(2)).blockTimeout(Duration.ofMillis(100))
                .closeTimeout(Duration.ofSeconds(1)).build(), d -> {
                    runs.incrementAndGet();
                    held.compareAndSet(null, d);
                }));
        AtomicBoolean sawNoGroup = new AtomicBoolean();
        sub.refreshReplies = reply -> reply.whenComplete((lost, e) -> {
            if (e != null && StreamConsumer.isNoGroup(e)) sawNoGroup.set(true);
        });
        String id = bus.publish(stream, Envelope.of("channel_id", "c1", "content", "x"));
        await("X held by a").atMost(WAIT).until(() -> held.get() != null);
        raw.sync().xgroupDestroy(RawRedis.b(stream), RawRedis.b(group));
        await("a's heartbeat saw the group lost").atMost(WAIT).until(sawNoGroup::get);
        // Re-created before X: as another consumer does whose last delivered id is older (it wins the XGROUP CREATE),
        // or an operator re-creating the group at 0. If a re-created it first (past X), it is set back the same way.
        try {
            raw.sync().xgroupCreate(XReadArgs.StreamOffset.from(RawRedis.b(stream), "0"), RawRedis.b(group), XGroupCreateArgs.Builder.mkstream());
        } catch (RedisBusyException aRecreatedItFirst) {
            raw.sync().xgroupSetid(XReadArgs.StreamOffset.from(RawRedis.b(stream), "0"), RawRedis.b(group));
        }
        assertThat(bus.pendingCount(stream, group)).as("X pending nowhere, not yet delivered by the new group").isZero();
        return new Setup(bus, raw, stream, group, id, held, runs);
    }

    /** The new group delivers X again: a release must not also dead-letter it (two copies, one replayed later). */
    @Test
    void aReleaseOfAnEntryTheReCreatedGroupDeliversAgainIsNotDeadLettered() throws Exception {
        Setup s = groupRecreatedBeforeTheHeldEntry();

        assertThat(s.held().get().release()).isTrue();

        await("X delivered again by the new group").atMost(WAIT).until(() -> s.runs().get() >= 2);
        await("no dead letter of X").during(Duration.ofSeconds(3)).atMost(Duration.ofSeconds(5))
                .until(() -> s.bus().deadLetters().list(DeadLetterFilter.ALL).entries(), List::isEmpty);
    }

    /**
     * The case the bus cannot tell (docs/reliability.md, Closing the bus): another consumer of the group re-created before
     * the entry read and acknowledged it, so the group is past it and no one holds it, as for an entry nobody will read.
     * The bus errs towards a copy: a dead letter (whose replay runs it a second time), never a loss.
     */
    @Test
    void aReleaseOfAnEntryAcknowledgedInTheReCreatedGroupIsDeadLetteredAsACopyNotLost() throws Exception {
        Setup s = groupRecreatedBeforeTheHeldEntry();
        var read = s.raw().sync().xreadgroup(Consumer.from(RawRedis.b(s.group()), RawRedis.b("other")),
                XReadArgs.Builder.count(10), XReadArgs.StreamOffset.lastConsumed(RawRedis.b(s.stream())));
        assertThat(read).extracting(m -> m.getId()).contains(s.id());
        s.raw().sync().xack(RawRedis.b(s.stream()), RawRedis.b(s.group()), s.id());

        assertThat(s.held().get().release()).isTrue();

        var dead = await("X dead-lettered").atMost(WAIT)
                .until(() -> s.bus().deadLetters().list(DeadLetterFilter.ALL).entries(), l -> !l.isEmpty());
        assertThat(dead).singleElement().satisfies(d -> assertThat(d.sourceId()).isEqualTo(s.id()));
        assertThat(s.runs()).as("run once here; the other consumer's run was its own").hasValue(1);
    }
}
