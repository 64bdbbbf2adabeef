package io.stargazer.bus.internal;

import io.stargazer.bus.Envelope;
import io.stargazer.bus.wire.MalformedEntryException;
import io.stargazer.bus.wire.WireFormat;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * A stream entry as Redis returned it: id and fields byte for byte, or no fields when the entry was deleted while
 * pending (a history read and Redis 6.2's claims return it so).
 */
record RawEntry(String id, List<byte[]> flatFields) {
    private static final byte[] PAYLOAD = WireFormat.PAYLOAD_FIELD.getBytes(StandardCharsets.US_ASCII);
    private static final byte[] TRACE_ID = WireFormat.TRACE_ID_FIELD.getBytes(StandardCharsets.US_ASCII);

    static final byte[] TRACEPARENT = "traceparent".getBytes(StandardCharsets.US_ASCII);
    static final byte[] TRACESTATE = "tracestate".getBytes(StandardCharsets.US_ASCII);

    /** The first field named {@code name} as text (trace context fields are ASCII), or null. */
    String text(byte[] name) {
        if (flatFields == null) return null;
        for (int i = 0; i + 1 < flatFields.size(); i += 2) {
            if (Arrays.equals(flatFields.get(i), name)) return new String(flatFields.get(i + 1), StandardCharsets.US_ASCII);
        }
        return null;
    }

    boolean deleted() {
        return flatFields == null;
    }

    /**
     * The envelope, or {@link MalformedEntryException} when the entry does not follow wire format v1. An entry that
     * names {@code payload} or {@code trace_id} twice is malformed: readers disagree on which one counts (a Python
     * dict keeps the last, a reader that stops at the first match the first), so a crafted entry could mean one thing
     * to one service and another to the next.
     */
    Envelope decode() {
        int payloads = 0;
        int traceIds = 0;
        byte[] payload = null;
        byte[] traceId = null;
        for (int i = 0; i + 1 < flatFields.size(); i += 2) {
            byte[] name = flatFields.get(i);
            if (Arrays.equals(name, PAYLOAD)) {
                payloads++;
                payload = flatFields.get(i + 1);
            } else if (Arrays.equals(name, TRACE_ID)) {
                traceIds++;
                traceId = flatFields.get(i + 1);
            }
        }
        if (payloads > 1 || traceIds > 1) {
            throw new MalformedEntryException("entry has " + (payloads > 1 ? payloads + " '" + WireFormat.PAYLOAD_FIELD
                    : traceIds + " '" + WireFormat.TRACE_ID_FIELD) + "' fields; a reader could take either");
        }
        // The two fields found by their bytes: no map of every field name, once per entry, on the reader thread.
        return WireFormat.decodeEntry(payload, traceId);
    }

    /**
     * The entries of an XREAD or XREADGROUP reply for one stream: {@code [name, entries]} (or {@code [[name, entries]]}
     * as Lettuce nests it); a BLOCK that timed out ({@code [null]}, or nothing) is an empty list.
     */
    static List<RawEntry> parseRead(Object reply) {
        if (!(reply instanceof List<?> top) || top.isEmpty() || top.get(0) == null) {
            return List.of();
        }
        List<?> streamReply = top.get(0) instanceof List<?> inner ? inner : top;
        return streamReply.size() < 2 ? List.of() : parseList(streamReply.get(1), null);
    }

    /**
     * Parses the reply of a read of several streams, by stream name: {@code [[stream, entries], ...]} (RESP2), or the
     * map's flattened {@code [stream, entries, ...]} (RESP3). A stream with nothing new is not in it.
     */
    static java.util.Map<String, List<RawEntry>> parseReadByStream(Object reply) {
        java.util.Map<String, List<RawEntry>> out = new java.util.HashMap<>();
        if (!(reply instanceof List<?> top) || top.isEmpty() || top.get(0) == null) {
            return out;
        }
        if (top.get(0) instanceof List<?>) {
            for (Object o : top) {
                if (o instanceof List<?> pair && pair.size() >= 2) put(out, pair.get(0), pair.get(1));
            }
        } else {
            for (int i = 0; i + 1 < top.size(); i += 2) put(out, top.get(i), top.get(i + 1));
        }
        return out;
    }

    private static void put(java.util.Map<String, List<RawEntry>> out, Object stream, Object entries) {
        if (stream instanceof byte[] name) out.put(new String(name, StandardCharsets.UTF_8), parseList(entries, null));
    }

    /** Parses {@code [[id, [f, v, ...]], ...]}; a nil element (a deleted entry in a 6.2 claim) is counted, not returned. */
    static List<RawEntry> parseList(Object reply, boolean[] sawNil) {
        List<RawEntry> out = new ArrayList<>();
        if (!(reply instanceof List<?> list)) {
            return out;
        }
        for (Object o : list) {
            if (!(o instanceof List<?> pair) || pair.isEmpty()) {
                if (sawNil != null) sawNil[0] = true;
                continue;
            }
            String id = new String((byte[]) pair.get(0), StandardCharsets.US_ASCII);
            Object fields = pair.size() > 1 ? pair.get(1) : null;
            List<byte[]> flat = null;
            if (fields instanceof List<?> fl) {
                flat = new ArrayList<>(fl.size());
                for (Object f : fl) {
                    flat.add(f instanceof byte[] b ? b : new byte[0]);
                }
            }
            out.add(new RawEntry(id, flat));
        }
        return out;
    }
}
