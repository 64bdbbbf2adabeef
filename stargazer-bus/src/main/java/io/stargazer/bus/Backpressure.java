package io.stargazer.bus;

import java.util.Locale;

/** What publishing to a {@link TrimPolicy#SAFE} stream does when it is at its cap and a group lags. */
public enum Backpressure {
    /** Hold the publish (in order) until there is room, up to {@link BusConfig#backpressureTimeout()}, then fail. */
    BLOCK,
    /** Fail at once. */
    REJECT;

    public static Backpressure parse(String setting, String value) {
        try {
            return valueOf(value.trim().toUpperCase(Locale.ROOT));
        } catch (RuntimeException e) {
            throw new ConfigException(setting, "'" + value + "' is not a backpressure mode (block, reject)");
        }
    }
}
