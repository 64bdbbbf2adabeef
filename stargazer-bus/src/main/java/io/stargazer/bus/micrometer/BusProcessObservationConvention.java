package io.stargazer.bus.micrometer;

import io.micrometer.observation.Observation;
import io.micrometer.observation.ObservationConvention;

/**
 * Names a delivery's observation and gives it key values, in place of {@link DefaultBusProcessObservationConvention}
 * (see {@link BusSendObservationConvention} for the ways to install one).
 */
public interface BusProcessObservationConvention extends ObservationConvention<BusProcessContext> {
    @Override
    default boolean supportsContext(Observation.Context context) {
        return context instanceof BusProcessContext;
    }
}
