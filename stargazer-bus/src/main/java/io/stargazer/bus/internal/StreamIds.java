package io.stargazer.bus.internal;

import java.util.Comparator;

/** Stream entry ids ({@code ms-seq}) compared as the pairs of numbers they are, not as text. */
final class StreamIds {
    private StreamIds() {
    }

    static final Comparator<String> ORDER = StreamIds::compare;

    /** {@link io.stargazer.bus.StreamEntry#compareIds}, the one comparison of ids. */
    static int compare(String a, String b) {
        return io.stargazer.bus.StreamEntry.compareIds(a, b);
    }

    static String max(String a, String b) {
        if (a == null) return b;
        if (b == null) return a;
        return compare(a, b) >= 0 ? a : b;
    }

    /** The Unix time in milliseconds an id was made at (its first part). */
    static long millis(String id) {
        return Long.parseUnsignedLong(id, 0, dash(id), 10);
    }

    /** Where the ms part ends: the dash, or the end of an id without one. */
    private static int dash(String id) {
        int d = id.indexOf('-');
        return d < 0 ? id.length() : d;
    }
}
