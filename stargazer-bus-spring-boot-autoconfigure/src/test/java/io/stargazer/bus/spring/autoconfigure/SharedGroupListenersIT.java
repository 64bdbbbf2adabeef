package io.stargazer.bus.spring.autoconfigure;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.stargazer.bus.ConsumerInfo;
import io.stargazer.bus.Envelope;
import io.stargazer.bus.EventBus;
import io.stargazer.bus.spring.StargazerListener;
import io.stargazer.testing.TestServers;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.ConcurrentLinkedQueue;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.springframework.boot.autoconfigure.AutoConfigurations;
import org.springframework.boot.health.contributor.Health;
import org.springframework.boot.health.contributor.Status;
import org.springframework.boot.jackson.autoconfigure.JacksonAutoConfiguration;
import org.springframework.boot.test.context.runner.ApplicationContextRunner;
import org.springframework.context.annotation.Configuration;

/**
 * Two listeners of one stream and group are two consumers of the group, each named after its id. Before, both were the
 * node id's consumer: one listener's start read the other's pending entries from their shared pending list and ran
 * them a second time, and the health details showed one of the two.
 */
@Timeout(120)
class SharedGroupListenersIT {
    private static final Duration WAIT = Duration.ofSeconds(30);

    private final String ns = TestServers.namespace();
    private final ApplicationContextRunner runner = new ApplicationContextRunner()
            .withConfiguration(AutoConfigurations.of(JacksonAutoConfiguration.class, StargazerBusAutoConfiguration.class))
            .withPropertyValues("stargazer.bus.url=" + TestServers.url(), "stargazer.bus.topology.namespace=" + ns,
                    "stargazer.bus.consumer.block-timeout=200ms",
                    "stargazer.bus.node-id=app-1");

    @Configuration(proxyBeanMethods = false)
    static class TwoOfOneGroup {
        final ConcurrentLinkedQueue<String> ran = new ConcurrentLinkedQueue<>();

        @StargazerListener(stream = "${stargazer.bus.topology.namespace}:orders", group = "billing", id = "first")
        void first(Envelope e) {
            ran.add("first " + e.get("n"));
        }

        @StargazerListener(stream = "${stargazer.bus.topology.namespace}:orders", group = "billing", id = "second")
        void second(Envelope e) {
            ran.add("second " + e.get("n"));
        }

        @StargazerListener(stream = "${stargazer.bus.topology.namespace}:audit", group = "billing", id = "alone")
        void alone(Envelope e) {
            ran.add("alone " + e.get("n"));
        }
    }

    @Test
    void twoListenersOfOneGroupAreTwoConsumersAndEachEntryRunsOnce() {
        runner.withUserConfiguration(TwoOfOneGroup.class).run(ctx -> {
            assertThat(ctx).hasNotFailed();
            EventBus bus = ctx.getBean(EventBus.class);
            TwoOfOneGroup l = ctx.getBean(TwoOfOneGroup.class);
            String stream = ns + ":orders";
            for (int i = 0; i < 20; i++) bus.publish(stream, Envelope.of("channel_id", "c" + i, "n", i));
            bus.publish(ns + ":audit", Envelope.of("channel_id", "c", "n", 0));
            await().atMost(WAIT).until(() -> l.ran.size() == 21);
            assertThat(l.ran.stream().filter(r -> !r.startsWith("alone")).map(r -> r.substring(r.indexOf(' ') + 1)).sorted())
                    .as("each entry once").doesNotHaveDuplicates().hasSize(20);
            assertThat(bus.consumers(stream, "billing")).extracting(ConsumerInfo::name)
                    .containsExactlyInAnyOrder("app-1:first", "app-1:second");
            assertThat(bus.consumers(ns + ":audit", "billing")).extracting(ConsumerInfo::name).containsExactly("app-1");
            Health h = ctx.getBean(StargazerHealthIndicator.class).health(true);
            assertThat(h.getStatus()).isEqualTo(Status.UP);
            assertThat(((Map<?, ?>) h.getDetails().get("subscriptions")).keySet()).map(Object::toString).containsExactlyInAnyOrder(stream + "/billing/app-1:first",
                    stream + "/billing/app-1:second", ns + ":audit/billing/app-1");
        });
    }

    /**
     * stargazer.bus.consumer.consumer-name, in place of the node id, is the base of every listener's consumer name.
     * Before, the property did not exist and was ignored: the consumers were named after the node id.
     */
    @Test
    void theConsumerNamePropertyIsTheBaseOfTheListenersConsumerNames() {
        runner.withUserConfiguration(TwoOfOneGroup.class).withPropertyValues("stargazer.bus.consumer.consumer-name=billing-7").run(ctx -> {
            assertThat(ctx).hasNotFailed();
            EventBus bus = ctx.getBean(EventBus.class);
            await().atMost(WAIT).untilAsserted(() -> {
                assertThat(bus.consumers(ns + ":orders", "billing")).extracting(ConsumerInfo::name)
                        .containsExactlyInAnyOrder("billing-7:first", "billing-7:second");
                assertThat(bus.consumers(ns + ":audit", "billing")).extracting(ConsumerInfo::name).containsExactly("billing-7");
            });
        });
    }
}
