package io.stargazer.bus;

import java.util.Locale;

/** How streams are kept within their cap ({@link BusConfig#streamMaxlen()}). */
public enum TrimPolicy {
    /**
     * Never remove an entry some group of the stream has not yet had delivered and acknowledged: at the cap, trim
     * only entries below the oldest such one (XTRIM MINID, approximate; Redis 8.2+: XADD's own ACKED option). When
     * nothing can be trimmed because a group lags, publishing applies the configured {@link Backpressure}.
     * A stream with no group has nothing to protect and is trimmed to its cap, without backpressure, by the same
     * check, which sees that it has no group in the step that trims: no publish carries MAXLEN, so a group created
     * after a process last looked loses nothing to that process's publishes.
     */
    SAFE,
    /** The original module's behaviour: approximate MAXLEN on every XADD, which may evict unread entries (logged). */
    EVICT;

    public static TrimPolicy parse(String setting, String value) {
        try {
            return valueOf(value.trim().toUpperCase(Locale.ROOT));
        } catch (RuntimeException e) {
            throw new ConfigException(setting, "'" + value + "' is not a trim policy (safe, evict)");
        }
    }
}
