// The settings of the node's HTTP server that come from the environment (docs/node.md, Settings): which host names it
// answers to.
package io.stargazer.node.web;

import io.stargazer.bus.ConfigException;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * @param allowedHosts host names (lower case, no port) the HTTP server answers to besides its bind address,
 *                     {@code localhost} and IP addresses; {@code *} answers every name
 */
public record WebSettings(List<String> allowedHosts) {
    public static final String ENV_ALLOWED_HOSTS = "SG_HTTP_ALLOWED_HOSTS";
    public static final WebSettings DEFAULTS = new WebSettings(List.of());

    public WebSettings {
        allowedHosts = List.copyOf(allowedHosts);
    }

    /** Reads the variables (a blank one counts as unset); a bad value is a {@link ConfigException} naming it. */
    public static WebSettings fromEnvironment(Map<String, String> env) {
        return new WebSettings(hosts(value(env, ENV_ALLOWED_HOSTS)));
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
}
