package io.stargazer.bus.internal;

/** Redis glob patterns (ACL key patterns, SCAN MATCH): '*', '?', '[', ']' and '\' are special. */
public final class RedisGlob {
    private RedisGlob() {
    }

    /** A key name as a Redis glob pattern that matches only itself. */
    public static String literal(String key) {
        StringBuilder sb = new StringBuilder(key.length());
        for (int i = 0; i < key.length(); i++) {
            char c = key.charAt(i);
            if (c == '*' || c == '?' || c == '[' || c == ']' || c == '\\') sb.append('\\');
            sb.append(c);
        }
        return sb.toString();
    }
}
