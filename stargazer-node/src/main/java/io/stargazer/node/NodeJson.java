// The node's JSON, through Jackson: what the CLI reads and prints, the HTTP API, the web chat's frames, and the
// envelope <-> JSON mapping (raw bytes as {"$bytes": "<base64>"}).
package io.stargazer.node;

import com.fasterxml.jackson.core.JsonFactoryBuilder;
import com.fasterxml.jackson.core.JsonGenerator;
import com.fasterxml.jackson.core.JsonLocation;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.SerializableString;
import com.fasterxml.jackson.core.StreamReadConstraints;
import com.fasterxml.jackson.core.StreamReadFeature;
import com.fasterxml.jackson.core.exc.StreamConstraintsException;
import com.fasterxml.jackson.core.io.CharacterEscapes;
import com.fasterxml.jackson.core.io.SerializedString;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializerProvider;
import com.fasterxml.jackson.databind.json.JsonMapper;
import com.fasterxml.jackson.databind.module.SimpleModule;
import com.fasterxml.jackson.databind.ser.std.StdSerializer;
import io.stargazer.bus.Envelope;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.ArrayList;
import java.util.Base64;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * JSON text to Java values and back: objects are {@code Map<String, Object>} (in order), arrays {@code List}, numbers
 * {@code Long}, {@code BigInteger} or {@code Double}, plus {@code String}, {@code Boolean} and {@code null}. Only JSON
 * is accepted (RFC 8259: no trailing text, leading zeros, comments or single quotes), with no member named twice in
 * an object, at most {@value #MAX_DEPTH} levels of nesting and no number too large for a double; anything else is an
 * {@link IllegalArgumentException} saying what (and, for text that is not JSON, at which character) is wrong.
 *
 * <p>Envelopes map to JSON objects one to one, except raw bytes, which JSON cannot carry: they are written as
 * {@code {"$bytes": "<base64>"}}, and such a one-member object is read back as bytes. Written text escapes {@code <},
 * U+2028 and U+2029, so it can never close a script element or break a script if it lands in a page; NaN and
 * infinities, which JSON has no words for, are written as {@code null} (as browsers' {@code JSON.stringify} does).
 */
public final class NodeJson {
    /** The member name of the object that stands for raw bytes. */
    public static final String BYTES_KEY = "$bytes";
    static final int MAX_DEPTH = 64;

    private static final ObjectMapper MAPPER = JsonMapper.builder(new JsonFactoryBuilder()
                    .streamReadConstraints(StreamReadConstraints.builder().maxNestingDepth(MAX_DEPTH).build())
                    .characterEscapes(new PageSafeEscapes())
                    .build())
            .enable(StreamReadFeature.STRICT_DUPLICATE_DETECTION)
            .addModule(new SimpleModule("stargazer-node")
                    .addSerializer(byte[].class, new BytesSerializer())
                    .addSerializer(Envelope.class, new EnvelopeSerializer())
                    .addSerializer(Double.class, new FiniteSerializer<>(Double.class))
                    .addSerializer(Float.class, new FiniteSerializer<>(Float.class)))
            .build();

    private NodeJson() {
    }

    /** The configured mapper, for the few places that hand it to a library. */
    public static ObjectMapper mapper() {
        return MAPPER;
    }

    public static String write(Object value) {
        try {
            return MAPPER.writeValueAsString(value);
        } catch (JsonProcessingException e) {
            throw new IllegalArgumentException("cannot write as JSON: " + e.getOriginalMessage(), e);
        }
    }

    /** Parses one JSON value; throws {@link IllegalArgumentException} saying where the text is wrong. */
    public static Object parse(String text) {
        return read(text, false);
    }

    /** Parses a JSON object into an envelope; {@code {"$bytes": "..."}} objects become raw bytes. */
    public static Envelope toEnvelope(String text) {
        Object v = read(text, true);
        if (!(v instanceof Map<?, ?> m)) {
            throw new IllegalArgumentException("an envelope must be a JSON object, not " + describe(v));
        }
        @SuppressWarnings("unchecked")
        Map<String, Object> members = (Map<String, Object>) m;
        return Envelope.of(members);
    }

    private static Object read(String text, boolean bytes) {
        JsonParser p = null;
        try {
            p = MAPPER.createParser(text);
            Object value = MAPPER.readValue(p, Object.class);
            JsonLocation end = p.currentLocation();
            if (!atEnd(p)) {
                throw invalid(end, "unexpected text after the JSON value");
            }
            return normalize(value, bytes);
        } catch (StreamConstraintsException e) {
            throw invalid(p.currentLocation(), "nested deeper than " + MAX_DEPTH + " levels");
        } catch (JsonProcessingException e) {
            throw invalid(e.getLocation() != null ? e.getLocation() : p == null ? null : p.currentLocation(),
                    withoutSource(e.getOriginalMessage()));
        } catch (IOException e) {
            throw new UncheckedIOException(e); // reading a String: cannot happen
        } finally {
            if (p != null) {
                try {
                    p.close();
                } catch (IOException e) {
                    // a String parser holds nothing
                }
            }
        }
    }

    private static boolean atEnd(JsonParser p) throws IOException {
        try {
            return p.nextToken() == null;
        } catch (JsonProcessingException e) {
            return false; // not even a token: text after the value all the same
        }
    }

    /** Jackson's message without the "(start marker at [Source: ...])" tail, which names no source here. */
    private static String withoutSource(String message) {
        int source = message.indexOf("[Source:");
        if (source >= 0) {
            int paren = message.lastIndexOf(" (", source);
            message = message.substring(0, paren >= 0 ? paren : source);
        }
        return Main.oneLine(message);
    }

    private static IllegalArgumentException invalid(JsonLocation at, String what) {
        long offset = at == null ? -1 : at.getCharOffset();
        return new IllegalArgumentException("invalid JSON at character " + Math.max(1, offset + 1) + ": " + what);
    }

    /**
     * Integers as {@code Long} (or {@code BigInteger} beyond), whatever size Jackson picked for them; with
     * {@code bytes}, {@code {"$bytes": "<base64>"}} objects as the bytes they stand for.
     */
    private static Object normalize(Object v, boolean bytes) {
        if (v instanceof Integer i) {
            return i.longValue();
        }
        if (v instanceof Double d && d.isInfinite()) {
            // Jackson reads 1e400 as Infinity, which would be stored as such (and written back as null): refused, as an
            // integer beyond 64 bits is by Envelope.
            throw new IllegalArgumentException("a number is too large for a 64-bit float (at most about 1.8e308; JSON has no infinity)");
        }
        if (v instanceof Map<?, ?> m) {
            if (bytes && m.size() == 1 && m.get(BYTES_KEY) instanceof String b64) {
                try {
                    return Base64.getDecoder().decode(b64);
                } catch (IllegalArgumentException e) {
                    throw new IllegalArgumentException("\"" + BYTES_KEY + "\" is not valid base64: " + e.getMessage());
                }
            }
            Map<Object, Object> out = new LinkedHashMap<>();
            m.forEach((k, x) -> out.put(k, normalize(x, bytes)));
            return out;
        }
        if (v instanceof List<?> l) {
            List<Object> out = new ArrayList<>(l.size());
            for (Object x : l) out.add(normalize(x, bytes));
            return out;
        }
        return v;
    }

    private static String describe(Object v) {
        if (v == null) return "null";
        if (v instanceof List) return "an array";
        if (v instanceof String) return "a string";
        if (v instanceof Boolean) return "a boolean";
        return "a number";
    }

    private static final class BytesSerializer extends StdSerializer<byte[]> {
        BytesSerializer() {
            super(byte[].class);
        }

        @Override
        public void serialize(byte[] value, JsonGenerator g, SerializerProvider p) throws IOException {
            g.writeStartObject();
            g.writeStringField(BYTES_KEY, Base64.getEncoder().encodeToString(value));
            g.writeEndObject();
        }
    }

    private static final class EnvelopeSerializer extends StdSerializer<Envelope> {
        EnvelopeSerializer() {
            super(Envelope.class);
        }

        @Override
        public void serialize(Envelope value, JsonGenerator g, SerializerProvider p) throws IOException {
            p.defaultSerializeValue(value.asMap(), g);
        }
    }

    private static final class FiniteSerializer<T extends Number> extends StdSerializer<T> {
        FiniteSerializer(Class<T> type) {
            super(type);
        }

        @Override
        public void serialize(T value, JsonGenerator g, SerializerProvider p) throws IOException {
            double d = value.doubleValue();
            if (!Double.isFinite(d)) {
                g.writeNull();
            } else if (value instanceof Float f) {
                g.writeNumber(f);
            } else {
                g.writeNumber(d);
            }
        }
    }

    /**
     * Escapes, beside JSON's own (the C0 controls): {@code <} (a page's script), U+2028 and U+2029 (JavaScript line
     * ends), and, for the operator's terminal ({@code dead show}, {@code --json}, {@code tail}), DEL, the C1 controls
     * (U+009B is a terminal's CSI) and the format characters (the bidirectional overrides, which make one text show as
     * another). Parsed back, each is the same character.
     */
    private static final class PageSafeEscapes extends CharacterEscapes {
        private final int[] ascii = standardAsciiEscapesForJSON();

        PageSafeEscapes() {
            ascii['<'] = ESCAPE_STANDARD;
            ascii[0x7f] = ESCAPE_STANDARD;
        }

        @Override
        public int[] getEscapeCodesForAscii() {
            return ascii;
        }

        @Override
        public SerializableString getEscapeSequence(int ch) {
            int type = Character.getType(ch);
            boolean escaped = ch == 0x2028 || ch == 0x2029 || type == Character.CONTROL || type == Character.FORMAT;
            return escaped ? new SerializedString(String.format("\\u%04X", ch)) : null;
        }
    }
}
