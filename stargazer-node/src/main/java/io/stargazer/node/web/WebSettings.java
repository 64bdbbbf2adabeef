// The settings of the node's HTTP server and web chat that come from the environment (docs/node.md, Settings): which
// host names it answers to, how fast one tab may publish, and how many tabs one gateway holds.
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
 * @param maxTabs           how many tabs one gateway holds at once; one more is refused (each holds up to
 *                          {@link ChatTab#MAX_BUFFERED_BYTES} waiting to be written, so this bounds what they all hold)
 */
public record WebSettings(List<String> allowedHosts, double messagesPerSecond, int burst, int maxTabs) {
    public static final String ENV_ALLOWED_HOSTS = "SG_HTTP_ALLOWED_HOSTS";
    public static final String ENV_RATE = "SG_WEBCHAT_RATE";
    public static final String ENV_BURST = "SG_WEBCHAT_BURST";
    public static final String ENV_MAX_TABS = "SG_WEBCHAT_MAX_TABS";
    public static final double DEFAULT_RATE = 20;
    public static final int DEFAULT_BURST = 40;
    /** With {@link ChatTab#MAX_BUFFERED_BYTES} each, at most 2 GiB waiting for tabs that all stop reading at once. */
    public static final int DEFAULT_MAX_TABS = 1000;
    public static final WebSettings DEFAULTS = new WebSettings(List.of(), DEFAULT_RATE, DEFAULT_BURST, DEFAULT_MAX_TABS);

    public WebSettings {
        allowedHosts = List.copyOf(allowedHosts);
    }

    /** Reads the variables (a blank one counts as unset); a bad value is a {@link ConfigException} naming it. */
    public static WebSettings fromEnvironment(Map<String, String> env) {
        return new WebSettings(hosts(value(env, ENV_ALLOWED_HOSTS)), rate(value(env, ENV_RATE)),
                count(ENV_BURST, value(env, ENV_BURST), DEFAULT_BURST, "messages"), count(ENV_MAX_TABS, value(env, ENV_MAX_TABS), DEFAULT_MAX_TABS, "tabs"));
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

    /** A whole number from 1 to 1000000 of {@code what} in variable {@code name}, or {@code otherwise} when unset. */
    private static int count(String name, String v, int otherwise, String what) {
        if (v == null) return otherwise;
        try {
            int n = Integer.parseInt(v);
            if (n >= 1 && n <= 1_000_000) return n;
        } catch (NumberFormatException e) {
            // said below
        }
        throw new ConfigException(name, "'" + v + "' is not a whole number of " + what + " from 1 to 1000000");
    }
}
