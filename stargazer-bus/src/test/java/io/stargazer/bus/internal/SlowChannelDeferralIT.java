package io.stargazer.bus.internal;

import static io.stargazer.testing.RawRedis.b;
import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.lettuce.core.KillArgs;
import io.stargazer.bus.ConsumerConfig;
import io.stargazer.bus.Envelope;
import io.stargazer.bus.EventBus;
import io.stargazer.bus.NodeRole;
import io.stargazer.bus.RedisUrl;
import io.stargazer.bus.RetryOrder;
import io.stargazer.bus.Subscription;
import io.stargazer.bus.testing.Closer;
import io.stargazer.bus.testing.RawRedis;
import io.stargazer.bus.testing.TestRedis;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * A channel whose handler hangs, with many entries queued behind it, does not stop the consumer's other channels: past
 * {@code maxWaitingPerChannel} waiting in its lane, its entries are deferred (left pending with the consumer in Redis,
 * not held) and read back in order when the lane has room. Before, its waiting entries filled the whole in-flight
 * window and the consumer read nothing more (docs/reliability.md, "A slow channel ...").
 */
@Timeout(value = 3, unit = TimeUnit.MINUTES)
class SlowChannelDeferralIT {
    private static final Duration WAIT = Duration.ofSeconds(30);
    private static final int SLOW = 200;
    private static final int OTHER_CHANNELS = 10;
    private static final int PER_OTHER = 30;

    private final Closer closer = new Closer();
    private EventBus bus;
    private String stream;
    private String group;
    private final CountDownLatch release = new CountDownLatch(1);
    /** Per channel, what its handler was given: content#deliveryCount, in the order the handler started. */
    private final Map<String, List<String>> ran = new ConcurrentHashMap<>();

    @BeforeEach
    void worker() {
        bus = closer.add(EventBus.connect(url(), TestRedis.config(NodeRole.WORKER).build()));
        stream = bus.topology().inboundStream();
        group = bus.topology().workerGroup();
        bus.ensureGroup(stream, group);
    }

    /** The server the tests run on; SlowChannelDeferralRedis62IT runs them on the oldest supported one. */
    protected RedisUrl url() {
        return TestRedis.url();
    }

    @AfterEach
    void closeAll() throws Exception {
        release.countDown(); // a hung handler would hold each close for its close timeout
        closer.close();
    }

    private ConsumerConfig.Builder config(String consumer) {
        // 64 in flight: the slow channel's 200 entries are more than the whole window. The default bound: a quarter, 16.
        return ConsumerConfig.builder(stream, group).consumerName(consumer).maxInFlight(64).batchSize(16).concurrency(4)
                .blockTimeout(Duration.ofMillis(200));
    }

    /** The handler: records, and the slow channel's first entry waits for the test's latch. */
    private void handle(io.stargazer.bus.Delivery d) throws InterruptedException {
        Envelope e = d.envelope();
        ran.computeIfAbsent(e.channelId(), c -> new CopyOnWriteArrayList<>()).add(e.content() + "#" + d.deliveryCount());
        if (e.content().equals("slow-0")) release.await(2, TimeUnit.MINUTES);
    }

    private List<String> publishSlowThenOthers() {
        List<String> slowIds = new ArrayList<>();
        for (int i = 0; i < SLOW; i++) slowIds.add(bus.publish(stream, Envelope.of("channel_id", "slow", "content", "slow-" + i)));
        for (int i = 0; i < PER_OTHER; i++) {
            for (int c = 0; c < OTHER_CHANNELS; c++) bus.publish(stream, Envelope.of("channel_id", "o" + c, "content", "o" + c + "-" + i));
        }
        return slowIds;
    }

    private int othersHandled() {
        int n = 0;
        for (int c = 0; c < OTHER_CHANNELS; c++) n += ran.getOrDefault("o" + c, List.of()).size();
        return n;
    }

    private static List<String> expected(String prefix, int n) {
        List<String> out = new ArrayList<>();
        for (int i = 0; i < n; i++) out.add(prefix + i + "#1");
        return out;
    }

    @Test
    void aHungChannelDoesNotStopTheOtherChannelsAndRunsInOrderOnceReleased() {
        StreamConsumer sub = (StreamConsumer) closer.add(bus.subscribe(config("a").build(), this::handle));
        int bound = config("a").build().maxWaitingPerChannel();
        assertThat(bound).as("a quarter of maxInFlight").isEqualTo(16);
        publishSlowThenOthers();
        AtomicInteger mostWaiting = new AtomicInteger();
        await("every other channel's entries handled while the slow channel hangs").atMost(WAIT).until(() -> {
            mostWaiting.accumulateAndGet(sub.waitingInLane("slow"), Math::max);
            return othersHandled() == OTHER_CHANNELS * PER_OTHER;
        });
        assertThat(ran.get("slow")).as("the slow channel is still on its first entry").containsExactly("slow-0#1");
        assertThat(mostWaiting.get()).as("waiting in the slow channel's lane, at most the bound").isLessThanOrEqualTo(bound);
        await("the other channels' entries settled").atMost(WAIT).until(() -> sub.stats().inFlight() <= bound + 1);
        assertThat(sub.waitingInLane("slow")).isEqualTo(bound);
        assertThat(sub.deferredOf("slow")).as("the rest deferred, not held").isEqualTo(SLOW - 1 - bound);
        for (int c = 0; c < OTHER_CHANNELS; c++) assertThat(ran.get("o" + c)).as("channel o" + c).isEqualTo(expected("o" + c + "-", PER_OTHER));

        release.countDown();
        await("the slow channel's entries all handled").atMost(WAIT).until(() -> ran.get("slow").size() >= SLOW && sub.stats().inFlight() == 0);
        assertThat(ran.get("slow")).as("each once, in order, first deliveries").isEqualTo(expected("slow-", SLOW));
        assertThat(sub.deferred()).isZero();
        // Acknowledgements go out in batches after the handlers return: none may stay pending, in the end.
        await("nothing left pending").atMost(WAIT).until(() -> bus.pendingCount(stream, group) == 0);
    }

    /**
     * Order across the deferral with failing entries retried, in both retry orders: one that fails while its lane holds
     * the others, and one that was deferred and read back. Each entry's first attempt runs in id order and is its first
     * delivery (a read-back does not count one); ordered, a retry runs before the channel's next entry.
     */
    @ParameterizedTest
    @EnumSource(RetryOrder.class)
    void orderHoldsAcrossTheDeferralWithRetries(RetryOrder order) {
        int n = 80;
        List<String> failOnce = List.of("slow-3", "slow-50");
        StreamConsumer sub = (StreamConsumer) closer.add(bus.subscribe(config("a").retryOrder(order)
                .retryBackoff(Duration.ofMillis(100)).maxRetryBackoff(Duration.ofMillis(200)).build(), d -> {
                    handle(d);
                    if (failOnce.contains(d.envelope().content()) && d.deliveryCount() == 1) throw new IllegalStateException("once");
                }));
        for (int i = 0; i < n; i++) bus.publish(stream, Envelope.of("channel_id", "slow", "content", "slow-" + i));
        bus.publish(stream, Envelope.of("channel_id", "other", "content", "other-0"));
        await("the other channel goes on").atMost(WAIT).until(() -> ran.containsKey("other"));
        await("the slow channel's later entries deferred").atMost(WAIT).until(() -> sub.deferredOf("slow") > 0);
        release.countDown();
        await("all handled").atMost(WAIT).until(() -> ran.get("slow").size() >= n + failOnce.size() && sub.stats().inFlight() == 0);
        List<String> seen = ran.get("slow");
        List<String> firsts = seen.stream().filter(s -> s.endsWith("#1")).toList();
        assertThat(firsts).as("first attempts in order, each a first delivery").isEqualTo(expected("slow-", n));
        assertThat(seen).as("the failed ones retried once, as delivery 2").contains("slow-3#2", "slow-50#2").hasSize(n + 2);
        if (order == RetryOrder.ORDERED) {
            for (String f : failOnce) {
                int i = Integer.parseInt(f.substring(5));
                assertThat(seen.indexOf(f + "#2")).as(f + "'s retry before the next entry").isLessThan(seen.indexOf("slow-" + (i + 1) + "#1"));
            }
        }
        // Acknowledgements go out in batches after the handlers return: none may stay pending, in the end.
        await("nothing left pending").atMost(WAIT).until(() -> bus.pendingCount(stream, group) == 0);
    }

    /**
     * Deferred entries stay the consumer's: a second consumer with a short claim time takes none of them over while the
     * first is alive (its refresh covers them as it covers held ones), so none runs there beside the hung one here.
     */
    @Test
    void aSecondConsumerDoesNotTakeOverDeferredEntriesWhileTheFirstIsAlive() {
        Duration claim = Duration.ofSeconds(1);
        StreamConsumer a = (StreamConsumer) closer.add(bus.subscribe(config("a").claimIdle(claim).build(), this::handle));
        for (int i = 0; i < 100; i++) bus.publish(stream, Envelope.of("channel_id", "slow", "content", "slow-" + i));
        await("a defers the slow channel's later entries").atMost(WAIT).until(() -> a.deferredOf("slow") > 0);
        List<String> onB = new CopyOnWriteArrayList<>();
        closer.add(bus.subscribe(config("b").claimIdle(claim).build(), d -> onB.add(d.envelope().content())));
        await("b takes nothing over for five claim times").during(claim.multipliedBy(5)).atMost(claim.multipliedBy(7)).until(onB::isEmpty);
        release.countDown();
        await("a runs them all").atMost(WAIT).until(() -> ran.get("slow").size() >= 100 && a.stats().inFlight() == 0);
        assertThat(ran.get("slow")).isEqualTo(expected("slow-", 100));
        assertThat(onB).isEmpty();
    }

    /**
     * A consumer closed with entries deferred leaves them pending with their delivery put back (none of them ran): after
     * the claim time another consumer takes them over and runs each once, in order, as its first delivery.
     */
    @Test
    void deferredEntriesOfAClosedConsumerAreTakenOverByAnotherAndRunOnceInOrder() throws Exception {
        Subscription a = bus.subscribe(config("a").closeTimeout(Duration.ofMillis(500)).build(), this::handle);
        for (int i = 0; i < 100; i++) bus.publish(stream, Envelope.of("channel_id", "slow", "content", "slow-" + i));
        await("a defers the slow channel's later entries").atMost(WAIT).until(() -> ((StreamConsumer) a).deferredOf("slow") > 0);
        a.close(); // the hung handler is interrupted: its entry is given back too
        release.countDown();
        assertThat(bus.pendingCount(stream, group)).as("all still pending").isEqualTo(100);
        ran.clear();
        closer.add(bus.subscribe(config("b").maxDeliveries(1).claimIdle(Duration.ofMillis(500)).build(), this::handle));
        await("b takes them all over and runs them").atMost(WAIT).until(() -> ran.getOrDefault("slow", List.of()).size() >= 100
                && bus.pendingCount(stream, group) == 0);
        assertThat(ran.get("slow")).as("each once, in order, none counted twice (one delivery allowed)").isEqualTo(expected("slow-", 100));
        assertThat(TestRedis.readAll(bus, bus.topology().deadLetterStream(stream))).isEmpty();
    }

    /**
     * The consumer's connections cut while entries are deferred: its reader reconnects and reads its pending list again,
     * which holds the deferred entries; they stay deferred (not handed out ahead of their turn, their counts put back),
     * and once released all run once, in order.
     */
    @Test
    void deferredEntriesSurviveAReconnectAndRunOnceInOrder() throws Exception {
        StreamConsumer a = (StreamConsumer) closer.add(bus.subscribe(config("a").build(), this::handle));
        for (int i = 0; i < 100; i++) bus.publish(stream, Envelope.of("channel_id", "slow", "content", "slow-" + i));
        await("a defers the slow channel's later entries").atMost(WAIT).until(() -> a.deferredOf("slow") > 0);
        int deferred = a.deferredOf("slow");
        try (RawRedis raw = new RawRedis(url())) {
            raw.sync().clientKill(KillArgs.Builder.typeNormal().skipme(true));
        }
        await("a reconnected").atMost(WAIT).until(() -> a.state() == Subscription.State.RUNNING);
        bus.publish(stream, Envelope.of("channel_id", "other", "content", "after"));
        await("a reads again").atMost(WAIT).until(() -> ran.containsKey("other"));
        assertThat(a.deferredOf("slow")).as("still deferred, none handed out ahead").isEqualTo(deferred);
        release.countDown();
        await("all handled").atMost(WAIT).until(() -> ran.get("slow").size() >= 100 && a.stats().inFlight() == 0);
        assertThat(ran.get("slow")).as("each once, in order, first deliveries").isEqualTo(expected("slow-", 100));
        // Acknowledgements go out in batches after the handlers return: none may stay pending, in the end.
        await("nothing left pending").atMost(WAIT).until(() -> bus.pendingCount(stream, group) == 0);
    }

    /**
     * The group lost (destroyed: as when Redis loses its data) and re-created while entries are deferred: they are
     * pending nowhere, as the held ones are, and like those they run here all the same when their channel goes on (the
     * read-back claims them back with XCLAIM ... FORCE), once each, in order.
     */
    @Test
    void deferredEntriesOfALostGroupStillRunOnceInOrder() throws Exception {
        StreamConsumer a = (StreamConsumer) closer.add(bus.subscribe(config("a").claimIdle(Duration.ofSeconds(2)).build(), this::handle));
        for (int i = 0; i < 100; i++) bus.publish(stream, Envelope.of("channel_id", "slow", "content", "slow-" + i));
        await("a defers the slow channel's later entries").atMost(WAIT).until(() -> a.deferredOf("slow") > 0);
        try (RawRedis raw = new RawRedis(url())) {
            raw.sync().xgroupDestroy(b(stream), b(group));
        }
        bus.publish(stream, Envelope.of("channel_id", "other", "content", "after"));
        await("a re-created the group and reads again").atMost(WAIT).until(() -> ran.containsKey("other"));
        release.countDown();
        await("all handled").atMost(WAIT).until(() -> ran.get("slow").size() >= 100 && a.stats().inFlight() == 0 && a.deferred() == 0);
        assertThat(ran.get("slow")).as("each once, in order, first deliveries").isEqualTo(expected("slow-", 100));
        // Acknowledgements go out in batches after the handlers return: none may stay pending, in the end.
        await("nothing left pending").atMost(WAIT).until(() -> bus.pendingCount(stream, group) == 0);
    }

    /** maxWaitingPerChannel at maxInFlight turns deferring off: the channel's entries fill the window, as before. */
    @Test
    void atMaxInFlightNothingIsDeferred() {
        StreamConsumer a = (StreamConsumer) closer.add(bus.subscribe(config("a").maxWaitingPerChannel(64).build(), this::handle));
        for (int i = 0; i < 100; i++) bus.publish(stream, Envelope.of("channel_id", "slow", "content", "slow-" + i));
        await("the window full of the slow channel").atMost(WAIT).until(() -> a.waitingInLane("slow") == 63);
        await("nothing deferred").during(Duration.ofSeconds(1)).atMost(Duration.ofSeconds(3)).until(() -> a.deferred() == 0);
        release.countDown();
        await("all handled").atMost(WAIT).until(() -> ran.get("slow").size() >= 100 && a.stats().inFlight() == 0);
        assertThat(ran.get("slow")).isEqualTo(expected("slow-", 100));
    }
}
