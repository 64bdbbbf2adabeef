package io.stargazer.bus.micrometer;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.micrometer.common.KeyValue;
import io.micrometer.common.KeyValues;
import io.micrometer.observation.Observation;
import io.micrometer.observation.ObservationHandler;
import io.micrometer.observation.ObservationRegistry;
import io.stargazer.bus.Envelope;
import io.stargazer.bus.EventBus;
import io.stargazer.bus.NodeRole;
import io.stargazer.bus.Subscription;
import io.stargazer.bus.testing.TestRedis;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The bus's observations are named and tagged by conventions an application can replace or extend (Micrometer's
 * ObservationConvention, as Spring Kafka's): passed to install, or registered on the registry; the defaults otherwise.
 */
@Timeout(value = 1, unit = TimeUnit.MINUTES)
class ObservationConventionIT {

    /** The defaults, with a tenant read from the stream's name. */
    static final class TenantSend extends DefaultBusSendObservationConvention {
        @Override
        public KeyValues getLowCardinalityKeyValues(BusSendContext context) {
            return super.getLowCardinalityKeyValues(context).and("tenant", context.getStream().substring(context.getStream().lastIndexOf(':') + 1));
        }
    }

    /** For the registry, a convention must say it is global. */
    static final class GlobalTenantSend extends DefaultBusSendObservationConvention
            implements io.micrometer.observation.GlobalObservationConvention<BusSendContext> {
        @Override
        public KeyValues getLowCardinalityKeyValues(BusSendContext context) {
            return super.getLowCardinalityKeyValues(context).and("tenant", context.getStream().substring(context.getStream().lastIndexOf(':') + 1));
        }
    }

    static final class RenamedProcess extends DefaultBusProcessObservationConvention {
        @Override
        public String getName() {
            return "orders.process";
        }

        @Override
        public KeyValues getLowCardinalityKeyValues(BusProcessContext context) {
            return super.getLowCardinalityKeyValues(context).and("attempt", context.getDeliveryCount() > 1 ? "retry" : "first");
        }
    }

    private static final class Recorder implements ObservationHandler<Observation.Context> {
        final ConcurrentLinkedQueue<Observation.Context> stopped = new ConcurrentLinkedQueue<>();

        @Override
        public void onStop(Observation.Context context) {
            stopped.add(context);
        }

        @Override
        public boolean supportsContext(Observation.Context context) {
            return true;
        }

        Observation.Context one(String name) {
            return await().atMost(Duration.ofSeconds(10)).until(() -> stopped.stream().filter(c -> c.getName().equals(name)).findFirst(),
                    java.util.Optional::isPresent).get();
        }
    }

    @Test
    void conventionsPassedToInstallNameAndTagTheObservations() {
        ObservationRegistry registry = ObservationRegistry.create();
        Recorder recorder = new Recorder();
        registry.observationConfig().observationHandler(recorder);
        try (EventBus bus = TestRedis.bus(NodeRole.WORKER)) {
            BusObservations.install(bus, registry, new TenantSend(), new RenamedProcess());
            String stream = bus.topology().inboundStream() + ":acme";
            bus.ensureGroup(stream, "g");
            String id = bus.publish(stream, Envelope.of("channel_id", "c", "content", "hi"));
            try (Subscription s = bus.subscribe(bus.consumer(stream, "g").blockTimeout(Duration.ofMillis(100)).build(), d -> { })) {
                Observation.Context send = recorder.one(BusObservations.SEND);
                assertThat(send).isInstanceOf(BusSendContext.class);
                assertThat(send.getLowCardinalityKeyValue("tenant")).extracting(KeyValue::getValue).isEqualTo("acme");
                assertThat(send.getLowCardinalityKeyValue(BusMetrics.TAG_DESTINATION)).extracting(KeyValue::getValue).isEqualTo(stream);
                assertThat(send.getHighCardinalityKeyValue("messaging.message.id")).as("the entry id, known at the stop")
                        .extracting(KeyValue::getValue).isEqualTo(id);
                assertThat(send.getContextualName()).isEqualTo("send " + stream);

                Observation.Context process = recorder.one("orders.process");
                assertThat(process).isInstanceOf(BusProcessContext.class);
                assertThat(process.getLowCardinalityKeyValue("attempt")).extracting(KeyValue::getValue).isEqualTo("first");
                assertThat(process.getLowCardinalityKeyValue(BusMetrics.TAG_GROUP)).extracting(KeyValue::getValue).isEqualTo("g");
                assertThat(process.getHighCardinalityKeyValue("messaging.message.id")).extracting(KeyValue::getValue).isEqualTo(id);
                assertThat(recorder.stopped).noneMatch(c -> c.getName().equals(BusObservations.PROCESS));
            }
        }
    }

    @Test
    void aConventionRegisteredOnTheRegistryIsUsedAndTheDefaultsOtherwise() {
        ObservationRegistry registry = ObservationRegistry.create();
        Recorder recorder = new Recorder();
        registry.observationConfig().observationHandler(recorder).observationConvention(new GlobalTenantSend());
        try (EventBus bus = TestRedis.bus(NodeRole.WORKER)) {
            BusObservations.install(bus, registry);
            String stream = bus.topology().inboundStream() + ":globex";
            bus.ensureGroup(stream, "g");
            bus.publish(stream, Envelope.of("channel_id", "c", "content", "hi"));
            try (Subscription s = bus.subscribe(bus.consumer(stream, "g").blockTimeout(Duration.ofMillis(100)).build(), d -> { })) {
                assertThat(recorder.one(BusObservations.SEND).getLowCardinalityKeyValue("tenant")).extracting(KeyValue::getValue)
                        .isEqualTo("globex");
                Observation.Context process = recorder.one(BusObservations.PROCESS);
                assertThat(process.getContextualName()).isEqualTo("process " + stream);
                assertThat(Map.of("delivery_count", process.getHighCardinalityKeyValue("messaging.redis_streams.delivery_count").getValue()))
                        .containsEntry("delivery_count", "1");
            }
        }
    }
}
