// Stream entry ids ("<ms>-<seq>") in the order Redis gives them: as pairs of unsigned numbers, never as text
// ("9-0" comes before "10-0").
package io.stargazer.node.web;

final class StreamIdOrder {
    private StreamIdOrder() {
    }

    /** Negative, zero or positive as {@code a} is before, the same as or after {@code b}; a missing seq counts as 0. */
    static int compare(String a, String b) {
        int da = dash(a);
        int db = dash(b);
        int c = Long.compareUnsigned(Long.parseUnsignedLong(a, 0, da, 10), Long.parseUnsignedLong(b, 0, db, 10));
        return c != 0 ? c : Long.compareUnsigned(seq(a, da), seq(b, db));
    }

    private static int dash(String id) {
        int d = id.indexOf('-');
        return d < 0 ? id.length() : d;
    }

    private static long seq(String id, int dash) {
        return dash >= id.length() ? 0 : Long.parseUnsignedLong(id, dash + 1, id.length(), 10);
    }
}
