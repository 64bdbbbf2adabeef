// The servers the test suites run against: the shared default server (REDIS_URL, else one redis-server per test JVM
// as the launcher resolves it: STARGAZER_REDIS_SERVER, PATH, the embedded Redis 7.0.15), and Redis 6.2, the
// oldest server supported, for the suites' oldest-server leg. main() prints which ones a run uses.
package io.stargazer.testing;

import io.stargazer.embedded.RedisServerProcess;
import java.nio.file.Path;
import java.util.Locale;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.atomic.AtomicInteger;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Where tests find a Redis. {@link #url()} is the suite's shared server: {@code REDIS_URL} when set, else one
 * {@code redis-server} started for this JVM on a free port from the binary {@link RedisServerProcess#resolveBinary()}
 * picks. Tests that need a server of their own (to stop, restart or configure it) start {@link #server()}; tests of
 * the oldest supported server start {@link #redis62()}. Each test takes its own {@link #namespace()}, so tests
 * sharing a server never see each other's keys.
 */
public final class TestServers {
    private static final Logger log = LoggerFactory.getLogger(TestServers.class);
    private static final AtomicInteger COUNTER = new AtomicInteger();
    private static RedisServerProcess shared;
    private static String url;

    private TestServers() {
    }

    /** The shared server's URL ({@code redis://127.0.0.1:port}, or {@code REDIS_URL} as given). */
    public static synchronized String url() {
        if (url == null) {
            url = RedisServerProcess.redisUrlFromEnv().orElseGet(() -> {
                shared = RedisServerProcess.builder().start();
                log.info("Tests of this JVM share {} at {}", RedisServerProcess.describe(shared.binary()), shared.url());
                return shared.url();
            });
        }
        return url;
    }

    /** A fresh key prefix: {@code t<n>-<random>}. */
    public static String namespace() {
        return "t" + COUNTER.incrementAndGet() + "-" + Integer.toHexString(ThreadLocalRandom.current().nextInt(1 << 24));
    }

    /** A server of the default binary (the one the shared server runs), for a test to own. */
    public static RedisServerProcess.Builder server() {
        return RedisServerProcess.builder();
    }

    /** A Redis 6.2 server (the codemonstur embedded-redis jar's binary for this OS and CPU), for a test to own. */
    public static RedisServerProcess.Builder redis62() {
        return RedisServerProcess.builder().binary(redis62Binary());
    }

    /** The Redis 6.2 binary for this OS and CPU, extracted from the codemonstur embedded-redis jar. */
    public static Path redis62Binary() {
        String os = System.getProperty("os.name").toLowerCase(Locale.ROOT);
        String arch = System.getProperty("os.arch").toLowerCase(Locale.ROOT);
        boolean x64 = arch.equals("amd64") || arch.equals("x86_64");
        boolean arm64 = arch.equals("aarch64") || arch.equals("arm64");
        String resource = null;
        if (os.contains("linux")) {
            resource = x64 ? "redis-server-6.2.6-v5-linux-amd64" : arm64 ? "redis-server-6.2.7-linux-arm64"
                    : arch.equals("x86") || arch.matches("i[3-6]86") ? "redis-server-6.2.7-linux-386" : null;
        } else if (os.contains("mac") || os.contains("darwin")) {
            resource = x64 ? "redis-server-6.2.6-v5-darwin-amd64" : arm64 ? "redis-server-6.2.6-v5-darwin-arm64" : null;
        }
        if (resource == null) {
            throw new IllegalStateException("No embedded Redis 6.2 for " + os + "/" + arch);
        }
        return RedisServerProcess.extractFromClasspath(resource);
    }

    /** What the shared server is, in one line: the server, its version and where it was found, or REDIS_URL. */
    public static String describe() {
        return RedisServerProcess.redisUrlFromEnv().map(u -> "the server at REDIS_URL (" + u.replaceAll("//[^@/]*@", "//***@") + ")")
                .orElseGet(() -> RedisServerProcess.describe(RedisServerProcess.resolveBinary()));
    }

    /** Prints, on the build's console, which servers this run's tests use. */
    public static void main(String[] args) {
        System.out.println("[stargazer] Tests use " + describe());
        System.out.println("[stargazer] Oldest-server tests (*Redis62IT) use " + RedisServerProcess.describe(redis62Binary()));
    }
}
