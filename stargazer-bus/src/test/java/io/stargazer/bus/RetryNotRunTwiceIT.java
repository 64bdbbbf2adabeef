package io.stargazer.bus;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.stargazer.bus.testing.Closer;
import io.stargazer.bus.testing.OwnServer;
import io.stargazer.bus.testing.RawRedis;
import io.stargazer.bus.testing.TestRedis;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * What 115fba0 (an entry waiting for its retry when its group is lost is retried) must not do, found by its review:
 * run again an entry this consumer acknowledged itself (its {@code Delivery.reply} stored the answer and acknowledged
 * it, the reply's answer came after the publish deadline, so the delivery was retried), and keep an entry another
 * consumer took over until its retry is due (its permit and its channel's lane held up to maxRetryBackoff). Both
 * failed on 115fba0; the retry after a lost group is {@code TakeoverIT.anEntryWaitingForItsRetryWhenItsGroupIsLostIsStillRetried}.
 */
@Timeout(value = 2, unit = TimeUnit.MINUTES)
class RetryNotRunTwiceIT {
    @RegisterExtension
    static final OwnServer redis = new OwnServer();
    private final Closer closer = new Closer();

    @AfterEach
    void closeAll() throws Exception {
        closer.close();
    }

    @Test
    void anEntryAcknowledgedByItsOwnReplyWhoseAnswerCameLateIsNotHandledAgain() throws Exception {
        Topology t = Topology.builder().namespace(TestRedis.namespace()).build();
        EventBus bus = closer.add(EventBus.connect(redis.url(), BusConfig.builder().topology(t).role(NodeRole.STANDALONE)
                .nodeId("retry-lost").publishTimeout(Duration.ofSeconds(1)).build()));
        RawRedis raw = closer.add(new RawRedis(redis.url()));
        String in = t.inboundStream();
        String out = t.outboundStream("webchat");
        String group = t.workerGroup();
        bus.ensureGroup(in, group);
        List<String> ran = new CopyOnWriteArrayList<>();
        List<Throwable> replyFailures = new CopyOnWriteArrayList<>();
        closer.add(bus.subscribeAsync(bus.consumer(in, group).consumerName("A").retryBackoff(Duration.ofMillis(500))
                .maxRetryBackoff(Duration.ofMillis(500)).build(), d -> {
                    ran.add(d.id() + "#" + d.deliveryCount());
                    if (ran.size() == 1) {
                        // The server holds every command for 3 s: the answer's script runs after the publish deadline.
                        raw.sync().clientPause(3000);
                    }
                    return d.reply(out, Envelope.of("channel_id", "c", "content", "answer")).whenComplete((id, e) -> {
                        if (e != null) replyFailures.add(e);
                    });
                }));
        String e = bus.publishInbound(Envelope.of("channel_id", "c", "content", "question"));
        await("the reply failed with an unknown outcome").atMost(Duration.ofSeconds(20)).until(() -> !replyFailures.isEmpty());
        await("the answer is stored and the entry acknowledged by A's own reply").atMost(Duration.ofSeconds(20))
                .until(() -> bus.pendingCount(in, group) == 0 && TestRedis.readAll(bus, out).size() == 1);
        // Its retry (500 ms) confirms it: pending nowhere, acknowledged by its own reply, so not run again.
        await("no second run").during(Duration.ofSeconds(3)).atMost(Duration.ofSeconds(6)).until(() -> ran.size() == 1);
        Throwable f = replyFailures.get(0) instanceof java.util.concurrent.CompletionException c ? c.getCause() : replyFailures.get(0);
        assertThat(f).isInstanceOf(PublishOutcomeUnknownException.class);
        assertThat(ran).as("handler runs of %s, acknowledged by its own first run", e).containsExactly(e + "#1");
    }

    /**
     * An entry waiting for its retry that another consumer took over is let go at once (its permit and, ORDERED, its
     * channel's lane), so the channel's next entry, read by this consumer, does not wait for the retry (40 s here).
     */
    @Test
    void anEntryTakenOverWhileWaitingForItsRetryDoesNotHoldItsChannelUntilTheRetryIsDue() throws Exception {
        Topology t = Topology.builder().namespace(TestRedis.namespace()).build();
        EventBus bus = closer.add(EventBus.connect(redis.url(), BusConfig.builder().topology(t).role(NodeRole.STANDALONE)
                .nodeId("retry-lane").build()));
        RawRedis raw = closer.add(new RawRedis(redis.url()));
        String in = t.inboundStream();
        String group = t.workerGroup();
        bus.ensureGroup(in, group);
        List<String> ran = new CopyOnWriteArrayList<>();
        closer.add(bus.subscribe(bus.consumer(in, group).consumerName("A").claimIdle(Duration.ofSeconds(2))
                .retryBackoff(Duration.ofSeconds(40)).maxRetryBackoff(Duration.ofSeconds(40)).build(), d -> {
                    ran.add(d.envelope().content());
                    if ("e1".equals(d.envelope().content())) throw new IllegalStateException("transient");
                }));
        String e1 = bus.publishInbound(Envelope.of("channel_id", "c", "content", "e1"));
        await().atMost(Duration.ofSeconds(10)).until(() -> ran.contains("e1"));
        // Another consumer takes e1 over (as after A was cut off for the claim time) and holds it.
        raw.sync().xclaim(RawRedis.b(in), io.lettuce.core.Consumer.from(RawRedis.b(group), RawRedis.b("B")), 0, e1);
        bus.publishInbound(Envelope.of("channel_id", "c", "content", "e2"));
        await("e2, A's own entry, runs while e1 belongs to B").atMost(Duration.ofSeconds(10)).until(() -> ran.contains("e2"));
        assertThat(ran).doesNotContain("e1#again").containsOnlyOnce("e1");
    }
}
