// Promise (never answer twice): a consumer frozen or cut off past the claim time does not run what another now holds.
package io.stargazer.bus;

import static io.stargazer.testing.RawRedis.b;
import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.lettuce.core.Limit;
import io.lettuce.core.Range;
import io.stargazer.bus.testing.Closer;
import io.stargazer.bus.testing.RawRedis;
import io.stargazer.bus.testing.RedisFaults;
import io.stargazer.bus.testing.TcpProxy;
import io.stargazer.bus.testing.TestRedis;
import io.stargazer.testing.ChildJvm;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * A consumer never runs an entry another consumer holds, also after its process was frozen (SIGSTOP: a GC pause, a
 * suspended VM) or cut off from Redis past the claim time and another consumer took its entries over: once it runs
 * again, what it had read and not started is not run there beside the consumer that holds it now.
 */
@Timeout(value = 2, unit = TimeUnit.MINUTES)
class FrozenConsumerIT {
    private static final String CLAIM_IDLE_MS = "2000";

    private final Closer closer = new Closer();
    private final CountDownLatch bHolds = new CountDownLatch(1);
    private final CountDownLatch releaseB = new CountDownLatch(1);
    private final List<String> bRan = new CopyOnWriteArrayList<>();
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
        releaseB.countDown();
        closer.close();
    }

    /**
     * A frozen with "slow" running and "next" (same channel) read and waiting behind it; B takes both over and holds
     * "next". When A runs again, "slow" returns at once, and "next" is B's: A lets it go.
     */
    @Test
    void anEntryWaitingForItsChannelOnAFrozenConsumerIsNotRunThereOnceAnotherConsumerHoldsIt() throws Exception {
        try (ChildJvm a = ChildJvm.start(FrozenWorkerChild.class, TestRedis.url().toString(), stream, group, "A", CLAIM_IDLE_MS)) {
            await("A subscribed").atMost(Duration.ofSeconds(60)).until(() -> a.printed("READY"));
            bus.publish(stream, Envelope.of("channel_id", "c", "content", "slow"));
            String next = bus.publish(stream, Envelope.of("channel_id", "c", "content", "next"));
            await("A runs slow").atMost(Duration.ofSeconds(20)).until(() -> a.printed("START slow 1"));
            await("A read next too").atMost(Duration.ofSeconds(10)).until(() -> "A".equals(holder(next)));
            try (RedisFaults.Fault frozen = RedisFaults.pause(a.pid())) {
                consumerB("next");
                await("B took both over and holds next").atMost(Duration.ofSeconds(30)).until(() -> bHolds.getCount() == 0);
                a.send("go"); // slow's handler returns as soon as A runs again
            }
            await("A's slow handler returned").atMost(Duration.ofSeconds(20)).until(() -> a.printed("DONE slow"));
            await("A does not run next, which B holds").during(Duration.ofSeconds(2)).atMost(Duration.ofSeconds(5))
                    .until(() -> !started(a, "next"));
            assertThat(holder(next)).as("next is still B's").isEqualTo("B");
            assertThat(bRan).as("B took both over, in their order").containsExactly("slow", "next");
        }
    }

    /**
     * A frozen with a read blocked on the wire, which the server answers meanwhile with "fresh-N" (pending with A); B
     * takes it over and holds it. When A runs again the read's reply is there, and the entry is B's: A lets it go.
     */
    @Test
    void anEntryDeliveredToAFrozenConsumersBlockedReadIsNotRunThereOnceAnotherConsumerHoldsIt() throws Exception {
        try (ChildJvm a = ChildJvm.start(FrozenWorkerChild.class, TestRedis.url().toString(), stream, group, "A", CLAIM_IDLE_MS)) {
            await("A subscribed").atMost(Duration.ofSeconds(60)).until(() -> a.printed("READY"));
            bus.publish(stream, Envelope.of("channel_id", "c", "content", "warm-up"));
            await("A reads").atMost(Duration.ofSeconds(20)).until(() -> a.printed("DONE warm-up"));
            // A's reads block at most 500 ms (its pause check) and it has a few commands between them: a stop can land
            // where no read is on the wire, and then nothing is delivered to it. Such a try is undone and made again.
            for (int n = 0;; n++) {
                assertThat(n).as("tries to stop A with a read on the wire").isLessThan(10);
                String content = "fresh-" + n;
                RedisFaults.Fault frozen = RedisFaults.pause(a.pid());
                String fresh;
                try {
                    fresh = bus.publish(stream, Envelope.of("channel_id", "c", "content", content));
                    if (!deliveredWithin(fresh, "A", Duration.ofSeconds(1))) {
                        frozen.close();
                        await("A reads " + content + " once it runs").atMost(Duration.ofSeconds(20)).until(() -> a.printed("DONE " + content));
                        continue;
                    }
                    consumerB(content);
                    await("B took " + content + " over and holds it").atMost(Duration.ofSeconds(30)).until(() -> bHolds.getCount() == 0);
                } finally {
                    frozen.close();
                }
                await("A does not run " + content + ", which B holds").during(Duration.ofSeconds(3)).atMost(Duration.ofSeconds(6))
                        .until(() -> !started(a, content));
                assertThat(holder(fresh)).as(content + " is still B's").isEqualTo("B");
                return;
            }
        }
    }

    private boolean deliveredWithin(String id, String consumer, Duration limit) {
        try {
            await().atMost(limit).until(() -> consumer.equals(holder(id)));
            return true;
        } catch (org.awaitility.core.ConditionTimeoutException notYet) {
            return false;
        }
    }

    /**
     * The same with A's process running on and cut off from Redis past the claim time (its connections carry nothing):
     * "slow" returns while the refresh that would find "next" taken over has no answer. "next" is B's: A lets it go
     * once Redis answers again, rather than run it meanwhile.
     */
    @Test
    void anEntryWaitingForItsChannelOnAConsumerCutOffFromRedisIsNotRunThereOnceAnotherConsumerHoldsIt() throws Exception {
        TcpProxy proxy = closer.add(TcpProxy.to(TestRedis.url()));
        EventBus aBus = closer.add(EventBus.connect(proxy.url(), TestRedis.config(NodeRole.WORKER).topology(bus.topology()).build()));
        CountDownLatch releaseSlow = new CountDownLatch(1);
        CountDownLatch slowReturning = new CountDownLatch(1);
        List<String> aRan = new CopyOnWriteArrayList<>();
        aBus.subscribe(ConsumerConfig.builder(stream, group).consumerName("A")
                .claimIdle(Duration.ofMillis(Long.parseLong(CLAIM_IDLE_MS))).build(), d -> {
                    aRan.add(d.envelope().content());
                    if (d.envelope().content().equals("slow")) {
                        releaseSlow.await(60, TimeUnit.SECONDS);
                        slowReturning.countDown();
                    }
                });
        bus.publish(stream, Envelope.of("channel_id", "c", "content", "slow"));
        String next = bus.publish(stream, Envelope.of("channel_id", "c", "content", "next"));
        await("A runs slow").atMost(Duration.ofSeconds(20)).until(() -> aRan.contains("slow"));
        await("A read next too").atMost(Duration.ofSeconds(10)).until(() -> "A".equals(holder(next)));
        proxy.freezeAll();
        try {
            consumerB("next");
            await("B took both over and holds next").atMost(Duration.ofSeconds(30)).until(() -> bHolds.getCount() == 0);
            releaseSlow.countDown();
            await("A's slow handler returns").atMost(Duration.ofSeconds(10)).until(() -> slowReturning.getCount() == 0);
        } finally {
            proxy.unfreeze();
        }
        await("A does not run next, which B holds").during(Duration.ofSeconds(3)).atMost(Duration.ofSeconds(6))
                .until(() -> !aRan.contains("next"));
        assertThat(holder(next)).as("next is still B's").isEqualTo("B");
    }

    /** Consumer B in this process, holding {@code holdOn} (its handler waits) once it runs it. */
    private void consumerB(String holdOn) {
        closer.add(bus.subscribe(ConsumerConfig.builder(stream, group).consumerName("B")
                .claimIdle(Duration.ofMillis(Long.parseLong(CLAIM_IDLE_MS))).build(), d -> {
                    bRan.add(d.envelope().content());
                    if (d.envelope().content().equals(holdOn)) {
                        bHolds.countDown();
                        releaseB.await(60, TimeUnit.SECONDS);
                    }
                }));
    }

    /** Whether {@code a} started a handler of the entry whose content is {@code content}, any delivery of it. */
    private static boolean started(ChildJvm a, String content) {
        return a.lines().stream().anyMatch(l -> l.startsWith("START " + content + " "));
    }

    /** The consumer {@code id} is pending with, or null. */
    private String holder(String id) {
        var rows = raw.sync().xpending(b(stream), b(group), Range.create(id, id), Limit.from(1));
        return rows.isEmpty() ? null : rows.get(0).getConsumer();
    }
}
