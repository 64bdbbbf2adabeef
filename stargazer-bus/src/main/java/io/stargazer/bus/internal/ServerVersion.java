package io.stargazer.bus.internal;

/** The server's version, parsed once at connect, for the features that depend on it. */
public record ServerVersion(int major, int minor, int patch, String text) {

    static ServerVersion fromInfo(String info) {
        for (String line : info.split("\r?\n")) {
            if (line.startsWith("redis_version:")) {
                return parse(line.substring("redis_version:".length()).trim());
            }
        }
        return new ServerVersion(0, 0, 0, "unknown");
    }

    static ServerVersion parse(String text) {
        String[] parts = text.split("\\.");
        int[] n = new int[3];
        for (int i = 0; i < 3 && i < parts.length; i++) {
            try {
                n[i] = Integer.parseInt(parts[i].replaceAll("[^0-9].*", ""));
            } catch (NumberFormatException e) {
                n[i] = 0;
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
