package io.stargazer.bus.wire;

import static org.assertj.core.api.Assertions.assertThat;

import io.stargazer.bus.Envelope;
import java.io.IOException;
import java.net.URISyntaxException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.atomic.AtomicLong;
import java.util.stream.Stream;
import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.Example;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;
import net.jqwik.api.lifecycle.AfterContainer;

/**
 * Fuzzing of the payload decoder: the seed corpus (src/test/resources/fuzz-corpus) as is, then jqwik-generated
 * mutations of it and random bytes. Whatever the input, {@link WireFormat#decode} returns an envelope or throws
 * {@link MalformedEntryException}: never an OutOfMemoryError, a StackOverflowError or any other exception, and never
 * slowly. The suite runs jqwik's default number of tries; a long run is
 * {@code mvn -pl stargazer-bus -am test -Dtest=DecoderFuzzTest -Dsurefire.failIfNoSpecifiedTests=false -Djqwik.tries.default=2000000}.
 */
class DecoderFuzzTest {
    /** Far above any honest decode of these sizes (microseconds); a hang or quadratic blow-up exceeds it. */
    private static final long MAX_NANOS_PER_INPUT = 2_000_000_000L;
    private static final List<byte[]> CORPUS = loadCorpus();
    private static final AtomicLong INPUTS = new AtomicLong();
    private static final AtomicLong DECODED = new AtomicLong();

    private static List<byte[]> loadCorpus() {
        try {
            Path dir = Path.of(DecoderFuzzTest.class.getResource("/fuzz-corpus").toURI());
            List<byte[]> out = new ArrayList<>();
            try (Stream<Path> files = Files.list(dir)) {
                for (Path p : files.filter(f -> f.toString().endsWith(".bin")).sorted().toList()) out.add(Files.readAllBytes(p));
            }
            return List.copyOf(out);
        } catch (IOException | URISyntaxException e) {
            throw new IllegalStateException("cannot read the fuzz corpus", e);
        }
    }

    /** Decodes one input and checks the invariant; true when it decoded. */
    static boolean check(byte[] input) {
        INPUTS.incrementAndGet();
        long start = System.nanoTime();
        boolean ok;
        try {
            Envelope e = WireFormat.decode(input);
            assertThat(e).isNotNull();
            // Whatever decodes must encode again (no value the encoder cannot write slips through).
            assertThat(WireFormat.encode(e)).isNotNull();
            ok = true;
        } catch (MalformedEntryException expected) {
            assertThat(expected.getMessage()).isNotBlank();
            ok = false;
        } catch (Throwable other) {
            throw new AssertionError("decoding " + input.length + " bytes threw " + other + " instead of MalformedEntryException", other);
        }
        long took = System.nanoTime() - start;
        assertThat(took).as("nanoseconds to decode %d bytes", input.length).isLessThan(MAX_NANOS_PER_INPUT);
        if (ok) DECODED.incrementAndGet();
        return ok;
    }

    @Example
    void everySeedIsDecodedOrRefusedWithATypedError() {
        assertThat(CORPUS).hasSizeGreaterThanOrEqualTo(40);
        Map<Boolean, Integer> outcomes = new HashMap<>();
        for (byte[] seed : CORPUS) outcomes.merge(check(seed), 1, Integer::sum);
        assertThat(outcomes.get(true)).as("seeds that decode").isGreaterThanOrEqualTo(5);
        assertThat(outcomes.get(false)).as("seeds that are refused").isGreaterThanOrEqualTo(30);
    }

    @Property
    void mutatedSeedsAreDecodedOrRefusedWithATypedError(@ForAll("mutants") byte[] input) {
        check(input);
    }

    @Property
    void randomBytesAreDecodedOrRefusedWithATypedError(@ForAll("noise") byte[] input) {
        check(input);
    }

    @Provide
    Arbitrary<byte[]> mutants() {
        return Arbitraries.randomValue(DecoderFuzzTest::mutate);
    }

    @Provide
    Arbitrary<byte[]> noise() {
        // Half start with a map header, so the decoder gets past the first byte.
        return Arbitraries.randomValue(r -> {
            byte[] b = new byte[r.nextInt(300)];
            r.nextBytes(b);
            if (b.length > 0 && r.nextBoolean()) b[0] = (byte) (0x80 | r.nextInt(16));
            return b;
        });
    }

    private static final byte[] INTERESTING = {(byte) 0xc0, (byte) 0xc1, (byte) 0xc4, (byte) 0xc6, (byte) 0xc9, (byte) 0xca,
            (byte) 0xcf, (byte) 0xd4, (byte) 0xd9, (byte) 0xdb, (byte) 0xdc, (byte) 0xdd, (byte) 0xde, (byte) 0xdf, (byte) 0x91,
            (byte) 0x81, (byte) 0x9f, (byte) 0x8f, (byte) 0xbf, (byte) 0xff, 0x00, 0x7f};

    /** One to four mutations of one seed. */
    static byte[] mutate(Random r) {
        byte[] b = CORPUS.get(r.nextInt(CORPUS.size())).clone();
        int n = 1 + r.nextInt(4);
        for (int i = 0; i < n; i++) {
            b = switch (r.nextInt(7)) {
                case 0 -> flipBit(b, r);
                case 1 -> b.length == 0 ? b : java.util.Arrays.copyOf(b, r.nextInt(b.length));
                case 2 -> insert(b, r, new byte[] {INTERESTING[r.nextInt(INTERESTING.length)]});
                case 3 -> insert(b, r, lengthPrefix(r));
                case 4 -> overwrite(b, r);
                case 5 -> duplicateSlice(b, r);
                default -> insert(b, r, randomBytes(r));
            };
        }
        return b;
    }

    private static byte[] flipBit(byte[] b, Random r) {
        if (b.length == 0) return b;
        b[r.nextInt(b.length)] ^= (byte) (1 << r.nextInt(8));
        return b;
    }

    private static byte[] overwrite(byte[] b, Random r) {
        if (b.length == 0) return b;
        b[r.nextInt(b.length)] = INTERESTING[r.nextInt(INTERESTING.length)];
        return b;
    }

    private static byte[] lengthPrefix(Random r) {
        byte[] headers = {(byte) 0xdb, (byte) 0xc6, (byte) 0xdd, (byte) 0xdf, (byte) 0xda, (byte) 0xc5, (byte) 0xdc, (byte) 0xde};
        byte h = headers[r.nextInt(headers.length)];
        boolean wide = h == (byte) 0xdb || h == (byte) 0xc6 || h == (byte) 0xdd || h == (byte) 0xdf;
        int len = switch (r.nextInt(4)) {
            case 0 -> -1;
            case 1 -> Integer.MAX_VALUE;
            case 2 -> r.nextInt(64);
            default -> r.nextInt();
        };
        return wide ? new byte[] {h, (byte) (len >>> 24), (byte) (len >>> 16), (byte) (len >>> 8), (byte) len}
                : new byte[] {h, (byte) (len >>> 8), (byte) len};
    }

    private static byte[] randomBytes(Random r) {
        byte[] x = new byte[1 + r.nextInt(8)];
        r.nextBytes(x);
        return x;
    }

    private static byte[] insert(byte[] b, Random r, byte[] x) {
        int at = r.nextInt(b.length + 1);
        byte[] out = new byte[b.length + x.length];
        System.arraycopy(b, 0, out, 0, at);
        System.arraycopy(x, 0, out, at, x.length);
        System.arraycopy(b, at, out, at + x.length, b.length - at);
        return out;
    }

    private static byte[] duplicateSlice(byte[] b, Random r) {
        if (b.length == 0 || b.length > 1 << 16) return b;
        int from = r.nextInt(b.length);
        int len = 1 + r.nextInt(Math.min(32, b.length - from));
        byte[] slice = java.util.Arrays.copyOfRange(b, from, from + len);
        int copies = 1 + r.nextInt(64);
        byte[] rep = new byte[slice.length * copies];
        for (int i = 0; i < copies; i++) System.arraycopy(slice, 0, rep, i * slice.length, slice.length);
        return insert(b, r, rep);
    }

    @AfterContainer
    static void report() {
        System.out.println("DecoderFuzzTest: " + INPUTS.get() + " inputs, " + DECODED.get() + " decoded, "
                + (INPUTS.get() - DECODED.get()) + " refused with MalformedEntryException, no other outcome");
    }
}
