package io.stargazer.bus.spring.autoconfigure;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;

import io.stargazer.bus.Envelope;
import io.stargazer.bus.EventBus;
import io.stargazer.bus.Subscription;
import io.stargazer.bus.spring.StargazerListener;
import io.stargazer.bus.spring.StargazerListeners;
import io.stargazer.testing.TestServers;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicBoolean;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.springframework.boot.autoconfigure.AutoConfigurations;
import org.springframework.boot.test.context.runner.ApplicationContextRunner;
import org.springframework.context.annotation.Configuration;

// Starting and stopping @StargazerListener methods: by id, and all of them when the context closes (graceful: in-flight
// handlers finish, or are left pending after the close timeout).
@Timeout(120)
class ListenerLifecycleIT {
    private static final Duration WAIT = Duration.ofSeconds(20);

    private final String ns = TestServers.namespace();
    private final ApplicationContextRunner runner = new ApplicationContextRunner()
            .withConfiguration(AutoConfigurations.of(StargazerBusAutoConfiguration.class))
            .withPropertyValues("stargazer.bus.url=" + TestServers.url(), "stargazer.bus.topology.namespace=" + ns,
                    "stargazer.bus.consumer.block-timeout=200ms");

    @Configuration(proxyBeanMethods = false)
    static class Manual {
        final ConcurrentLinkedQueue<Long> got = new ConcurrentLinkedQueue<>();

        @StargazerListener(id = "manual", stream = "${stargazer.bus.topology.namespace}:manual", group = "g", autoStartup = false)
        void onMessage(Envelope e) {
            got.add(e.longValue("n", -1));
        }

        @StargazerListener(stream = "${stargazer.bus.topology.namespace}:auto", group = "g")
        void unnamed(Envelope e) {
        }
    }

    @Test
    void aListenerWithoutAutoStartupIsStartedAndStoppedByItsId() {
        runner.withUserConfiguration(Manual.class).run(ctx -> {
            assertThat(ctx).hasNotFailed();
            StargazerListeners listeners = ctx.getBean(StargazerListeners.class);
            String unnamed = listeners.listenerIds().stream().filter(id -> id.endsWith(".unnamed")).findFirst().orElseThrow();
            assertThat(listeners.listenerIds()).containsExactlyInAnyOrder("manual", unnamed);
            assertThat(listeners.isRunning("manual")).isFalse();
            assertThat(listeners.isRunning(unnamed)).isTrue();
            assertThat(listeners.subscriptions()).hasSize(1);

            listeners.start("manual");
            assertThat(listeners.isRunning("manual")).isTrue();
            assertThat(listeners.subscriptions()).hasSize(2);
            EventBus bus = ctx.getBean(EventBus.class);
            bus.publish(ns + ":manual", Envelope.of("channel_id", "c", "n", 1));
            await().atMost(WAIT).untilAsserted(() -> assertThat(ctx.getBean(Manual.class).got).containsExactly(1L));

            listeners.stop("manual");
            assertThat(listeners.isRunning("manual")).isFalse();
            assertThat(listeners.isRunning(unnamed)).as("the others keep running").isTrue();
            assertThat(listeners.subscriptions()).hasSize(1);
            assertThatThrownBy(() -> listeners.start("nope")).isInstanceOf(IllegalArgumentException.class).hasMessageContaining("manual");
        });
    }

    /** Two listeners started later; the group of one is made when the application starts, as docs/spring-boot.md advises. */
    @Configuration(proxyBeanMethods = false)
    static class StartedLater {
        final ConcurrentLinkedQueue<Long> ensured = new ConcurrentLinkedQueue<>();
        final ConcurrentLinkedQueue<Long> notEnsured = new ConcurrentLinkedQueue<>();

        StartedLater(EventBus bus, @org.springframework.beans.factory.annotation.Value("${stargazer.bus.topology.namespace}") String ns) {
            bus.ensureGroup(ns + ":ensured", "g");
        }

        @StargazerListener(id = "ensured", stream = "${stargazer.bus.topology.namespace}:ensured", group = "g", autoStartup = false)
        void onEnsured(Envelope e) {
            ensured.add(e.longValue("n", -1));
        }

        @StargazerListener(id = "notEnsured", stream = "${stargazer.bus.topology.namespace}:not-ensured", group = "g", autoStartup = false)
        void onNotEnsured(Envelope e) {
            notEnsured.add(e.longValue("n", -1));
        }
    }

    /**
     * What docs/spring-boot.md says of autoStartup = false: a listener whose group does not exist yet creates it at the
     * stream's end when it starts, so what was published before is not delivered to it; a group made when the
     * application starts (EventBus.ensureGroup) gets it.
     */
    @Test
    void aListenerStartedLaterGetsWhatCameBeforeItsStartOnlyIfItsGroupWasThere() {
        runner.withUserConfiguration(StartedLater.class).run(ctx -> {
            assertThat(ctx).hasNotFailed();
            EventBus bus = ctx.getBean(EventBus.class);
            StargazerListeners listeners = ctx.getBean(StargazerListeners.class);
            for (String stream : java.util.List.of(ns + ":ensured", ns + ":not-ensured")) {
                bus.publish(stream, Envelope.of("channel_id", "c", "n", 1));
            }
            listeners.start("ensured");
            listeners.start("notEnsured");
            for (String stream : java.util.List.of(ns + ":ensured", ns + ":not-ensured")) {
                bus.publish(stream, Envelope.of("channel_id", "c", "n", 2));
            }
            StartedLater l = ctx.getBean(StartedLater.class);
            await().atMost(WAIT).untilAsserted(() -> assertThat(l.ensured).containsExactly(1L, 2L));
            await().atMost(WAIT).until(() -> l.notEnsured.contains(2L));
            assertThat(l.notEnsured).as("published before its group was made at the stream's end").containsExactly(2L);
        });
    }

    @Configuration(proxyBeanMethods = false)
    static class SameId {
        @StargazerListener(id = "twice", stream = "a", group = "g")
        void one(Envelope e) {
        }

        @StargazerListener(id = "twice", stream = "b", group = "g")
        void two(Envelope e) {
        }
    }

    @Test
    void twoListenersWithOneIdFailTheStartUp() {
        runner.withUserConfiguration(SameId.class).run(ctx -> {
            assertThat(ctx).hasFailed();
            assertThat(ctx.getStartupFailure()).hasStackTraceContaining("id 'twice' is already taken");
        });
    }

    @Configuration(proxyBeanMethods = false)
    static class Stuck {
        final CountDownLatch started = new CountDownLatch(1);
        final AtomicBoolean interrupted = new AtomicBoolean();

        @StargazerListener(stream = "${stargazer.bus.topology.namespace}:stuck", group = "g")
        void on(Envelope e) throws InterruptedException {
            started.countDown();
            try {
                new CountDownLatch(1).await(); // only the close timeout's interrupt ends it
            } catch (InterruptedException ie) {
                interrupted.set(true);
                throw ie;
            }
        }
    }

    @Configuration(proxyBeanMethods = false)
    static class Quick {
        @StargazerListener(stream = "${stargazer.bus.topology.namespace}:quick", group = "g")
        void on(Envelope e) {
        }
    }

    /**
     * A listener waiting for a stuck handler must not keep the others reading: every listener stops reading when the
     * context closes, before any of them waits (closed one after another, the quick one read on for the stuck one's
     * whole close timeout).
     */
    @Test
    void closingStopsEveryListenerAtOnceNotOneAfterAnother() {
        runner.withUserConfiguration(Stuck.class, Quick.class).withPropertyValues("stargazer.bus.consumer.close-timeout=5s").run(ctx -> {
            assertThat(ctx).hasNotFailed();
            Stuck stuck = ctx.getBean(Stuck.class);
            ctx.getBean(EventBus.class).publish(ns + ":stuck", Envelope.of("channel_id", "c"));
            assertThat(stuck.started.await(15, java.util.concurrent.TimeUnit.SECONDS)).isTrue();
            Subscription quick = ctx.getBean(StargazerListeners.class).subscriptions().stream()
                    .filter(s -> s.stream().equals(ns + ":quick")).findFirst().orElseThrow();

            CompletableFuture<Void> closing = CompletableFuture.runAsync(ctx::close);
            await().atMost(WAIT).until(() -> quick.state() == Subscription.State.STOPPED);
            assertThat(stuck.interrupted).as("the quick listener stopped while the stuck one still waited for its handler").isFalse();
            closing.get();
            assertThat(stuck.interrupted).isTrue();
        });
    }

    /**
     * Spring's bound on a shutdown phase ({@code spring.lifecycle.timeout-per-shutdown-phase}) holds for the listeners as
     * for Spring's own beans: the context's close goes on after it while a stuck handler still has its close timeout.
     * Before, the listeners stopped only through the blocking {@code stop()}, which the phase's bound cannot cut short:
     * the close waited the whole close timeout.
     */
    @Test
    void theShutdownPhaseTimeoutBoundsTheWaitForHandlers() {
        runner.withConfiguration(AutoConfigurations.of(org.springframework.boot.autoconfigure.context.LifecycleAutoConfiguration.class))
                .withUserConfiguration(Stuck.class)
                .withPropertyValues("stargazer.bus.consumer.close-timeout=60s", "spring.lifecycle.timeout-per-shutdown-phase=1s")
                .run(ctx -> {
                    assertThat(ctx).hasNotFailed();
                    Stuck stuck = ctx.getBean(Stuck.class);
                    ctx.getBean(EventBus.class).publish(ns + ":stuck", Envelope.of("channel_id", "c"));
                    assertThat(stuck.started.await(15, java.util.concurrent.TimeUnit.SECONDS)).isTrue();
                    CompletableFuture<Void> closing = CompletableFuture.runAsync(ctx::close);
                    await("the context closed within its phase timeout, the handler still stuck").atMost(WAIT).until(closing::isDone);
                    closing.get();
                });
    }

    @Configuration(proxyBeanMethods = false)
    static class Slow {
        final java.util.concurrent.atomic.AtomicInteger started = new java.util.concurrent.atomic.AtomicInteger();
        final ConcurrentLinkedQueue<Long> finished = new ConcurrentLinkedQueue<>();
        /** Counted down as the context starts closing, before any listener stops. */
        final java.util.concurrent.CountDownLatch closing = new java.util.concurrent.CountDownLatch(1);

        @org.springframework.context.event.EventListener(org.springframework.context.event.ContextClosedEvent.class)
        void closing() {
            closing.countDown();
        }

        @StargazerListener(stream = "${stargazer.bus.topology.namespace}:jobs", group = "g", concurrency = "4")
        void onJob(Envelope e) throws InterruptedException {
            started.incrementAndGet();
            // The handler's work lasts until the context is closing, so the close meets it running.
            if (!closing.await(30, java.util.concurrent.TimeUnit.SECONDS)) throw new IllegalStateException("the context never closed");
            finished.add(e.longValue("n", -1));
        }
    }

    @Test
    void closingLetsInFlightHandlersFinishAndAcknowledges() {
        Slow[] slow = new Slow[1];
        try (EventBus probe = probe()) {
            runner.withUserConfiguration(Slow.class).withPropertyValues("stargazer.bus.consumer.max-deliveries=1").run(ctx -> {
                assertThat(ctx).hasNotFailed();
                slow[0] = ctx.getBean(Slow.class);
                for (int i = 0; i < 4; i++) probe.publish(ns + ":jobs", Envelope.of("channel_id", "c" + i, "n", i));
                await().atMost(WAIT).until(() -> slow[0].started.get() == 4);
            }); // closed while the four handlers run
            assertThat(slow[0].finished).containsExactlyInAnyOrder(0L, 1L, 2L, 3L);
            assertThat(probe.pendingCount(ns + ":jobs", "g")).as("acknowledged before the bus closed").isZero();
            assertThat(probe.read(ns + ":jobs:dead", "0", 10)).isEmpty();
        }
    }

    @Test
    void aHandlerStillRunningAtTheCloseTimeoutIsLeftPendingNotDeadLettered() {
        Stuck[] stuck = new Stuck[1];
        try (EventBus probe = probe()) {
            runner.withUserConfiguration(Stuck.class).withPropertyValues("stargazer.bus.consumer.max-deliveries=1",
                    "stargazer.bus.consumer.close-timeout=500ms").run(ctx -> {
                assertThat(ctx).hasNotFailed();
                stuck[0] = ctx.getBean(Stuck.class);
                probe.publish(ns + ":stuck", Envelope.of("channel_id", "c"));
                assertThat(stuck[0].started.await(15, java.util.concurrent.TimeUnit.SECONDS)).isTrue();
            });
            assertThat(stuck[0].interrupted).isTrue();
            // Given back by the bus with the delivery uncounted, on its last allowed delivery.
            assertThat(probe.pendingCount(ns + ":stuck", "g")).isEqualTo(1);
            assertThat(probe.read(ns + ":stuck:dead", "0", 10)).isEmpty();
        }
    }

    private EventBus probe() {
        return EventBus.connect(io.stargazer.bus.RedisUrl.parse(TestServers.url()),
                io.stargazer.bus.BusConfig.builder().topology(io.stargazer.bus.Topology.builder().namespace(ns).build()).build());
    }
}
