package io.stargazer.bus.internal;

import java.util.Comparator;

/** Stream entry ids ({@code ms-seq}) compared as the pairs of numbers they are, not as text. */
final class StreamIds {
    private StreamIds() {
    }

    static final Comparator<String> ORDER = StreamIds::compare;

    static int compare(String a, String b) {
        int da = a.indexOf('-');
        int db = b.indexOf('-');
        int c = Long.compareUnsigned(ms(a, da), ms(b, db));
        return c != 0 ? c : Long.compareUnsigned(seq(a, da), seq(b, db));
    }

    static String max(String a, String b) {
        if (a == null) return b;
        if (b == null) return a;
        return compare(a, b) >= 0 ? a : b;
    }

    /** The Unix time in milliseconds an id was made at (its first part). */
    static long millis(String id) {
        return ms(id, id.indexOf('-'));
    }

    private static long ms(String id, int dash) {
        return Long.parseUnsignedLong(dash < 0 ? id : id.substring(0, dash));
    }

    private static long seq(String id, int dash) {
        return dash < 0 ? 0 : Long.parseUnsignedLong(id.substring(dash + 1));
    }
}
