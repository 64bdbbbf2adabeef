package io.stargazer.bus.micrometer;

import io.micrometer.common.KeyValues;

/**
 * The bus's own naming of a publish's observation (OpenTelemetry's messaging conventions): name
 * {@value BusObservations#SEND}, contextual name {@code send <stream>} (the bounded destination for a reply_to of the
 * caller's choosing), low cardinality {@code messaging.system}, {@code messaging.destination.name} (bounded),
 * {@code messaging.operation.type} and {@code .name}; high cardinality {@link BusObservations#STREAM} and, once stored,
 * {@code messaging.message.id}.
 */
public class DefaultBusSendObservationConvention implements BusSendObservationConvention {
    public static final DefaultBusSendObservationConvention INSTANCE = new DefaultBusSendObservationConvention();

    @Override
    public String getName() {
        return BusObservations.SEND;
    }

    @Override
    public String getContextualName(BusSendContext context) {
        return "send " + (context.isNamedByInput() ? context.getDestination() : context.getStream());
    }

    @Override
    public KeyValues getLowCardinalityKeyValues(BusSendContext context) {
        return KeyValues.of(BusMetrics.TAG_SYSTEM, BusMetrics.SYSTEM, BusMetrics.TAG_DESTINATION, context.getDestination(),
                "messaging.operation.type", "send", BusMetrics.TAG_OPERATION, "send");
    }

    @Override
    public KeyValues getHighCardinalityKeyValues(BusSendContext context) {
        KeyValues kv = KeyValues.of(BusObservations.STREAM, context.getStream());
        return context.getEntryId() == null ? kv : kv.and("messaging.message.id", context.getEntryId());
    }
}
