package io.stargazer.bus.internal;

import static io.stargazer.testing.RawRedis.b;
import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.lettuce.core.Range;
import io.stargazer.bus.ConsumerConfig;
import io.stargazer.bus.Envelope;
import io.stargazer.bus.EventBus;
import io.stargazer.bus.NodeRole;
import io.stargazer.bus.Subscription;
import io.stargazer.bus.Topology;
import io.stargazer.bus.testing.Closer;
import io.stargazer.bus.testing.RawRedis;
import io.stargazer.bus.testing.TestRedis;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Closing while handlers run: what a closing bus or subscription waits for may still answer, and what it must
 * interrupt is given back, never failed. Each test failed on the code before it: the bus refused the answers of the
 * handlers its close() was waiting for ("the bus is closed"), a counted failure that dead-lettered a healthy message on
 * its last delivery; and a handler interrupted after the close timeout was dead-lettered on its last delivery.
 */
@Timeout(value = 2, unit = TimeUnit.MINUTES)
class ClosingWithHandlersIT {
    private final Closer closer = new Closer();

    @AfterEach
    void closeAll() throws Exception {
        closer.close();
    }

    @ParameterizedTest(name = "maxDeliveries {0}")
    @ValueSource(ints = {5, 1})
    void aHandlerThatFinishesWhileTheBusClosesStoresItsAnswer(int maxDeliveries) throws Exception {
        EventBus bus = closer.add(TestRedis.bus(NodeRole.STANDALONE));
        Topology t = bus.topology();
        String in = t.inboundStream();
        String out = t.outboundStream("webchat");
        CountDownLatch started = new CountDownLatch(1);
        CountDownLatch closing = new CountDownLatch(1);
        List<Throwable> failures = new CopyOnWriteArrayList<>();
        bus.subscribe(ConsumerConfig.builder(in, t.workerGroup()).consumerName("c").maxDeliveries(maxDeliveries)
                .closeTimeout(Duration.ofSeconds(30)).build(), d -> {
                    started.countDown();
                    closing.await(30, TimeUnit.SECONDS);
                    try {
                        d.reply(out, Envelope.of("platform", "webchat", "channel_id", "c", "content", "answer")).join();
                    } catch (RuntimeException e) {
                        failures.add(e);
                        throw e;
                    }
                });
        bus.publish(in, Envelope.of("platform", "webchat", "channel_id", "c", "content", "question"));
        assertThat(started.await(20, TimeUnit.SECONDS)).isTrue();
        // close() waits for the handler (up to its close timeout of 30 s); the handler answers once close() has begun.
        Thread closeThread = new Thread(bus::close, "test-bus-close");
        closeThread.start();
        await("close() is waiting for the handler").atMost(Duration.ofSeconds(10))
                .until(() -> closeThread.getState() == Thread.State.TIMED_WAITING || closeThread.getState() == Thread.State.WAITING);
        closing.countDown();
        closeThread.join(TimeUnit.SECONDS.toMillis(60));
        assertThat(closeThread.isAlive()).as("close() returned").isFalse();

        assertThat(failures).as("the answer was not refused").isEmpty();
        try (RawRedis raw = new RawRedis(TestRedis.url())) {
            assertThat(raw.xlen(out)).as("the answer is stored").isEqualTo(1);
            assertThat(raw.sync().exists(b(t.deadLetterStream(in))) == 1).as("nothing dead-lettered").isFalse();
            assertThat(raw.sync().xpending(b(in), b(t.workerGroup())).getCount()).as("the question is acknowledged").isZero();
        }
    }

    @Test
    void aHandlerInterruptedByCloseOnItsLastDeliveryIsGivenBackNotDeadLettered() throws Exception {
        EventBus bus = closer.add(TestRedis.bus(NodeRole.STANDALONE));
        Topology t = bus.topology();
        String in = t.inboundStream();
        CountDownLatch started = new CountDownLatch(1);
        CountDownLatch never = new CountDownLatch(1);
        Subscription sub = bus.subscribe(ConsumerConfig.builder(in, t.workerGroup()).consumerName("c")
                .maxDeliveries(1).closeTimeout(Duration.ofMillis(300)).build(), d -> {
                    started.countDown();
                    never.await(); // a slow but healthy handler: only close()'s interrupt ends it
                });
        String id = bus.publishInbound(Envelope.of("platform", "webchat", "channel_id", "c", "content", "a"));
        assertThat(started.await(20, TimeUnit.SECONDS)).isTrue();
        sub.close();

        try (RawRedis raw = new RawRedis(TestRedis.url())) {
            // Given back: still pending, with its delivery count put back to 0 so that its taker does not count it twice.
            await("the delivery count put back").atMost(Duration.ofSeconds(10)).until(() -> {
                var rows = raw.sync().xpending(b(in), b(t.workerGroup()), Range.create(id, id), io.lettuce.core.Limit.from(1));
                return rows.size() == 1 && rows.get(0).getRedeliveryCount() == 0;
            });
            assertThat(raw.sync().exists(b(t.deadLetterStream(in))) == 1).as("not dead-lettered").isFalse();
        }
        // And it runs again where it is taken over, on what is still its only allowed delivery.
        List<Long> counts = new CopyOnWriteArrayList<>();
        closer.add(bus.subscribe(ConsumerConfig.builder(in, t.workerGroup()).consumerName("d").maxDeliveries(1)
                .claimIdle(Duration.ofSeconds(1)).build(), d -> counts.add(d.deliveryCount())));
        await("taken over and handled").atMost(Duration.ofSeconds(30)).until(() -> !counts.isEmpty());
        assertThat(counts).containsExactly(1L);
    }
}
