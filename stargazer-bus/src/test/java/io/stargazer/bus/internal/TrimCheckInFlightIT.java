// Promise (SAFE trimming, bounded memory): while a trim check is in flight, this process takes a stream at most a
// tenth of its cap past the cap; publishes past that wait for the check's answer, then go (room) or are held or
// refused (full). Before, they all went: a check whose answer was slow let a publisher take the stream past its cap by
// as many as it could publish meanwhile (TrimPolicyIT saw 1 664 publishes accepted against a cap of 1 000 in CI).
package io.stargazer.bus.internal;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.stargazer.bus.Backpressure;
import io.stargazer.bus.BackpressureException;
import io.stargazer.bus.BusConfig;
import io.stargazer.bus.Envelope;
import io.stargazer.bus.EventBus;
import io.stargazer.bus.NodeRole;
import io.stargazer.bus.Topology;
import io.stargazer.bus.TrimPolicy;
import io.stargazer.bus.testing.RawRedis;
import io.stargazer.bus.testing.TestRedis;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ExecutionException;
import org.junit.jupiter.api.Test;

class TrimCheckInFlightIT {
    private static final Duration WAIT = Duration.ofSeconds(30);
    private static final int CAP = 1000;
    /** A tenth of the cap. */
    private static final int SLACK = 100;
    private static final int BURST = 400;

    @Test
    void publishesPastATenthOverTheCapWaitForTheCheckInFlightAndGoWhenItFindsRoom() throws Exception {
        Topology t = TestRedis.topology();
        String stream = t.inboundStream();
        try (RawRedis raw = new RawRedis(TestRedis.url());
             EventBus bus = TestRedis.bus(config(t, Backpressure.BLOCK))) {
            // A group that has read the first 950 entries (created at their end): the check trims those and finds room.
            for (int i = 0; i < CAP - 50; i++) raw.xadd(stream, "payload", "x");
            raw.sync().xgroupCreate(io.lettuce.core.XReadArgs.StreamOffset.from(RawRedis.b(stream), "$"), RawRedis.b("caught-up"));
            List<Runnable> held = holdNextCheck(bus, stream, raw, 0);
            long before = raw.xlen(stream);
            List<CompletableFuture<String>> burst = burst(bus);
            long gone = goneWhileHeld(burst);
            assertThat(raw.xlen(stream)).as("the stream's length while the check is in flight").isEqualTo(before + gone);

            ((RedisEventBus) bus).guard().completeVia = Runnable::run;
            held.forEach(Runnable::run);
            await("every publish of the burst stored once the check answered").atMost(WAIT)
                    .until(() -> burst.stream().allMatch(f -> f.isDone() && !f.isCompletedExceptionally()));
        }
    }

    @Test
    void underRejectTheWaitingPublishesAreRefusedWhenTheCheckFindsTheStreamFull() throws Exception {
        Topology t = TestRedis.topology();
        String stream = t.inboundStream();
        try (RawRedis raw = new RawRedis(TestRedis.url());
             EventBus bus = TestRedis.bus(config(t, Backpressure.REJECT))) {
            bus.ensureGroup(stream, "laggard"); // reads nothing: the stream at its cap is full
            List<Runnable> held = holdNextCheck(bus, stream, raw, CAP - 50);
            long before = raw.xlen(stream);
            List<CompletableFuture<String>> burst = burst(bus);
            long gone = goneWhileHeld(burst);

            ((RedisEventBus) bus).guard().completeVia = Runnable::run;
            held.forEach(Runnable::run);
            await("every publish of the burst answered").atMost(WAIT).until(() -> burst.stream().allMatch(CompletableFuture::isDone));
            List<Throwable> refused = new ArrayList<>();
            for (CompletableFuture<String> f : burst) {
                if (!f.isCompletedExceptionally()) continue;
                try {
                    f.get();
                } catch (ExecutionException e) {
                    refused.add(e.getCause());
                }
            }
            assertThat(refused).as("the publishes that waited").hasSize(BURST - (int) gone)
                    .allSatisfy(e -> assertThat(e).isInstanceOf(BackpressureException.class).hasMessageContaining("laggard"));
            assertThat(raw.xlen(stream)).as("every publish that was answered with an id is stored").isEqualTo(before + gone);
        }
    }

    private static BusConfig config(Topology t, Backpressure backpressure) {
        return BusConfig.builder().topology(t).role(NodeRole.GATEWAY).nodeId("g").streamMaxlen(CAP).trimPolicy(TrimPolicy.SAFE)
                .backpressure(backpressure).publishTimeout(Duration.ofSeconds(20)).backpressureTimeout(Duration.ofSeconds(20)).build();
    }

    /**
     * Adds {@code fill} entries from outside. The stream's first check from here (its first publish) learns its length; entries added from outside since take
     * it past its cap unseen, and publishes from here go on until this process's own count says a check is due: that
     * check finds the stream at or over its cap, and its answer is held.
     */
    private static List<Runnable> holdNextCheck(EventBus bus, String stream, RawRedis raw, int fill) {
        for (int i = 0; i < fill; i++) raw.xadd(stream, "payload", "x");
        StreamGuard guard = ((RedisEventBus) bus).guard();
        bus.publishInbound(Envelope.of("seq", -1));
        await("the first look answered").atMost(WAIT).until(() -> guard.state(stream).checksDone == 1 && !guard.state(stream).checking.get());
        for (int i = 0; i < 60; i++) raw.xadd(stream, "payload", "x");
        List<Runnable> held = new CopyOnWriteArrayList<>();
        guard.completeVia = held::add;
        for (int seq = 0; held.isEmpty() && seq < CAP; seq++) bus.publishInbound(Envelope.of("seq", -2 - seq));
        assertThat(held).as("a check started once this process counted the stream to its cap").hasSize(1);
        return held;
    }

    private static List<CompletableFuture<String>> burst(EventBus bus) {
        List<CompletableFuture<String>> fs = new ArrayList<>();
        for (int i = 0; i < BURST; i++) fs.add(bus.publishInboundAsync(Envelope.of("seq", i)));
        return fs;
    }

    /** How many of the burst were answered while the check is held: they must stop within the slack. */
    private static long goneWhileHeld(List<CompletableFuture<String>> burst) {
        long gone = await("the publishes within the slack").atMost(WAIT).until(() -> done(burst), n -> n > 0);
        await("no more go while the check is held").during(Duration.ofMillis(500)).atMost(WAIT).until(() -> done(burst) == gone);
        assertThat(gone).as("publishes that went while the check was in flight").isLessThanOrEqualTo(SLACK + 1);
        return gone;
    }

    private static long done(List<CompletableFuture<String>> fs) {
        return fs.stream().filter(CompletableFuture::isDone).count();
    }
}
