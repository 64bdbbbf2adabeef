package io.stargazer.bus.internal;

/**
 * A Redis server's version, parsed once (from {@code INFO server} at connect, or from text an operator gives), for
 * the features that depend on it. The one place a version string is taken apart.
 */
public record ServerVersion(int major, int minor, int patch, String text) {

    static ServerVersion fromInfo(String info) {
        for (String line : info.split("\r?\n")) {
            if (line.startsWith("redis_version:")) {
                return parse(line.substring("redis_version:".length()).trim());
            }
        }
        return new ServerVersion(0, 0, 0, "unknown");
    }

    /** Lenient: a part without a leading number counts as 0 (what a server reports is used as well as it can be). */
    static ServerVersion parse(String text) {
        ServerVersion v = parseOrNull(text);
        return v != null ? v : new ServerVersion(0, 0, 0, text);
    }

    /**
     * {@code 7.0.15}, {@code 7.2-rc1}, {@code 8}: major, minor and patch as the leading digits of the first three
     * dot-separated parts (missing ones are 0); null when a part that is there does not start with a digit.
     */
    public static ServerVersion parseOrNull(String text) {
        String[] parts = text.trim().split("\\.");
        int[] n = new int[3];
        for (int i = 0; i < 3 && i < parts.length; i++) {
            String digits = parts[i].replaceAll("[^0-9].*", "");
            if (digits.isEmpty()) {
                return null;
            }
            try {
                n[i] = Integer.parseInt(digits);
            } catch (NumberFormatException e) {
                return null; // more digits than an int holds
            }
        }
        return new ServerVersion(n[0], n[1], n[2], text);
    }

    public boolean atLeast(int major, int minor) {
        return this.major > major || (this.major == major && this.minor >= minor);
    }

    /** XINFO GROUPS reports entries-read and lag; XAUTOCLAIM reports deleted ids (Redis 7.0). */
    public boolean hasLagAndDeletedIds() {
        return atLeast(7, 0);
    }

    /** XADD/XTRIM take KEEPREF/DELREF/ACKED (Redis 8.2). */
    public boolean hasAckedTrimming() {
        return atLeast(8, 2);
    }

    @Override
    public String toString() {
        return text;
    }
}
