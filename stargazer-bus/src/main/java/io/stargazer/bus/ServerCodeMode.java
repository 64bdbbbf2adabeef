package io.stargazer.bus;

import java.util.Locale;

/**
 * How the bus runs its server-side logic ({@code SG_SERVER_CODE}, {@link BusConfig#serverCode()}): as scripts sent
 * with {@code EVAL} (every server), or as the named functions of the {@code stargazer} Redis Functions library
 * ({@code FCALL}, Redis 7+), which {@code stargazer provision} loads (docs/functions.md).
 */
public enum ServerCodeMode {
    /**
     * Functions when the server has the library at this bus's version, else scripts; scripts on Redis 6.2, on a Redis
     * Cluster, and under {@link TrimPolicy#EVICT} (the functions never trim what a group has not acknowledged).
     */
    AUTO,
    /** Always the library's functions: connecting fails when the library is missing or of another version. */
    FUNCTIONS,
    /** Always scripts (EVAL), as before the library existed. */
    SCRIPTS;

    public static ServerCodeMode parse(String setting, String value) {
        try {
            return valueOf(value.trim().toUpperCase(Locale.ROOT));
        } catch (RuntimeException e) {
            throw new ConfigException(setting, "'" + value + "' is not a server code mode (auto, functions, scripts)");
        }
    }
}
