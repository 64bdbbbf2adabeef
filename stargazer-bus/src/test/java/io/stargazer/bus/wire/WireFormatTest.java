// Promise: WireFormat reads and writes exactly the MessagePack bytes of shared/wire-format.md and refuses anything else with a MalformedEntryException.
package io.stargazer.bus.wire;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.stargazer.bus.Envelope;
import java.io.ByteArrayOutputStream;
import java.math.BigInteger;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Nested;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

class WireFormatTest {

    /** The 125 bytes Python's msgpack.packb(..., use_bin_type=True) writes for the spec's test map. */
    static final String VECTOR_HEX = """
            8ba8706c6174666f726da777656263686174aa6368616e6e656c5f6964a3632d31a7636f6e74656e74aa68c3a96c6c
            6f20e29c93a16effa3626967cfffffffffffffffffa27069cb400a000000000000a26f6bc3a46e6f6e65c0a4626c6f
            62c40300ff10a46c6973749301a374776fc40103a66e657374656481a16b90
            """;

    static final BigInteger UINT64_MAX = new BigInteger("18446744073709551615");

    static byte[] hex(String s) {
        return HexFormat.of().parseHex(s.replaceAll("\\s+", ""));
    }

    static String hexOf(byte[] b) {
        return HexFormat.of().formatHex(b);
    }

    /** Concatenates parts: a String is hex, a byte[] is taken as is. */
    static byte[] bytes(Object... parts) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        for (Object p : parts) {
            byte[] b = p instanceof String s ? hex(s) : (byte[]) p;
            out.writeBytes(b);
        }
        return out.toByteArray();
    }

    /** A payload map with one member "v" whose encoded value is {@code valueHex}: 81 a1 76 .... */
    static byte[] oneMember(Object... valueParts) {
        return bytes("81a176", bytes(valueParts));
    }

    static byte[] vector() {
        return hex(VECTOR_HEX);
    }

    @Test
    void testVectorIs125Bytes() {
        assertThat(vector()).hasSize(125);
    }

    @Test
    void testVectorDecodesToTheExactValues() {
        Envelope e = WireFormat.decode(vector());

        assertThat(e.keys()).containsExactly("platform", "channel_id", "content", "n", "big", "pi", "ok", "none", "blob",
                "list", "nested");
        assertThat(e.get("platform")).isEqualTo("webchat");
        assertThat(e.get("channel_id")).isEqualTo("c-1");
        assertThat(e.get("content")).isEqualTo("h\u00e9llo \u2713");
        assertThat(e.get("n")).isInstanceOf(Long.class).isEqualTo(-1L);
        assertThat(e.get("big")).isInstanceOf(BigInteger.class).isEqualTo(UINT64_MAX);
        assertThat(e.get("pi")).isInstanceOf(Double.class).isEqualTo(3.25d);
        assertThat(e.get("ok")).isEqualTo(Boolean.TRUE);
        assertThat(e.has("none")).isTrue();
        assertThat(e.get("none")).isNull();
        assertThat(e.get("blob")).isInstanceOf(byte[].class);
        assertThat((byte[]) e.get("blob")).containsExactly(0x00, 0xff, 0x10);
        assertThat(e.get("list")).isInstanceOf(List.class);
        List<?> list = (List<?>) e.get("list");
        assertThat(list).hasSize(3);
        assertThat(list.get(0)).isInstanceOf(Long.class).isEqualTo(1L);
        assertThat(list.get(1)).isEqualTo("two");
        assertThat(list.get(2)).isInstanceOf(byte[].class);
        assertThat((byte[]) list.get(2)).containsExactly(0x03);
        assertThat(e.get("nested")).isInstanceOf(Map.class);
        Map<?, ?> nested = (Map<?, ?>) e.get("nested");
        assertThat(new ArrayList<Object>(nested.keySet())).containsExactly("k");
        assertThat(nested.get("k")).isInstanceOf(List.class);
        assertThat((List<?>) nested.get("k")).isEmpty();
    }

    @Test
    void theKeysTheWireFormatNamesDecodeToSharedStringsAndOthersToTheirOwn() {
        Envelope e = WireFormat.decode(vector());
        List<String> keys = new ArrayList<>(e.keys());
        assertThat(keys.get(0)).isSameAs(Envelope.PLATFORM);
        assertThat(keys.get(1)).isSameAs(Envelope.CHANNEL_ID);
        assertThat(keys.get(2)).isSameAs(Envelope.CONTENT);
        assertThat(keys.get(6)).isEqualTo("ok").isSameAs("ok");
        assertThat(keys.get(3)).isEqualTo("n").isNotSameAs("n");
    }

    @Test
    void oneThreadEncodingSmallAndLargeEnvelopesInTurnGetsEachOnesOwnBytes() {
        // The encoder keeps its buffer from call to call: nothing of one envelope may leak into the next, whether it
        // fitted the buffer, overflowed it (8 KiB), or was so large that the thread drops its buffer (1 MiB).
        Envelope vector = WireFormat.decode(vector());
        for (int size : new int[] {10, 20_000, 10, 8_150, 8_200, 2_000_000, 0, 70_000, 10}) {
            Envelope e = Envelope.of("channel_id", "c-" + size, "content", "x".repeat(size), "blob", new byte[size / 2]);
            byte[] bytes = WireFormat.encode(e);
            assertThat(WireFormat.decode(bytes)).isEqualTo(e);
            assertThat(hexOf(WireFormat.encode(vector))).isEqualTo(hexOf(vector()));
        }
    }

    @Test
    void testVectorReEncodesToTheSameBytes() {
        assertThat(hexOf(WireFormat.encode(WireFormat.decode(vector())))).isEqualTo(hexOf(vector()));
    }

    @Test
    void envelopeBuiltInJavaEncodesToTheVectorBytes() {
        Map<String, Object> nested = new LinkedHashMap<>();
        nested.put("k", List.of());
        Envelope e = Envelope.builder()
                .platform("webchat")
                .channelId("c-1")
                .content("h\u00e9llo \u2713")
                .put("n", -1)
                .put("big", UINT64_MAX)
                .put("pi", 3.25)
                .put("ok", true)
                .put("none", null)
                .put("blob", new byte[] {0x00, (byte) 0xff, 0x10})
                .put("list", List.of(1, "two", new byte[] {0x03}))
                .put("nested", nested)
                .build();

        byte[] encoded = WireFormat.encode(e);

        assertThat(encoded).hasSize(125);
        assertThat(hexOf(encoded)).isEqualTo(hexOf(vector()));
        assertThat(WireFormat.decode(encoded)).isEqualTo(e);
    }

    // ---- size classes ----------------------------------------------------------------------------------------

    @Nested
    class SizeClasses {

        /** Checks: encoding picks {@code header}, decoding the hand-built bytes gives the value, re-encoding gives them back. */
        private void assertSmallestForm(Object value, String header, byte[] body) {
            byte[] expected = oneMember(header, body);
            byte[] encoded = WireFormat.encode(Envelope.of("v", value));
            assertThat(encoded[3] & 0xff).as("header byte").isEqualTo(hex(header)[0] & 0xff);
            assertThat(encoded).isEqualTo(expected);

            Envelope decoded = WireFormat.decode(expected);
            assertThat(decoded).isEqualTo(Envelope.of("v", value));
            assertThat(WireFormat.encode(decoded)).isEqualTo(expected);
        }

        @ParameterizedTest(name = "str of {0} bytes -> header {1}")
        @CsvSource({"0, a0", "1, a1", "31, bf", "32, d920", "255, d9ff", "256, da0100", "65535, daffff",
                "65536, db00010000"})
        void strings(int length, String header) {
            String s = "x".repeat(length);
            assertSmallestForm(s, header, s.getBytes(StandardCharsets.US_ASCII));
        }

        @Test
        void strHeaderCountsUtf8BytesNotChars() {
            String s = "\u00e9".repeat(16); // 16 chars, 32 UTF-8 bytes: str8, not fixstr
            assertSmallestForm(s, "d920", s.getBytes(StandardCharsets.UTF_8));
            String astral = "\uD83D\uDE00".repeat(8); // 8 code points, 16 chars, 32 UTF-8 bytes
            assertSmallestForm(astral, "d920", astral.getBytes(StandardCharsets.UTF_8));
        }

        @ParameterizedTest(name = "bin of {0} bytes -> header {1}")
        @CsvSource({"0, c400", "31, c41f", "32, c420", "255, c4ff", "256, c50100", "65535, c5ffff",
                "65536, c600010000"})
        void bins(int length, String header) {
            byte[] b = new byte[length];
            for (int i = 0; i < length; i++) {
                b[i] = (byte) (i * 7);
            }
            assertSmallestForm(b, header, b);
        }

        @ParameterizedTest(name = "array of {0} -> header {1}")
        @CsvSource({"0, 90", "1, 91", "15, 9f", "16, dc0010", "31, dc001f", "32, dc0020", "255, dc00ff", "256, dc0100",
                "65535, dcffff", "65536, dd00010000"})
        void arrays(int length, String header) {
            List<Object> list = new ArrayList<>(length);
            byte[] body = new byte[length];
            for (int i = 0; i < length; i++) {
                list.add((long) (i & 0x7f));
                body[i] = (byte) (i & 0x7f); // positive fixint
            }
            assertSmallestForm(list, header, body);
        }

        @ParameterizedTest(name = "map of {0} -> header {1}")
        @CsvSource({"0, 80", "1, 81", "15, 8f", "16, de0010", "31, de001f", "32, de0020", "255, de00ff", "256, de0100",
                "65535, deffff", "65536, df00010000"})
        void maps(int size, String header) {
            Map<String, Object> map = new LinkedHashMap<>();
            ByteArrayOutputStream body = new ByteArrayOutputStream();
            for (int i = 0; i < size; i++) {
                String key = "k" + i;
                map.put(key, null);
                body.write(0xa0 | key.length()); // fixstr
                body.writeBytes(key.getBytes(StandardCharsets.US_ASCII));
                body.write(0xc0); // nil
            }
            assertSmallestForm(map, header, body.toByteArray());

            // The same size class for the payload map itself.
            byte[] topLevel = bytes(header, body.toByteArray());
            Envelope decoded = WireFormat.decode(topLevel);
            assertThat(decoded.size()).isEqualTo(size);
            assertThat(WireFormat.encode(decoded)).isEqualTo(topLevel);
            assertThat(WireFormat.encode(Envelope.of(map))).isEqualTo(topLevel);
        }

        @ParameterizedTest(name = "non-minimal {0} is read and rewritten as {2}")
        @CsvSource({
                "str8 holding 3 bytes,      d903616263,           a3616263",
                "str16 holding 3 bytes,     da0003616263,         a3616263",
                "str32 holding 3 bytes,     db00000003616263,     a3616263",
                "bin16 holding 2 bytes,     c500020102,           c4020102",
                "bin32 holding 2 bytes,     c6000000020102,       c4020102",
                "array16 of 2,              dc00020102,           920102",
                "array32 of 2,              dd000000020102,       920102",
                "array32 of 0,              dd00000000,           90",
                "map16 of 1,                de0001a16101,         81a16101",
                "map32 of 1,                df00000001a16101,     81a16101",
                "uint64 holding 5,          cf0000000000000005,   05",
                "uint32 holding 128,        ce00000080,           cc80",
                "uint8 holding 5,           cc05,                 05",
                "int8 holding 5,            d005,                 05",
                "int64 holding -1,          d3ffffffffffffffff,   ff",
                "int16 holding -33,         d1ffdf,               d0df",
        })
        void nonMinimalFormsAreAccepted(String what, String valueHex, String minimalHex) {
            Envelope decoded = WireFormat.decode(oneMember(valueHex));
            assertThat(hexOf(WireFormat.encode(decoded))).as(what).isEqualTo(hexOf(oneMember(minimalHex)));
        }

        @Test
        void nonMinimalFormsDecodeToTheRightValues() {
            assertThat(WireFormat.decode(oneMember("db00000003616263")).get("v")).isEqualTo("abc");
            assertThat((byte[]) WireFormat.decode(oneMember("c6000000020102")).get("v")).containsExactly(1, 2);
            assertThat(WireFormat.decode(oneMember("dd000000020102")).get("v")).isEqualTo(List.of(1L, 2L));
            assertThat(WireFormat.decode(oneMember("df00000001a16101")).get("v")).isEqualTo(Map.of("a", 1L));
            assertThat(WireFormat.decode(oneMember("cf0000000000000005")).get("v")).isInstanceOf(Long.class).isEqualTo(5L);
        }

        @Test
        void payloadMapAndKeysInLargeForms() {
            byte[] payload = hex("df00000001 db0000000176 01"); // map32 {str32 "v": 1}
            Envelope decoded = WireFormat.decode(payload);
            assertThat(decoded.get("v")).isEqualTo(1L);
            assertThat(hexOf(WireFormat.encode(decoded))).isEqualTo("81a17601");
        }

        @Test
        void float32DecodesToDoubleAndIsRewrittenAsFloat64() {
            Envelope decoded = WireFormat.decode(oneMember("ca40500000")); // 3.25f
            assertThat(decoded.get("v")).isInstanceOf(Double.class).isEqualTo(3.25d);
            assertThat(hexOf(WireFormat.encode(decoded))).isEqualTo(hexOf(oneMember("cb400a000000000000")));
        }

        @Test
        void float64IsAlwaysWrittenAsFloat64() {
            assertThat(hexOf(WireFormat.encode(Envelope.of("v", 1.0d)))).isEqualTo("81a176cb3ff0000000000000");
            assertThat(hexOf(WireFormat.encode(Envelope.of("v", -0.0d)))).isEqualTo("81a176cb8000000000000000");
            assertThat(hexOf(WireFormat.encode(Envelope.of("v", 0.5f)))).isEqualTo("81a176cb3fe0000000000000");
        }

        @Test
        void nilAndBooleans() {
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("a", null);
            m.put("b", true);
            m.put("c", false);
            byte[] expected = hex("83 a161c0 a162c3 a163c2");
            assertThat(WireFormat.encode(Envelope.of(m))).isEqualTo(expected);
            Envelope decoded = WireFormat.decode(expected);
            assertThat(decoded.asMap()).containsExactlyEntriesOf(m);
        }
    }

    // ---- integers --------------------------------------------------------------------------------------------

    @ParameterizedTest(name = "{0} <-> {1}")
    @CsvSource({
            "-9223372036854775808, d38000000000000000",
            "-2147483649,          d3ffffffff7fffffff",
            "-2147483648,          d280000000",
            "-32769,               d2ffff7fff",
            "-32768,               d18000",
            "-129,                 d1ff7f",
            "-128,                 d080",
            "-33,                  d0df",
            "-32,                  e0",
            "-1,                   ff",
            "0,                    00",
            "127,                  7f",
            "128,                  cc80",
            "255,                  ccff",
            "256,                  cd0100",
            "65535,                cdffff",
            "65536,                ce00010000",
            "4294967295,           ceffffffff",
            "4294967296,           cf0000000100000000",
            "9223372036854775807,  cf7fffffffffffffff",
            "9223372036854775808,  cf8000000000000000",
            "18446744073709551615, cfffffffffffffffff",
    })
    void integersUseTheSmallestFormPythonWrites(String decimal, String expectedHex) {
        BigInteger value = new BigInteger(decimal);
        boolean fitsLong = value.bitLength() < 64;
        byte[] expected = oneMember(expectedHex);

        assertThat(hexOf(WireFormat.encode(Envelope.of("v", value)))).isEqualTo(hexOf(expected));
        if (fitsLong) {
            assertThat(hexOf(WireFormat.encode(Envelope.of("v", value.longValueExact())))).isEqualTo(hexOf(expected));
        }

        Object decoded = WireFormat.decode(expected).get("v");
        if (fitsLong) {
            assertThat(decoded).isInstanceOf(Long.class).isEqualTo(value.longValueExact());
        } else {
            assertThat(decoded).isInstanceOf(BigInteger.class).isEqualTo(value);
        }
        assertThat(WireFormat.encode(WireFormat.decode(expected))).isEqualTo(expected);
    }

    // ---- malformed payloads ----------------------------------------------------------------------------------

    @Nested
    class Malformed {

        private String refusal(byte[] payload) {
            Throwable t = org.assertj.core.api.Assertions.catchThrowable(() -> WireFormat.decode(payload));
            assertThat(t).isInstanceOf(MalformedEntryException.class);
            assertThat(t.getMessage()).isNotBlank().doesNotContain("null");
            return t.getMessage();
        }

        @Test
        void nullPayload() {
            assertThat(refusal(null)).contains("payload");
        }

        @Test
        void emptyPayload() {
            assertThat(refusal(new byte[0])).contains("empty");
        }

        @Test
        void payloadThatIsAnArray() {
            assertThat(refusal(hex("920102"))).contains("array").contains("not a map");
        }

        @Test
        void payloadThatIsAString() {
            assertThat(refusal(hex("a3616263"))).contains("string").contains("not a map");
        }

        @Test
        void payloadThatIsAnInt() {
            assertThat(refusal(hex("05"))).contains("integer").contains("not a map");
        }

        @Test
        void payloadThatIsNilOrBin() {
            assertThat(refusal(hex("c0"))).contains("nil").contains("not a map");
            assertThat(refusal(hex("c4020102"))).contains("binary").contains("not a map");
        }

        @Test
        void mapWithAnIntKey() {
            assertThat(refusal(hex("810102"))).contains("key").contains("integer").contains("not a string");
        }

        @Test
        void mapWithABinKey() {
            assertThat(refusal(hex("81c4017601"))).contains("key").contains("binary").contains("not a string");
        }

        @Test
        void nestedMapWithANonStringKey() {
            assertThat(refusal(oneMember("81c3a161"))).contains("key").contains("boolean").contains("not a string");
        }

        @Test
        void truncatedMap() {
            byte[] v = vector();
            byte[] truncated = java.util.Arrays.copyOf(v, v.length - 1);
            assertThat(refusal(truncated)).containsAnyOf("truncated", "ends before", "incomplete");
        }

        @Test
        void truncatedInsideAString() {
            assertThat(refusal(oneMember("a5616263"))).contains("5").contains("remain");
        }

        @Test
        void trailingBytesAfterTheMap() {
            assertThat(refusal(bytes(vector(), "c0"))).contains("1 bytes after");
            assertThat(refusal(bytes("80", "80"))).contains("1 bytes after");
        }

        @Test
        void extensionTypeAsAValue() {
            assertThat(refusal(oneMember("d40100"))).contains("extension");
        }

        @Test
        void extensionTypeAsThePayload() {
            assertThat(refusal(hex("d40100"))).contains("extension").contains("not a map");
        }

        @Test
        void neverUsedFormatByte() {
            assertThat(refusal(oneMember("c1"))).contains("not valid MessagePack").contains("NEVER_USED");
        }

        @Test
        void invalidUtf8InAStringValue() {
            assertThat(refusal(oneMember("a2c328"))).contains("UTF-8");
        }

        @Test
        void invalidUtf8InAKey() {
            assertThat(refusal(hex("81a2fffe01"))).contains("UTF-8");
        }

        @Test
        void encodedSurrogateIsInvalidUtf8() {
            assertThat(refusal(oneMember("a3eda080"))).contains("UTF-8"); // CESU-style U+D800
        }

        @Test
        void str32ClaimingFourGigabytes() {
            assertThat(refusal(oneMember("dbffffffff", "6162636465"))).contains("4294967295");
        }

        @Test
        void bin32ClaimingMoreThanRemains() {
            assertThat(refusal(oneMember("c600100000", "0102"))).contains("1048576").contains("remain");
        }

        @Test
        void array32ClaimingTwoToThe31Elements() {
            assertThat(refusal(oneMember("dd80000000", "010203"))).contains("2147483648");
        }

        @Test
        void array32ClaimingMoreElementsThanBytesRemain() {
            assertThat(refusal(oneMember("dd000f4240", "010203"))).contains("1000000").contains("remain");
        }

        @Test
        void map32ClaimingMoreEntriesThanBytesRemain() {
            assertThat(refusal(hex("df7fffffff a17601"))).contains("2147483647");
        }

        @Test
        void tenThousandNestedArraysAreRefusedWithoutStackOverflow() {
            ByteArrayOutputStream out = new ByteArrayOutputStream();
            out.writeBytes(hex("81a176"));
            for (int i = 0; i < 10_000; i++) {
                out.write(0x91);
            }
            out.write(0x90);
            assertThat(refusal(out.toByteArray())).contains("deeper than " + WireFormat.MAX_DEPTH);
        }

        @Test
        void tenThousandNestedMapsAreRefusedWithoutStackOverflow() {
            ByteArrayOutputStream out = new ByteArrayOutputStream();
            for (int i = 0; i < 10_000; i++) {
                out.writeBytes(hex("81a176"));
            }
            out.write(0x80);
            assertThat(refusal(out.toByteArray())).contains("deeper than " + WireFormat.MAX_DEPTH);
        }

        @Test
        void nestingUpToTheLimitIsAccepted() {
            // The payload map is level 1; MAX_DEPTH - 1 nested arrays inside make MAX_DEPTH levels.
            ByteArrayOutputStream ok = new ByteArrayOutputStream();
            ok.writeBytes(hex("81a176"));
            for (int i = 0; i < WireFormat.MAX_DEPTH - 2; i++) {
                ok.write(0x91);
            }
            ok.write(0x90);
            byte[] payload = ok.toByteArray();
            assertThat(WireFormat.encode(WireFormat.decode(payload))).isEqualTo(payload);

            ByteArrayOutputStream tooDeep = new ByteArrayOutputStream();
            tooDeep.writeBytes(hex("81a176"));
            for (int i = 0; i < WireFormat.MAX_DEPTH - 1; i++) {
                tooDeep.write(0x91);
            }
            tooDeep.write(0x90);
            assertThat(refusal(tooDeep.toByteArray())).contains("deeper than");
        }
    }

    // ---- entries ---------------------------------------------------------------------------------------------

    @Nested
    class Entries {

        private Map<String, byte[]> fields(Object... keysAndValues) {
            Map<String, byte[]> m = new LinkedHashMap<>();
            for (int i = 0; i < keysAndValues.length; i += 2) {
                Object v = keysAndValues[i + 1];
                m.put((String) keysAndValues[i], v instanceof String s ? s.getBytes(StandardCharsets.UTF_8) : (byte[]) v);
            }
            return m;
        }

        @Test
        void entryWithoutPayloadIsMalformed() {
            assertThatThrownBy(() -> WireFormat.decodeEntry(fields("trace_id", "t-1")))
                    .isInstanceOf(MalformedEntryException.class)
                    .hasMessageContaining("payload");
        }

        @Test
        void entryWithMalformedPayloadIsMalformed() {
            assertThatThrownBy(() -> WireFormat.decodeEntry(fields("payload", hex("05"), "trace_id", "t-1")))
                    .isInstanceOf(MalformedEntryException.class)
                    .hasMessageContaining("not a map");
        }

        @Test
        void unknownFieldsAreIgnored() {
            Envelope e = WireFormat.decodeEntry(fields("payload", vector(), "version", "2", "x-future", hex("ff00")));
            assertThat(e).isEqualTo(WireFormat.decode(vector()));
            assertThat(e.has("version")).isFalse();
            assertThat(e.has("x-future")).isFalse();
        }

        @Test
        void traceIdFieldStandsInWhenTheMapHasNone() {
            Envelope e = WireFormat.decodeEntry(fields("payload", hex("81a16101"), "trace_id", "abc123"));
            assertThat(e.traceId()).isEqualTo("abc123");
            assertThat(e.get("a")).isEqualTo(1L);
            assertThat(e.keys()).containsExactly("a", "trace_id");
        }

        @Test
        void noTraceIdAnywhereLeavesItAbsent() {
            Envelope e = WireFormat.decodeEntry(fields("payload", hex("81a16101")));
            assertThat(e.has("trace_id")).isFalse();
            assertThat(e.traceId()).isNull();
        }

        @Test
        void mapsOwnTraceIdWins() {
            byte[] payload = WireFormat.encode(Envelope.of("trace_id", "own", "a", 1));
            Envelope e = WireFormat.decodeEntry(fields("payload", payload, "trace_id", "field"));
            assertThat(e.traceId()).isEqualTo("own");
        }

        @Test
        void mapsTraceIdKeyCountsEvenWhenNil() {
            // The spec substitutes the field only "when the decoded map has no trace_id key".
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("trace_id", null);
            byte[] payload = WireFormat.encode(Envelope.of(m));
            Envelope e = WireFormat.decodeEntry(fields("payload", payload, "trace_id", "field"));
            assertThat(e.has("trace_id")).isTrue();
            assertThat(e.get("trace_id")).isNull();
        }
    }

    // ---- trace ids -------------------------------------------------------------------------------------------

    @Nested
    class TraceIds {

        @Test
        void envelopesOwnNonEmptyTraceIdIsKept() {
            assertThat(WireFormat.traceIdFor(Envelope.of("trace_id", "req-42"))).isEqualTo("req-42");
        }

        @Test
        void missingTraceIdGetsANewOne() {
            assertThat(WireFormat.traceIdFor(Envelope.of("a", 1))).matches("[0-9a-f]{32}");
        }

        @Test
        void emptyTraceIdGetsANewOne() {
            assertThat(WireFormat.traceIdFor(Envelope.of("trace_id", ""))).matches("[0-9a-f]{32}");
        }

        @Test
        void nonStringTraceIdGetsANewOne() {
            assertThat(WireFormat.traceIdFor(Envelope.of("trace_id", 42))).matches("[0-9a-f]{32}");
            assertThat(WireFormat.traceIdFor(Envelope.of("trace_id", new byte[] {1}))).matches("[0-9a-f]{32}");
            Map<String, Object> nil = new LinkedHashMap<>();
            nil.put("trace_id", null);
            assertThat(WireFormat.traceIdFor(Envelope.of(nil))).matches("[0-9a-f]{32}");
        }

        @Test
        void newTraceIdsAreUniqueAndWellFormed() {
            Set<String> seen = new HashSet<>();
            for (int i = 0; i < 10_000; i++) {
                String id = WireFormat.newTraceId();
                assertThat(id).matches("[0-9a-f]{32}");
                seen.add(id);
            }
            assertThat(seen).hasSize(10_000);
        }
    }
}
