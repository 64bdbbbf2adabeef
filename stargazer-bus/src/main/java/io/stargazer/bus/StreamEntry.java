package io.stargazer.bus;

/**
 * One entry read with {@link EventBus#read}: its id and decoded envelope, or, when the entry does not follow the
 * wire format, no envelope and the reason.
 *
 * @param id        the stream entry id, for example {@code 1700000000000-0}
 * @param envelope  the decoded envelope, or {@code null} when malformed
 * @param malformed why the entry could not be decoded, or {@code null}
 */
public record StreamEntry(String id, Envelope envelope, String malformed) {

    /**
     * Compares two stream entry ids ({@code <ms>-<seq>}) in the order Redis gives them: as (ms, seq) pairs of unsigned
     * decimals, never as text ({@code 9-0} before {@code 10-0}); a missing seq counts as 0. Negative, zero or positive as
     * {@code a} is before, the same as or after {@code b}. Throws {@link NumberFormatException} for anything but digits
     * and one dash. Digit by digit, without parsing: the consumer's per-channel lanes compare ids for every delivery,
     * and parsing both halves of both ids (a substring and a {@code parseUnsignedLong} each) was 6 % of a consumer's CPU.
     */
    public static int compareIds(String a, String b) {
        int da = dash(a);
        int db = dash(b);
        int c = compareDecimal(a, 0, da, b, 0, db);
        return c != 0 ? c : compareDecimal(a, Math.min(da + 1, a.length()), a.length(), b, Math.min(db + 1, b.length()), b.length());
    }

    /** Where the ms part ends: the dash, or the end of an id without one. */
    private static int dash(String id) {
        int d = id.indexOf('-');
        return d < 0 ? id.length() : d;
    }

    /**
     * The unsigned decimals {@code a[as, ae)} and {@code b[bs, be)} compared by value (an empty range is 0): the one
     * with more significant digits is larger, else the first differing digit decides.
     */
    private static int compareDecimal(String a, int as, int ae, String b, int bs, int be) {
        as = significant(a, as, ae);
        bs = significant(b, bs, be);
        if (ae - as != be - bs) {
            return Integer.compare(ae - as, be - bs);
        }
        for (int i = 0; i < ae - as; i++) {
            char x = a.charAt(as + i);
            char y = b.charAt(bs + i);
            if (x != y) return Character.compare(x, y);
        }
        return 0;
    }

    /** The index of the first significant digit of {@code s[from, to)}, after checking every char is a digit. */
    private static int significant(String s, int from, int to) {
        int first = to;
        for (int i = from; i < to; i++) {
            char ch = s.charAt(i);
            if (ch < '0' || ch > '9') throw new NumberFormatException("not a stream entry id: \"" + s + "\"");
            if (ch != '0' && first == to) first = i;
        }
        return first;
    }
}
