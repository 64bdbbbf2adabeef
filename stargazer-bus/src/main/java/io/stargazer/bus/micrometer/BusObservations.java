package io.stargazer.bus.micrometer;

import io.micrometer.observation.Observation;
import io.micrometer.observation.ObservationRegistry;
import io.stargazer.bus.EventBus;
import io.stargazer.bus.internal.BusFactory;
import io.stargazer.bus.internal.BusTracing;
import java.util.HashMap;
import java.util.HexFormat;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.ThreadLocalRandom;

/**
 * Trace context across the bus through the Micrometer Observation API: {@code BusObservations.install(bus, registry)}.
 * Any tracer bridged to the registry (Micrometer Tracing with OpenTelemetry or Brave) records the spans and writes
 * the W3C context; with {@link ObservationRegistry#NOOP} (the default) nothing is installed and nothing is paid.
 *
 * <ul>
 *   <li>Each publish is a PRODUCER observation {@code send {stream}}, a child of the observation current on the
 *       publishing thread. The bus stores the span's W3C {@code traceparent} (made from its Micrometer Tracing
 *       {@code TraceContext}, whatever propagation the tracer uses; {@code tracestate} when the propagator wrote one
 *       for it) as entry fields beside {@code payload} and {@code trace_id} (wire format). An envelope
 *       without a {@code trace_id} gets the trace's id; one with its own keeps it. When that own {@code trace_id} is
 *       a W3C trace id (32 lowercase hex, not all zeros) of another trace than the span's, no {@code traceparent}
 *       is written (the wire format wants the two to agree) and the span gets {@link #CONVERSATION_ID}.</li>
 *   <li>Each delivery is a CONSUMER observation {@code process {stream}} continuing the entry's {@code traceparent}
 *       (offered to the tracer's propagator as W3C and as B3 single and multi headers),
 *       current on the handler's thread while the handler runs: what the handler publishes (a tools request, an
 *       answer) joins the trace. An entry without {@code traceparent} whose envelope's {@code trace_id} is a W3C trace
 *       id continues that trace: its remote parent is made up (a random span id, not marked sampled: W3C flags
 *       {@code 00}, B3 with no sampling state, so the consumer's sampler decides), so the handler's answers,
 *       which copy the trace_id, are in the trace they name. A tools reply read by a ToolClient is a
 *       {@code process {reply stream}} observation of its own, in the trace of the tools service's answer.</li>
 * </ul>
 *
 * <p>Key values follow the OpenTelemetry messaging conventions: {@code messaging.system=redis_streams},
 * {@code messaging.destination.name} (bounded: a tools reply stream, one per worker process, is
 * {@code {prefix}:{worker_id}}, as in {@link BusMetrics}), {@code messaging.operation.type} ({@code send}/{@code process}),
 * {@code messaging.operation.name}, {@code messaging.consumer.group.name}; high cardinality {@link #STREAM} (the
 * stream's name), {@code messaging.message.id} (the entry id) and, on process, {@code messaging.redis_streams.delivery_count}:
 * {@link DefaultBusSendObservationConvention} and {@link DefaultBusProcessObservationConvention}, which an application
 * replaces or extends with a convention of its own ({@link BusSendObservationConvention},
 * {@link BusProcessObservationConvention}), as Spring Kafka's {@code KafkaTemplateObservationConvention}.
 */
public final class BusObservations {
    /** The observation names (a meter handler times them under these names). */
    public static final String SEND = "stargazer.bus.send";
    public static final String PROCESS = "stargazer.bus.process";
    /** On a send span whose envelope's {@code trace_id} names another trace: that trace id (OpenTelemetry's key). */
    public static final String CONVERSATION_ID = "messaging.message.conversation_id";
    /**
     * High cardinality: the stream's own name. The low-cardinality {@code messaging.destination.name} is bounded as
     * {@link BusMetrics}' tag is: a tools reply stream (one per worker process) is {@code {prefix}:{worker_id}}.
     */
    public static final String STREAM = "stargazer.stream";

    private BusObservations() {
    }

    /**
     * Installs (or, with a no-op registry, removes) trace context on {@code bus}, its observations named by the
     * conventions registered on {@code registry} for their contexts, else by the default ones.
     */
    public static void install(EventBus bus, ObservationRegistry registry) {
        install(bus, registry, null, null);
    }

    /**
     * As {@link #install(EventBus, ObservationRegistry)}, with conventions of the application's own for the publishes'
     * and the deliveries' observations (either may be null: the registry's, else the default,
     * {@link DefaultBusSendObservationConvention} and {@link DefaultBusProcessObservationConvention}). A convention names
     * the observation and gives its key values; the trace context on the wire is the bus's either way.
     */
    public static void install(EventBus bus, ObservationRegistry registry, BusSendObservationConvention sendConvention,
            BusProcessObservationConvention processConvention) {
        Objects.requireNonNull(bus, "bus");
        BusFactory.setTracing(bus, registry == null || registry.isNoop() ? null
                : new Tracing(registry, new Destinations(bus.topology()), sendConvention, processConvention));
    }

    /** The bus's tracing hooks on the Observation API; private, so that no public signature names the internal type. */
    private static final class Tracing implements BusTracing {
        private final ObservationRegistry registry;
        private final Destinations destinations;
        private final BusSendObservationConvention sendConvention;
        private final BusProcessObservationConvention processConvention;

        Tracing(ObservationRegistry registry, Destinations destinations, BusSendObservationConvention sendConvention,
                BusProcessObservationConvention processConvention) {
            this.registry = registry;
            this.destinations = destinations;
            this.sendConvention = sendConvention;
            this.processConvention = processConvention;
        }

        @Override
        public Object current() {
            return registry.getCurrentObservation();
        }

        @Override
        public Scope restore(Object context) {
            if (!(context instanceof Observation o)) return () -> { };
            Observation.Scope scope = o.openScope();
            return scope::close;
        }

        @Override
        public Send send(String stream, String destination, String traceId) {
            // A stream named by input (destination differs) is named by its stand-in, also in the span's name: each
            // name would otherwise be a timer series of its own under Spring Boot's observation metrics.
            boolean byInput = !destination.equals(stream);
            String bounded = byInput ? destination : destinations.of(stream);
            Map<String, String> carrier = new HashMap<>(4);
            BusSendContext ctx = new BusSendContext(stream, bounded, byInput, carrier);
            Observation o = Observation.createNotStarted(sendConvention, DefaultBusSendObservationConvention.INSTANCE, () -> ctx, registry)
                    .start();
            // The wire fields are W3C whatever the application's propagator writes (B3 under
            // management.tracing.propagation.type=b3): made from the span's own ids when Micrometer Tracing made it.
            String own = SPAN_IDS ? SpanIds.traceparent(ctx) : null;
            String written = carrier.get("traceparent");
            String traceparent = own != null ? own : written;
            String tracestate = traceparent != null && traceparent.equals(written) ? carrier.get("tracestate") : null;
            // wire-format.md: a 32-hex trace_id beside a traceparent equals its trace id, and the entry's trace_id must be
            // the envelope's own. This span cannot move to that trace (the Observation API parents a new span on the
            // current one only), so the entry goes as from a publisher that does not trace, and its readers continue the
            // envelope's trace from trace_id; the span keeps the id to relate the two.
            boolean otherTrace = traceparent != null && isTraceId(traceId) && !traceparent.regionMatches(3, traceId, 0, 32);
            if (otherTrace) o.highCardinalityKeyValue(CONVERSATION_ID, traceId);
            return new Send() {
                @Override public String traceparent() { return otherTrace ? null : traceparent; }
                @Override public String tracestate() { return otherTrace ? null : tracestate; }

                @Override
                public void end(String id, Throwable error) {
                    if (id != null) ctx.setEntryId(id); // the convention's key values are asked for again at the stop
                    if (error != null) o.error(error);
                    o.stop();
                }
            };
        }

        @Override
        public Process process(String stream, String group, String entryId, long deliveryCount, String traceparent, String tracestate,
                String traceId) {
            Map<String, String> carrier = new HashMap<>(4);
            // wire-format.md is shared with other languages: a traceparent that is no valid W3C one is ignored, as if the
            // entry had none (its tracestate with it, as W3C Trace Context says), so the trace_id is continued below.
            if (traceparent != null && !isTraceparent(traceparent)) traceparent = null;
            if (traceparent != null) {
                carrier.put("traceparent", traceparent);
                if (tracestate != null) carrier.put("tracestate", tracestate);
            } else if (isTraceId(traceId)) {
                // From a publisher that does not trace (or whose span was in another trace, see send): the handler's
                // answers copy this trace_id, and with a trace active the wire format wants it to be the trace's id.
                // Nobody decided to sample it: flags 00 in W3C, no sampling state in B3 (deferred), so the consumer's
                // sampler decides (docs/observability.md, "Sampling of entries without traceparent").
                carrier.put("traceparent", "00-" + traceId + "-" + newSpanId() + "-00");
                carrier.put(UNDECIDED, "");
            }
            BusProcessContext ctx = new BusProcessContext(stream, destinations.of(stream), group, entryId, deliveryCount, carrier, W3C_AND_B3);
            Observation o = Observation.createNotStarted(processConvention, DefaultBusProcessObservationConvention.INSTANCE, () -> ctx,
                    registry).start();
            Observation.Scope scope = o.openScope();
            return new Process() {
                @Override public void closeScope() { scope.close(); }

                @Override
                public void end(Throwable error) {
                    if (error != null) o.error(error);
                    o.stop();
                }
            };
        }

    }

    /** Whether Micrometer Tracing is on the class path (it is optional): its spans' ids give the {@code traceparent}. */
    private static final boolean SPAN_IDS = present("io.micrometer.tracing.handler.TracingObservationHandler$TracingContext");

    /**
     * Reads the entry's W3C context for the application's propagator in the forms Spring Boot's
     * {@code management.tracing.propagation.type} offers: {@code traceparent}/{@code tracestate} (W3C) as they are, and
     * B3 single ({@code b3}) and multi ({@code X-B3-*}) made from the {@code traceparent}, so that a tracer that
     * propagates B3 continues the trace too. The wire format carries only the W3C fields.
     */
    /** In the carrier of a delivery whose parent the bus made up from its {@code trace_id}: nobody decided to sample it. */
    private static final String UNDECIDED = "stargazer.sampling-undecided";

    private static final io.micrometer.observation.transport.Propagator.Getter<Map<String, String>> W3C_AND_B3 = (carrier, key) -> {
        String tp = carrier.get("traceparent");
        if (key.equalsIgnoreCase("traceparent")) return tp;
        if (key.equalsIgnoreCase("tracestate")) return carrier.get("tracestate");
        if (tp == null || tp.length() < 55) return null;
        String traceId = tp.substring(3, 35);
        String spanId = tp.substring(36, 52);
        String sampled = carrier.containsKey(UNDECIDED) ? null : (Character.digit(tp.charAt(54), 16) & 1) == 1 ? "1" : "0";
        return switch (key.toLowerCase(java.util.Locale.ROOT)) {
            case "b3" -> traceId + "-" + spanId + (sampled == null ? "" : "-" + sampled);
            case "x-b3-traceid" -> traceId;
            case "x-b3-spanid" -> spanId;
            case "x-b3-sampled" -> sampled;
            default -> null;
        };
    };

    private static boolean present(String className) {
        try {
            Class.forName(className, false, BusObservations.class.getClassLoader());
            return true;
        } catch (ClassNotFoundException | LinkageError e) {
            return false;
        }
    }

    /** Names Micrometer Tracing's types: loaded only when {@link #SPAN_IDS} says they are there. */
    private static final class SpanIds {
        /** The W3C {@code traceparent} of the span a tracing handler started for {@code ctx}, or null (no such span). */
        static String traceparent(Observation.Context ctx) {
            io.micrometer.tracing.handler.TracingObservationHandler.TracingContext tracing =
                    ctx.get(io.micrometer.tracing.handler.TracingObservationHandler.TracingContext.class);
            io.micrometer.tracing.Span span = tracing == null ? null : tracing.getSpan();
            io.micrometer.tracing.TraceContext c = span == null ? null : span.context();
            if (c == null) return null;
            String traceId = c.traceId();
            // A 64-bit trace id (Brave's without traceId128Bit) is the low half of a W3C one, left-padded with zeros.
            if (traceId != null && traceId.length() == 16) traceId = "0000000000000000" + traceId;
            String spanId = c.spanId();
            if (!isTraceId(traceId) || spanId == null || spanId.length() != 16 || !isHex(spanId) || spanId.equals("0000000000000000")) {
                return null;
            }
            return "00-" + traceId + "-" + spanId + "-" + (Boolean.TRUE.equals(c.sampled()) ? "01" : "00");
        }
    }

    private static boolean isHex(String s) {
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if ((c < '0' || c > '9') && (c < 'a' || c > 'f')) return false;
        }
        return true;
    }

    /**
     * A W3C {@code traceparent} a tracer can continue: version (2 lowercase hex, not {@code ff}), trace id, parent span
     * id (16 lowercase hex, not all zeros) and flags (2 lowercase hex), separated by dashes; version 00 has exactly these
     * 55 characters, a later version may have more after a dash.
     */
    static boolean isTraceparent(String tp) {
        if (tp.length() < 55 || (tp.length() > 55 && (tp.startsWith("00") || tp.charAt(55) != '-'))) return false;
        if (tp.charAt(2) != '-' || tp.charAt(35) != '-' || tp.charAt(52) != '-') return false;
        String version = tp.substring(0, 2);
        String spanId = tp.substring(36, 52);
        return isHex(version) && !version.equals("ff") && isTraceId(tp.substring(3, 35)) && isHex(spanId)
                && !spanId.equals("0000000000000000") && isHex(tp.substring(53, 55));
    }

    /** A W3C trace id: 32 lowercase hex characters, not all zeros. */
    static boolean isTraceId(String s) {
        return s != null && s.length() == 32 && isHex(s) && !s.equals("00000000000000000000000000000000");
    }

    /** A made-up parent span id: 16 lowercase hex characters, not all zeros (W3C). */
    private static String newSpanId() {
        long id;
        do {
            id = ThreadLocalRandom.current().nextLong();
        } while (id == 0);
        return HexFormat.of().toHexDigits(id);
    }
}
