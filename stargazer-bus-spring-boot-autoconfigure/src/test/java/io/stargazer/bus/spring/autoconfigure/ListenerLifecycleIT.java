package io.stargazer.bus.spring.autoconfigure;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;

import io.stargazer.bus.Envelope;
import io.stargazer.bus.EventBus;
import io.stargazer.bus.spring.StargazerListener;
import io.stargazer.bus.spring.StargazerListeners;
import io.stargazer.testing.TestServers;
import java.time.Duration;
import java.util.concurrent.ConcurrentLinkedQueue;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.springframework.boot.autoconfigure.AutoConfigurations;
import org.springframework.boot.test.context.runner.ApplicationContextRunner;
import org.springframework.context.annotation.Configuration;

// Starting and stopping @StargazerListener methods by id.
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
}
