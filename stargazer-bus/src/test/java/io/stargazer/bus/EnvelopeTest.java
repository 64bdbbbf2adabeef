// Promise: an Envelope is an immutable, normalised, insertion-ordered map of wire values that compares by content and never logs the message text.
package io.stargazer.bus;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.stargazer.bus.wire.WireFormat;
import java.math.BigDecimal;
import java.math.BigInteger;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;

class EnvelopeTest {

    private static final BigInteger TWO_TO_63 = BigInteger.ONE.shiftLeft(63);
    private static final BigInteger UINT64_MAX = BigInteger.ONE.shiftLeft(64).subtract(BigInteger.ONE);

    // ---- normalisation ---------------------------------------------------------------------------------------

    @Test
    void smallIntegersBecomeLongs() {
        Envelope e = Envelope.of("i", 7, "s", (short) -3, "b", (byte) 100, "l", 5L);
        assertThat(e.get("i")).isInstanceOf(Long.class).isEqualTo(7L);
        assertThat(e.get("s")).isInstanceOf(Long.class).isEqualTo(-3L);
        assertThat(e.get("b")).isInstanceOf(Long.class).isEqualTo(100L);
        assertThat(e.get("l")).isInstanceOf(Long.class).isEqualTo(5L);
    }

    @Test
    void floatsBecomeDoubles() {
        Envelope e = Envelope.of("f", 1.5f, "nan", Float.NaN, "d", 2.25d);
        assertThat(e.get("f")).isInstanceOf(Double.class).isEqualTo(1.5d);
        assertThat(e.get("nan")).isInstanceOf(Double.class);
        assertThat((Double) e.get("nan")).isNaN();
        assertThat(e.get("d")).isInstanceOf(Double.class).isEqualTo(2.25d);
    }

    @Test
    void bigIntegersInLongRangeBecomeLongs() {
        Envelope e = Envelope.of("a", BigInteger.valueOf(-5), "min", BigInteger.valueOf(Long.MIN_VALUE), "max",
                BigInteger.valueOf(Long.MAX_VALUE));
        assertThat(e.get("a")).isInstanceOf(Long.class).isEqualTo(-5L);
        assertThat(e.get("min")).isInstanceOf(Long.class).isEqualTo(Long.MIN_VALUE);
        assertThat(e.get("max")).isInstanceOf(Long.class).isEqualTo(Long.MAX_VALUE);
    }

    @Test
    void bigIntegersAboveLongUpToUint64StayBigIntegers() {
        Envelope e = Envelope.of("lo", TWO_TO_63, "hi", UINT64_MAX);
        assertThat(e.get("lo")).isInstanceOf(BigInteger.class).isEqualTo(TWO_TO_63);
        assertThat(e.get("hi")).isInstanceOf(BigInteger.class).isEqualTo(UINT64_MAX);
    }

    @Test
    void bigIntegerAboveUint64IsRefusedNamingThePath() {
        BigInteger tooBig = UINT64_MAX.add(BigInteger.ONE);
        assertThatThrownBy(() -> Envelope.of("big", tooBig))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("big")
                .hasMessageContaining(tooBig.toString());
        assertThatThrownBy(() -> Envelope.of("outer", Map.of("inner", List.of(1, tooBig))))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("outer.inner[1]");
        assertThatThrownBy(() -> Envelope.of("a", 1).with("x", List.of(tooBig)))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("x[0]");
    }

    @Test
    void bigIntegerBelowLongMinIsRefusedNamingThePath() {
        BigInteger tooSmall = BigInteger.valueOf(Long.MIN_VALUE).subtract(BigInteger.ONE);
        assertThatThrownBy(() -> Envelope.of("neg", tooSmall))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("neg")
                .hasMessageContaining(tooSmall.toString());
        assertThatThrownBy(() -> Envelope.of("neg", UINT64_MAX.negate()))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("neg");
    }

    @Test
    void nestedValuesAreNormalisedToo() {
        Envelope e = Envelope.of("list", List.of(1, 2.5f, Map.of("deep", (short) 9)));
        assertThat(e.get("list")).isEqualTo(List.of(1L, 2.5d, Map.of("deep", 9L)));
        List<?> list = (List<?>) e.get("list");
        assertThat(list.get(0)).isInstanceOf(Long.class);
        assertThat(list.get(1)).isInstanceOf(Double.class);
        assertThat(((Map<?, ?>) list.get(2)).get("deep")).isInstanceOf(Long.class);
    }

    @Test
    void nestedEnvelopeBecomesAMap() {
        Envelope inner = Envelope.of("a", 1);
        Envelope outer = Envelope.of("inner", inner);
        assertThat(outer.get("inner")).isInstanceOf(Map.class).isEqualTo(Map.of("a", 1L));
        assertThat(WireFormat.decode(WireFormat.encode(outer))).isEqualTo(outer);
    }

    @Test
    void charSequencesBecomeStrings() {
        Envelope e = Envelope.of("t", new StringBuilder("abc"));
        assertThat(e.get("t")).isInstanceOf(String.class).isEqualTo("abc");
    }

    @Test
    void unsupportedValueTypesAreRefusedNamingPathAndType() {
        for (Object bad : List.<Object>of(new Object(), Instant.EPOCH, new int[] {1}, 'c', Optional.empty(), Set.of("a"),
                BigDecimal.ONE, new AtomicLong(1))) {
            assertThatThrownBy(() -> Envelope.of("x", List.of(bad)))
                    .as(bad.getClass().getName())
                    .isInstanceOf(IllegalArgumentException.class)
                    .hasMessageContaining("x[0]")
                    .hasMessageContaining(bad.getClass().getName());
        }
    }

    @Test
    void nonStringMapKeysAreRefused() {
        Map<Object, Object> m = new HashMap<>();
        m.put(1, "one");
        assertThatThrownBy(() -> Envelope.of("m", m))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("m")
                .hasMessageContaining("not a string");
        assertThatThrownBy(() -> Envelope.of(1, "one"))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("not a string");
        assertThatThrownBy(() -> Envelope.of("a", 1, "b"))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("pairs");
    }

    @Test
    void tooDeepNestingIsRefusedWithoutStackOverflow() {
        Object deep = "leaf";
        for (int i = 0; i < 10_000; i++) {
            deep = List.of(deep);
        }
        Object value = deep;
        assertThatThrownBy(() -> Envelope.of("d", value))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("deeper");
    }

    @Test
    void selfReferencingListIsRefusedWithoutStackOverflow() {
        List<Object> loop = new ArrayList<>();
        loop.add(loop);
        assertThatThrownBy(() -> Envelope.of("loop", loop))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("deeper");
    }

    // ---- copies and immutability -----------------------------------------------------------------------------

    @Test
    void byteArraysAreCopiedIn() {
        byte[] original = {1, 2, 3};
        Envelope e = Envelope.of("b", original);
        original[0] = 99;
        assertThat(e.bytes("b")).containsExactly(1, 2, 3);

        byte[] nestedOriginal = {4, 5};
        Envelope n = Envelope.of("l", List.of(nestedOriginal));
        nestedOriginal[0] = 99;
        assertThat((byte[]) ((List<?>) n.get("l")).get(0)).containsExactly(4, 5);
    }

    @Test
    void bytesCopiesOut() {
        Envelope e = Envelope.of("b", new byte[] {1, 2, 3});
        byte[] out = e.bytes("b");
        out[0] = 99;
        assertThat(e.bytes("b")).containsExactly(1, 2, 3);
        assertThat(e.bytes("b")).isNotSameAs(e.bytes("b"));
    }

    @Test
    void asMapIsUnmodifiable() {
        Envelope e = Envelope.of("a", 1);
        assertThatThrownBy(() -> e.asMap().put("b", 2L)).isInstanceOf(UnsupportedOperationException.class);
        assertThatThrownBy(() -> e.asMap().remove("a")).isInstanceOf(UnsupportedOperationException.class);
        assertThatThrownBy(() -> e.keys().clear()).isInstanceOf(UnsupportedOperationException.class);
        assertThat(e.asMap()).containsExactly(Map.entry("a", 1L));
    }

    @Test
    @SuppressWarnings("unchecked")
    void nestedListsAndMapsAreUnmodifiableCopies() {
        List<Object> list = new ArrayList<>(List.of(1));
        Map<String, Object> map = new LinkedHashMap<>(Map.of("k", 1));
        Envelope e = Envelope.of("list", list, "map", map);

        list.add(2);
        map.put("k2", 2);
        assertThat(e.get("list")).isEqualTo(List.of(1L));
        assertThat(e.get("map")).isEqualTo(Map.of("k", 1L));

        assertThatThrownBy(() -> ((List<Object>) e.get("list")).add(3L)).isInstanceOf(UnsupportedOperationException.class);
        assertThatThrownBy(() -> ((Map<String, Object>) e.get("map")).put("x", 3L))
                .isInstanceOf(UnsupportedOperationException.class);
    }

    @Test
    @SuppressWarnings("unchecked")
    void decodedNestedListsAndMapsAreUnmodifiable() {
        Envelope e = WireFormat.decode(WireFormat.encode(Envelope.of("list", List.of(1), "map", Map.of("k", 1))));
        assertThatThrownBy(() -> ((List<Object>) e.get("list")).add(3L)).isInstanceOf(UnsupportedOperationException.class);
        assertThatThrownBy(() -> ((Map<String, Object>) e.get("map")).put("x", 3L))
                .isInstanceOf(UnsupportedOperationException.class);
        assertThatThrownBy(() -> e.asMap().put("x", 3L)).isInstanceOf(UnsupportedOperationException.class);
    }

    @Test
    void withAndWithoutCopyOnWrite() {
        Envelope original = Envelope.of("a", 1, "b", 2);

        Envelope replaced = original.with("a", 10);
        Envelope appended = original.with("c", 3);
        Envelope removed = original.without("a");

        assertThat(original.asMap()).containsExactly(Map.entry("a", 1L), Map.entry("b", 2L));
        assertThat(replaced.asMap()).containsExactly(Map.entry("a", 10L), Map.entry("b", 2L));
        assertThat(appended.asMap()).containsExactly(Map.entry("a", 1L), Map.entry("b", 2L), Map.entry("c", 3L));
        assertThat(removed.asMap()).containsExactly(Map.entry("b", 2L));
        assertThat(original.without("absent")).isEqualTo(original);
    }

    @Test
    void withCopiesAndNormalisesTheNewValue() {
        byte[] b = {1};
        Envelope e = Envelope.empty().with("b", b).with("n", 3);
        b[0] = 9;
        assertThat(e.bytes("b")).containsExactly(1);
        assertThat(e.get("n")).isInstanceOf(Long.class);
        assertThat(Envelope.empty().size()).isZero();
    }

    @Test
    void insertionOrderIsKept() {
        Envelope.Builder b = Envelope.builder();
        List<String> keys = new ArrayList<>();
        for (int i = 40; i > 0; i--) {
            String k = "key-" + (i * 7919 % 101);
            if (!keys.contains(k)) {
                keys.add(k);
            }
            b.put(k, i);
        }
        Envelope e = b.build();
        assertThat(new ArrayList<>(e.keys())).containsExactlyElementsOf(keys);
        assertThat(new ArrayList<>(WireFormat.decode(WireFormat.encode(e)).keys())).containsExactlyElementsOf(keys);
    }

    // ---- equality and toString -------------------------------------------------------------------------------

    @Test
    void equalsIgnoresKeyOrderAndComparesBytesByContent() {
        Envelope a = Envelope.of("x", 1, "y", new byte[] {1, 2}, "z", Map.of("b", new byte[] {3}));
        Envelope b = Envelope.of("z", Map.of("b", new byte[] {3}), "y", new byte[] {1, 2}, "x", 1L);
        assertThat(a).isEqualTo(b);
        assertThat(a.hashCode()).isEqualTo(b.hashCode());
    }

    @Test
    void differentValuesAreNotEqual() {
        Envelope base = Envelope.of("x", 1, "y", new byte[] {1, 2});
        assertThat(base).isNotEqualTo(Envelope.of("x", 1, "y", new byte[] {1, 3}));
        assertThat(base).isNotEqualTo(Envelope.of("x", 2, "y", new byte[] {1, 2}));
        assertThat(base).isNotEqualTo(Envelope.of("x", 1.0, "y", new byte[] {1, 2}));
        assertThat(base).isNotEqualTo(Envelope.of("x", 1, "y", "\u0001\u0002"));
        assertThat(base).isNotEqualTo(Envelope.of("x", 1));
        assertThat(Envelope.of("l", List.of(1, 2))).isNotEqualTo(Envelope.of("l", List.of(2, 1)));
        Map<String, Object> withNull = new LinkedHashMap<>();
        withNull.put("x", null);
        assertThat(Envelope.of(withNull)).isNotEqualTo(Envelope.empty());
        assertThat(Envelope.empty()).isNotEqualTo(Envelope.of(withNull));
    }

    @Test
    void toStringNeverContainsTheContent() {
        String secret = "my password is hunter2";
        Envelope e = Envelope.builder().platform("webchat").channelId("c-1").type("message").traceId("t-9")
                .content(secret).build();
        assertThat(e.toString()).doesNotContain(secret).doesNotContain("hunter2")
                .contains("webchat").contains("c-1").contains("t-9");
    }

    // ---- typed accessors -------------------------------------------------------------------------------------

    @Test
    void typedAccessorsReturnNullForAbsentOrOtherTypes() {
        Envelope e = Envelope.of("content", new byte[] {1}, "platform", 5, "n", "7", "b", "text", "big", TWO_TO_63);
        assertThat(e.content()).isNull();
        assertThat(e.platform()).isNull();
        assertThat(e.channelId()).isNull();
        assertThat(e.type()).isNull();
        assertThat(e.traceId()).isNull();
        assertThat(e.string("absent")).isNull();
        assertThat(e.string("b")).isEqualTo("text");
        assertThat(e.bytes("b")).isNull();
        assertThat(e.bytes("absent")).isNull();
        assertThat(e.longValue("n", -1)).isEqualTo(-1);
        assertThat(e.longValue("big", -1)).isEqualTo(-1);
        assertThat(e.longValue("absent", 42)).isEqualTo(42);
        assertThat(e.has("absent")).isFalse();
        assertThat(e.get("absent")).isNull();
    }

    @Test
    void wellKnownAccessorsReadTheirMembers() {
        Envelope e = Envelope.builder().platform("discord").channelId("123").content("hi").type("typing").traceId("abc")
                .put("n", 12).build();
        assertThat(e.platform()).isEqualTo("discord");
        assertThat(e.channelId()).isEqualTo("123");
        assertThat(e.content()).isEqualTo("hi");
        assertThat(e.type()).isEqualTo("typing");
        assertThat(e.traceId()).isEqualTo("abc");
        assertThat(e.longValue("n", -1)).isEqualTo(12);
        assertThat(e.size()).isEqualTo(6);
    }

    @Test
    void nullMemberIsPresent() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("none", null);
        Envelope e = Envelope.of(m);
        assertThat(e.has("none")).isTrue();
        assertThat(e.get("none")).isNull();
        assertThat(e.size()).isEqualTo(1);
    }

    @Test
    void textWithALoneSurrogateIsRefusedInValuesAndKeysButPairsAreFine() {
        assertThatThrownBy(() -> Envelope.of("content", "bad \uD800 text"))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("surrogate").hasMessageContaining("content");
        assertThatThrownBy(() -> Envelope.of("k\uDC00", "v")).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("surrogate");
        assertThatThrownBy(() -> Envelope.of("list", List.of("ok", "\uD83D"))).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("list[1]");
        assertThatThrownBy(() -> Envelope.empty().with("k", "\uDE00")).isInstanceOf(IllegalArgumentException.class);
        Envelope astral = Envelope.of("content", "star \uD83C\uDF1F");
        assertThat(WireFormat.decode(WireFormat.encode(astral))).isEqualTo(astral);
    }

    @Test
    void everyEnvelopeTheDecoderAcceptsCanBeRebuiltAtTheDecodersDepthLimit() {
        Object nested = "leaf";
        for (int i = 0; i < WireFormat.MAX_DEPTH - 2; i++) nested = List.of(nested);
        Envelope deep = WireFormat.decode(WireFormat.encode(Envelope.of("deep", nested)));
        assertThat(Envelope.of(deep.asMap())).isEqualTo(deep);
    }
}
