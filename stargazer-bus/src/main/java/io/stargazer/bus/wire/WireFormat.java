package io.stargazer.bus.wire;

import io.stargazer.bus.Envelope;
import io.stargazer.bus.internal.EnvelopeAccess;
import java.io.IOException;
import java.math.BigInteger;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ThreadLocalRandom;
import org.msgpack.core.MessagePacker;
import org.msgpack.core.MessageFormat;
import org.msgpack.core.MessageInsufficientBufferException;
import org.msgpack.core.MessagePack;
import org.msgpack.core.MessagePackException;
import org.msgpack.core.MessageSizeException;
import org.msgpack.core.MessageUnpacker;
import org.msgpack.core.buffer.MessageBuffer;

/**
 * Wire format v1 ({@code shared/wire-format.md}): how an {@link Envelope} becomes the fields of a stream entry
 * and back. The payload is MessagePack with text and bytes kept apart (str vs bin), the smallest form of every
 * int/str/bin/array/map, and float 64 for floating point, so Java writes the same bytes Python's
 * {@code msgpack.packb(obj, use_bin_type=True)} writes for the same key order.
 *
 * <p>Decoding is defensive: every length prefix is checked against the bytes that remain before anything is
 * allocated, nesting is capped at {@value #MAX_DEPTH}, trailing bytes and invalid UTF-8 are refused. Any
 * violation is a {@link MalformedEntryException}; no half-decoded envelope is ever returned.
 */
public final class WireFormat {
    public static final String PAYLOAD_FIELD = "payload";
    public static final String TRACE_ID_FIELD = "trace_id";
    /** Deepest nesting of lists and maps a decoder accepts; deeper input is refused, never recursed into. */
    public static final int MAX_DEPTH = 100;

    /**
     * The map keys the wire format names (envelopes, tool requests and replies): a key equal to one of them decodes to
     * this very String, whose hash is already computed, instead of a new one per entry (a consumer's reader thread
     * spent 7.5 % of its time hashing fresh key Strings, JFR, bench/profile-notes.md).
     */
    private static final KnownKey[][] KNOWN_KEYS_BY_LENGTH = knownKeys(Envelope.PLATFORM, Envelope.CHANNEL_ID, Envelope.CONTENT,
            Envelope.TYPE, Envelope.TRACE_ID,
            // the tools request and reply (internal ToolWire's names)
            "request_id", "tool", "args", "reply_to", "deadline_ms", "ok", "result", "error", "message");

    private record KnownKey(String text, byte[] ascii) {
    }

    private static final ThreadLocal<Encoder> ENCODERS = ThreadLocal.withInitial(Encoder::new);

    /** One thread's packer and the buffer it packs into, kept from call to call. */
    private static final class Encoder {
        final EncodeBuffer out = new EncodeBuffer();
        final MessagePacker packer = MessagePack.newDefaultPacker(out);
    }

    private WireFormat() {
    }

    /** The MessagePack bytes of the envelope's members, in insertion order. */
    public static byte[] encode(Envelope envelope) {
        Encoder encoder = ENCODERS.get();
        encoder.packer.clear(); // whatever a call that failed half-way left unflushed
        encoder.out.reset();
        try {
            packValue(encoder.packer, envelope.asMap());
            encoder.packer.flush();
            byte[] out = encoder.out.toByteArray();
            if (encoder.out.oversized()) {
                ENCODERS.remove(); // do not keep a huge buffer per thread after one large envelope
            }
            return out;
        } catch (IOException e) {
            throw new IllegalStateException("in-memory MessagePack encoding failed", e);
        }
    }

    /** Decodes a {@code payload} field: one MessagePack map with string keys and nothing after it. */
    public static Envelope decode(byte[] payload) {
        return decode(payload, null);
    }

    /**
     * {@link #decode(byte[])}, with {@code traceId} (the entry's {@code trace_id} field, or null) added as the
     * envelope's {@code trace_id} when its map has none: into the map as it is decoded, where a copy of the decoded
     * envelope with it ({@link Envelope#with}) cost a second map per entry on the consumer's reader thread.
     */
    private static Envelope decode(byte[] payload, byte[] traceId) {
        if (payload == null) {
            throw new MalformedEntryException("entry has no 'payload' field");
        }
        if (payload.length == 0) {
            throw new MalformedEntryException("'payload' is empty");
        }
        try (MessageUnpacker in = MessagePack.newDefaultUnpacker(payload)) {
            MessageFormat f = in.getNextFormat();
            if (f.getValueType() != org.msgpack.value.ValueType.MAP) {
                throw new MalformedEntryException("'payload' is a MessagePack " + f.getValueType().name().toLowerCase()
                        + ", not a map");
            }
            LinkedHashMap<String, Object> members = readMap(in, payload.length, 0, traceId == null ? 0 : 1);
            if (in.hasNext()) {
                throw new MalformedEntryException("'payload' has " + (payload.length - in.getTotalReadBytes())
                        + " bytes after the MessagePack map");
            }
            if (traceId != null && !members.containsKey(Envelope.TRACE_ID)) {
                members.put(Envelope.TRACE_ID, new String(traceId, StandardCharsets.UTF_8));
            }
            return EnvelopeAccess.trusted(Collections.unmodifiableMap(members));
        } catch (MalformedEntryException e) {
            throw e;
        } catch (MessageSizeException e) {
            // A 32-bit length of 2^31 or more: msgpack-core refuses it before our own check sees it, with no message.
            throw new MalformedEntryException("'payload' has a length prefix claiming " + e.getSize()
                    + " bytes or elements, more than the " + payload.length + "-byte payload holds", e);
        } catch (MessageInsufficientBufferException e) {
            throw new MalformedEntryException("'payload' is truncated: it ends before its MessagePack map is complete", e);
        } catch (MessagePackException | IOException e) {
            throw new MalformedEntryException("'payload' is not valid MessagePack: "
                    + (e.getMessage() != null ? e.getMessage() : e.getClass().getSimpleName()), e);
        }
    }

    /**
     * Decodes an entry's fields. Unknown fields are ignored; when the payload map has no {@code trace_id},
     * the entry's {@code trace_id} field stands in for it.
     */
    public static Envelope decodeEntry(Map<String, byte[]> fields) {
        return decodeEntry(fields.get(PAYLOAD_FIELD), fields.get(TRACE_ID_FIELD));
    }

    /**
     * As {@link #decodeEntry(Map)}, from the values of the entry's {@code payload} and {@code trace_id} fields
     * (null when the entry has none).
     */
    public static Envelope decodeEntry(byte[] payload, byte[] trace) {
        return decode(payload, trace);
    }

    /** The value of an entry's {@code trace_id} field: the envelope's own when it is a non-empty string, else new. */
    public static String traceIdFor(Envelope envelope) {
        String own = envelope.traceId();
        return own != null && !own.isEmpty() ? own : newTraceId();
    }

    /** 32 lowercase hex characters; unique, not secret (no SecureRandom on the publish path). */
    public static String newTraceId() {
        ThreadLocalRandom r = ThreadLocalRandom.current();
        long hi = r.nextLong();
        long lo = r.nextLong();
        return HexFormat.of().toHexDigits(hi) + HexFormat.of().toHexDigits(lo);
    }

    // ---- encoding ------------------------------------------------------------------------------------------

    private static void packValue(MessagePacker p, Object v) throws IOException {
        if (v == null) {
            p.packNil();
        } else if (v instanceof String s) {
            // Header from the exact UTF-8 length so the smallest str form is chosen, as Python's packer does.
            byte[] utf8 = s.getBytes(StandardCharsets.UTF_8);
            p.packRawStringHeader(utf8.length);
            p.writePayload(utf8);
        } else if (v instanceof Long l) {
            p.packLong(l);
        } else if (v instanceof Boolean b) {
            p.packBoolean(b);
        } else if (v instanceof Double d) {
            p.packDouble(d);
        } else if (v instanceof byte[] b) {
            p.packBinaryHeader(b.length);
            p.writePayload(b);
        } else if (v instanceof Map<?, ?> m) {
            p.packMapHeader(m.size());
            for (Map.Entry<?, ?> e : m.entrySet()) {
                packValue(p, e.getKey());
                packValue(p, e.getValue());
            }
        } else if (v instanceof List<?> list) {
            p.packArrayHeader(list.size());
            for (Object o : list) {
                packValue(p, o);
            }
        } else if (v instanceof BigInteger big) {
            p.packBigInteger(big);
        } else {
            throw new IllegalStateException("not a normalised envelope value: " + v.getClass().getName());
        }
    }

    // ---- decoding ------------------------------------------------------------------------------------------

    private static Object readValue(MessageUnpacker in, int total, int depth) throws IOException {
        MessageFormat f = in.getNextFormat();
        switch (f.getValueType()) {
            case NIL -> {
                in.unpackNil();
                return null;
            }
            case BOOLEAN -> {
                return in.unpackBoolean();
            }
            case INTEGER -> {
                if (f == MessageFormat.UINT64) {
                    BigInteger big = in.unpackBigInteger();
                    return big.bitLength() < 64 ? (Object) big.longValue() : big;
                }
                return in.unpackLong();
            }
            case FLOAT -> {
                return in.unpackDouble();
            }
            case STRING -> {
                return readString(in, total, false);
            }
            case BINARY -> {
                int len = in.unpackBinaryHeader();
                return readPayload(in, len, total, "bytes");
            }
            case ARRAY -> {
                int n = in.unpackArrayHeader();
                checkDepthAndCount(in, n, total, depth, "list");
                ArrayList<Object> list = new ArrayList<>(n);
                for (int i = 0; i < n; i++) {
                    list.add(readValue(in, total, depth + 1));
                }
                return Collections.unmodifiableList(list);
            }
            case MAP -> {
                return Collections.unmodifiableMap(readMap(in, total, depth, 0));
            }
            case EXTENSION -> throw new MalformedEntryException("MessagePack extension types are not part of wire format v1");
            default -> throw new MalformedEntryException("unknown MessagePack format " + f);
        }
    }

    /** A map's members, in a map with room for {@code extra} more (the caller's to add before it is wrapped). */
    private static LinkedHashMap<String, Object> readMap(MessageUnpacker in, int total, int depth, int extra) throws IOException {
        int n = in.unpackMapHeader();
        checkDepthAndCount(in, n, total, depth, "map");
        LinkedHashMap<String, Object> map = new LinkedHashMap<>((n + extra) * 4 / 3 + 1);
        for (int i = 0; i < n; i++) {
            MessageFormat kf = in.getNextFormat();
            if (kf.getValueType() != org.msgpack.value.ValueType.STRING) {
                throw new MalformedEntryException("map key is a MessagePack " + kf.getValueType().name().toLowerCase()
                        + ", not a string");
            }
            String key = readString(in, total, true);
            map.put(key, readValue(in, total, depth + 1));
        }
        return map;
    }

    private static void checkDepthAndCount(MessageUnpacker in, int n, int total, int depth, String what) {
        if (depth >= MAX_DEPTH) {
            throw new MalformedEntryException("payload nests lists and maps deeper than " + MAX_DEPTH + " levels");
        }
        long remaining = total - in.getTotalReadBytes();
        // Every element takes at least one byte (a map entry two), so a larger count is a lie: refuse it
        // before allocating anything sized by it.
        if (n < 0 || (long) n * ("map".equals(what) ? 2 : 1) > remaining) {
            throw new MalformedEntryException(what + " claims " + Integer.toUnsignedString(n) + " elements but only "
                    + remaining + " bytes remain");
        }
    }

    private static byte[] readPayload(MessageUnpacker in, int len, int total, String what) throws IOException {
        checkLength(in, len, total, what);
        return in.readPayload(len);
    }

    private static void checkLength(MessageUnpacker in, int len, int total, String what) {
        long remaining = total - in.getTotalReadBytes();
        if (len < 0 || len > remaining) {
            throw new MalformedEntryException(what + " claims " + Integer.toUnsignedString(len) + " bytes but only "
                    + remaining + " remain");
        }
    }

    /**
     * A str value, made into a String straight from the payload's bytes (msgpack-core hands out a view of them; no
     * copy in between); a map {@code key} equal to a known one is that String.
     */
    private static String readString(MessageUnpacker in, int total, boolean key) throws IOException {
        int len = in.unpackRawStringHeader();
        checkLength(in, len, total, "string");
        MessageBuffer view = in.readPayloadAsReference(len);
        byte[] bytes;
        int offset;
        if (view.hasArray()) {
            bytes = view.array();
            offset = view.arrayOffset();
        } else {
            bytes = view.toByteArray();
            offset = 0;
        }
        if (key && len < KNOWN_KEYS_BY_LENGTH.length) {
            for (KnownKey known : KNOWN_KEYS_BY_LENGTH[len]) {
                if (java.util.Arrays.equals(known.ascii, 0, len, bytes, offset, offset + len)) {
                    return known.text;
                }
            }
        }
        return utf8(bytes, offset, len);
    }

    private static KnownKey[][] knownKeys(String... keys) {
        int longest = java.util.Arrays.stream(keys).mapToInt(String::length).max().orElse(0);
        KnownKey[][] byLength = new KnownKey[longest + 1][];
        for (int len = 0; len <= longest; len++) {
            final int l = len;
            byLength[len] = java.util.Arrays.stream(keys).filter(k -> k.length() == l)
                    .map(k -> new KnownKey(k, k.getBytes(StandardCharsets.US_ASCII))).toArray(KnownKey[]::new);
        }
        return byLength;
    }

    private static String utf8(byte[] bytes, int offset, int len) {
        // Almost every string on the wire is ASCII: it is valid UTF-8 as it stands, and the JDK turns it into a
        // compact string with an intrinsic copy. A strict decoder (a new one per string) costs several times more
        // and was the largest single cost of a consumer's reader thread (JFR, docs/benchmarks.md).
        boolean ascii = true;
        for (int i = offset, end = offset + len; i < end; i++) {
            if (bytes[i] < 0) {
                ascii = false;
                break;
            }
        }
        if (ascii) {
            return new String(bytes, offset, len, StandardCharsets.ISO_8859_1);
        }
        try {
            return StandardCharsets.UTF_8.newDecoder()
                    .onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT)
                    .decode(ByteBuffer.wrap(bytes, offset, len)).toString();
        } catch (CharacterCodingException e) {
            throw new MalformedEntryException("a MessagePack string is not valid UTF-8", e);
        }
    }
}
