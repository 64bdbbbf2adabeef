// Promise: every envelope survives encode/decode unchanged (values, types, key order, bytes), and no input makes decode fail with anything but MalformedEntryException.
package io.stargazer.bus.wire;

import static org.assertj.core.api.Assertions.assertThat;

import io.stargazer.bus.Envelope;
import java.math.BigInteger;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.Combinators;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;
import net.jqwik.api.Tuple;

class WireFormatPropertyTest {

    private static final BigInteger TWO_TO_63 = BigInteger.ONE.shiftLeft(63);
    private static final BigInteger UINT64_MAX = BigInteger.ONE.shiftLeft(64).subtract(BigInteger.ONE);
    private static final int MAX_DEPTH = 4;

    @Property(tries = 500, seed = "20240611")
    void decodeOfEncodeIsTheSameEnvelope(@ForAll("envelopes") Envelope e) {
        Envelope back = WireFormat.decode(WireFormat.encode(e));

        assertThat(back).isEqualTo(e);
        assertThat(back.hashCode()).isEqualTo(e.hashCode());
        assertThat(new ArrayList<>(back.keys())).containsExactlyElementsOf(new ArrayList<>(e.keys()));
        assertSameTypes(back.asMap(), e.asMap());
    }

    @Property(tries = 500)
    void encodeOfDecodeGivesTheSameBytes(@ForAll("envelopes") Envelope e) {
        byte[] bytes = WireFormat.encode(e);
        assertThat(WireFormat.encode(WireFormat.decode(bytes))).isEqualTo(bytes);
    }

    @Property(tries = 2000)
    void arbitraryBytesAreDecodedOrRefusedAsMalformed(@ForAll("noise") byte[] payload) {
        assertDecodesOrIsMalformed(payload);
    }

    @Property(tries = 1000)
    void damagedEncodingsAreDecodedOrRefusedAsMalformed(@ForAll("envelopes") Envelope e,
            @ForAll("damage") List<Tuple.Tuple2<Integer, Byte>> damage, @ForAll("cut") int cut) {
        byte[] bytes = WireFormat.encode(e);
        for (Tuple.Tuple2<Integer, Byte> d : damage) {
            bytes[Math.floorMod(d.get1(), bytes.length)] = d.get2();
        }
        if (cut > 0 && cut < bytes.length) {
            bytes = java.util.Arrays.copyOf(bytes, bytes.length - cut);
        }
        assertDecodesOrIsMalformed(bytes);
    }

    private static void assertDecodesOrIsMalformed(byte[] payload) {
        Envelope decoded;
        try {
            decoded = WireFormat.decode(payload);
        } catch (MalformedEntryException expected) {
            assertThat(expected.getMessage()).isNotBlank().doesNotContain(": null");
            return;
        }
        // Whatever was accepted is a well-formed envelope: it encodes and reads back the same.
        assertThat(WireFormat.decode(WireFormat.encode(decoded))).isEqualTo(decoded);
    }

    /** Equality alone would not notice a Long read back as a BigInteger or a list as a map; check the classes too. */
    private static void assertSameTypes(Object actual, Object expected) {
        if (expected == null) {
            assertThat(actual).isNull();
            return;
        }
        assertThat(actual).isNotNull();
        if (expected instanceof Map<?, ?> em) {
            assertThat(actual).isInstanceOf(Map.class);
            Map<?, ?> am = (Map<?, ?>) actual;
            em.forEach((k, v) -> assertSameTypes(am.get(k), v));
        } else if (expected instanceof List<?> el) {
            assertThat(actual).isInstanceOf(List.class);
            List<?> al = (List<?>) actual;
            for (int i = 0; i < el.size(); i++) {
                assertSameTypes(al.get(i), el.get(i));
            }
        } else {
            assertThat(actual.getClass()).isEqualTo(expected.getClass());
        }
    }

    // ---- generators ------------------------------------------------------------------------------------------

    @Provide
    Arbitrary<Envelope> envelopes() {
        return Arbitraries.maps(keys(), value(MAX_DEPTH - 1)).ofMaxSize(8).map(Envelope::of);
    }

    @Provide
    Arbitrary<byte[]> noise() {
        Arbitrary<byte[]> random = Arbitraries.bytes().array(byte[].class).ofMinSize(1).ofMaxSize(64);
        // Start with a map header often, so decoding gets past the first byte.
        Arbitrary<byte[]> mapLike = Combinators.combine(Arbitraries.of((byte) 0x81, (byte) 0x82, (byte) 0x8f, (byte) 0xde,
                (byte) 0xdf), random).as((h, rest) -> {
                    byte[] out = new byte[rest.length + 1];
                    out[0] = h;
                    System.arraycopy(rest, 0, out, 1, rest.length);
                    return out;
                });
        return Arbitraries.oneOf(random, mapLike);
    }

    @Provide
    Arbitrary<List<Tuple.Tuple2<Integer, Byte>>> damage() {
        return Combinators.combine(Arbitraries.integers().greaterOrEqual(0), Arbitraries.bytes()).as(Tuple::of)
                .list().ofMinSize(0).ofMaxSize(3);
    }

    @Provide
    Arbitrary<Integer> cut() {
        return Arbitraries.integers().between(0, 8);
    }

    private Arbitrary<Object> value(int depth) {
        Arbitrary<Object> leaf = Arbitraries.frequencyOf(
                Tuple.of(1, Arbitraries.just(null)),
                Tuple.of(1, obj(Arbitraries.of(true, false))),
                Tuple.of(3, obj(Arbitraries.longs())),
                Tuple.of(1, obj(Arbitraries.integers())),
                Tuple.of(1, obj(Arbitraries.bigIntegers().between(TWO_TO_63, UINT64_MAX))),
                Tuple.of(2, obj(doubles())),
                Tuple.of(3, obj(texts())),
                Tuple.of(2, obj(Arbitraries.bytes().array(byte[].class).ofMaxSize(300))));
        if (depth == 0) {
            return leaf;
        }
        Arbitrary<Object> inner = value(depth - 1);
        Arbitrary<Object> list = obj(inner.list().ofMaxSize(5));
        Arbitrary<Object> map = obj(Arbitraries.maps(keys(), inner).ofMaxSize(5));
        return Arbitraries.frequencyOf(Tuple.of(6, leaf), Tuple.of(1, list), Tuple.of(1, map));
    }

    private static Arbitrary<Object> obj(Arbitrary<?> a) {
        return a.map(x -> (Object) x);
    }

    /** Every double including NaN, -0.0, the infinities and subnormals; Double.equals treats NaN as equal to itself. */
    private static Arbitrary<Double> doubles() {
        return Arbitraries.oneOf(
                Arbitraries.doubles(),
                Arbitraries.longs().map(Double::longBitsToDouble),
                Arbitraries.of(Double.NaN, -0.0d, 0.0d, Double.POSITIVE_INFINITY, Double.NEGATIVE_INFINITY,
                        Double.MIN_VALUE, -Double.MIN_VALUE, Double.MAX_VALUE, -Double.MAX_VALUE, Double.MIN_NORMAL));
    }

    /**
     * Map keys: any text, the keys the wire format names (the decoder hands out shared Strings for them) and keys
     * one character away from those, so that a near miss is never taken for a known key.
     */
    static Arbitrary<String> keys() {
        return Arbitraries.frequencyOf(
                Tuple.of(3, texts()),
                Tuple.of(2, Arbitraries.of("platform", "channel_id", "content", "type", "trace_id", "request_id", "tool",
                        "args", "reply_to", "deadline_ms", "ok", "result", "error", "message")),
                Tuple.of(1, Arbitraries.of("Platform", "channel_iD", "contenu", "typ", "types", "trace-id", "ok\u00e9",
                        "tool\u0000", "ARGS", "o", "resul", "errors", "messag\u00e9")));
    }

    /** Valid Unicode text: empty, ASCII, the BMP outside the surrogates, and the astral planes. */
    static Arbitrary<String> texts() {
        Arbitrary<Integer> codePoints = Arbitraries.frequencyOf(
                Tuple.of(4, Arbitraries.integers().between(0x20, 0x7e)),
                Tuple.of(1, Arbitraries.integers().between(0x00, 0x1f)),
                Tuple.of(2, Arbitraries.integers().between(0x80, 0xd7ff)),
                Tuple.of(1, Arbitraries.integers().between(0xe000, 0xffff)),
                Tuple.of(2, Arbitraries.integers().between(0x10000, 0x10ffff)));
        return codePoints.list().ofMaxSize(40).map(cps -> {
            StringBuilder sb = new StringBuilder();
            cps.forEach(sb::appendCodePoint);
            return sb.toString();
        });
    }
}
