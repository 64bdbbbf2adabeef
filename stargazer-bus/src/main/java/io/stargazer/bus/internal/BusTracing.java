package io.stargazer.bus.internal;

/**
 * Trace context across the bus (io.stargazer.bus.micrometer.BusObservations implements it over the Micrometer
 * Observation API). A publish asks for a send span, writes its W3C {@code traceparent}/{@code tracestate} as entry
 * fields and ends it with the stored id; a delivery opens a process span continuing the fields it found, current on
 * the handler's thread while the handler runs, so that what the handler publishes (tools requests, answers) joins
 * the trace.
 *
 * <p>Public only for the binder's package in this module (the package is not exported). When none is installed the
 * bus holds {@code null} and skips every call: no objects, no fields, the plain publish scripts.
 */
public interface BusTracing {

    /**
     * Starts a PRODUCER span for a publish to {@code stream} of an envelope whose own {@code trace_id} is
     * {@code traceId} (null when it has none); never null. Called on the publishing thread. {@code destination}: the
     * stream as the publish meters name it: {@code stream} itself, or a bounded stand-in for a stream named by input
     * (a tools request's reply_to outside the reply prefix: {@code {reply_to}}).
     */
    Send send(String stream, String destination, String traceId);

    /**
     * Starts a CONSUMER span for one delivery and makes it current on this (handler) thread;
     * {@code traceparent}/{@code tracestate} are the entry's fields, null when absent, and {@code traceId} the
     * envelope's {@code trace_id} as the handler sees it (null when none).
     */
    Process process(String stream, String group, String entryId, long deliveryCount, String traceparent, String tracestate,
            String traceId);

    /** The trace context current on this thread, to carry to another thread ({@link #restore}); null when none. */
    Object current();

    /** Makes {@code context} (from {@link #current}) current on this thread until the scope is closed, on this thread. */
    Scope restore(Object context);

    interface Scope extends AutoCloseable {
        @Override
        void close();
    }

    interface Send {
        /**
         * The {@code traceparent} to write, or null for none: when no tracer is bridged, or when the envelope's
         * {@code trace_id} names another trace than the span's (wire format: the two must agree).
         */
        String traceparent();

        /** The {@code tracestate} to write beside it, or null/empty for none. */
        String tracestate();

        /** Ends the span: {@code id} the stored entry's id, or {@code error}. Called on a Redis I/O thread. */
        void end(String id, Throwable error);
    }

    interface Process {
        /** Leaves the span's scope: called on the same thread that {@link #process} was called on, after the handler returned. */
        void closeScope();

        /** Ends the span when the handling completed (any thread). */
        void end(Throwable error);
    }
}
