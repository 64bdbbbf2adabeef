// Promise: a publish waiting behind a retry (RetryLanes) fails as not sent at its deadline and is never written
// afterwards. Found by the review of 18d16fa: the lane's pump let a waiting publish go without looking at its deadline: one whose deadline has
// passed but which the timer has not failed yet (up to one expiry tick, 100 ms, or longer while the timer thread is
// late) is handed to the publisher and written, and its caller gets an entry id after its deadline. The test holds the
// timer thread to make that window as wide as a late timer makes it.
package io.stargazer.bus.internal;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.stargazer.bus.BusConfig;
import io.stargazer.bus.BusConnectionException;
import io.stargazer.bus.Envelope;
import io.stargazer.bus.EventBus;
import io.stargazer.bus.NodeRole;
import io.stargazer.bus.PublishOptions;
import io.stargazer.bus.RedisUrl;
import io.stargazer.bus.StreamEntry;
import io.stargazer.bus.Topology;
import io.stargazer.bus.testing.RedisFaults;
import io.stargazer.bus.testing.TcpProxy;
import io.stargazer.bus.testing.TestRedis;
import io.stargazer.embedded.RedisServerProcess;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

@Timeout(value = 2, unit = TimeUnit.MINUTES)
class LaneDeadlineIT {
    private final List<AutoCloseable> closeables = new ArrayList<>();

    @AfterEach
    void closeAll() throws Exception {
        for (int i = closeables.size() - 1; i >= 0; i--) closeables.get(i).close();
    }

    @Test
    void aPublishWaitingBehindARetryIsNeverWrittenAfterItsDeadline() throws Exception {
        Duration publishTimeout = Duration.ofSeconds(1);
        RedisServerProcess server = RedisServerProcess.builder().start();
        closeables.add(server);
        RedisUrl url = RedisUrl.parse(server.url());
        TcpProxy proxy = TcpProxy.to(url);
        closeables.add(proxy);
        Topology t = Topology.builder().namespace(TestRedis.namespace()).build();
        EventBus bus = EventBus.connect(proxy.url(), BusConfig.builder().topology(t).role(NodeRole.GATEWAY).nodeId("lane")
                .publishTimeout(publishTimeout).build());
        closeables.add(bus);
        RedisEventBus impl = (RedisEventBus) bus;
        String stream = t.inboundStream();
        bus.publish(stream, Envelope.of("seq", 0));

        CountDownLatch timerFree = new CountDownLatch(1);
        closeables.add(timerFree::countDown);
        CompletableFuture<String> retrying;
        RedisFaults.Fault oom = RedisFaults.refuseWrites(url);
        try {
            retrying = bus.publishAsync(stream, Envelope.of("seq", 1), PublishOptions.builder().dedupeKey("r-1").maxAttempts(20).build());
            await().atMost(Duration.ofSeconds(10)).until(() -> impl.lanes().size() == 1); // its first try failed (OOM)
            // Its next try will be stuck on the wire: the connection carries nothing until unfrozen.
            proxy.freezeExisting();
        } finally {
            oom.close(); // through a connection of its own, not the proxy
        }
        long start = System.nanoTime();
        CompletableFuture<String> behind = bus.publishAsync(stream, Envelope.of("seq", 2));
        long deadline = start + publishTimeout.toNanos();
        StreamPublisher publisher = publisher(impl, stream);
        await().atMost(Duration.ofSeconds(10)).until(() -> publisher.unanswered() > 0); // the retry's next try is written
        assertThat(behind).as("the publish behind the retry, waiting").isNotDone();
        // The timer is late from here on (a GC pause, a loaded machine; or just the up to 100 ms between two ticks).
        impl.timers().execute(() -> {
            try {
                timerFree.await();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        });
        await().atMost(Duration.ofSeconds(10)).until(() -> System.nanoTime() - deadline > 200_000_000L);
        assertThat(behind).as("the publish behind the retry, past its deadline").isNotDone();
        proxy.unfreeze(); // the retry's try is answered: it is stored, and the lane lets the waiting publish go
        await().atMost(Duration.ofSeconds(10)).until(() -> retrying.isDone());
        await().atMost(Duration.ofSeconds(5)).until(behind::isDone);
        long answeredMs = (System.nanoTime() - start) / 1_000_000;
        timerFree.countDown();
        Throwable outcome = behind.handle((id, e) -> e).get(10, TimeUnit.SECONDS);
        List<Long> seqs = TestRedis.readAll(bus, stream).stream().map(StreamEntry::envelope).map(e -> e.longValue("seq", -1)).toList();
        assertThat(outcome).as("the publish behind the retry, answered %d ms after its call (deadline %d ms): stream %s",
                answeredMs, publishTimeout.toMillis(), seqs).isInstanceOf(BusConnectionException.class);
        assertThat(seqs).as("written after its deadline").doesNotContain(2L);
    }

    @SuppressWarnings("unchecked")
    private static StreamPublisher publisher(RedisEventBus bus, String stream) throws Exception {
        java.lang.reflect.Field f = RedisEventBus.class.getDeclaredField("publishers");
        f.setAccessible(true);
        return ((Map<String, StreamPublisher>) f.get(bus)).get(stream);
    }
}
