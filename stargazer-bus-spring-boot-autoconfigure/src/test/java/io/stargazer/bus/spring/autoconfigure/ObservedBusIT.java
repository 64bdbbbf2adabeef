package io.stargazer.bus.spring.autoconfigure;

import static org.assertj.core.api.Assertions.assertThat;

import io.micrometer.observation.Observation;
import io.micrometer.observation.ObservationHandler;
import io.micrometer.observation.ObservationRegistry;
import io.stargazer.bus.BusConfig;
import io.stargazer.bus.Envelope;
import io.stargazer.bus.EventBus;
import io.stargazer.bus.RedisUrl;
import io.stargazer.bus.Topology;
import io.stargazer.bus.micrometer.BusObservations;
import io.stargazer.testing.TestServers;
import java.util.concurrent.ConcurrentLinkedQueue;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.springframework.boot.autoconfigure.AutoConfigurations;
import org.springframework.boot.jackson.autoconfigure.JacksonAutoConfiguration;
import org.springframework.boot.test.context.runner.ApplicationContextRunner;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;

/** With an ObservationRegistry bean every EventBus bean is observed: the starter's, and the application's own. */
@Timeout(120)
class ObservedBusIT {
    private final String ns = TestServers.namespace();
    private final ApplicationContextRunner runner = new ApplicationContextRunner()
            .withConfiguration(AutoConfigurations.of(JacksonAutoConfiguration.class, StargazerBusAutoConfiguration.class))
            .withPropertyValues("stargazer.bus.url=" + TestServers.url(), "stargazer.bus.topology.namespace=" + ns);

    static final class Recording implements ObservationHandler<Observation.Context> {
        final ConcurrentLinkedQueue<String> started = new ConcurrentLinkedQueue<>();

        @Override
        public void onStart(Observation.Context context) {
            started.add(context.getName());
        }

        @Override
        public boolean supportsContext(Observation.Context context) {
            return true;
        }
    }

    @Configuration(proxyBeanMethods = false)
    static class Observed {
        final Recording recording = new Recording();

        @Bean
        ObservationRegistry observationRegistry() {
            ObservationRegistry r = ObservationRegistry.create();
            r.observationConfig().observationHandler(recording);
            return r;
        }
    }

    @Configuration(proxyBeanMethods = false)
    static class OwnBus {
        @Bean(destroyMethod = "close")
        EventBus myBus(org.springframework.core.env.Environment env) {
            return EventBus.connect(RedisUrl.parse(env.getProperty("stargazer.bus.url")), BusConfig.builder()
                    .topology(Topology.builder().namespace(env.getProperty("stargazer.bus.topology.namespace")).build()).build());
        }
    }

    /** An application's convention bean names and tags the bus's observations (Spring Kafka's way). */
    @Configuration(proxyBeanMethods = false)
    static class Convention {
        @Bean
        io.stargazer.bus.micrometer.BusSendObservationConvention tenantSend() {
            return new io.stargazer.bus.micrometer.DefaultBusSendObservationConvention() {
                @Override
                public String getName() {
                    return "tenant.send";
                }
            };
        }
    }

    @Test
    void anObservationConventionBeanNamesTheBusesObservations() {
        runner.withUserConfiguration(Observed.class, Convention.class).run(ctx -> {
            assertThat(ctx).hasNotFailed();
            ctx.getBean(EventBus.class).publish(ns + ":observed", Envelope.of("channel_id", "a", "n", 1));
            assertThat(ctx.getBean(Observed.class).recording.started).contains("tenant.send").doesNotContain(BusObservations.SEND);
        });
    }

    @Test
    void theStartersBusIsObserved() {
        publishesAreObserved(Observed.class);
    }

    @Test
    void theApplicationsOwnBusIsObservedToo() {
        publishesAreObserved(Observed.class, OwnBus.class);
    }

    private void publishesAreObserved(Class<?>... configurations) {
        runner.withUserConfiguration(configurations).run(ctx -> {
            assertThat(ctx).hasNotFailed();
            ctx.getBean(EventBus.class).publish(ns + ":observed", Envelope.of("channel_id", "a", "n", 1));
            assertThat(ctx.getBean(Observed.class).recording.started).as("observations started").contains(BusObservations.SEND);
        });
    }
}
