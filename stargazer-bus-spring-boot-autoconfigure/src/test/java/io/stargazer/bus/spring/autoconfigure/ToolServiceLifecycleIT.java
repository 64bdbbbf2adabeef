package io.stargazer.bus.spring.autoconfigure;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;

import io.stargazer.bus.BusConfig;
import io.stargazer.bus.Envelope;
import io.stargazer.bus.EventBus;
import io.stargazer.bus.RedisUrl;
import io.stargazer.bus.StreamInfo;
import io.stargazer.bus.Topology;
import io.stargazer.bus.spring.StargazerListener;
import io.stargazer.bus.spring.StargazerListeners;
import io.stargazer.bus.spring.StargazerToolService;
import io.stargazer.bus.tools.ToolClient;
import io.stargazer.bus.tools.ToolRegistry;
import io.stargazer.bus.tools.ToolService;
import io.stargazer.testing.TestServers;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.springframework.beans.factory.ObjectProvider;
import org.springframework.boot.autoconfigure.AutoConfigurations;
import org.springframework.boot.test.context.runner.ApplicationContextRunner;
import org.springframework.context.SmartLifecycle;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;

// The starter's tools service runs while the context runs, as the listeners do: it reads nothing before the context has
// started (a tool may use beans still being made), and it is closed in the listeners' phase, alongside them, before the
// bus closes; stargazer.bus.tools.service.auto-startup=false leaves it to start().
@Timeout(120)
class ToolServiceLifecycleIT {
    private static final Duration WAIT = Duration.ofSeconds(20);

    private final String ns = TestServers.namespace();
    private final Topology topology = Topology.builder().namespace(ns).build();
    private final ApplicationContextRunner runner = new ApplicationContextRunner()
            .withConfiguration(AutoConfigurations.of(StargazerBusAutoConfiguration.class))
            .withPropertyValues("stargazer.bus.url=" + TestServers.url(), "stargazer.bus.topology.namespace=" + ns,
                    "stargazer.bus.node-id=app", "stargazer.bus.consumer.block-timeout=200ms");

    /** What the test and the context's beans share. */
    static final class Probes {
        final CountDownLatch gateEntered = new CountDownLatch(1);
        final CountDownLatch releaseGate = new CountDownLatch(1);
        final AtomicBoolean gateMade = new AtomicBoolean();
        /** One per tool run: whether every bean had been made when it ran. */
        final ConcurrentLinkedQueue<Boolean> runs = new ConcurrentLinkedQueue<>();
        final CountDownLatch toolRunning = new CountDownLatch(1);
        final AtomicBoolean toolSawStop = new AtomicBoolean();
        final AtomicBoolean toolInterrupted = new AtomicBoolean();
        final CountDownLatch handlerRunning = new CountDownLatch(1);
        final AtomicBoolean handlerSawStop = new AtomicBoolean();
        volatile Boolean serviceRunningAtLaterPhase;
        volatile long answeredAtLaterPhase = -1;
    }

    /** An application bean that uses the tools service and takes its time to be made (a cache warming up, say). */
    static final class Gate {
    }

    @Configuration(proxyBeanMethods = false)
    static class SlowStart {
        @Bean
        ToolRegistry registry(Probes p) {
            return ToolRegistry.builder().register("record", args -> {
                p.runs.add(p.gateMade.get());
                return "ran";
            }).build();
        }

        @Bean
        Gate gate(ToolService tools, Probes p) throws InterruptedException {
            p.gateEntered.countDown();
            if (!p.releaseGate.await(60, TimeUnit.SECONDS)) throw new IllegalStateException("the test never released the gate");
            p.gateMade.set(true);
            return new Gate();
        }
    }

    /**
     * Made while the context refreshes, the service read the tools stream at once and ran the tool while the gate bean
     * was still being made: a tool may use beans that are not ready yet.
     */
    @Test
    void aRequestWaitingBeforeTheContextIsReadyRunsOnlyOnceTheContextHasStarted() throws Exception {
        Probes p = new Probes();
        try (EventBus probe = probe(); ToolClient client = ToolClient.create(probe)) {
            probe.ensureGroup(topology.toolsStream(), topology.toolsGroup());
            CompletableFuture<Object> answer = client.call("record", Map.of(), Duration.ofSeconds(60));
            await().atMost(WAIT).until(() -> probe.streamInfo(topology.toolsStream()).map(StreamInfo::length).orElse(0L) == 1);
            CompletableFuture<Void> app = CompletableFuture.runAsync(() -> runner.withBean(Probes.class, () -> p)
                    .withUserConfiguration(SlowStart.class).run(ctx -> {
                        assertThat(ctx).hasNotFailed();
                        assertThat(answer.get(WAIT.toSeconds(), TimeUnit.SECONDS)).isEqualTo("ran");
                    }));
            try {
                assertThat(p.gateEntered.await(WAIT.toSeconds(), TimeUnit.SECONDS)).as("the gate bean is being made").isTrue();
                // The tools service bean exists (the gate got it); the context has not started: nothing reads the request.
                await().during(Duration.ofSeconds(2)).atMost(Duration.ofSeconds(5))
                        .until(() -> p.runs.isEmpty() && probe.pendingCount(topology.toolsStream(), topology.toolsGroup()) == 0);
            } finally {
                p.releaseGate.countDown();
            }
            app.get(60, TimeUnit.SECONDS);
            assertThat(p.runs).as("one run, once every bean was made").containsExactly(true);
            assertThat(probe.pendingCount(topology.toolsStream(), topology.toolsGroup())).isZero();
        }
    }

    @Configuration(proxyBeanMethods = false)
    static class FinishOnStop {
        @Bean
        ToolRegistry registry(Probes p, ObjectProvider<ToolService> service) {
            return ToolRegistry.builder().register("finish", args -> {
                p.toolRunning.countDown();
                // Works on until the service is being stopped, so the stop meets it running.
                p.toolSawStop.set(eventually(() -> !((SmartLifecycle) service.getObject()).isRunning()));
                return "finished";
            }).build();
        }

        /** Stops in a later phase than the listeners' (0): sees what the service's stop left. */
        @Bean
        SmartLifecycle laterPhase(Probes p, ObjectProvider<ToolService> service) {
            return new SmartLifecycle() {
                private volatile boolean running;

                @Override
                public void start() {
                    running = true;
                }

                @Override
                public void stop() {
                    ToolService s = service.getObject();
                    p.serviceRunningAtLaterPhase = ((SmartLifecycle) s).isRunning();
                    p.answeredAtLaterPhase = s.stats().succeeded();
                    running = false;
                }

                @Override
                public boolean isRunning() {
                    return running;
                }

                @Override
                public int getPhase() {
                    return 0;
                }
            };
        }
    }

    @Test
    void closingTheContextLetsARunningToolFinishAndAnswerBeforeTheBusCloses() throws Exception {
        Probes p = new Probes();
        try (EventBus probe = probe(); ToolClient client = ToolClient.create(probe)) {
            AtomicReference<CompletableFuture<Object>> answer = new AtomicReference<>();
            runner.withBean(Probes.class, () -> p).withUserConfiguration(FinishOnStop.class)
                    .withPropertyValues("stargazer.bus.consumer.max-deliveries=1").run(ctx -> {
                assertThat(ctx).hasNotFailed();
                assertThat(ctx.getBean(ToolService.class)).isInstanceOf(StargazerToolService.class);
                answer.set(client.call("finish", Map.of(), Duration.ofSeconds(60)));
                assertThat(p.toolRunning.await(WAIT.toSeconds(), TimeUnit.SECONDS)).isTrue();
            }); // closed while the tool runs
            assertThat(p.toolSawStop).as("the tool still ran when the service was stopped").isTrue();
            assertThat(p.serviceRunningAtLaterPhase).as("stopped in its phase, before the later one").isFalse();
            assertThat(p.answeredAtLaterPhase).as("answered before the later phase stopped").isEqualTo(1);
            assertThat(answer.get().get(WAIT.toSeconds(), TimeUnit.SECONDS)).isEqualTo("finished");
            assertThat(probe.pendingCount(topology.toolsStream(), topology.toolsGroup())).as("acknowledged before the bus closed").isZero();
            assertThat(probe.read(topology.deadLetterStream(topology.toolsStream()), "0", 10)).isEmpty();
        }
    }

    @Configuration(proxyBeanMethods = false)
    static class Stuck {
        @Bean
        ToolRegistry registry(Probes p) {
            return ToolRegistry.builder().register("stuck", args -> {
                p.toolRunning.countDown();
                try {
                    new CountDownLatch(1).await(); // only the close timeout's interrupt ends it
                } catch (InterruptedException ie) {
                    p.toolInterrupted.set(true);
                    throw ie;
                }
                return "never";
            }).build();
        }
    }

    @Test
    void aToolStillRunningAtTheCloseTimeoutIsGivenBackNotAnsweredNorDeadLettered() throws Exception {
        Probes p = new Probes();
        try (EventBus probe = probe(); ToolClient client = ToolClient.create(probe)) {
            runner.withBean(Probes.class, () -> p).withUserConfiguration(Stuck.class)
                    .withPropertyValues("stargazer.bus.consumer.max-deliveries=1", "stargazer.bus.tools.service.close-timeout=500ms").run(ctx -> {
                assertThat(ctx).hasNotFailed();
                client.call("stuck", Map.of(), Duration.ofSeconds(60));
                assertThat(p.toolRunning.await(WAIT.toSeconds(), TimeUnit.SECONDS)).isTrue();
            });
            assertThat(p.toolInterrupted).isTrue();
            assertThat(probe.read(topology.toolsReplyStream("probe"), "0", 10)).as("no answer").isEmpty();
            // Given back with the delivery uncounted, on its last allowed delivery: another instance runs it.
            assertThat(probe.pendingCount(topology.toolsStream(), topology.toolsGroup())).isEqualTo(1);
            assertThat(probe.read(topology.deadLetterStream(topology.toolsStream()), "0", 10)).isEmpty();
        }
    }

    @Configuration(proxyBeanMethods = false)
    static class Echo {
        @Bean
        ToolRegistry registry(Probes p) {
            return ToolRegistry.builder().register("echo", args -> {
                p.runs.add(true);
                return args.get("v");
            }).build();
        }
    }

    @Test
    void withoutAutoStartupTheServiceWaitsForStartAndCanBeStoppedAndStartedAgain() throws Exception {
        Probes p = new Probes();
        try (EventBus probe = probe(); ToolClient client = ToolClient.create(probe)) {
            probe.ensureGroup(topology.toolsStream(), topology.toolsGroup());
            runner.withBean(Probes.class, () -> p).withUserConfiguration(Echo.class)
                    .withPropertyValues("stargazer.bus.tools.service.auto-startup=false", "stargazer.bus.tools.service.max-concurrent=3").run(ctx -> {
                assertThat(ctx).hasNotFailed();
                StargazerToolService service = (StargazerToolService) ctx.getBean(ToolService.class);
                assertThat(service.isAutoStartup()).isFalse();
                assertThat(service.isRunning()).isFalse();
                assertThat(service.config().maxConcurrent()).isEqualTo(3);
                assertThat(service.stats()).isEqualTo(new ToolService.Stats(0, 0, 0, 0, 0, 0, 0, 0, 0));
                assertThatThrownBy(service::subscription).isInstanceOf(IllegalStateException.class)
                        .hasMessageContaining("not started").hasMessageContaining("auto-startup");

                CompletableFuture<Object> first = client.call("echo", Map.of("v", "one"), Duration.ofSeconds(60));
                await().during(Duration.ofSeconds(1)).atMost(Duration.ofSeconds(4))
                        .until(() -> p.runs.isEmpty() && probe.pendingCount(topology.toolsStream(), topology.toolsGroup()) == 0);

                service.start();
                assertThat(service.isRunning()).isTrue();
                assertThat(first.get(WAIT.toSeconds(), TimeUnit.SECONDS)).isEqualTo("one");
                assertThat(service.subscription().group()).isEqualTo(topology.toolsGroup());

                service.stop();
                assertThat(service.isRunning()).isFalse();
                assertThat(service.stats().succeeded()).as("the last figures").isEqualTo(1);
                assertThat(service.stats().received()).isEqualTo(1);
                assertThat(service.config().maxConcurrent()).isEqualTo(3);
                assertThatThrownBy(service::subscription).isInstanceOf(IllegalStateException.class).hasMessageContaining("stopped");

                CompletableFuture<Object> second = client.call("echo", Map.of("v", "two"), Duration.ofSeconds(60));
                await().during(Duration.ofSeconds(1)).atMost(Duration.ofSeconds(4)).until(() -> p.runs.size() == 1);
                service.start();
                assertThat(second.get(WAIT.toSeconds(), TimeUnit.SECONDS)).isEqualTo("two");
                // Counted once the reply's XADD has returned, which may be after the caller has read it.
                await().atMost(WAIT).until(() -> service.stats().succeeded() == 2);
                assertThat(service.stats().received()).as("counted over both runs").isEqualTo(2);
            });
            assertThat(p.runs).hasSize(2);
            assertThat(probe.pendingCount(topology.toolsStream(), topology.toolsGroup())).isZero();
        }
    }

    @Configuration(proxyBeanMethods = false)
    static class ToolAndListener {
        @Bean
        ToolRegistry registry(Probes p, ObjectProvider<StargazerListeners> listeners) {
            return ToolRegistry.builder().register("wait", args -> {
                p.toolRunning.countDown();
                p.toolSawStop.set(eventually(() -> !listeners.getObject().isRunning(), SEEN_WITHIN));
                return "done";
            }).build();
        }

        @Bean
        Handler handler(Probes p, ObjectProvider<ToolService> tools) {
            return new Handler(p, tools);
        }
    }

    static class Handler {
        private final Probes p;
        private final ObjectProvider<ToolService> tools;

        Handler(Probes p, ObjectProvider<ToolService> tools) {
            this.p = p;
            this.tools = tools;
        }

        @StargazerListener(stream = "${stargazer.bus.topology.namespace}:jobs", group = "g")
        void on(Envelope e) {
            p.handlerRunning.countDown();
            p.handlerSawStop.set(eventually(() -> !((SmartLifecycle) tools.getObject()).isRunning(), SEEN_WITHIN));
        }
    }

    /** How soon a tool or a handler must see the other's stop begin; well within the close timeouts (15 s). */
    private static final Duration SEEN_WITHIN = Duration.ofSeconds(5);

    /**
     * The tools service and the listeners stop at once: a running tool waits for the listeners' stop to begin and a
     * running handler for the service's. One after the other, the first one's work would wait for a stop that only
     * begins once its own has ended, and give up.
     */
    @Test
    void theServiceAndTheListenersStopTogether() throws Exception {
        Probes p = new Probes();
        try (EventBus probe = probe(); ToolClient client = ToolClient.create(probe)) {
            AtomicReference<CompletableFuture<Object>> answer = new AtomicReference<>();
            runner.withBean(Probes.class, () -> p).withUserConfiguration(ToolAndListener.class)
                    .withPropertyValues("stargazer.bus.consumer.close-timeout=15s", "stargazer.bus.tools.service.close-timeout=15s").run(ctx -> {
                assertThat(ctx).hasNotFailed();
                answer.set(client.call("wait", Map.of(), Duration.ofSeconds(60)));
                probe.publish(ns + ":jobs", Envelope.of("channel_id", "c"));
                assertThat(p.toolRunning.await(WAIT.toSeconds(), TimeUnit.SECONDS)).isTrue();
                assertThat(p.handlerRunning.await(WAIT.toSeconds(), TimeUnit.SECONDS)).isTrue();
            });
            assertThat(p.toolSawStop).as("the tool saw the listeners stopping").isTrue();
            assertThat(p.handlerSawStop).as("the handler saw the tools service stopping").isTrue();
            assertThat(answer.get().get(WAIT.toSeconds(), TimeUnit.SECONDS)).isEqualTo("done");
            assertThat(probe.pendingCount(ns + ":jobs", "g")).isZero();
            assertThat(probe.pendingCount(topology.toolsStream(), topology.toolsGroup())).isZero();
        }
    }

    /** Whether {@code condition} holds within the wait; false, not an exception, so that the test asserts it outside. */
    static boolean eventually(Callable<Boolean> condition) {
        return eventually(condition, WAIT);
    }

    static boolean eventually(Callable<Boolean> condition, Duration within) {
        try {
            await().atMost(within).pollInterval(Duration.ofMillis(10)).until(condition);
            return true;
        } catch (RuntimeException e) {
            return false; // not within the wait, or interrupted by a close timeout
        }
    }

    /** The worker side, with a node id of its own (a second ToolClient on the context's reply stream would be refused). */
    private EventBus probe() {
        return EventBus.connect(RedisUrl.parse(TestServers.url()), BusConfig.builder().nodeId("probe").topology(topology).build());
    }
}
