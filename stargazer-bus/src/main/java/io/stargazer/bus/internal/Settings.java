package io.stargazer.bus.internal;

import io.stargazer.bus.ConfigException;
import java.time.Duration;

/**
 * Parsing and checking of setting values, shared by the config classes: every failure is a {@link ConfigException}
 * naming the setting and the value.
 */
public final class Settings {
    private Settings() {
    }

    /**
     * The variable {@code name} of {@code env}, or null when it is unset or blank: a blank one counts as unset (compose's
     * {@code SG_NODE_ID=${NODE_ID}} with NODE_ID unset gives an empty value, which means "not given", not "empty").
     */
    public static String env(java.util.Map<String, String> env, String name) {
        String v = env.get(name);
        return v == null || v.isBlank() ? null : v;
    }

    public static int parseInt(String setting, String value) {
        try {
            return Integer.parseInt(value.trim());
        } catch (RuntimeException e) {
            throw new ConfigException(setting, "'" + printable(value) + "' is not a whole number");
        }
    }

    public static long parseLong(String setting, String value) {
        try {
            return Long.parseLong(value.trim());
        } catch (RuntimeException e) {
            throw new ConfigException(setting, "'" + printable(value) + "' is not a whole number");
        }
    }

    public static Duration parseMillis(String setting, String value) {
        long ms = parseLong(setting, value);
        if (ms < 0) {
            throw new ConfigException(setting, "'" + printable(value) + "' must not be negative");
        }
        return Duration.ofMillis(ms);
    }

    public static int positive(String setting, int value) {
        if (value <= 0) {
            throw new ConfigException(setting, "'" + value + "' must be greater than zero");
        }
        return value;
    }

    /** Refuses null: a setting without a default of "none". */
    public static <T> T present(String setting, T value) {
        if (value == null) {
            throw new ConfigException(setting, "must be set");
        }
        return value;
    }

    public static int notNegative(String setting, int value) {
        if (value < 0) {
            throw new ConfigException(setting, "'" + value + "' must not be negative");
        }
        return value;
    }

    /** Refuses zero and below, quoting the value in milliseconds as the variables take it ({@code '0 ms'}, not PT0S). */
    public static Duration positive(String setting, Duration value) {
        if (value == null || value.isNegative() || value.isZero()) {
            throw new ConfigException(setting, "'" + millis(value) + "' must be a positive duration");
        }
        return value;
    }

    /**
     * {@link #positive(String, Duration)}, a value longer than {@code max} taken as {@code max}: the "forever" of
     * {@code Duration.ofSeconds(Long.MAX_VALUE)} or {@code ChronoUnit.FOREVER.getDuration()} means "very long", and the
     * bus counts every duration setting in nanoseconds from now, which overflows past about 292 years.
     */
    public static Duration positiveSaturated(String setting, Duration value, Duration max) {
        positive(setting, value);
        return value.compareTo(max) > 0 ? max : value;
    }

    public static Duration notNegative(String setting, Duration value) {
        if (value == null || value.isNegative()) {
            throw new ConfigException(setting, "'" + millis(value) + "' must be zero or a positive duration");
        }
        return value;
    }

    /** {@link #notNegative(String, Duration)}, a value longer than {@code max} taken as {@code max}: see {@link #positiveSaturated}. */
    public static Duration notNegativeSaturated(String setting, Duration value, Duration max) {
        notNegative(setting, value);
        return value.compareTo(max) > 0 ? max : value;
    }

    /**
     * Refuses a duration outside {@code min} to {@code max}. The bounds are the caller's reasons (what the server's
     * arithmetic takes exactly, ...); the message shows each value in milliseconds where it is whole milliseconds.
     */
    public static Duration between(String setting, Duration value, Duration min, Duration max) {
        if (value == null || value.compareTo(min) < 0 || value.compareTo(max) > 0) {
            throw new ConfigException(setting, "'" + millis(value) + "' must be between " + millis(min) + " and " + millis(max));
        }
        return value;
    }

    /** {@code "1500 ms"}, or the ISO-8601 form for a value that is not whole milliseconds or too long for them. */
    private static String millis(Duration d) {
        if (d == null) return "null";
        try {
            long ms = d.toMillis();
            if (Duration.ofMillis(ms).equals(d)) return ms + " ms";
        } catch (ArithmeticException tooLong) {
            // shown as a Duration below
        }
        return d.toString();
    }

    /**
     * The value with control characters and lone UTF-16 surrogates shown as escapes, so an error message stays on one
     * line and says what the value holds (a lone surrogate would print as '?').
     */
    public static String printable(String value) {
        StringBuilder sb = new StringBuilder(value.length());
        for (int i = 0; i < value.length(); i++) {
            char c = value.charAt(i);
            if (Character.isHighSurrogate(c) && i + 1 < value.length() && Character.isLowSurrogate(value.charAt(i + 1))) {
                sb.append(c).append(value.charAt(++i));
            } else if (Character.isISOControl(c) || Character.isSurrogate(c)) {
                sb.append(String.format("\\u%04x", (int) c));
            } else {
                sb.append(c);
            }
        }
        return sb.toString();
    }

    /** {@link #printable(String)} of the first {@code max} characters, with "..." when the value is longer. */
    public static String printable(String value, int max) {
        return value.length() <= max ? printable(value) : printable(value.substring(0, max)) + "...";
    }
}
