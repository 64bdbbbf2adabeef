package io.stargazer.bus.internal;

import io.stargazer.bus.WireFormat;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * A stream entry as Redis returned it: id and fields byte for byte, or no fields when the entry was deleted while
 * pending (a history read and Redis 6.2's claims return it so).
 */
record RawEntry(String id, List<byte[]> flatFields) {

    boolean deleted() {
        return flatFields == null;
    }

    /** Fields by UTF-8 name, for the decoder; the first of duplicate names wins, as in redis-py. */
    Map<String, byte[]> fieldMap() {
        Map<String, byte[]> m = new HashMap<>(4);
        for (int i = 0; i + 1 < flatFields.size(); i += 2) {
            m.putIfAbsent(new String(flatFields.get(i), StandardCharsets.UTF_8), flatFields.get(i + 1));
        }
        return m;
    }

    int payloadSize() {
        byte[] p = fieldMap().get(WireFormat.PAYLOAD_FIELD);
        return p == null ? 0 : p.length;
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
