package io.stargazer.bus.internal;

import java.nio.charset.StandardCharsets;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The shapes of Redis replies as Lettuce hands them over untyped (XINFO, script results): a flat key/value list, text
 * as bytes or String, a number as Long or as digits. The one place such a reply is taken apart; stream entries are
 * {@link RawEntry}'s.
 */
final class Replies {
    private Replies() {
    }

    /** A flat RESP key/value list as a map with text keys, in reply order. */
    /** The groups of an {@code XINFO GROUPS} reply (RESP2: each group a flat list of field, value). */
    static List<io.stargazer.bus.GroupInfo> groups(List<?> reply) {
        List<io.stargazer.bus.GroupInfo> out = new java.util.ArrayList<>();
        for (Object g : reply) {
            Map<String, Object> m = pairs((List<?>) g);
            Object lag = m.get("lag");
            out.add(new io.stargazer.bus.GroupInfo(text(m.get("name")), num(m.get("consumers")), num(m.get("pending")),
                    text(m.get("last-delivered-id")), lag instanceof Long l ? l : null));
        }
        return out;
    }

    static Map<String, Object> pairs(List<?> flat) {
        Map<String, Object> m = new LinkedHashMap<>();
        for (int i = 0; i + 1 < flat.size(); i += 2) {
            m.put(text(flat.get(i)), flat.get(i + 1));
        }
        return m;
    }

    /** Text (UTF-8 bytes or a String); null stays null. */
    static String text(Object o) {
        if (o instanceof byte[] b) return new String(b, StandardCharsets.UTF_8);
        return o == null ? null : o.toString();
    }

    /** A number (a Long, or ASCII digits); 0 for anything else. */
    static long num(Object o) {
        if (o instanceof Long l) return l;
        if (o instanceof byte[] b) return Long.parseLong(new String(b, StandardCharsets.US_ASCII));
        return 0;
    }
}
