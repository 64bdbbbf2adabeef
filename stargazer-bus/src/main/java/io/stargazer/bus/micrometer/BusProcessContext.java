package io.stargazer.bus.micrometer;

import io.micrometer.observation.transport.Kind;
import io.micrometer.observation.transport.Propagator;
import io.micrometer.observation.transport.ReceiverContext;
import java.util.Map;

/**
 * The context of a delivery's observation ({@link BusObservations#PROCESS}): what a
 * {@link BusProcessObservationConvention} reads to name it and give it key values. Its carrier holds the entry's
 * trace context, which the tracer continues.
 */
public class BusProcessContext extends ReceiverContext<Map<String, String>> {
    private final String stream;
    private final String destination;
    private final String group;
    private final String entryId;
    private final long deliveryCount;

    BusProcessContext(String stream, String destination, String group, String entryId, long deliveryCount,
            Map<String, String> carrier, Propagator.Getter<Map<String, String>> getter) {
        super(getter, Kind.CONSUMER);
        this.stream = stream;
        this.destination = destination;
        this.group = group;
        this.entryId = entryId;
        this.deliveryCount = deliveryCount;
        setCarrier(carrier);
        setRemoteServiceName("redis");
    }

    /** The stream's own name (high cardinality: a tools reply stream is one per worker process). */
    public String getStream() {
        return stream;
    }

    /** The stream as the meters name it, bounded (see {@link BusSendContext#getDestination()}). */
    public String getDestination() {
        return destination;
    }

    /** The consumer group; null for a tools reply read by a ToolClient, which reads without one. */
    public String getGroup() {
        return group;
    }

    public String getEntryId() {
        return entryId;
    }

    /** How many times the entry has been delivered, this delivery included. */
    public long getDeliveryCount() {
        return deliveryCount;
    }
}
