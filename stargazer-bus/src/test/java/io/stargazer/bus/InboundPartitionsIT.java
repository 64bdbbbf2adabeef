// Promise: subscribeInbound consumes every inbound partition with the worker group as one Subscription (state,
// stats and close over all parts), keeps per-channel order, and with one partition is the plain subscription.
package io.stargazer.bus;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.stargazer.bus.testing.TestRedis;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

class InboundPartitionsIT {

    @Test
    void everyPartitionIsConsumedAsOneSubscriptionInChannelOrder() {
        Topology t = Topology.builder().namespace(TestRedis.namespace()).inboundPartitions(4).build();
        Map<String, List<Integer>> seen = new ConcurrentHashMap<>();
        AtomicInteger threadsSeen = new AtomicInteger();
        Map<String, Boolean> threads = new ConcurrentHashMap<>();
        try (EventBus bus = TestRedis.bus(TestRedis.config(NodeRole.WORKER).topology(t).build())) {
            bus.ensureStreams();
            Subscription sub = bus.subscribeInbound(b -> b.concurrency(2), d -> {
                if (threads.putIfAbsent(Thread.currentThread().getName(), true) == null) threadsSeen.incrementAndGet();
                seen.computeIfAbsent(d.envelope().channelId(), k -> new CopyOnWriteArrayList<>()).add(((Long) d.envelope().get("n")).intValue());
            });
            assertThat(sub.stream()).isEqualTo(t.inboundStream());
            assertThat(sub.group()).isEqualTo(t.workerGroup());
            assertThat(sub.partitions()).extracting(Subscription::stream).containsExactlyElementsOf(t.inboundStreams());
            await().atMost(Duration.ofSeconds(10)).until(() -> sub.state() == Subscription.State.RUNNING);
            for (int n = 0; n < 50; n++) {
                for (int c = 0; c < 20; c++) {
                    bus.publishInboundAsync(Envelope.of("channel_id", "c" + c, "n", n));
                }
            }
            await().atMost(Duration.ofSeconds(20)).until(() -> sub.stats().acknowledged() == 1000);
            assertThat(sub.stats().delivered()).isEqualTo(1000);
            for (Subscription part : sub.partitions()) {
                assertThat(part.stats().delivered()).as(part.stream()).isPositive();
                assertThat(bus.pendingCount(part.stream(), t.workerGroup())).isZero();
            }
            List<Integer> inOrder = new ArrayList<>();
            for (int n = 0; n < 50; n++) inOrder.add(n);
            for (int c = 0; c < 20; c++) {
                assertThat(seen.get("c" + c)).as("c" + c).containsExactlyElementsOf(inOrder);
            }
            assertThat(threadsSeen.get()).as("handler threads across partitions").isGreaterThan(2);
            sub.close();
            assertThat(sub.state()).isEqualTo(Subscription.State.STOPPED);
            assertThat(sub.partitions()).allMatch(p -> p.state() == Subscription.State.STOPPED);
        }
    }

    @Test
    void onePartitionIsThePlainSubscriptionOfTheInboundStream() {
        Topology t = TestRedis.topology();
        try (EventBus bus = TestRedis.bus(TestRedis.config(NodeRole.WORKER).topology(t).build());
             Subscription sub = bus.subscribeInbound(d -> { })) {
            assertThat(sub.stream()).isEqualTo(t.inboundStream());
            assertThat(sub.partitions()).containsExactly(sub);
        }
    }

    /**
     * Regression: a batch sent from the Redis I/O thread (where the previous batch completed) overtook a batch that
     * another thread had just sent and that was still queued for writing, so one thread's publishes reached the
     * stream out of order.
     */
    @Test
    void asyncPublishesOfOneThreadReachTheStreamInOrder() {
        // Several streams at once keep the I/O thread busy with completions while writes queue: what exposed it.
        int streams = 4;
        Topology t = Topology.builder().namespace(TestRedis.namespace()).inboundPartitions(streams).build();
        try (EventBus bus = TestRedis.bus(TestRedis.config(NodeRole.GATEWAY).topology(t).build())) {
            List<List<java.util.concurrent.CompletableFuture<String>>> ids = new ArrayList<>();
            for (int s = 0; s < streams; s++) ids.add(new ArrayList<>());
            for (int n = 0; n < 40_000; n++) {
                ids.get(n % streams).add(bus.publishAsync(t.inboundStreams().get(n % streams), Envelope.of("channel_id", "c", "n", n)));
            }
            for (List<java.util.concurrent.CompletableFuture<String>> perStream : ids) {
                for (int n = 1; n < perStream.size(); n++) {
                    String a = perStream.get(n - 1).join();
                    String b = perStream.get(n).join();
                    assertThat(compareIds(a, b)).as("entry %d (%s) before entry %d (%s)", n - 1, a, n, b).isNegative();
                }
            }
        }
    }

    private static int compareIds(String a, String b) {
        String[] x = a.split("-");
        String[] y = b.split("-");
        int c = Long.compare(Long.parseLong(x[0]), Long.parseLong(y[0]));
        return c != 0 ? c : Long.compare(Long.parseLong(x[1]), Long.parseLong(y[1]));
    }
}
