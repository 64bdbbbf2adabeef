package io.stargazer.bus.spring.autoconfigure;

import io.stargazer.bus.EventBus;
import io.stargazer.bus.RedisUrl;
import io.stargazer.bus.micrometer.BusMetrics;
import io.stargazer.bus.micrometer.BusObservations;
import io.stargazer.bus.spring.StargazerListeners;
import io.stargazer.bus.spring.StargazerToolService;
import io.stargazer.bus.tools.ToolClient;
import io.stargazer.bus.tools.ToolRegistry;
import io.stargazer.bus.tools.ToolService;
import org.springframework.beans.factory.ObjectProvider;
import org.springframework.boot.autoconfigure.AutoConfiguration;
import org.springframework.boot.autoconfigure.condition.ConditionalOnBean;
import org.springframework.boot.autoconfigure.condition.ConditionalOnClass;
import org.springframework.boot.autoconfigure.condition.ConditionalOnMissingBean;
import org.springframework.boot.context.properties.EnableConfigurationProperties;
import org.springframework.boot.health.autoconfigure.contributor.ConditionalOnEnabledHealthIndicator;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;
import org.springframework.core.env.Environment;

/**
 * The Stargazer bus in a Spring Boot application: an {@link EventBus} from {@code stargazer.bus.*}, a
 * {@link ToolClient}, a {@link ToolService} when the application defines a {@link ToolRegistry} (run while the context
 * runs, as the listeners are), the
 * {@link StargazerListeners} that run {@code @StargazerListener} methods, and (with Micrometer) the metrics binder and
 * trace context. Each bean gives way to one the application defines.
 */
@AutoConfiguration(afterName = {
        "org.springframework.boot.micrometer.observation.autoconfigure.ObservationAutoConfiguration",
        "org.springframework.boot.jackson.autoconfigure.JacksonAutoConfiguration"})
@EnableConfigurationProperties(StargazerBusProperties.class)
public class StargazerBusAutoConfiguration {
    /** The observation of each batch listener call (with an ObservationRegistry bean). */
    public static final String BATCH_OBSERVATION = "stargazer.listener.batch";
    private static final String REMOTE_BAGGAGE = "management.tracing.baggage.remote-fields";
    private static final org.slf4j.Logger LOG = org.slf4j.LoggerFactory.getLogger(StargazerBusAutoConfiguration.class);

    /**
     * Connects at start-up; closed with the context. Creates the role's streams and groups unless
     * {@code stargazer.bus.ensure-streams=false}. Its trace context, as every EventBus bean's, is installed by
     * {@link #stargazerObservedBuses}.
     */
    @Bean(destroyMethod = "close")
    @ConditionalOnMissingBean
    public EventBus stargazerEventBus(StargazerBusProperties properties) {
        RedisUrl url = properties.toRedisUrl();
        EventBus bus = EventBus.connect(url, properties.toBusConfig());
        try {
            if (properties.isEnsureStreams()) bus.ensureStreams();
        } catch (RuntimeException e) {
            bus.close();
            throw e;
        }
        return bus;
    }

    /**
     * Every {@link EventBus} bean, the starter's or the application's own, gets the trace context (the
     * {@link ObservationInstaller}, with an ObservationRegistry bean), as {@link BusMetrics} binds to either.
     */
    @Bean
    public static org.springframework.beans.factory.config.BeanPostProcessor stargazerObservedBuses(ObjectProvider<ObservationInstaller> observations) {
        return new org.springframework.beans.factory.config.BeanPostProcessor() {
            @Override
            public Object postProcessAfterInitialization(Object bean, String beanName) {
                if (bean instanceof EventBus bus) observations.ifAvailable(o -> o.install(bus));
                return bean;
            }
        };
    }

    @Bean(destroyMethod = "close")
    @ConditionalOnMissingBean
    public ToolClient stargazerToolClient(EventBus bus, StargazerBusProperties properties) {
        return ToolClient.create(bus, properties.getTools().getClient().toConfig());
    }

    /**
     * Made, not started: it starts reading once every bean is ready and stops in the listeners' phase, before the bus
     * closes ({@link StargazerToolService}); {@code stargazer.bus.tools.service.auto-startup=false} leaves it to start().
     * The properties are checked now, so a bad one fails the start-up naming it. Declared before
     * {@link #stargazerListeners}: Spring stops the beans of one phase in the order they are declared, one after the
     * other, and this one's stop returns at once (its close continues on a thread of its own) while the listeners' stop
     * waits for their handlers; the other way round, the service would begin closing only once the listeners had.
     */
    @Bean(destroyMethod = "close")
    @ConditionalOnMissingBean(ToolService.class)
    @ConditionalOnBean(ToolRegistry.class)
    public StargazerToolService stargazerToolService(EventBus bus, ToolRegistry registry, StargazerBusProperties properties) {
        return new StargazerToolService(bus, registry, properties.toToolServiceConfig(), properties.getTools().getService().isAutoStartup());
    }

    @Bean
    @ConditionalOnMissingBean
    public static StargazerListeners stargazerListeners(ObjectProvider<EventBus> bus, Environment env,
            ObjectProvider<StargazerBusProperties> properties, ObjectProvider<PayloadMapper> mapper,
            ObjectProvider<StargazerListeners.BatchObserver> batchObserver) {
        // Static and lazy: a BeanPostProcessor is made before other beans; the bus is fetched when first needed.
        return new LazyListeners(bus, env, properties, mapper, batchObserver);
    }

    /** Typed payloads through the application's Jackson 3 {@code JsonMapper}. */
    @Configuration(proxyBeanMethods = false)
    @ConditionalOnClass(name = "tools.jackson.databind.json.JsonMapper")
    static class JacksonPayloads {
        @Bean
        @ConditionalOnMissingBean
        @ConditionalOnBean(type = "tools.jackson.databind.json.JsonMapper")
        PayloadMapper stargazerPayloadMapper(tools.jackson.databind.json.JsonMapper mapper) {
            return (members, type) -> mapper.convertValue(members, mapper.constructType(type));
        }
    }

    @Configuration(proxyBeanMethods = false)
    @ConditionalOnClass(name = "io.micrometer.core.instrument.binder.MeterBinder")
    static class Metrics {
        /** Bound to every MeterRegistry by Spring Boot's metrics support (a MeterBinder bean). */
        @Bean
        @ConditionalOnMissingBean
        BusMetrics stargazerBusMetrics(EventBus bus) {
            return new BusMetrics(bus);
        }
    }

    @Configuration(proxyBeanMethods = false)
    @ConditionalOnClass(name = "io.micrometer.observation.ObservationRegistry")
    static class Observations {
        @Bean
        @ConditionalOnMissingBean
        ObservationInstaller stargazerObservationInstaller(ObjectProvider<io.micrometer.observation.ObservationRegistry> registry,
                Environment env, ObjectProvider<io.stargazer.bus.micrometer.BusSendObservationConvention> sendConvention,
                ObjectProvider<io.stargazer.bus.micrometer.BusProcessObservationConvention> processConvention) {
            // The application's conventions (one bean of each, as Spring Kafka's observation conventions), else the
            // registry's, else the bus's defaults.
            return bus -> registry.ifAvailable(r -> {
                BusObservations.install(bus, r, sendConvention.getIfUnique(), processConvention.getIfUnique());
                warnOfRemoteBaggage(env);
            });
        }

        /**
         * The wire format (shared with the other languages) has {@code traceparent} and {@code tracestate} and no
         * baggage field, so the remote baggage Spring Boot propagates over HTTP is not there for a handler to read.
         */
        private static void warnOfRemoteBaggage(Environment env) {
            java.util.List<String> fields = org.springframework.boot.context.properties.bind.Binder.get(env)
                    .bind(REMOTE_BAGGAGE, org.springframework.boot.context.properties.bind.Bindable.listOf(String.class))
                    .orElse(java.util.List.of());
            if (!fields.isEmpty() && env.getProperty("management.tracing.baggage.enabled", Boolean.class, true)) {
                LOG.warn("{}={} do not cross the Stargazer bus: its entries carry the trace context (traceparent, tracestate) and no"
                        + " baggage, so a handler does not see the publisher's baggage (docs/observability.md)", REMOTE_BAGGAGE, fields);
            }
        }

        /**
         * Each call of a batch listener's method as the observation {@value StargazerBusAutoConfiguration#BATCH_OBSERVATION} (a timer through Spring
         * Boot's metrics, a span through its tracing), tagged with the listener's id and, by Micrometer, its error.
         */
        @Bean
        @ConditionalOnMissingBean
        StargazerListeners.BatchObserver stargazerBatchObserver(ObjectProvider<io.micrometer.observation.ObservationRegistry> registry) {
            return (id, size, call) -> {
                io.micrometer.observation.ObservationRegistry r = registry.getIfAvailable();
                if (r == null) {
                    call.run();
                    return;
                }
                io.micrometer.observation.Observation o = io.micrometer.observation.Observation.createNotStarted(BATCH_OBSERVATION, r)
                        .contextualName("batch " + id).lowCardinalityKeyValue("listener", id)
                        .highCardinalityKeyValue("batch.size", Integer.toString(size)).start();
                try (io.micrometer.observation.Observation.Scope scope = o.openScope()) {
                    call.run();
                } catch (Throwable t) {
                    o.error(t);
                    throw t;
                } finally {
                    o.stop();
                }
            };
        }
    }

    @Configuration(proxyBeanMethods = false)
    @ConditionalOnClass(name = "org.springframework.boot.health.contributor.HealthIndicator")
    static class Health {
        @Bean
        @ConditionalOnMissingBean(name = "stargazerHealthIndicator")
        @ConditionalOnEnabledHealthIndicator("stargazer")
        StargazerHealthIndicator stargazerHealthIndicator(EventBus bus, StargazerListeners listeners, ObjectProvider<ToolService> toolServices) {
            return new StargazerHealthIndicator(bus, listeners, () -> toolServices.orderedStream().toList());
        }
    }

    /** Installs trace context on the bus when Micrometer's Observation API is present (kept off the bus bean's signature). */
    @FunctionalInterface
    public interface ObservationInstaller {
        void install(EventBus bus);
    }

    /** Envelope members to a listener parameter's type. */
    @FunctionalInterface
    public interface PayloadMapper {
        Object map(java.util.Map<String, Object> members, java.lang.reflect.Type type);
    }

    /** {@link StargazerListeners} whose collaborators are looked up at start, not when the post-processor is made. */
    static final class LazyListeners extends StargazerListeners {
        private final ObjectProvider<BatchObserver> batchObserver;

        LazyListeners(ObjectProvider<EventBus> bus, Environment env, ObjectProvider<StargazerBusProperties> properties,
                ObjectProvider<PayloadMapper> mapper, ObjectProvider<BatchObserver> batchObserver) {
            super(env, bus::getObject, b -> properties.getObject().getConsumer().applyToListener(b), () -> {
                PayloadMapper m = mapper.getIfAvailable();
                return m == null ? null : m::map;
            });
            this.batchObserver = batchObserver;
        }

        @Override
        protected BatchObserver batchObserver() {
            return batchObserver.getIfAvailable();
        }
    }
}
