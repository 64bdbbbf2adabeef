package io.stargazer.bus.internal;

import static io.stargazer.testing.RawRedis.b;
import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.lettuce.core.Consumer;
import io.lettuce.core.XClaimArgs;
import io.lettuce.core.XReadArgs;
import io.stargazer.bus.ConsumerConfig;
import io.stargazer.bus.Envelope;
import io.stargazer.bus.EventBus;
import io.stargazer.bus.NodeRole;
import io.stargazer.bus.Subscription;
import io.stargazer.bus.testing.Closer;
import io.stargazer.bus.testing.RawRedis;
import io.stargazer.bus.testing.TestRedis;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Entries changing hands between consumers: what was delivered too often is not run again, and what another consumer
 * owns now is not run by the one that lost it. Both failed on the code before them: a taken-over entry whose count the
 * pending list's reply left out ran as a first delivery, and an entry waiting for its channel's lane ran there after
 * its consumer had learned it was taken over.
 */
@Timeout(value = 2, unit = TimeUnit.MINUTES)
class TakeoverIT {
    private final Closer closer = new Closer();
    private EventBus bus;
    private RawRedis raw;
    private String stream;
    private String group;

    @BeforeEach
    void worker() {
        bus = closer.add(TestRedis.bus(NodeRole.WORKER));
        raw = closer.add(new RawRedis(TestRedis.url()));
        stream = bus.topology().inboundStream();
        group = bus.topology().workerGroup();
        bus.ensureGroup(stream, group);
    }

    @AfterEach
    void closeAll() throws Exception {
        closer.close();
    }

    @Test
    void anEntryTakenOverPastMaxDeliveriesIsDeadLetteredNotRunEvenBehindALongPendingList() throws Exception {
        List<String> ids = new ArrayList<>();
        ids.add(bus.publish(stream, Envelope.of("channel_id", "x", "content", "poison-1")));
        for (int i = 0; i < 20; i++) ids.add(bus.publish(stream, Envelope.of("channel_id", "y" + i, "content", "hold-" + i)));
        ids.add(bus.publish(stream, Envelope.of("channel_id", "z", "content", "poison-2")));
        var sync = raw.sync();
        // "dead" holds the first and the last entry, "c" the twenty between them: the pending list the taker reads for
        // the counts of what it took (its own entries, from the first taken id to the last) is longer than its reply.
        sync.xreadgroup(Consumer.from(b(group), b("dead")), XReadArgs.Builder.count(1), XReadArgs.StreamOffset.lastConsumed(b(stream)));
        sync.xreadgroup(Consumer.from(b(group), b("c")), XReadArgs.Builder.count(20), XReadArgs.StreamOffset.lastConsumed(b(stream)));
        sync.xreadgroup(Consumer.from(b(group), b("dead")), XReadArgs.Builder.count(1), XReadArgs.StreamOffset.lastConsumed(b(stream)));
        // The dead consumer was delivered its two entries 10 times (it crashed on them, say).
        sync.xclaim(b(stream), Consumer.from(b(group), b("dead")), XClaimArgs.Builder.minIdleTime(0).retryCount(10).justid(),
                ids.get(0), ids.get(21));
        CountDownLatch release = new CountDownLatch(1);
        List<String> ran = new CopyOnWriteArrayList<>();
        Subscription sub = closer.add(bus.subscribe(ConsumerConfig.builder(stream, group).consumerName("c")
                .claimIdle(Duration.ofSeconds(1)).maxDeliveries(5).concurrency(24).build(), d -> {
                    String c = d.envelope().content();
                    ran.add(c + "#" + d.deliveryCount());
                    if (c.startsWith("hold")) release.await(30, TimeUnit.SECONDS);
                }));
        try {
            await("both poison entries dead-lettered").atMost(Duration.ofSeconds(30))
                    .until(() -> TestRedis.readAll(bus, bus.topology().deadLetterStream(stream)).size() == 2);
        } finally {
            release.countDown();
        }
        await("the held entries handled").atMost(Duration.ofSeconds(30)).until(() -> sub.stats().acknowledged() >= 20);
        assertThat(ran).as("no entry delivered 11 times (more than 5) is run").noneMatch(s -> s.startsWith("poison"));
    }

    @Test
    void anEntryTakenOverWhileItWaitsForItsChannelIsNotRunByTheConsumerThatLostIt() throws Exception {
        E2WaitsBehindE1 w = e2WaitsBehindE1();
        // What consumer B's takeover does after A could not reach Redis past the claim time. JUSTID: the count stays 1.
        raw.sync().xclaim(b(stream), Consumer.from(b(group), b("B")), XClaimArgs.Builder.minIdleTime(0).justid(), w.e1(), w.e2());
        await("A's heartbeat learns that e2 is B's now").atMost(Duration.ofSeconds(10)).until(() -> w.a().heldButLost(w.e2()));
        w.release().countDown();
        // B never handles it (it is this test), so A takes it over in turn after the claim time: a second delivery.
        await("e2 taken over by A from B").atMost(Duration.ofSeconds(30)).until(() -> w.ran().contains("e2#2"));
        assertThat(w.ran()).as("e2 not run on A as its stale first delivery").doesNotContain("e2#1");
    }

    /**
     * An entry waiting for its channel when its group is lost (destroyed, or Redis lost its data) and re-created
     * after it is pending nowhere: it still runs here, its only chance. (The check above, that an entry another
     * consumer took over is not run, must not drop it.)
     */
    @Test
    void anEntryWaitingForItsChannelWhenItsGroupIsLostStillRuns() throws Exception {
        E2WaitsBehindE1 w = e2WaitsBehindE1();
        raw.sync().xgroupDestroy(b(stream), b(group));
        await("A's heartbeat finds e2 no longer pending with it").atMost(Duration.ofSeconds(10)).until(() -> w.a().heldButLost(w.e2()));
        w.release().countDown();
        await("e2 runs").atMost(Duration.ofSeconds(20)).until(() -> w.ran().contains("e2#1"));
    }

    /**
     * The same for an entry waiting for its retry when its group is lost and re-created after it: pending nowhere, it
     * is retried here as it would have been (the heartbeat cancelled the retry and dropped it: a failure of a model
     * provider at the wrong moment lost the message, with only a warning).
     */
    @Test
    void anEntryWaitingForItsRetryWhenItsGroupIsLostIsStillRetried() throws Exception {
        List<String> ran = new CopyOnWriteArrayList<>();
        StreamConsumer a = (StreamConsumer) closer.add(bus.subscribe(ConsumerConfig.builder(stream, group).consumerName("A")
                .claimIdle(Duration.ofSeconds(2)).retryBackoff(Duration.ofSeconds(4)).maxRetryBackoff(Duration.ofSeconds(4)).build(), d -> {
                    ran.add(d.envelope().content() + "#" + d.deliveryCount());
                    if (d.deliveryCount() == 1) throw new IllegalStateException("the model provider timed out");
                }));
        String e = bus.publish(stream, Envelope.of("channel_id", "c", "content", "e"));
        await("the first attempt failed").atMost(Duration.ofSeconds(10)).until(() -> ran.contains("e#1"));
        raw.sync().xgroupDestroy(b(stream), b(group));
        // The heartbeat has acted: marked it (or, as before, dropped it) before its retry is due.
        await("A's heartbeat finds e no longer pending with it").atMost(Duration.ofSeconds(10))
                .until(() -> a.heldButLost(e) || a.stats().inFlight() == 0);
        await("e is retried").atMost(Duration.ofSeconds(20)).until(() -> ran.contains("e#2"));
        await("and settled").atMost(Duration.ofSeconds(10)).until(() -> !a.heldButLost(e) && a.stats().inFlight() == 0);
    }

    /** An interrupted handler's entry that another consumer took over meanwhile is not claimed back by the give-back. */
    @Test
    void anInterruptedHandlersEntryThatAnotherConsumerTookOverIsNotClaimedBack() throws Exception {
        CountDownLatch started = new CountDownLatch(1);
        StreamConsumer a = (StreamConsumer) bus.subscribe(ConsumerConfig.builder(stream, group).consumerName("A")
                .claimIdle(Duration.ofSeconds(2)).closeTimeout(Duration.ofMillis(300)).build(), d -> {
                    started.countDown();
                    new CountDownLatch(1).await();
                });
        String id = bus.publish(stream, Envelope.of("channel_id", "c", "content", "x"));
        assertThat(started.await(20, TimeUnit.SECONDS)).isTrue();
        // B's takeover (counted, as XAUTOCLAIM counts): its delivery 2.
        raw.sync().xclaim(b(stream), Consumer.from(b(group), b("B")), XClaimArgs.Builder.minIdleTime(0).retryCount(2).justid(), id);
        await("A's heartbeat learns it").atMost(Duration.ofSeconds(10)).until(() -> a.heldButLost(id));
        a.close();
        // Still B's, its count as B's takeover made it, and it stays so (a give-back would land after close() returned).
        await("still B's, delivery 2").during(Duration.ofMillis(700)).atMost(Duration.ofSeconds(5)).until(() -> {
            var rows = raw.sync().xpending(b(stream), b(group), io.lettuce.core.Range.create(id, id), io.lettuce.core.Limit.from(1));
            return rows.size() == 1 && rows.get(0).getConsumer().equals("B") && rows.get(0).getRedeliveryCount() == 2;
        });
    }

    /** Consumer A, whose handler records "content#deliveryCount", holding e1 until {@code release} and e2 waiting behind it. */
    private record E2WaitsBehindE1(StreamConsumer a, List<String> ran, CountDownLatch release, String e1, String e2) {
    }

    private E2WaitsBehindE1 e2WaitsBehindE1() throws InterruptedException {
        CountDownLatch firstStarted = new CountDownLatch(1);
        CountDownLatch release = new CountDownLatch(1);
        List<String> ran = new CopyOnWriteArrayList<>();
        StreamConsumer a = (StreamConsumer) closer.add(bus.subscribe(ConsumerConfig.builder(stream, group).consumerName("A")
                .claimIdle(Duration.ofSeconds(2)).build(), d -> {
                    String c = d.envelope().content();
                    ran.add(c + "#" + d.deliveryCount());
                    if (c.equals("e1")) {
                        firstStarted.countDown();
                        release.await(30, TimeUnit.SECONDS);
                    }
                }));
        String e1 = bus.publish(stream, Envelope.of("channel_id", "c", "content", "e1"));
        String e2 = bus.publish(stream, Envelope.of("channel_id", "c", "content", "e2"));
        assertThat(firstStarted.await(20, TimeUnit.SECONDS)).isTrue();
        await("e2 waits behind e1 in its channel").atMost(Duration.ofSeconds(10)).until(() -> a.waitingInLane("c") == 1);
        return new E2WaitsBehindE1(a, ran, release, e1, e2);
    }
}
