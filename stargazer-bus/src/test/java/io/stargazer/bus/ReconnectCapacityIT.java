package io.stargazer.bus;

import static org.awaitility.Awaitility.await;

import io.stargazer.bus.testing.Closer;
import io.stargazer.bus.testing.TcpProxy;
import io.stargazer.bus.testing.TestRedis;
import java.time.Duration;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

// A subscription keeps its whole capacity (maxInFlight deliveries at once) through reconnects that fail part way:
// after a lost connection the reader reads its own pending list again and, for an entry a handler still holds, puts
// back the delivery count with XCLAIM; when that XCLAIM's connection was lost too, the in-flight places taken for the
// read were never given back, and each such failure shrank the subscription until it handled one entry at a time.
@Timeout(value = 2, unit = TimeUnit.MINUTES)
class ReconnectCapacityIT {
    private static final int MAX_IN_FLIGHT = 4;
    private final Closer closer = new Closer();

    @AfterEach
    void closeAll() throws Exception {
        closer.close();
    }

    @Test
    void aReconnectWhoseXclaimFailsWhileAHandlerHoldsAnEntryKeepsEveryInFlightPlace() {
        TcpProxy proxy = closer.add(TcpProxy.to(TestRedis.url()));
        Topology t = TestRedis.topology();
        EventBus bus = closer.add(EventBus.connect(proxy.url(),
                BusConfig.builder().topology(t).role(NodeRole.STANDALONE).nodeId("node").build()));
        String stream = t.inboundStream();
        CountDownLatch releaseSlow = new CountDownLatch(1);
        CountDownLatch releaseRest = new CountDownLatch(1);
        closer.add(releaseSlow::countDown);
        closer.add(releaseRest::countDown);
        AtomicInteger slowStarted = new AtomicInteger();
        Set<String> running = ConcurrentHashMap.newKeySet();
        closer.add(bus.subscribe(ConsumerConfig.builder(stream, t.workerGroup()).consumerName("c")
                .maxInFlight(MAX_IN_FLIGHT).batchSize(MAX_IN_FLIGHT).concurrency(MAX_IN_FLIGHT)
                .claimIdle(Duration.ofSeconds(30)).blockTimeout(Duration.ofMillis(200)).closeTimeout(Duration.ofSeconds(1))
                .build(), d -> {
                    if (d.envelope().channelId().equals("slow")) {
                        slowStarted.incrementAndGet();
                        releaseSlow.await();
                    } else {
                        running.add(d.envelope().channelId());
                        releaseRest.await();
                    }
                }));

        bus.publishInbound(Envelope.of("platform", "webchat", "channel_id", "slow", "content", "held"));
        await().atMost(Duration.ofSeconds(10)).until(() -> slowStarted.get() == 1);

        // Every connection is cut; the reader's next three reads of its pending list each lose their connection at the
        // XCLAIM that restores the held entry's count. The fourth gets through.
        proxy.cutConnectionsSending("XCLAIM", 3);
        proxy.cutAll();
        await().atMost(Duration.ofSeconds(30)).until(() -> proxy.commandsCut() == 3);
        releaseSlow.countDown();

        // Entries of four channels must run at once: every in-flight place is free again.
        for (int i = 0; i < MAX_IN_FLIGHT; i++) {
            bus.publishInbound(Envelope.of("platform", "webchat", "channel_id", "ch-" + i, "content", "m" + i));
        }
        await().atMost(Duration.ofSeconds(30)).alias("deliveries running at once after three XCLAIMs failed during"
                + " reconnects, of maxInFlight " + MAX_IN_FLIGHT).until(() -> running.size() == MAX_IN_FLIGHT);
    }
}
