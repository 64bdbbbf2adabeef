package io.stargazer.bus.micrometer;

import io.micrometer.observation.transport.Kind;
import io.micrometer.observation.transport.SenderContext;
import java.util.Map;

/**
 * The context of a publish's observation ({@link BusObservations#SEND}): what a {@link BusSendObservationConvention}
 * reads to name it and give it key values. Its carrier is where the tracer writes the trace context the entry gets
 * ({@code traceparent}, {@code tracestate}).
 */
public class BusSendContext extends SenderContext<Map<String, String>> {
    private final String stream;
    private final String destination;
    private final boolean namedByInput;
    private volatile String entryId;

    BusSendContext(String stream, String destination, boolean namedByInput, Map<String, String> carrier) {
        super((c, k, v) -> c.put(k, v), Kind.PRODUCER);
        this.stream = stream;
        this.destination = destination;
        this.namedByInput = namedByInput;
        setCarrier(carrier);
        setRemoteServiceName("redis");
    }

    /** The stream's own name (high cardinality: a tools reply stream is one per worker process). */
    public String getStream() {
        return stream;
    }

    /**
     * The stream as the meters name it, bounded: a tools reply stream is {@code {prefix}:{worker_id}}, a tools reply on a
     * reply_to of the caller's choosing is {@code {reply_to}}, any other stream its own name.
     */
    public String getDestination() {
        return destination;
    }

    /**
     * Whether the stream's name came from input (a tools reply on a reply_to the request chose): then it names no
     * timer series or span, {@link #getDestination()} stands in for it.
     */
    public boolean isNamedByInput() {
        return namedByInput;
    }

    /** The stored entry's id once the publish succeeded; null before, and when it failed. */
    public String getEntryId() {
        return entryId;
    }

    void setEntryId(String entryId) {
        this.entryId = entryId;
    }
}
