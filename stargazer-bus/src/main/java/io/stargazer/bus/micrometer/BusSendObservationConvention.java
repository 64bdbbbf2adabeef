package io.stargazer.bus.micrometer;

import io.micrometer.observation.Observation;
import io.micrometer.observation.ObservationConvention;

/**
 * Names a publish's observation and gives it key values, in place of {@link DefaultBusSendObservationConvention}: pass
 * one to {@link BusObservations#install(io.stargazer.bus.EventBus, io.micrometer.observation.ObservationRegistry,
 * BusSendObservationConvention, BusProcessObservationConvention)}, register one on the registry as a
 * {@code GlobalObservationConvention} ({@code observationConfig().observationConvention(...)}), or, with the Spring Boot starter, declare it as a bean. To
 * add a key value, extend the default one and add to what it returns.
 */
public interface BusSendObservationConvention extends ObservationConvention<BusSendContext> {
    @Override
    default boolean supportsContext(Observation.Context context) {
        return context instanceof BusSendContext;
    }
}
