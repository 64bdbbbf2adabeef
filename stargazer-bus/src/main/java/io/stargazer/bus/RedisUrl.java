package io.stargazer.bus;

import java.net.URI;
import java.net.URISyntaxException;
import java.net.URLDecoder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;

/**
 * Where the Redis server is and how to log in: {@code redis://[user[:password]@]host[:port][/db]}, or
 * {@code rediss://} for TLS. The password is kept out of {@link #toString()} and every message built from it.
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

    private final boolean tls;
    private final String host;
    private final int port;
    private final String user;
    private final char[] password;
    private final int database;
    private final boolean verifyPeer;
    private final Path caFile;

    private RedisUrl(boolean tls, String host, int port, String user, char[] password, int database, boolean verifyPeer,
            Path caFile) {
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
        URI uri;
        try {
            uri = new URI(url.trim());
        } catch (URISyntaxException e) {
            throw new ConfigException(setting, "'" + redact(url) + "' is not a URL");
        }
        String scheme = uri.getScheme();
        if (!"redis".equals(scheme) && !"rediss".equals(scheme)) {
            throw new ConfigException(setting, "'" + redact(url) + "' must start with redis:// or rediss://");
        }
        if (uri.getHost() == null || uri.getHost().isEmpty()) {
            throw new ConfigException(setting, "'" + redact(url) + "' has no host");
        }
        // java.net.URI keeps the brackets of an IPv6 literal ("[::1]"); Lettuce and toString() want the bare address.
        String host = uri.getHost().startsWith("[") && uri.getHost().endsWith("]")
                ? uri.getHost().substring(1, uri.getHost().length() - 1) : uri.getHost();
        int port = uri.getPort() == -1 ? 6379 : uri.getPort();
        if (port < 1 || port > 65535) {
            throw new ConfigException(setting, "'" + redact(url) + "' names port " + port + ", not between 1 and 65535");
        }
        String user = null;
        char[] password = null;
        String info = uri.getRawUserInfo();
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
        return new RedisUrl("rediss".equals(scheme), host, port, user, password, db, true, null);
    }

    /**
     * {@code REDIS_URL} (default {@code redis://localhost:6379}) with the TLS settings of {@code env}:
     * {@value #ENV_CA_FILE} and {@value #ENV_TLS_VERIFY}. Both are refused on a {@code redis://} URL, where they
     * would do nothing, and a CA file that cannot be read is refused at once, naming the setting.
     */
    public static RedisUrl fromEnvironment(Map<String, String> env) {
        String raw = env.get(ENV_REDIS_URL);
        RedisUrl url = parse(ENV_REDIS_URL, raw == null || raw.isBlank() ? "redis://localhost:6379" : raw);
        String ca = env.get(ENV_CA_FILE);
        if (ca != null && !ca.isBlank()) {
            if (!url.tls) throw new ConfigException(ENV_CA_FILE, "is set but " + ENV_REDIS_URL + " is not rediss://");
            Path p = Path.of(ca.trim());
            if (!Files.isRegularFile(p) || !Files.isReadable(p)) {
                throw new ConfigException(ENV_CA_FILE, "'" + Settings.printable(ca) + "' is not a readable file");
            }
            url = url.withCaFile(p);
        }
        String verify = env.get(ENV_TLS_VERIFY);
        if (verify != null && !verify.isBlank()) {
            switch (verify.trim().toLowerCase(Locale.ROOT)) {
                case "full" -> { }
                case "none" -> {
                    if (!url.tls) throw new ConfigException(ENV_TLS_VERIFY, "is 'none' but " + ENV_REDIS_URL + " is not rediss://");
                    url = url.withInsecureTls();
                }
                default -> throw new ConfigException(ENV_TLS_VERIFY, "'" + Settings.printable(verify) + "' must be full or none");
            }
        }
        return url;
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
        return new RedisUrl(tls, host, port, user, password, database, verifyPeer, Objects.requireNonNull(caFile));
    }

    /** The same server with certificate verification off: only for tests and explicit operator choice. */
    public RedisUrl withInsecureTls() {
        return new RedisUrl(tls, host, port, user, password, database, false, caFile);
    }

    public RedisUrl withCredentials(String user, String password) {
        return new RedisUrl(tls, host, port, user, password == null ? null : password.toCharArray(), database, verifyPeer, caFile);
    }

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
        sb.append(host.contains(":") ? "[" + host + "]" : host).append(':').append(port);
        if (database != 0) sb.append('/').append(database);
        return sb.toString();
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof RedisUrl r && tls == r.tls && port == r.port && database == r.database && verifyPeer == r.verifyPeer
                && host.equals(r.host) && Objects.equals(user, r.user) && Arrays.equals(password, r.password)
                && Objects.equals(caFile, r.caFile);
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
