package io.stargazer.bus.micrometer;

import io.micrometer.common.KeyValues;

/**
 * The bus's own naming of a delivery's observation (OpenTelemetry's messaging conventions): name
 * {@value BusObservations#PROCESS}, contextual name {@code process <stream>}, low cardinality {@code messaging.system},
 * {@code messaging.destination.name} (bounded), {@code messaging.operation.type} and {@code .name},
 * {@code messaging.consumer.group.name}; high cardinality {@link BusObservations#STREAM}, {@code messaging.message.id}
 * and {@code messaging.redis_streams.delivery_count}.
 */
public class DefaultBusProcessObservationConvention implements BusProcessObservationConvention {
    public static final DefaultBusProcessObservationConvention INSTANCE = new DefaultBusProcessObservationConvention();

    @Override
    public String getName() {
        return BusObservations.PROCESS;
    }

    @Override
    public String getContextualName(BusProcessContext context) {
        return "process " + context.getStream();
    }

    @Override
    public KeyValues getLowCardinalityKeyValues(BusProcessContext context) {
        KeyValues low = KeyValues.of(BusMetrics.TAG_SYSTEM, BusMetrics.SYSTEM, BusMetrics.TAG_DESTINATION, context.getDestination(),
                "messaging.operation.type", "process", BusMetrics.TAG_OPERATION, "process");
        return context.getGroup() == null ? low : low.and(BusMetrics.TAG_GROUP, context.getGroup());
    }

    @Override
    public KeyValues getHighCardinalityKeyValues(BusProcessContext context) {
        return KeyValues.of(BusObservations.STREAM, context.getStream(), "messaging.message.id", context.getEntryId(),
                "messaging.redis_streams.delivery_count", Long.toString(context.getDeliveryCount()));
    }
}
