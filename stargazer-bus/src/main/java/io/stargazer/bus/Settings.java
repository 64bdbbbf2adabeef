package io.stargazer.bus;

import java.time.Duration;

/**
 * Parsing and checking of setting values, shared by the config classes: every failure is a {@link ConfigException}
 * naming the setting and the value.
 */
final class Settings {
    private Settings() {
    }

    static int parseInt(String setting, String value) {
        try {
            return Integer.parseInt(value.trim());
        } catch (RuntimeException e) {
            throw new ConfigException(setting, "'" + printable(value) + "' is not a whole number");
        }
    }

    static long parseLong(String setting, String value) {
        try {
            return Long.parseLong(value.trim());
        } catch (RuntimeException e) {
            throw new ConfigException(setting, "'" + printable(value) + "' is not a whole number");
        }
    }

    static Duration parseMillis(String setting, String value) {
        long ms = parseLong(setting, value);
        if (ms < 0) {
            throw new ConfigException(setting, "'" + printable(value) + "' must not be negative");
        }
        return Duration.ofMillis(ms);
    }

    static int positive(String setting, int value) {
        if (value <= 0) {
            throw new ConfigException(setting, "'" + value + "' must be greater than zero");
        }
        return value;
    }

    /** Refuses null: a setting without a default of "none". */
    static <T> T present(String setting, T value) {
        if (value == null) {
            throw new ConfigException(setting, "must be set");
        }
        return value;
    }

    static int notNegative(String setting, int value) {
        if (value < 0) {
            throw new ConfigException(setting, "'" + value + "' must not be negative");
        }
        return value;
    }

    static Duration positive(String setting, Duration value) {
        if (value == null || value.isNegative() || value.isZero()) {
            throw new ConfigException(setting, "'" + value + "' must be a positive duration");
        }
        return value;
    }

    /** The value with control characters shown as escapes, so an error message stays on one line. */
    static String printable(String value) {
        StringBuilder sb = new StringBuilder(value.length());
        for (int i = 0; i < value.length(); i++) {
            char c = value.charAt(i);
            if (Character.isISOControl(c)) {
                sb.append(String.format("\\u%04x", (int) c));
            } else {
                sb.append(c);
            }
        }
        return sb.toString();
    }
}
