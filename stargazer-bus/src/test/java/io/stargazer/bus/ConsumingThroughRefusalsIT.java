// Promise (never lose, never answer twice, never stall): a consumer meets a server that refuses its writes for a while and goes on once it takes them again.
package io.stargazer.bus;

import static io.stargazer.bus.BusAcceptanceSuite.message;
import static io.stargazer.bus.BusAcceptanceSuite.seq;
import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.stargazer.bus.testing.Closer;
import io.stargazer.bus.testing.RawRedis;
import io.stargazer.bus.testing.RefusedPort;
import io.stargazer.bus.testing.TestRedis;
import io.stargazer.embedded.RedisServerProcess;
import io.stargazer.testing.CapturedStderr;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import java.util.stream.IntStream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * A server that answers but refuses every write for a while: a primary turned replica ({@code READONLY}), one whose
 * {@code min-replicas-to-write} is not met ({@code NOREPLICAS}). Two handlers are running when it starts: one returns
 * during it (its acknowledgement is refused), one publishes during it (refused, retried uncounted). The subscription
 * must say so (RECONNECTING, a WARN naming the refusal), run nothing twice, and handle every entry once the server
 * takes writes again. Before, the data held, but the subscription's WARN said "lost Redis; reconnecting: NOREPLICAS
 * ..." of a server that answered, and of a primary turned replica only the UNBLOCKED that ended its blocked read: the
 * READONLY of every read after it was logged at DEBUG.
 */
@Timeout(value = 2, unit = TimeUnit.MINUTES)
class ConsumingThroughRefusalsIT {
    private final Closer closer = new Closer();

    @AfterEach
    void closeAll() throws Exception {
        closer.close();
    }

    /** Makes the server refuse writes until closed. */
    interface Fault extends AutoCloseable {
        @Override
        void close();
    }

    @Test
    void aPrimaryTurnedReplicaForAWhile() throws Exception {
        RefusedPort nowhere = closer.add(new RefusedPort());
        consumeThrough(raw -> {
            raw.sync().replicaof("127.0.0.1", nowhere.port());
            return () -> raw.sync().replicaofNoOne();
        }, "READONLY");
    }

    @Test
    void aPrimaryWithoutItsReplicas() throws Exception {
        consumeThrough(raw -> {
            raw.sync().configSet("min-replicas-to-write", "1");
            return () -> raw.sync().configSet("min-replicas-to-write", "0");
        }, "NOREPLICAS");
    }

    private void consumeThrough(java.util.function.Function<RawRedis, Fault> fault, String refusal) throws Exception {
        RedisServerProcess server = closer.add(RedisServerProcess.builder().appendOnly(false).start());
        RedisUrl url = RedisUrl.parse(server.url());
        RawRedis raw = closer.add(new RawRedis(url));
        Topology t = TestRedis.topology();
        String stream = t.inboundStream();
        String answers = stream + ":answers";
        CapturedStderr err = closer.add(new CapturedStderr());
        EventBus bus = closer.add(EventBus.connect(url, BusConfig.builder().topology(t).role(NodeRole.STANDALONE).nodeId("w")
                .deadPeerTimeout(Duration.ofSeconds(1)).build()));
        bus.ensureGroup(stream, t.workerGroup());
        Map<Integer, Integer> starts = new ConcurrentHashMap<>();
        Map<Integer, Integer> succeeded = new ConcurrentHashMap<>();
        CountDownLatch gate = new CountDownLatch(1);
        closer.add(gate::countDown);
        Subscription sub = closer.add(bus.subscribe(ConsumerConfig.builder(stream, t.workerGroup()).consumerName("w")
                .maxInFlight(4).concurrency(4).claimIdle(Duration.ofSeconds(4)).blockTimeout(Duration.ofMillis(200))
                .retryBackoff(Duration.ofMillis(100)).maxRetryBackoff(Duration.ofMillis(500)).maxDeliveries(3).build(), d -> {
                    int s = seq(d);
                    starts.merge(s, 1, Integer::sum);
                    if (s < 2) gate.await(60, TimeUnit.SECONDS); // running across the fault
                    if (s == 1) bus.publish(answers, Envelope.of("channel_id", "a", "content", "answer"));
                    succeeded.merge(s, 1, Integer::sum);
                }));
        for (int i = 0; i < 10; i++) bus.publish(stream, message(i, "c-" + i));
        await().atMost(Duration.ofSeconds(20)).until(() -> starts.containsKey(0) && starts.containsKey(1)
                && succeeded.keySet().containsAll(IntStream.range(2, 10).boxed().toList()));

        try (Fault f = fault.apply(raw)) {
            await("refused, said").atMost(Duration.ofSeconds(20)).until(() -> sub.state() == Subscription.State.RECONNECTING);
            gate.countDown(); // 0 returns (its XACK refused), 1 publishes (refused)
            await("still refused, still said").during(Duration.ofSeconds(3)).atMost(Duration.ofSeconds(5))
                    .until(() -> sub.state() == Subscription.State.RECONNECTING);
        }
        for (int i = 10; i < 15; i++) {
            int s = i;
            await().atMost(Duration.ofSeconds(20)).ignoreExceptions().until(() -> bus.publish(stream, message(s, "c-" + s)) != null);
        }
        await("every entry handled").atMost(Duration.ofSeconds(30))
                .until(() -> succeeded.keySet().containsAll(IntStream.range(0, 15).boxed().toList())
                        && bus.pendingCount(stream, t.workerGroup()) == 0);
        await().atMost(Duration.ofSeconds(10)).until(() -> sub.state() == Subscription.State.RUNNING);
        assertThat(succeeded).as("handlers that succeeded, by entry").allSatisfy((s, n) -> assertThat(n).as("entry " + s).isEqualTo(1));
        assertThat(starts.get(0)).as("runs of the entry whose handler returned during the fault").isEqualTo(1);
        assertThat(raw.xlen(answers)).as("answers stored").isEqualTo(1);
        java.util.List<String> readerLines = err.text().lines().filter(l -> l.contains("WARN") && l.contains("Subscription to '" + stream + "'"))
                .collect(Collectors.toList());
        assertThat(readerLines).as("the subscription's WARN lines").anyMatch(l -> l.contains(refusal))
                .noneMatch(l -> l.contains("lost Redis"));
    }
}
