package io.stargazer.bus;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.lettuce.core.Limit;
import io.lettuce.core.Range;
import io.lettuce.core.models.stream.PendingMessage;
import io.stargazer.bus.testing.RawRedis;
import io.stargazer.bus.testing.TcpProxy;
import io.stargazer.bus.testing.TestRedis;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * A read of new entries whose reply never reaches the consumer (a half-open connection, a reply cut off on the way):
 * the server delivered and counted the entries, no handler saw them. They must come to a handler counted once, not
 * twice: with one delivery allowed, an entry counted twice is dead-lettered without ever running. Before, both cases
 * below dead-lettered the entry unrun: the consumer's read of its pending list after reconnecting counted a second
 * delivery, and a subscription closed meanwhile left it counted for the consumer that took it over.
 *
 * <p>The proxy drops Redis's replies on the consumer's connections from the one that carries the entry on (the read
 * then times out after its BLOCK plus the dead-peer timeout, as on a silent connection; new connections work).
 */
@Timeout(value = 2, unit = TimeUnit.MINUTES)
class LostReadReplyIT {
    private static final String BEHIND = "lost-read-worker";
    private final Topology t = TestRedis.topology();
    private final String stream = t.inboundStream();
    /** What handlers ran, as {@code content#deliveryCount}. */
    private final List<String> ran = new CopyOnWriteArrayList<>();
    private TcpProxy link;
    private RawRedis raw;
    /** Publishes and checks, straight to Redis. */
    private EventBus direct;

    @BeforeEach
    void open() {
        link = TcpProxy.to(TestRedis.url());
        raw = new RawRedis(TestRedis.url());
        direct = TestRedis.bus(TestRedis.config(NodeRole.WORKER).topology(t).build());
    }

    @AfterEach
    void closeAll() throws Exception {
        direct.close();
        raw.close();
        link.close();
    }

    @Test
    void anEntryWhoseReadWasLostIsRunCountedOnceByTheSameConsumerAfterItReconnects() throws Exception {
        try (EventBus behind = behind(Duration.ofSeconds(1));
             Subscription sub = behind.subscribe(consumer().consumerName("c").build(), this::record)) {
            String lostId = publishWithItsReadReplyLost();
            await().atMost(Duration.ofSeconds(30)).until(() -> direct.pendingCount(stream, t.workerGroup()) == 0 && ran.size() == 2
                    || !deadLetters().isEmpty());
            assertThat(deadLetters()).as("dead letters of " + lostId).isEmpty();
            assertThat(ran).containsExactly("before#1", "during#1");
        }
    }

    /**
     * The same, cut off from Redis for longer than the claim time after the lost read (every connection frozen, new ones
     * too): by the time the consumer is back its lost read's entry is idle past the claim time, and its first turn's
     * takeover pass (XAUTOCLAIM, which takes this consumer's own idle entries too) came before the read of its pending
     * list. Before, the takeover counted a second delivery and handed the entry out as taken over: dead-lettered unrun.
     */
    @Test
    void anEntryWhoseReadWasLostIsRunCountedOnceAfterAnOutageLongerThanTheClaimTime() throws Exception {
        Duration claimIdle = Duration.ofSeconds(3);
        try (EventBus behind = behind(Duration.ofSeconds(1));
             Subscription sub = behind.subscribe(consumer().claimIdle(claimIdle).consumerName("c").build(), this::record)) {
            String lostId = publishWithItsReadReplyLost();
            link.freezeAll();
            await("the lost read's entry idle past the claim time").atMost(Duration.ofSeconds(20)).until(() -> pending().stream()
                    .anyMatch(p -> p.getId().equals(lostId) && p.getMsSinceLastDelivery() > claimIdle.toMillis() + 500));
            link.unfreeze();
            await().atMost(Duration.ofSeconds(30)).until(() -> direct.pendingCount(stream, t.workerGroup()) == 0 && ran.size() == 2
                    || !deadLetters().isEmpty());
            assertThat(deadLetters()).as("dead letters of " + lostId).isEmpty();
            assertThat(ran).containsExactly("before#1", "during#1");
        }
    }

    @Test
    void aSubscriptionClosedWithItsReadsReplyLostGivesWhatItDeliveredBackUncounted() throws Exception {
        ConsumerConfig.Builder cfg = consumer().claimIdle(Duration.ofMillis(500));
        try (EventBus behind = behind(Duration.ofSeconds(1))) {
            String lostId;
            try (Subscription sub = behind.subscribe(cfg.consumerName("c").build(), this::record)) {
                lostId = publishWithItsReadReplyLost();
            }
            // Given back when the reader gives up on its read (here about when close returns), on a new connection.
            await().atMost(Duration.ofSeconds(10)).untilAsserted(() -> assertGivenBack(lostId));
            try (Subscription taker = direct.subscribe(cfg.consumerName("d").build(), this::record)) {
                await().atMost(Duration.ofSeconds(30)).until(() -> direct.pendingCount(stream, t.workerGroup()) == 0);
            }
            assertThat(deadLetters()).isEmpty();
            assertThat(ran).containsExactly("before#1", "during#1");
        }
    }

    /**
     * Only the lost read's entries get their count put back, not one this consumer took over from another and left
     * pending: over its deliveries, its dead letter refused (the dead-letter stream's key holds a string here), it stays
     * pending with this consumer, and after the read of the pending list it must still not run (found by the review of
     * the first version, which put back every entry above the newest one the consumer's reads returned, and ran it as
     * if delivered once).
     */
    @Test
    void anEntryTakenOverAndLeftPendingHereKeepsItsCountWhenALaterReadIsLost() throws Exception {
        try (EventBus behind = behind(Duration.ofSeconds(1));
             Subscription sub = behind.subscribe(consumer().claimIdle(Duration.ofSeconds(6)).consumerName("c").build(), this::record)) {
            direct.publish(stream, Envelope.of("channel_id", "c", "content", "before"));
            await().atMost(Duration.ofSeconds(20)).until(() -> ran.contains("before#1"));
            // Read by another consumer, z, which then dies: c is paused meanwhile, so it is z's.
            direct.pause(stream, t.workerGroup());
            await().atMost(Duration.ofSeconds(10)).until(() -> sub.state() == Subscription.State.PAUSED);
            String taken = direct.publish(stream, Envelope.of("channel_id", "t", "content", "taken"));
            raw.sync().xreadgroup(io.lettuce.core.Consumer.from(RawRedis.b(t.workerGroup()), RawRedis.b("z")),
                    io.lettuce.core.XReadArgs.StreamOffset.lastConsumed(RawRedis.b(stream)));
            raw.sync().set(RawRedis.b(stream + ":dead"), RawRedis.b("not a stream: dead letters are refused"));
            direct.resume(stream, t.workerGroup());
            // Taken over from z after the claim time: delivered twice, over the one allowed, its dead letter refused.
            await().atMost(Duration.ofSeconds(30)).untilAsserted(() -> assertThat(pending()).singleElement().satisfies(p -> {
                assertThat(p.getConsumer()).isEqualTo("c");
                assertThat(p.getRedeliveryCount()).isEqualTo(2);
            }));

            link.dropRepliesOnExistingFrom("during");
            direct.publish(stream, Envelope.of("channel_id", "c", "content", "during"));
            await().atMost(Duration.ofSeconds(30)).until(() -> ran.contains("during#1"));
            assertThat(link.repliesDropped()).as("replies lost (the read that delivered 'during' among them)").isPositive();
            await().during(Duration.ofSeconds(2)).atMost(Duration.ofSeconds(5))
                    .untilAsserted(() -> assertThat(ran).as("runs; " + taken + " is over its deliveries").containsExactly("before#1", "during#1"));
        }
    }

    /**
     * The usual shutdown: the subscription, then its bus, closed while the read is still on the wire (its timeout, BLOCK
     * 1 s plus the dead-peer timeout 3 s, is longer than close's wait for the reader, 2 s). The bus's close waits for the
     * reader to give up and give back what its read delivered, before it closes the connections that needs.
     */
    @Test
    void theBusClosedRightAfterTheSubscriptionStillGivesBackWhatTheLostReadDelivered() throws Exception {
        EventBus behind = behind(Duration.ofSeconds(3));
        String lostId;
        try {
            Subscription sub = behind.subscribe(consumer().consumerName("c").blockTimeout(Duration.ofSeconds(1)).build(), this::record);
            lostId = publishWithItsReadReplyLost();
            sub.close();
        } finally {
            behind.close();
        }
        assertGivenBack(lostId);
        assertThat(ran).containsExactly("before#1");
    }

    /** A bus whose connections go through the proxy (named {@link #BEHIND} at the server), with its group made. */
    private EventBus behind(Duration deadPeer) {
        EventBus bus = EventBus.connect(link.url(), TestRedis.config(NodeRole.WORKER).topology(t).nodeId(BEHIND)
                .deadPeerTimeout(deadPeer).build());
        bus.ensureGroup(stream, t.workerGroup());
        return bus;
    }

    /** One delivery allowed: an entry counted twice is dead-lettered unrun. */
    private ConsumerConfig.Builder consumer() {
        return ConsumerConfig.builder(stream, t.workerGroup()).maxDeliveries(1).blockTimeout(Duration.ofSeconds(2));
    }

    private void record(Delivery d) {
        ran.add(d.envelope().content() + "#" + d.deliveryCount());
    }

    /**
     * Publishes "before" and waits for it to run, then publishes "during" with the consumer's connections set to lose
     * the reply that carries it and every reply after: the read that delivers it, blocked already or made next, never
     * hears of it.
     */
    private String publishWithItsReadReplyLost() {
        direct.publish(stream, Envelope.of("channel_id", "c", "content", "before"));
        await().atMost(Duration.ofSeconds(20)).until(() -> ran.contains("before#1"));
        link.dropRepliesOnExistingFrom("during");
        String id = direct.publish(stream, Envelope.of("channel_id", "c", "content", "during"));
        await().atMost(Duration.ofSeconds(5)).untilAsserted(() -> assertThat(pending())
                .as("delivered to the blocked read").extracting(PendingMessage::getId).containsExactly(id));
        // Pending and not run: the read that delivered it lost its reply (not an ordinary delivery seen before its ack).
        assertThat(link.repliesDropped()).as("replies lost").isPositive();
        assertThat(ran).as("runs while the read's reply is lost").containsExactly("before#1");
        return id;
    }

    /** The lost read's entry is pending, its delivery count put back to zero. */
    private void assertGivenBack(String id) {
        assertThat(pending()).singleElement().satisfies(p -> {
            assertThat(p.getId()).isEqualTo(id);
            assertThat(p.getRedeliveryCount()).as("the lost read's delivery, given back").isZero();
        });
    }

    private List<StreamEntry> deadLetters() {
        return direct.read(stream + ":dead", "0", 10);
    }

    private List<PendingMessage> pending() {
        return raw.sync().xpending(RawRedis.b(stream), RawRedis.b(t.workerGroup()), Range.create("-", "+"), Limit.from(10));
    }
}
