// The settings of the node's HTTP server and web chat that come from the environment (docs/node.md, Settings): which
// host names it answers to, and how fast one tab may publish.
package io.stargazer.node.web;

import io.stargazer.bus.ConfigException;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * @param allowedHosts      host names (lower case, no port) the HTTP server answers to besides its bind address,
 *                          {@code localhost} and IP addresses; {@code *} answers every name
 * @param messagesPerSecond how many messages a second one tab may publish, on average
 * @param burst             how many it may publish at once (the token bucket's size)
 */
public record WebSettings(List<String> allowedHosts, double messagesPerSecond, int burst) {
    public static final String ENV_ALLOWED_HOSTS = "SG_HTTP_ALLOWED_HOSTS";
    public static final String ENV_RATE = "SG_WEBCHAT_RATE";
    public static final String ENV_BURST = "SG_WEBCHAT_BURST";
    public static final double DEFAULT_RATE = 20;
    public static final int DEFAULT_BURST = 40;
    public static final WebSettings DEFAULTS = new WebSettings(List.of(), DEFAULT_RATE, DEFAULT_BURST);

    public WebSettings {
        allowedHosts = List.copyOf(allowedHosts);
    }

    /** Reads the variables (a blank one counts as unset); a bad value is a {@link ConfigException} naming it. */
    public static WebSettings fromEnvironment(Map<String, String> env) {
        return new WebSettings(hosts(value(env, ENV_ALLOWED_HOSTS)), rate(value(env, ENV_RATE)), burst(value(env, ENV_BURST)));
    }

    private static String value(Map<String, String> env, String name) {
        String v = env.get(name);
        return v == null || v.isBlank() ? null : v.strip();
    }

    private static List<String> hosts(String v) {
        List<String> hosts = new ArrayList<>();
        if (v == null) return hosts;
        for (String part : v.split(",")) {
            String h = normalize(part.strip());
            if (h.isEmpty()) continue;
            if (!h.equals("*") && !h.matches("[a-z0-9_.-]+|\\[[0-9a-f:.]+\\]")) {
                throw new ConfigException(ENV_ALLOWED_HOSTS, "'" + part.strip() + "' is not a host name (names only: no scheme, "
                        + "port or path; '*' for any)");
            }
            hosts.add(h);
        }
        return hosts;
    }

    /** A host name as compared: lower case, without the trailing dot of a fully qualified name. */
    static String normalize(String host) {
        String h = host.toLowerCase(Locale.ROOT);
        return h.endsWith(".") ? h.substring(0, h.length() - 1) : h;
    }

    private static double rate(String v) {
        if (v == null) return DEFAULT_RATE;
        try {
            double r = Double.parseDouble(v);
            if (r > 0 && r <= 1e6) return r;
        } catch (NumberFormatException e) {
            // said below
        }
        throw new ConfigException(ENV_RATE, "'" + v + "' is not a number of messages a second above 0 (at most 1000000)");
    }

    private static int burst(String v) {
        if (v == null) return DEFAULT_BURST;
        try {
            int b = Integer.parseInt(v);
            if (b >= 1 && b <= 1_000_000) return b;
        } catch (NumberFormatException e) {
            // said below
        }
        throw new ConfigException(ENV_BURST, "'" + v + "' is not a whole number of messages from 1 to 1000000");
    }
}
