// Promise (bounded memory, SAFE with SG_BACKPRESSURE=block): publishes held while their stream is full count against
// SG_PUBLISH_QUEUE_LIMIT, so one past it fails at once as an unheld one does; and every held publish is stored, in
// order, when room comes. Before, held publishes had no bound at all, and when room came they were all handed to the
// publisher at once, whose queue limit failed those past it: publishes that had waited for room failed as it came.
// And each held publish ends by its own deadline, also while Redis does not answer.
package io.stargazer.bus.internal;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.stargazer.bus.Backpressure;
import io.stargazer.bus.BackpressureException;
import io.stargazer.bus.BusConfig;
import io.stargazer.bus.ConsumerConfig;
import io.stargazer.bus.Envelope;
import io.stargazer.bus.EventBus;
import io.stargazer.bus.NodeRole;
import io.stargazer.bus.PublishQueueFullException;
import io.stargazer.bus.Topology;
import io.stargazer.bus.TrimPolicy;
import io.stargazer.bus.testing.RedisFaults;
import io.stargazer.bus.testing.TestRedis;
import io.stargazer.embedded.RedisServerProcess;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

@Timeout(value = 2, unit = TimeUnit.MINUTES)
class ParkedPublishLimitIT {
    private static final Duration WAIT = Duration.ofSeconds(60);
    private static final int CAP = 1000;
    private static final int LIMIT = 2000;
    private final List<AutoCloseable> closeables = new ArrayList<>();

    @AfterEach
    void closeAll() throws Exception {
        for (int i = closeables.size() - 1; i >= 0; i--) closeables.get(i).close();
    }

    @Test
    void publishesHeldWhileFullCountAgainstTheQueueLimitAndAreAllStoredInOrderWhenRoomComes() {
        Topology t = TestRedis.topology();
        String stream = t.inboundStream();
        EventBus bus = TestRedis.bus(BusConfig.builder().topology(t).role(NodeRole.WORKER).nodeId("p").streamMaxlen(CAP)
                .trimPolicy(TrimPolicy.SAFE).backpressure(Backpressure.BLOCK).backpressureTimeout(WAIT)
                .publishTimeout(WAIT).publishQueueLimit(LIMIT).build());
        closeables.add(bus);
        bus.ensureGroup(stream, "slow");
        for (int i = 0; i < CAP; i++) bus.publishInbound(Envelope.of("seq", i));
        StreamGuard guard = ((RedisEventBus) bus).guard();
        await().atMost(WAIT).until(() -> guard.isFull(stream));

        int attempts = LIMIT + 1000;
        List<CompletableFuture<String>> admitted = new ArrayList<>();
        List<Integer> admittedSeqs = new ArrayList<>();
        List<Throwable> refusedAtOnce = new ArrayList<>();
        for (int i = 0; i < attempts; i++) {
            CompletableFuture<String> f = bus.publishInboundAsync(Envelope.of("seq", CAP + i));
            if (f.isCompletedExceptionally()) {
                refusedAtOnce.add(f.handle((id, e) -> e).join());
            } else {
                admitted.add(f);
                admittedSeqs.add(CAP + i);
            }
        }
        int held;
        StreamGuard.State st = guard.state(stream);
        synchronized (st.parked) {
            held = st.parked.size();
        }
        assertThat(held).as("publishes held while full, within SG_PUBLISH_QUEUE_LIMIT").isLessThanOrEqualTo(LIMIT);
        assertThat(refusedAtOnce).as("publishes past SG_PUBLISH_QUEUE_LIMIT fail at once").hasSize(attempts - LIMIT);
        assertThat(refusedAtOnce).allSatisfy(e -> {
            assertThat(e).isInstanceOf(PublishQueueFullException.class);
            assertThat(((PublishQueueFullException) e).limit()).isEqualTo(LIMIT);
            assertThat(e.getMessage()).contains(stream).contains("2000").contains("SG_PUBLISH_QUEUE_LIMIT");
        });

        // The slow group reads everything: room comes, and every held publish is stored.
        closeables.add(bus.subscribe(ConsumerConfig.builder(stream, "slow").consumerName("c").blockTimeout(Duration.ofMillis(100))
                .build(), d -> { }));
        List<String> ids = new ArrayList<>();
        List<Throwable> failedLater = new ArrayList<>();
        for (CompletableFuture<String> f : admitted) {
            try {
                ids.add(f.join());
            } catch (CompletionException e) {
                failedLater.add(e.getCause());
            }
        }
        assertThat(failedLater).as("held publishes that failed once room came").isEmpty();
        assertThat(ids).hasSize(LIMIT);
        // Stream ids grow with every entry added: ids in the order the publishes were made are the order they were stored.
        for (int i = 1; i < ids.size(); i++) {
            assertThat(compareIds(ids.get(i - 1), ids.get(i))).as("held publish %d stored after the one before it", admittedSeqs.get(i))
                    .isNegative();
        }
    }

    /**
     * A held publish is failed at its own deadline by the bus's timer, whatever Redis does. Before, held publishes were
     * failed only when a trim check completed: with Redis paused the check in flight waited for Lettuce's 10 s command
     * timeout, so a publish held under a 2 s publish timeout was answered after about 10 s, and its message named the
     * 60 s backpressure timeout it had not waited.
     */
    @Test
    void aHeldPublishFailsAtItsPublishTimeoutWhenRedisStopsAnswering() throws Exception {
        Duration publishTimeout = Duration.ofSeconds(2);
        // Its own server: pausing the shared one would stall every other test.
        FullStream full = FullStream.start(closeables, publishTimeout, WAIT);
        RedisServerProcess server = full.server();
        EventBus bus = full.bus();
        String stream = full.stream();

        Throwable failure;
        long waitedMillis;
        try (RedisFaults.Fault paused = RedisFaults.pause(server)) {
            long start = System.nanoTime();
            CompletableFuture<String> held = bus.publishInboundAsync(Envelope.of("seq", -1));
            // Bounded well past Lettuce's 10 s command timeout, so that the old behaviour shows as a late answer.
            failure = held.handle((id, e) -> e).get(30, TimeUnit.SECONDS);
            waitedMillis = (System.nanoTime() - start) / 1_000_000;
        }
        assertThat(failure).as("the held publish's outcome").isNotNull();
        Throwable cause = Failures.unwrap(failure);
        // Its deadline plus the expiry's tick and a generous margin; well below the 10 s the check in flight takes.
        assertThat(waitedMillis).as("ms from the call to the answer (%s)", cause.getMessage())
                .isLessThan(publishTimeout.toMillis() + 4000);
        assertThat(cause).isInstanceOf(BackpressureException.class);
        assertThat(cause.getMessage()).contains("SG_PUBLISH_TIMEOUT_MS").doesNotContain("60000 ms");
    }

    private static int compareIds(String a, String b) {
        String[] x = a.split("-");
        String[] y = b.split("-");
        int c = Long.compare(Long.parseLong(x[0]), Long.parseLong(y[0]));
        return c != 0 ? c : Long.compare(Long.parseLong(x[1]), Long.parseLong(y[1]));
    }
}
