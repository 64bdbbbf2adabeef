package io.stargazer.bus;

import io.stargazer.bus.internal.EnvelopeAccess;
import io.stargazer.bus.wire.WireFormat;
import java.math.BigInteger;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;

/**
 * An immutable message: a map of string keys to wire values, in insertion order.
 *
 * <p>Values are normalised on the way in so that what you put is what a reader gets back:
 * {@code null}; {@link Boolean}; {@link Long} (any {@code Integer}, {@code Short}, {@code Byte} becomes a long;
 * a {@link BigInteger} above {@code Long.MAX_VALUE} and up to 2^64-1 stays a BigInteger, as MessagePack's
 * uint64 allows); {@link Double} (a {@code Float} becomes a double); {@link String}; {@code byte[]} (raw bytes,
 * never turned into text); {@link List}; {@link Map} with string keys (or a nested {@code Envelope}).
 * Lists and maps are copied and unmodifiable; byte arrays are copied in, and {@link #bytes(String)} copies out.
 * Arrays reached through {@link #get} or nested collections are the envelope's own: do not modify them.
 *
 * <p>{@link #with} and {@link #without} return new envelopes (copy on write). {@link #toString()} never prints
 * the message content, so an envelope can be logged safely.
 */
public final class Envelope {
    public static final String PLATFORM = "platform";
    public static final String CHANNEL_ID = "channel_id";
    public static final String CONTENT = "content";
    public static final String TYPE = "type";
    public static final String TRACE_ID = "trace_id";

    private static final BigInteger UINT64_MAX = BigInteger.ONE.shiftLeft(64).subtract(BigInteger.ONE);
    private static final BigInteger LONG_MIN = BigInteger.valueOf(Long.MIN_VALUE);
    private static final BigInteger LONG_MAX = BigInteger.valueOf(Long.MAX_VALUE);
    private static final Envelope EMPTY = new Envelope(Collections.emptyMap());

    static {
        // The decoder's already-normalised members become an envelope without a second copy.
        EnvelopeAccess.install(Envelope::new);
    }

    private final Map<String, Object> members;

    private Envelope(Map<String, Object> normalisedUnmodifiable) {
        this.members = normalisedUnmodifiable;
    }

    public static Envelope empty() {
        return EMPTY;
    }

    /** An envelope holding a copy of {@code members}, normalised as the class comment says. */
    public static Envelope of(Map<String, ?> members) {
        Objects.requireNonNull(members, "members");
        return new Envelope(normaliseMap(members, "envelope"));
    }

    /** An envelope from alternating keys and values: {@code Envelope.of("platform", "webchat", "content", "hi")}. */
    public static Envelope of(Object... keysAndValues) {
        if (keysAndValues.length % 2 != 0) {
            throw new IllegalArgumentException("Envelope.of needs key/value pairs, got " + keysAndValues.length + " arguments");
        }
        Builder b = builder();
        for (int i = 0; i < keysAndValues.length; i += 2) {
            if (!(keysAndValues[i] instanceof String key)) {
                throw new IllegalArgumentException("envelope key at position " + i + " is not a string: " + keysAndValues[i]);
            }
            b.put(key, keysAndValues[i + 1]);
        }
        return b.build();
    }

    public static Builder builder() {
        return new Builder();
    }


    public Object get(String key) {
        return members.get(key);
    }

    public boolean has(String key) {
        return members.containsKey(key);
    }

    /** The member as text, or {@code null} when it is absent or not text. */
    public String string(String key) {
        return members.get(key) instanceof String s ? s : null;
    }

    /** A copy of a bytes member, or {@code null} when it is absent or not bytes. */
    public byte[] bytes(String key) {
        return members.get(key) instanceof byte[] b ? b.clone() : null;
    }

    /** The member as a long, or {@code fallback} when it is absent or not an integer that fits a long. */
    public long longValue(String key, long fallback) {
        return members.get(key) instanceof Long l ? l : fallback;
    }

    public String platform() {
        return string(PLATFORM);
    }

    public String channelId() {
        return string(CHANNEL_ID);
    }

    public String content() {
        return string(CONTENT);
    }

    public String type() {
        return string(TYPE);
    }

    public String traceId() {
        return string(TRACE_ID);
    }

    /** An unmodifiable view of the members, in insertion order. */
    public Map<String, Object> asMap() {
        return members;
    }

    public Set<String> keys() {
        return members.keySet();
    }

    public int size() {
        return members.size();
    }

    /** A new envelope with {@code key} set to {@code value} (replacing it in place, or appended). */
    public Envelope with(String key, Object value) {
        Objects.requireNonNull(key, "key");
        LinkedHashMap<String, Object> copy = new LinkedHashMap<>(members);
        copy.put(checkText(key, "envelope (a key)"), normalise(value, key, 0));
        return new Envelope(Collections.unmodifiableMap(copy));
    }

    public Envelope without(String key) {
        if (!members.containsKey(key)) {
            return this;
        }
        LinkedHashMap<String, Object> copy = new LinkedHashMap<>(members);
        copy.remove(key);
        return new Envelope(Collections.unmodifiableMap(copy));
    }

    /** Deep equality; byte arrays compare by content, key order does not matter. */
    @Override
    public boolean equals(Object o) {
        return o instanceof Envelope other && deepEquals(members, other.members);
    }

    @Override
    public int hashCode() {
        return deepHash(members);
    }

    /** Keys and the well-known routing members only: never the content. */
    @Override
    public String toString() {
        String content = content();
        return "Envelope{platform=" + platform() + ", channel_id=" + channelId() + ", type=" + type()
                + ", trace_id=" + traceId() + ", content_len=" + (content == null ? 0 : content.length())
                + ", keys=" + members.keySet() + "}";
    }

    /** Collects members in insertion order; {@link #build()} normalises and freezes them. */
    public static final class Builder {
        private final LinkedHashMap<String, Object> members = new LinkedHashMap<>();

        private Builder() {
        }

        public Builder put(String key, Object value) {
            Objects.requireNonNull(key, "key");
            members.put(key, value);
            return this;
        }

        public Builder putAll(Map<String, ?> values) {
            values.forEach(this::put);
            return this;
        }

        public Builder platform(String v) {
            return put(PLATFORM, v);
        }

        public Builder channelId(String v) {
            return put(CHANNEL_ID, v);
        }

        public Builder content(String v) {
            return put(CONTENT, v);
        }

        public Builder type(String v) {
            return put(TYPE, v);
        }

        public Builder traceId(String v) {
            return put(TRACE_ID, v);
        }

        public Envelope build() {
            return Envelope.of(members);
        }
    }

    // ---- normalisation -------------------------------------------------------------------------------------

    /** The decoder's limit, so every decoded envelope can be rebuilt and re-published. */
    private static final int MAX_DEPTH = WireFormat.MAX_DEPTH;

    private static Map<String, Object> normaliseMap(Map<?, ?> in, String path) {
        return normaliseMap(in, path, 0);
    }

    private static Map<String, Object> normaliseMap(Map<?, ?> in, String path, int depth) {
        LinkedHashMap<String, Object> out = new LinkedHashMap<>(Math.max(4, in.size() * 4 / 3 + 1));
        for (Map.Entry<?, ?> e : in.entrySet()) {
            if (!(e.getKey() instanceof String key)) {
                throw new IllegalArgumentException("map key in " + path + " is not a string: " + e.getKey());
            }
            out.put(checkText(key, path + " (a key)"), normalise(e.getValue(), path + "." + key, depth + 1));
        }
        return Collections.unmodifiableMap(out);
    }

    private static Object normalise(Object v, String path, int depth) {
        if (depth > MAX_DEPTH) {
            throw new IllegalArgumentException("value at " + path + " is nested deeper than " + MAX_DEPTH + " levels");
        }
        if (v instanceof String str) {
            return checkText(str, path);
        }
        if (v == null || v instanceof Boolean || v instanceof Long || v instanceof Double) {
            return v;
        }
        if (v instanceof Integer || v instanceof Short || v instanceof Byte) {
            return ((Number) v).longValue();
        }
        if (v instanceof Float f) {
            return f.doubleValue();
        }
        if (v instanceof BigInteger big) {
            if (big.compareTo(LONG_MIN) >= 0 && big.compareTo(LONG_MAX) <= 0) {
                return big.longValue();
            }
            if (big.signum() > 0 && big.compareTo(UINT64_MAX) <= 0) {
                return big;
            }
            throw new IllegalArgumentException("integer at " + path + " is outside the signed and unsigned 64-bit range: " + big);
        }
        if (v instanceof byte[] b) {
            return b.clone();
        }
        if (v instanceof Envelope env) {
            return env.members;
        }
        if (v instanceof Map<?, ?> m) {
            return normaliseMap(m, path, depth);
        }
        if (v instanceof List<?> list) {
            ArrayList<Object> out = new ArrayList<>(list.size());
            for (int i = 0; i < list.size(); i++) {
                out.add(normalise(list.get(i), path + "[" + i + "]", depth + 1));
            }
            return Collections.unmodifiableList(out);
        }
        if (v instanceof CharSequence cs) {
            return checkText(cs.toString(), path);
        }
        throw new IllegalArgumentException("value at " + path + " has a type the wire format cannot carry: "
                + v.getClass().getName());
    }

    /**
     * Refuses text with a lone UTF-16 surrogate: it has no UTF-8 form, and Java would silently write '?' where
     * Python would refuse to encode it.
     */
    private static String checkText(String s, String path) {
        int lone = loneSurrogateAt(s);
        if (lone >= 0) {
            throw new IllegalArgumentException("text at " + path + " has a lone UTF-16 surrogate at index " + lone
                    + " and cannot be encoded as UTF-8");
        }
        return s;
    }

    /** The index of the first UTF-16 surrogate in {@code s} that is not half of a pair, or -1. */
    static int loneSurrogateAt(String s) {
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (Character.isSurrogate(c)) {
                if (Character.isHighSurrogate(c) && i + 1 < s.length() && Character.isLowSurrogate(s.charAt(i + 1))) {
                    i++;
                } else {
                    return i;
                }
            }
        }
        return -1;
    }

    static boolean deepEquals(Object a, Object b) {
        if (a instanceof byte[] x && b instanceof byte[] y) {
            return Arrays.equals(x, y);
        }
        if (a instanceof Map<?, ?> x && b instanceof Map<?, ?> y) {
            if (x.size() != y.size()) {
                return false;
            }
            for (Map.Entry<?, ?> e : x.entrySet()) {
                if (!y.containsKey(e.getKey()) || !deepEquals(e.getValue(), y.get(e.getKey()))) {
                    return false;
                }
            }
            return true;
        }
        if (a instanceof List<?> x && b instanceof List<?> y) {
            if (x.size() != y.size()) {
                return false;
            }
            for (int i = 0; i < x.size(); i++) {
                if (!deepEquals(x.get(i), y.get(i))) {
                    return false;
                }
            }
            return true;
        }
        return Objects.equals(a, b);
    }

    private static int deepHash(Object v) {
        if (v instanceof byte[] b) {
            return Arrays.hashCode(b);
        }
        if (v instanceof Map<?, ?> m) {
            int h = 0;
            for (Map.Entry<?, ?> e : m.entrySet()) {
                h += Objects.hashCode(e.getKey()) ^ deepHash(e.getValue());
            }
            return h;
        }
        if (v instanceof List<?> l) {
            int h = 1;
            for (Object o : l) {
                h = 31 * h + deepHash(o);
            }
            return h;
        }
        return Objects.hashCode(v);
    }
}
