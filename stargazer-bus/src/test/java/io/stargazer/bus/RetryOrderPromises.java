package io.stargazer.bus;

import static io.stargazer.bus.BusAcceptanceSuite.fast;
import static io.stargazer.bus.BusAcceptanceSuite.message;
import static io.stargazer.bus.BusAcceptanceSuite.seq;
import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.stargazer.bus.testing.Sample;
import io.stargazer.bus.testing.TcpProxy;
import io.stargazer.bus.testing.TestRedis;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import org.assertj.core.api.SoftAssertions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * "One channel stays in order" through retries (issue 20): a failed entry's channel waits for its retry by default
 * ({@link RetryOrder#ORDERED}); {@link RetryOrder#UNORDERED} lets the channel's later entries go ahead, as documented;
 * and entries taken over from a consumer that died are handled in order too. Run by {@link BusAcceptanceSuite} on
 * every supported server. Handlers only record; every assertion is made on the test thread.
 */
@Timeout(value = 2, unit = TimeUnit.MINUTES)
abstract class RetryOrderPromises extends SuitePromises {
    private static final Duration WAIT = Duration.ofSeconds(30);

    RetryOrderPromises(BusAcceptanceSuite suite) {
        super(suite);
    }

    /**
     * 20 channels of 30 entries; every fifth entry of a channel fails on its first delivery. By default every channel's
     * entries are handled successfully in stream order, and no entry of a channel is even started while an earlier
     * one of its channel waits for its retry.
     */
    @Test
    void byDefaultAChannelWaitsForItsFailedEntrysRetryAndStaysInOrder() {
        Topology t = TestRedis.topology();
        String stream = t.inboundStream();
        int channels = 20;
        int perChannel = 30;
        EventBus bus = bus(url(), t, "node");
        bus.ensureGroup(stream, t.workerGroup());
        for (int i = 0; i < channels * perChannel; i++) bus.publishInbound(message(i, "ch-" + i % channels));

        Map<Integer, List<Integer>> handledInOrder = new ConcurrentHashMap<>();
        Map<Integer, Set<Integer>> succeeded = new ConcurrentHashMap<>();
        Map<Integer, AtomicInteger> attempts = new ConcurrentHashMap<>();
        List<String> overtakes = new CopyOnWriteArrayList<>();
        AtomicInteger failures = new AtomicInteger();
        closer.add(bus.subscribe(fast(stream, t.workerGroup(), "c").concurrency(8).maxDeliveries(5).claimIdle(Duration.ofSeconds(30))
                .build(), d -> {
                    int s = seq(d);
                    int ch = s % channels;
                    int k = s / channels; // the entry's place in its channel
                    Set<Integer> done = succeeded.computeIfAbsent(ch, x -> ConcurrentHashMap.newKeySet());
                    for (int earlier = 0; earlier < k; earlier++) {
                        if (!done.contains(earlier)) {
                            overtakes.add("ch-" + ch + ": entry " + k + " started while entry " + earlier + " was unsettled");
                            break;
                        }
                    }
                    if ((k + ch) % 5 == 0 && attempts.computeIfAbsent(s, x -> new AtomicInteger()).incrementAndGet() == 1) {
                        failures.incrementAndGet();
                        throw new IllegalStateException("transient failure of entry " + k + " of ch-" + ch);
                    }
                    handledInOrder.computeIfAbsent(ch, x -> new CopyOnWriteArrayList<>()).add(k);
                    done.add(k);
                }));

        await().atMost(WAIT).until(() -> succeeded.values().stream().mapToInt(Set::size).sum() == channels * perChannel);
        List<String> outOfOrder = new ArrayList<>();
        handledInOrder.forEach((ch, ks) -> {
            if (!ks.equals(ks.stream().sorted().toList())) outOfOrder.add("ch-" + ch + " " + ks);
        });
        System.out.printf("ordered retries: %d transient failures; %d of %d channels out of order; %d entries started while an "
                + "earlier one of their channel was unsettled%n", failures.get(), outOfOrder.size(), channels, overtakes.size());
        SoftAssertions soft = new SoftAssertions();
        soft.assertThat(outOfOrder.size()).as(outOfOrder.size() + " of " + channels + " channels were handled out of stream order: "
                + Sample.of(outOfOrder, 3)).isZero();
        soft.assertThat(overtakes.size()).as(overtakes.size() + " entries were started while an earlier entry of their channel was "
                + "unsettled: " + Sample.of(overtakes, 5)).isZero();
        soft.assertThat(handledInOrder.values()).allSatisfy(ks -> assertThat(ks).hasSize(perChannel));
        soft.assertAll();
    }

    /**
     * The opt-out: with {@link RetryOrder#UNORDERED} a failed entry is retried after its backoff (2 s here) while the
     * later entries of its channel go ahead of it.
     */
    @Test
    void withUnorderedRetriesTheLaterEntriesOfAChannelGoAheadOfAFailedOne() {
        Topology t = TestRedis.topology();
        String stream = t.inboundStream();
        EventBus bus = bus(url(), t, "node");
        bus.ensureGroup(stream, t.workerGroup());
        for (int i = 0; i < 5; i++) bus.publishInbound(message(i, "x"));
        List<Integer> handled = new CopyOnWriteArrayList<>();
        AtomicLong retriedDeliveryCount = new AtomicLong();
        AtomicInteger firstAttempts = new AtomicInteger();
        closer.add(bus.subscribe(fast(stream, t.workerGroup(), "c").retryOrder(RetryOrder.UNORDERED).retryBackoff(Duration.ofSeconds(2))
                .maxRetryBackoff(Duration.ofSeconds(2)).claimIdle(Duration.ofSeconds(30)).build(), d -> {
                    if (seq(d) == 0 && firstAttempts.getAndIncrement() == 0) {
                        throw new IllegalStateException("first attempt of entry 0 fails");
                    }
                    if (seq(d) == 0) retriedDeliveryCount.set(d.deliveryCount());
                    handled.add(seq(d));
                }));
        await().atMost(WAIT).until(() -> handled.size() == 5);
        assertThat(handled).as("handled in this order").containsExactly(1, 2, 3, 4, 0);
        assertThat(retriedDeliveryCount.get()).as("delivery of entry 0 that succeeded").isEqualTo(2);
    }

    /**
     * Consumer A holds entries 3, 4 and 5 of a channel: 3 failed (after 1.2 s of work) and waits for its retry, 4 and 5
     * wait behind it (today's code starts 4 instead and leaves it hanging). A then dies: its connections are cut and
     * none gets through again. Consumer B, with a short claim idle time (1 s), takes them over and must handle them in
     * channel order: 3, 4, 5. When A dies, 4 and 5 have been idle for 1.5 s while A's retry of 3 has just reset 3's
     * idle time, so a takeover that goes by idle time alone meets 4 and 5 a second before 3.
     */
    @Test
    void entriesTakenOverFromAConsumerThatDiedAreHandledInChannelOrder() throws Exception {
        Topology t = TestRedis.topology();
        String stream = t.inboundStream();
        String group = t.workerGroup();
        EventBus bus = bus(url(), t, "node");
        TcpProxy linkA = TcpProxy.to(url());
        EventBus busA = bus(linkA.url(), t, "a");
        closer.add(linkA);
        bus.ensureGroup(stream, group);
        for (int i = 0; i < 6; i++) bus.publishInbound(message(i, "ch"));

        CountDownLatch aHangs = new CountDownLatch(1);
        List<Integer> handledByA = new CopyOnWriteArrayList<>();
        AtomicInteger failuresOf3 = new AtomicInteger();
        AtomicLong firstFailureAt = new AtomicLong();
        closer.add(busA.subscribe(ConsumerConfig.builder(stream, group).consumerName("a").claimIdle(Duration.ofSeconds(30))
                .retryBackoff(Duration.ofMillis(100)).maxRetryBackoff(Duration.ofMillis(100)).maxDeliveries(1000)
                .blockTimeout(Duration.ofMillis(200)).closeTimeout(Duration.ofSeconds(1)).build(), d -> {
                    int s = seq(d);
                    if (s == 3) {
                        Thread.sleep(1200); // the model call, which then fails
                        firstFailureAt.compareAndSet(0, System.nanoTime());
                        failuresOf3.incrementAndGet();
                        throw new IllegalStateException("entry 3 fails on A");
                    }
                    if (s > 3) {
                        aHangs.await(); // A is stuck on it when it dies
                    }
                    handledByA.add(s);
                }));
        closer.add(aHangs::countDown); // released before A's subscription is closed
        await().atMost(WAIT).until(() -> handledByA.size() == 3 && failuresOf3.get() >= 1 && bus.pendingCount(stream, group) == 3);
        // Long enough for A to schedule its retry of 3; 4 and 5 have been idle since they were read, 1.5 s ago.
        await().atMost(WAIT).until(() -> System.nanoTime() - firstFailureAt.get() > TimeUnit.MILLISECONDS.toNanos(300));
        assertThat(handledByA).containsExactly(0, 1, 2);

        linkA.cutAll(); // A dies: every connection reset, and none gets through again
        linkA.close();
        List<Integer> handledByB = new CopyOnWriteArrayList<>();
        closer.add(bus.subscribe(fast(stream, group, "b").claimIdle(Duration.ofSeconds(1)).build(), d -> handledByB.add(seq(d))));
        await().atMost(WAIT).until(() -> handledByB.size() >= 3);
        await().atMost(WAIT).until(() -> bus.pendingCount(stream, group) == 0);
        System.out.printf("takeover order: B handled %s (A had failed entry 3 %d times)%n", handledByB, failuresOf3.get());
        assertThat(handledByB).as("entries B took over from A, in the order B handled them").containsExactly(3, 4, 5);
    }
}
