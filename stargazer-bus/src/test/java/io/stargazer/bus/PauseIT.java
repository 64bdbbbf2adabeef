package io.stargazer.bus;

import static org.assertj.core.api.Assertions.assertThat;

import io.stargazer.bus.testing.TestRedis;
import io.stargazer.testing.ChildJvm;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import org.awaitility.Awaitility;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** Pausing a group (EventBus.pause): every consumer in every process stops taking entries, and none is lost (issue 14). */
@Timeout(120)
class PauseIT {

    private static List<String> got(ChildJvm... children) {
        List<String> out = new ArrayList<>();
        for (ChildJvm c : children) for (String l : c.lines()) if (l.startsWith("GOT ")) out.add(l);
        return out;
    }

    private static String lastState(ChildJvm c) {
        return c.lines().stream().filter(l -> l.startsWith("STATE ")).reduce((x, y) -> y).orElse("");
    }

    @Test
    void aPauseReachesEveryWorkerProcessNothingIsDeliveredWhilePausedAndNothingIsLostAfterTheResume() throws Exception {
        try (EventBus bus = TestRedis.bus(NodeRole.GATEWAY)) {
            String stream = bus.topology().inboundStream();
            String group = bus.topology().workerGroup();
            bus.ensureGroup(stream, group);
            String url = TestRedis.url().toString();
            try (ChildJvm a = ChildJvm.start(PauseWorkerChild.class, url, stream, group, "worker-a");
                    ChildJvm b = ChildJvm.start(PauseWorkerChild.class, url, stream, group, "worker-b")) {
                Awaitility.await().atMost(30, TimeUnit.SECONDS).until(() -> a.printed("STATE RUNNING") && b.printed("STATE RUNNING"));
                for (int i = 0; i < 20; i++) bus.publishInbound(Envelope.of("channel_id", "c" + i, "n", i));
                Awaitility.await().atMost(20, TimeUnit.SECONDS).until(() -> got(a, b).size() == 20);

                assertThat(bus.pause(stream, group)).isTrue();
                assertThat(bus.pause(stream, group)).isFalse();
                assertThat(bus.paused(stream, group)).isTrue();
                Awaitility.await().atMost(10, TimeUnit.SECONDS).until(() -> a.printed("STATE PAUSED") && b.printed("STATE PAUSED"));
                for (int i = 20; i < 70; i++) bus.publishInbound(Envelope.of("channel_id", "c" + i, "n", i));
                Awaitility.await().during(3, TimeUnit.SECONDS).atMost(10, TimeUnit.SECONDS).until(() -> got(a, b).size() == 20);
                assertThat(bus.groups(stream)).filteredOn(g -> g.name().equals(group)).singleElement()
                        .satisfies(g -> assertThat(g.pending()).isZero());

                assertThat(bus.resume(stream, group)).isTrue();
                Awaitility.await().atMost(20, TimeUnit.SECONDS).until(() -> got(a, b).size() == 70);
                List<String> all = got(a, b);
                List<String> expected = new ArrayList<>();
                for (int i = 0; i < 70; i++) expected.add("GOT " + i + " 1");
                assertThat(all).containsExactlyInAnyOrderElementsOf(expected);
                assertThat(got(a)).isNotEmpty();
                assertThat(got(b)).isNotEmpty();
                Awaitility.await().atMost(10, TimeUnit.SECONDS).until(() -> lastState(a).equals("STATE RUNNING") && lastState(b).equals("STATE RUNNING"));
            }
        }
    }

    @Test
    void aFailedEntryIsNotRetriedWhilePausedAndAPauseSurvivesARestart() {
        try (EventBus bus = TestRedis.bus(NodeRole.WORKER)) {
            String stream = bus.topology().inboundStream();
            String group = bus.topology().workerGroup();
            List<Long> counts = new CopyOnWriteArrayList<>();
            AtomicBoolean failedOnce = new AtomicBoolean();
            ConsumerConfig cfg = bus.consumer(stream, group).retryBackoff(Duration.ofSeconds(1)).build();
            Subscription s = bus.subscribe(cfg, d -> {
                counts.add(d.deliveryCount());
                if (failedOnce.compareAndSet(false, true)) {
                    bus.pause(stream, group); // the outage downstream starts: pause, then fail
                    throw new IllegalStateException("downstream down");
                }
            });
            bus.publishInbound(Envelope.of("channel_id", "c", "n", 1));
            Awaitility.await().atMost(10, TimeUnit.SECONDS).until(() -> s.state() == Subscription.State.PAUSED);
            Awaitility.await().during(3, TimeUnit.SECONDS).atMost(10, TimeUnit.SECONDS).until(() -> counts.size() == 1);
            assertThat(bus.pendingCount(stream, group)).isEqualTo(1);
            bus.resume(stream, group);
            Awaitility.await().atMost(10, TimeUnit.SECONDS).until(() -> counts.size() == 2);
            assertThat(counts).containsExactly(1L, 2L);
            Awaitility.await().atMost(10, TimeUnit.SECONDS).until(() -> s.state() == Subscription.State.RUNNING);
            s.close();

            bus.pause(stream, group);
            bus.publishInbound(Envelope.of("channel_id", "c", "n", 2));
            try (Subscription again = bus.subscribe(cfg, d -> counts.add(d.deliveryCount()))) {
                Awaitility.await().atMost(10, TimeUnit.SECONDS).until(() -> again.state() == Subscription.State.PAUSED);
                Awaitility.await().during(2, TimeUnit.SECONDS).atMost(10, TimeUnit.SECONDS).until(() -> counts.size() == 2);
                bus.resume(stream, group);
                Awaitility.await().atMost(10, TimeUnit.SECONDS).until(() -> counts.size() == 3);
                assertThat(counts.get(2)).isEqualTo(1L);
            }
        }
    }

    /** A group that is not on the stream (a typo, a missing stream) is refused naming both, and no flag is left behind. */
    @Test
    void pausingAGroupThatDoesNotExistIsRefusedNamingStreamAndGroup() {
        try (EventBus bus = TestRedis.bus(NodeRole.GATEWAY)) {
            String stream = bus.topology().inboundStream();
            String group = bus.topology().workerGroup();
            org.assertj.core.api.Assertions.assertThatThrownBy(() -> bus.pause(stream, group))
                    .isInstanceOf(ConfigException.class).hasMessageContaining(stream).hasMessageContaining("does not exist");
            bus.ensureGroup(stream, group);
            String typo = group.substring(0, group.length() - 1);
            org.assertj.core.api.Assertions.assertThatThrownBy(() -> bus.pause(stream, typo))
                    .isInstanceOf(ConfigException.class).hasMessageContaining("'" + typo + "' is not a consumer group of '" + stream + "'")
                    .hasMessageContaining(group);
            assertThat(bus.paused(stream, typo)).isFalse();
            assertThat(bus.pause(stream, group)).isTrue();
            assertThat(bus.resume(stream, group)).isTrue();
        }
    }

    /**
     * A Redis without AOF that restarts empty loses the pause flag with everything else. The group was paused for an
     * outage downstream, and nobody resumed it: its consumer sets the flag again and stays paused (before, it went on
     * consuming the new entries, into the outage it was paused for). A resume then works as ever.
     */
    @Test
    void aPausedGroupStaysPausedWhenTheServerRestartsEmpty() throws Exception {
        try (io.stargazer.embedded.RedisServerProcess server = io.stargazer.embedded.RedisServerProcess.builder().appendOnly(false).start()) {
            RedisUrl url = RedisUrl.parse(server.url());
            Topology t = TestRedis.topology();
            try (EventBus bus = EventBus.connect(url, BusConfig.builder().topology(t).role(NodeRole.WORKER).build())) {
                String stream = t.inboundStream();
                String group = t.workerGroup();
                bus.ensureGroup(stream, group);
                List<String> got = new CopyOnWriteArrayList<>();
                try (Subscription sub = bus.subscribe(ConsumerConfig.builder(stream, group).consumerName("w").build(),
                        d -> got.add(d.envelope().content()))) {
                    bus.publish(stream, Envelope.of("channel_id", "c", "content", "before"));
                    Awaitility.await().atMost(10, TimeUnit.SECONDS).until(() -> got.contains("before"));
                    assertThat(bus.pause(stream, group)).isTrue();
                    Awaitility.await().atMost(10, TimeUnit.SECONDS).until(() -> sub.state() == Subscription.State.PAUSED);

                    restartEmptyAndSeeItStayPaused(server, bus, stream, group, sub, got, "c", List.of("before"));

                    assertThat(bus.resume(stream, group)).isTrue();
                    Awaitility.await().atMost(10, TimeUnit.SECONDS).until(() -> got.contains("after"));
                }
            }
        }
    }

    /**
     * As above, with an entry held through the restart (its handler still running, as when a group is paused for an
     * outage downstream): the refresh of held entries meets the lost group first, every quarter of the claim time, and the
     * reader makes the group again before its next look at the flag, which then finds the group there and the flag gone.
     * The consumer sets the flag again before it makes the group (found by the review of the first version, which
     * resumed here).
     */
    @Test
    void aPausedGroupWhoseConsumerHoldsAnEntryStaysPausedWhenTheServerRestartsEmpty() throws Exception {
        try (io.stargazer.embedded.RedisServerProcess server = io.stargazer.embedded.RedisServerProcess.builder().appendOnly(false).start()) {
            RedisUrl url = RedisUrl.parse(server.url());
            Topology t = TestRedis.topology();
            java.util.concurrent.CountDownLatch release = new java.util.concurrent.CountDownLatch(1);
            try (EventBus bus = EventBus.connect(url, BusConfig.builder().topology(t).role(NodeRole.WORKER).build())) {
                String stream = t.inboundStream();
                String group = t.workerGroup();
                bus.ensureGroup(stream, group);
                List<String> got = new CopyOnWriteArrayList<>();
                try (Subscription sub = bus.subscribe(ConsumerConfig.builder(stream, group).consumerName("w").claimIdle(Duration.ofMillis(400))
                        .build(), d -> {
                    got.add(d.envelope().content());
                    if (d.envelope().content().equals("held")) release.await(60, TimeUnit.SECONDS);
                })) {
                    bus.publish(stream, Envelope.of("channel_id", "c", "content", "held"));
                    Awaitility.await().atMost(10, TimeUnit.SECONDS).until(() -> got.contains("held"));
                    assertThat(bus.pause(stream, group)).isTrue();
                    Awaitility.await().atMost(10, TimeUnit.SECONDS).until(() -> sub.state() == Subscription.State.PAUSED);

                    restartEmptyAndSeeItStayPaused(server, bus, stream, group, sub, got, "d", List.of("held"));
                    release.countDown();
                    assertThat(bus.resume(stream, group)).isTrue();
                    Awaitility.await().atMost(10, TimeUnit.SECONDS).until(() -> got.contains("after"));
                } finally {
                    release.countDown();
                }
            }
        }
    }

    /**
     * Kills {@code server} and restarts it empty (no stream, no group, no pause flag), publishes "after" on
     * {@code channel} until the group is paused again, then sees nothing more handled than {@code handledBefore} for two
     * seconds, the subscription PAUSED.
     */
    private static void restartEmptyAndSeeItStayPaused(io.stargazer.embedded.RedisServerProcess server, EventBus bus, String stream,
            String group, Subscription sub, List<String> got, String channel, List<String> handledBefore) {
        server.kill();
        server.restart();
        Awaitility.await().atMost(30, TimeUnit.SECONDS).ignoreExceptions().until(() -> {
            bus.publish(stream, Envelope.of("channel_id", channel, "content", "after"));
            return bus.paused(stream, group);
        });
        Awaitility.await().during(2, TimeUnit.SECONDS).atMost(10, TimeUnit.SECONDS)
                .until(() -> got.equals(handledBefore) && sub.state() == Subscription.State.PAUSED);
    }
}
