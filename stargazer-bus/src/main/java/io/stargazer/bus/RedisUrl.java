package io.stargazer.bus;

import io.stargazer.bus.internal.Settings;
import java.net.URI;
import java.net.URISyntaxException;
import java.net.URLDecoder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;

/**
 * Where the Redis server is and how to log in: {@code redis://[user[:password]@]host[:port][/db]}, or
 * {@code rediss://} for TLS. The password is kept out of {@link #toString()} and every message built from it.
 *
 * <p>Redis Cluster: {@code redis://[user[:password]@]host[:port][,host[:port]...][?cluster=true]}. More than one
 * host, {@code ?cluster=true}, or {@code SG_REDIS_CLUSTER=true} (through {@link #fromEnvironment} or
 * {@link #withEnvironment}) selects the cluster
 * client; the hosts are seeds only, the client discovers the rest of the cluster from any one of them. A cluster
 * has only database 0.
 *
 * <p>TLS verifies the server's certificate by default (against the JVM's trust store, or {@link #caFile()} when
 * set). Turning verification off takes an explicit {@link #withInsecureTls()}.
 */
public final class RedisUrl {
    public static final String ENV_REDIS_URL = "REDIS_URL";
    /** A PEM file of the CA certificate(s) to trust for {@code rediss://}, instead of the JVM's trust store. */
    public static final String ENV_CA_FILE = "SG_REDIS_CA_FILE";
    /** {@code full} (the default): verify the server's certificate chain and host name; {@code none}: verify nothing. */
    public static final String ENV_TLS_VERIFY = "SG_REDIS_TLS_VERIFY";
    public static final String ENV_REDIS_CLUSTER = "SG_REDIS_CLUSTER";

    /** One {@code host:port} of a URL. */
    public record Endpoint(String host, int port) {
        @Override
        public String toString() {
            return (host.contains(":") ? "[" + host + "]" : host) + ":" + port;
        }
    }

    private final boolean tls;
    private final String host;
    private final int port;
    private final String user;
    private final char[] password;
    private final int database;
    private final boolean verifyPeer;
    private final Path caFile;
    /** Set for Redis Cluster; then {@link #seeds} holds every host given, {@link #host}/{@link #port} the first. */
    private final boolean cluster;
    private final List<Endpoint> seeds;

    private RedisUrl(boolean tls, String host, int port, String user, char[] password, int database, boolean verifyPeer,
            Path caFile) {
        this(tls, host, port, user, password, database, verifyPeer, caFile, false, List.of());
    }

    private RedisUrl(boolean tls, String host, int port, String user, char[] password, int database, boolean verifyPeer,
            Path caFile, boolean cluster, List<Endpoint> seeds) {
        this.cluster = cluster;
        this.seeds = seeds.isEmpty() ? List.of(new Endpoint(host, port)) : List.copyOf(seeds);
        this.tls = tls;
        this.host = host;
        this.port = port;
        this.user = user;
        this.password = password;
        this.database = database;
        this.verifyPeer = verifyPeer;
        this.caFile = caFile;
    }

    /** Parses a URL; a bad one is a {@link ConfigException} naming {@code REDIS_URL} and the URL without its password. */
    public static RedisUrl parse(String url) {
        return parse(ENV_REDIS_URL, url);
    }

    public static RedisUrl parse(String setting, String url) {
        if (url == null || url.isBlank()) {
            throw new ConfigException(setting, "must not be empty");
        }
        // java.net.URI cannot parse a host list: parse the URL with its first host, the others on their own.
        String text = url.trim();
        List<String> moreHosts = new ArrayList<>();
        int authStart = text.indexOf("://");
        if (authStart >= 0) {
            authStart += 3;
            int authEnd = authStart;
            while (authEnd < text.length() && "/?#".indexOf(text.charAt(authEnd)) < 0) authEnd++;
            // A '/', '?' or '#' in a user name or password, unencoded, ends the authority there: the rest of the password,
            // the '@' and the real host would be read as path, query or fragment (a piece of the password as the host, or
            // quoted in the refusal as a port, a database, a parameter). Nothing legitimate after the host holds an '@'.
            if (text.indexOf('@', authEnd) >= 0) {
                throw new ConfigException(setting, "'" + redact(url) + "' has an '@' after a '/', '?' or '#': in a user name or"
                        + " password write them percent-encoded (%2F, %3F, %23)");
            }
            int hostsStart = text.lastIndexOf('@', authEnd - 1) + 1;
            if (hostsStart < authStart) hostsStart = authStart;
            String[] hosts = text.substring(hostsStart, authEnd).split(",", -1);
            if (hosts.length > 1) {
                moreHosts.addAll(List.of(hosts).subList(1, hosts.length));
                text = text.substring(0, hostsStart) + hosts[0] + text.substring(authEnd);
            }
        }
        int hash = text.indexOf('#');
        if (hash >= 0) {
            // A fragment means nothing here; taken and ignored it hid what was meant (redis://secret#x@host connected to "secret").
            throw new ConfigException(setting, "'" + redact(text.substring(0, hash)) + "' is followed by a '#' fragment, which a"
                    + " Redis URL does not take (a '#' in a password is written %23)");
        }
        URI uri;
        try {
            uri = new URI(text);
        } catch (URISyntaxException e) {
            throw new ConfigException(setting, "'" + redact(url) + "' is not a URL");
        }
        String scheme = uri.getScheme();
        if (!"redis".equals(scheme) && !"rediss".equals(scheme)) {
            throw new ConfigException(setting, "'" + redact(url) + "' must start with redis:// or rediss://");
        }
        String uriHost = uri.getHost();
        int uriPort = uri.getPort();
        String info = uri.getRawUserInfo();
        if (uriHost == null || uriHost.isEmpty()) {
            String auth = uri.getRawAuthority();
            int at = auth == null ? -1 : auth.lastIndexOf('@');
            String hostPort = auth == null ? "" : auth.substring(at + 1);
            java.util.regex.Matcher m = UNDERSCORE_HOST.matcher(hostPort);
            if (m.matches()) {
                // java.net.URI takes no host name with '_' (RFC 2396), which Docker Compose service names and DNS have.
                uriHost = m.group(1);
                uriPort = m.group(2) == null ? -1 : Integer.parseInt(m.group(2));
                info = at < 0 ? null : auth.substring(0, at);
            } else {
                // java.net.URI gives no host when the port is not a number: name the port, which is what is wrong.
                int colon = hostPort.lastIndexOf(':');
                if (colon > 0 && hostPort.indexOf(']') < colon && !hostPort.substring(colon + 1).matches("[0-9]*")) {
                    throw new ConfigException(setting, "'" + redact(url) + "' names port '" + Settings.printable(hostPort.substring(colon + 1))
                            + "', not a number");
                }
                throw new ConfigException(setting, "'" + redact(url) + "' has no host");
            }
        }
        // java.net.URI keeps the brackets of an IPv6 literal ("[::1]"); Lettuce and toString() want the bare address.
        String host = uriHost.startsWith("[") && uriHost.endsWith("]") ? uriHost.substring(1, uriHost.length() - 1) : uriHost;
        int port = uriPort == -1 ? 6379 : uriPort;
        if (port < 1 || port > 65535) {
            throw new ConfigException(setting, "'" + redact(url) + "' names port " + port + ", not between 1 and 65535");
        }
        String user = null;
        char[] password = null;
        if (info != null && !info.isEmpty()) {
            int colon = info.indexOf(':');
            String u = colon < 0 ? info : info.substring(0, colon);
            user = u.isEmpty() ? null : percentDecode(u);
            if (colon >= 0) {
                password = percentDecode(info.substring(colon + 1)).toCharArray();
            } else if (user != null) {
                // redis://secret@host is the old single-password form (Lettuce, redis-py): a password, no user.
                password = user.toCharArray();
                user = null;
            }
        }
        int db = 0;
        String path = uri.getPath();
        if (path != null && path.length() > 1) {
            try {
                db = Integer.parseInt(path.substring(1));
            } catch (NumberFormatException e) {
                throw new ConfigException(setting, "'" + redact(url) + "' names database '" + path.substring(1)
                        + "', not a number");
            }
            if (db < 0) throw new ConfigException(setting, "'" + redact(url) + "' names a negative database");
        }
        boolean cluster = !moreHosts.isEmpty();
        String query = uri.getRawQuery();
        if (query != null) {
            for (String param : query.split("&")) {
                int eq = param.indexOf('=');
                String name = eq < 0 ? param : param.substring(0, eq);
                if (name.equals("cluster")) {
                    cluster = parseFlag(setting, "'" + redact(url) + "' has cluster=", eq < 0 ? "" : param.substring(eq + 1));
                } else if (!name.isEmpty()) {
                    // A parameter taken and ignored would look like it worked (?custer=true connects to one node).
                    throw new ConfigException(setting, "'" + redact(url) + "' has the unknown parameter '" + Settings.printable(name)
                            + "' (the only one is cluster)");
                }
            }
        }
        List<Endpoint> seeds = new ArrayList<>();
        seeds.add(new Endpoint(host, port));
        for (String h : moreHosts) {
            seeds.add(parseEndpoint(setting, url, h));
        }
        if (!cluster && seeds.size() > 1) {
            throw new ConfigException(setting, "'" + redact(url) + "' names several hosts but cluster=false");
        }
        if (cluster && db != 0) {
            throw new ConfigException(setting, "'" + redact(url) + "' names database " + db + "; Redis Cluster has only database 0");
        }
        return new RedisUrl("rediss".equals(scheme), host, port, user, password, db, true, null, cluster, seeds);
    }

    /** A host name with an '_' (java.net.URI refuses it), and a port of at most 5 digits. */
    private static final java.util.regex.Pattern UNDERSCORE_HOST =
            java.util.regex.Pattern.compile("([A-Za-z0-9.-]*_[A-Za-z0-9_.-]*)(?::([0-9]{1,5}))?");

    private static boolean parseFlag(String setting, String prefix, String v) {
        switch (v.trim().toLowerCase(java.util.Locale.ROOT)) {
            case "true", "yes", "1", "on": return true;
            case "false", "no", "0", "off": return false;
            default: throw new ConfigException(setting, prefix + "'" + Settings.printable(v) + "', not true or false");
        }
    }

    /**
     * One more host of a host list, checked as the first is (java.net.URI's rules: an IPv6 address in brackets, no white
     * space); {@code hostPort} holds no '@', '/', '?' or '#' (the list is cut at them).
     */
    private static Endpoint parseEndpoint(String setting, String url, String hostPort) {
        int colon = hostPort.lastIndexOf(':');
        if (colon >= 0 && hostPort.indexOf(']') < colon && !hostPort.substring(colon + 1).matches("[0-9]+")) {
            throw new ConfigException(setting, "'" + redact(url) + "' has a host '" + Settings.printable(hostPort) + "' with a bad port");
        }
        String h = null;
        int p = -1;
        java.util.regex.Matcher m = UNDERSCORE_HOST.matcher(hostPort);
        if (m.matches()) {
            h = m.group(1);
            p = m.group(2) == null ? 6379 : Integer.parseInt(m.group(2));
        } else {
            try {
                URI u = new URI("redis://" + hostPort);
                h = u.getHost();
                p = u.getPort() == -1 ? 6379 : u.getPort();
            } catch (URISyntaxException e) {
                // refused below
            }
        }
        if (h != null && h.startsWith("[") && h.endsWith("]")) h = h.substring(1, h.length() - 1);
        if (h == null || h.isEmpty() || p < 1 || p > 65535) {
            throw new ConfigException(setting, "'" + redact(url) + "' has a bad host '" + Settings.printable(hostPort) + "'");
        }
        return new Endpoint(h, p);
    }

    /**
     * {@code REDIS_URL} (default {@code redis://localhost:6379}) with the settings of {@code env} applied as
     * {@link #withEnvironment(Map)} does.
     */
    public static RedisUrl fromEnvironment(Map<String, String> env) {
        String raw = Settings.env(env, ENV_REDIS_URL);
        return parse(ENV_REDIS_URL, raw == null ? "redis://localhost:6379" : raw).withEnvironment(env);
    }

    /**
     * This URL with the TLS and cluster settings of {@code env} (a blank one counts as unset): {@value #ENV_CA_FILE} and
     * {@value #ENV_TLS_VERIFY} (both refused on a {@code redis://} URL, where they would do nothing; a CA file that
     * cannot be read is refused at once, naming the setting), and cluster mode when {@value #ENV_REDIS_CLUSTER} is
     * {@code true} or the URL says so ({@code SG_REDIS_CLUSTER=false} with a cluster URL is refused as contradictory).
     * For a URL that came from elsewhere than {@code REDIS_URL} (a flag, a property): the one place these three are read
     * and checked, so every caller accepts and refuses the same values.
     */
    public RedisUrl withEnvironment(Map<String, String> env) {
        RedisUrl url = this;
        String ca = Settings.env(env, ENV_CA_FILE);
        if (ca != null) {
            if (!url.tls) throw new ConfigException(ENV_CA_FILE, "is set but the Redis URL '" + url + "' is not rediss://");
            Path p = Path.of(ca.trim());
            if (!Files.isRegularFile(p) || !Files.isReadable(p)) {
                throw new ConfigException(ENV_CA_FILE, "'" + Settings.printable(ca) + "' is not a readable file");
            }
            url = url.withCaFile(p);
        }
        String verify = Settings.env(env, ENV_TLS_VERIFY);
        if (verify != null) {
            switch (verify.trim().toLowerCase(Locale.ROOT)) {
                case "full" -> { }
                case "none" -> {
                    if (!url.tls) throw new ConfigException(ENV_TLS_VERIFY, "is 'none' but the Redis URL '" + url + "' is not rediss://");
                    url = url.withInsecureTls();
                }
                default -> throw new ConfigException(ENV_TLS_VERIFY, "'" + Settings.printable(verify) + "' must be full or none");
            }
        }
        String flag = Settings.env(env, ENV_REDIS_CLUSTER);
        if (flag == null) {
            return url;
        }
        boolean cluster = parseFlag(ENV_REDIS_CLUSTER, "", flag);
        if (!cluster && url.cluster) {
            throw new ConfigException(ENV_REDIS_CLUSTER, "'false' contradicts the Redis URL '" + url + "', which selects a cluster");
        }
        return url.withCluster(cluster);
    }

    /** {@link #fromEnvironment(Map)} of the process environment. */
    public static RedisUrl fromEnvironment() {
        return fromEnvironment(System.getenv());
    }

    /** Undoes %XX escapes only: URLDecoder alone is for form data and would turn a literal '+' into a space. */
    private static String percentDecode(String raw) {
        return URLDecoder.decode(raw.replace("+", "%2B"), StandardCharsets.UTF_8);
    }

    /** A plain {@code redis://host:port} URL. */
    public static RedisUrl of(String host, int port) {
        return new RedisUrl(false, host, port, null, null, 0, true, null);
    }

    /** The same server, trusting certificates issued by the CA in {@code caFile} (PEM). */
    public RedisUrl withCaFile(Path caFile) {
        return new RedisUrl(tls, host, port, user, password, database, verifyPeer, Objects.requireNonNull(caFile), cluster, seeds);
    }

    /** The same server with certificate verification off: only for tests and explicit operator choice. */
    public RedisUrl withInsecureTls() {
        return new RedisUrl(tls, host, port, user, password, database, false, caFile, cluster, seeds);
    }

    public RedisUrl withCredentials(String user, String password) {
        return new RedisUrl(tls, host, port, user, password == null ? null : password.toCharArray(), database, verifyPeer, caFile,
                cluster, seeds);
    }

    /** The same URL in cluster mode (or not); a cluster has only database 0. */
    public RedisUrl withCluster(boolean cluster) {
        if (cluster && database != 0) {
            throw new ConfigException(ENV_REDIS_CLUSTER, "'" + this + "' names database " + database + "; Redis Cluster has only database 0");
        }
        if (!cluster && seeds.size() > 1) {
            throw new ConfigException(ENV_REDIS_CLUSTER, "'" + this + "' names several hosts; only a cluster may");
        }
        return new RedisUrl(tls, host, port, user, password, database, verifyPeer, caFile, cluster, seeds);
    }

    /** True when the bus talks to a Redis Cluster (Lettuce's cluster client). */
    public boolean cluster() { return cluster; }

    /** Every host given, the first being {@link #host()}:{@link #port()}; for a cluster, the seeds it is discovered from. */
    public List<Endpoint> seeds() { return seeds; }

    public boolean tls() { return tls; }
    public String host() { return host; }
    public int port() { return port; }
    public String user() { return user; }
    public int database() { return database; }
    public boolean verifyPeer() { return verifyPeer; }
    public Path caFile() { return caFile; }

    /** A copy of the password, or {@code null}; callers should clear it after use. */
    public char[] password() {
        return password == null ? null : password.clone();
    }

    /** The URL with the password replaced by {@code ***}. */
    @Override
    public String toString() {
        StringBuilder sb = new StringBuilder(tls ? "rediss://" : "redis://");
        if (user != null || password != null) {
            if (user != null) sb.append(user);
            if (password != null) sb.append(":***");
            sb.append('@');
        }
        for (int i = 0; i < seeds.size(); i++) {
            if (i > 0) sb.append(',');
            sb.append(seeds.get(i));
        }
        if (database != 0) sb.append('/').append(database);
        if (cluster) sb.append("?cluster=true");
        return sb.toString();
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof RedisUrl r && tls == r.tls && port == r.port && database == r.database && verifyPeer == r.verifyPeer
                && host.equals(r.host) && Objects.equals(user, r.user) && Arrays.equals(password, r.password)
                && Objects.equals(caFile, r.caFile) && cluster == r.cluster && seeds.equals(r.seeds);
    }

    @Override
    public int hashCode() {
        return Objects.hash(tls, host, port, user, database);
    }

    /** Best-effort redaction of a URL that did not parse: drops everything between "://" and the last '@'. */
    static String redact(String url) {
        int scheme = url.indexOf("://");
        int at = url.lastIndexOf('@');
        if (scheme >= 0 && at > scheme) {
            return url.substring(0, scheme + 3) + "***@" + url.substring(at + 1);
        }
        return url;
    }
}
