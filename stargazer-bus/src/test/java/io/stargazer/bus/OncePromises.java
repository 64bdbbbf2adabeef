package io.stargazer.bus;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.stargazer.bus.testing.TcpProxy;
import io.stargazer.bus.testing.TestRedis;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * "Once, not twice" (issue 13, docs/once.md) as promises every supported server keeps: a dedupe key stores one entry
 * however often and however batched it is published, for at least its window, and an answer sent through the delivery
 * is stored once however often the delivery answers. Run by {@link BusAcceptanceSuite} on every server, since the
 * dedupe script leans on server features (TIME in a script, HMGET, UNLINK) that old servers must have too.
 */
@Timeout(value = 2, unit = TimeUnit.MINUTES)
abstract class OncePromises extends SuitePromises {
    OncePromises(BusAcceptanceSuite suite) {
        super(suite);
    }

    @Test
    void aKeyPublishedManyTimesAlsoInOneBatchStoresOneEntry() {
        Topology t = TestRedis.topology();
        EventBus bus = bus(url(), t, "node");
        String stream = t.inboundStream();
        List<CompletableFuture<String>> ids = new ArrayList<>();
        for (int i = 0; i < 1000; i++) {
            ids.add(bus.publishAsync(stream, Envelope.of("channel_id", "c", "n", i), PublishOptions.dedupeKey("discord:" + i % 50)));
        }
        for (int i = 0; i < 1000; i++) {
            assertThat(ids.get(i).join()).as("publish %s", i).isEqualTo(ids.get(i % 50).join());
        }
        assertThat(bus.publish(stream, Envelope.of("channel_id", "c"), PublishOptions.dedupeKey("discord:7"))).isEqualTo(ids.get(7).join());
        assertThat(TestRedis.readAll(bus, stream)).hasSize(50);
    }

    /** A 1 s window: the key still holds in the next period of the server's clock, and is forgotten after two. */
    @Test
    void aKeyHoldsForItsWindowAndIsThenForgotten() {
        Topology t = TestRedis.topology();
        EventBus bus = bus(url(), t, "node", b -> b.dedupeWindow(Duration.ofSeconds(1)));
        String stream = t.inboundStream();
        long start = System.nanoTime();
        String first = bus.publish(stream, Envelope.of("channel_id", "c"), PublishOptions.dedupeKey("k"));
        List<String> seen = new ArrayList<>();
        // Within the window (measured from before the first publish) the key answers with the first id every time.
        while (System.nanoTime() - start < TimeUnit.MILLISECONDS.toNanos(900)) {
            seen.add(bus.publish(stream, Envelope.of("channel_id", "c"), PublishOptions.dedupeKey("k")));
        }
        assertThat(seen).isNotEmpty().containsOnly(first);
        await().atMost(10, TimeUnit.SECONDS).pollInterval(Duration.ofMillis(200))
                .until(() -> !bus.publish(stream, Envelope.of("channel_id", "c"), PublishOptions.dedupeKey("k")).equals(first));
        assertThat(TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start)).isGreaterThanOrEqualTo(1000);
        assertThat(TestRedis.readAll(bus, stream)).hasSize(2);
    }

    /**
     * A worker that stored its answer and died before acknowledging (here: its first attempt publishes the answer with
     * the documented derived key, {@code reply:<stream>:<id>}, and then fails) gets the entry again; answering it
     * through the delivery then stores nothing new and acknowledges it.
     */
    @Test
    void aRedeliveredEntryWhoseAnswerIsStoredIsAnsweredOnce() {
        Topology t = TestRedis.topology();
        EventBus bus = bus(url(), t, "node");
        String in = t.inboundStream();
        String out = t.outboundStream("webchat");
        bus.ensureGroup(in, t.workerGroup());
        bus.publishInbound(Envelope.of("platform", "webchat", "channel_id", "c", "content", "hi"));
        Map<Long, String> answers = new ConcurrentHashMap<>();
        Envelope answer = Envelope.of("channel_id", "c", "content", "answer");
        closer.add(bus.subscribe(BusAcceptanceSuite.fast(in, t.workerGroup(), "w").build(), d -> {
            if (d.deliveryCount() == 1) {
                answers.put(1L, bus.publish(out, answer, PublishOptions.dedupeKey("reply:" + d.stream() + ":" + d.id())));
                throw new IllegalStateException("dies after storing its answer");
            }
            answers.put(d.deliveryCount(), d.reply(out, answer).join());
        }));
        await().atMost(30, TimeUnit.SECONDS).until(() -> answers.size() == 2 && bus.pendingCount(in, t.workerGroup()) == 0);
        assertThat(answers).containsOnlyKeys(1L, 2L);
        assertThat(answers.get(2L)).isEqualTo(answers.get(1L));
        assertThat(TestRedis.readAll(bus, out)).hasSize(1);
    }

    /**
     * A dead letter whose acknowledgement never reached Redis (the connection cut as the XACK went out; the consumer
     * then stops) leaves its entry pending; the consumer that takes it over finds it past its deliveries and
     * dead-letters it again: the second copy must not be stored (an operator replaying both runs the message twice).
     */
    @Test
    void aDeadLetterWhoseAcknowledgementWasLostIsStoredOnce() {
        Topology t = TestRedis.topology();
        String in = t.inboundStream();
        String dead = t.deadLetterStream(in);
        TcpProxy proxy = closer.add(TcpProxy.to(url()));
        EventBus doomedBus = EventBus.connect(proxy.url(), BusConfig.builder().topology(t).role(NodeRole.STANDALONE).nodeId("doomed").build());
        EventBus bus = bus(url(), t, "node");
        bus.ensureGroup(in, t.workerGroup());
        MessageHandler fails = d -> {
            throw new IllegalStateException("always fails");
        };
        Subscription doomed = doomedBus.subscribe(BusAcceptanceSuite.fast(in, t.workerGroup(), "doomed").maxDeliveries(1).build(), fails);
        proxy.cutConnectionsSending("XACK", 1000);
        String id = bus.publishInbound(Envelope.of("platform", "webchat", "channel_id", "c", "content", "poison"));
        await().atMost(30, TimeUnit.SECONDS).until(() -> TestRedis.readAll(bus, dead).size() == 1 && proxy.commandsCut() >= 1);
        doomed.close();
        doomedBus.close();
        assertThat(bus.pendingCount(in, t.workerGroup())).as("left pending by the lost XACK").isEqualTo(1);
        closer.add(bus.subscribe(BusAcceptanceSuite.fast(in, t.workerGroup(), "survivor").maxDeliveries(1)
                .claimIdle(Duration.ofMillis(300)).build(), fails));
        await().atMost(30, TimeUnit.SECONDS).until(() -> bus.pendingCount(in, t.workerGroup()) == 0);
        List<StreamEntry> letters = TestRedis.readAll(bus, dead);
        assertThat(letters).hasSize(1);
        assertThat(bus.deadLetters().list(DeadLetterFilter.builder().build()).entries()).extracting(DeadLetter::sourceId).containsExactly(id);
    }
}
