// Runs a real redis-server child process (PATH binary, or the Redis 7.0.15 shipped in org.signal:embedded-redis)
// so test suites and a node without an external Redis get genuine Redis semantics, not a fake.
package io.stargazer.embedded;

import java.io.ByteArrayOutputStream;
import java.io.EOFException;
import java.io.File;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.RandomAccessFile;
import java.io.UncheckedIOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.nio.file.StandardCopyOption;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Locale;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A {@code redis-server} child process on a loopback port. The binary is {@code $STARGAZER_REDIS_SERVER} when set
 * (any Redis 6.2+ or Valkey 7.2+ server), else {@code redis-server} on PATH, else the static Redis 7.0.15 (with TLS)
 * that the {@code org.signal:embedded-redis} jar ships for Linux (x86-64, arm64, x86) and macOS (x86-64, arm64),
 * extracted once into {@code $java.io.tmpdir/stargazer-redis}. {@link #describe(Path)} says which one was taken.
 */
public final class RedisServerProcess implements AutoCloseable {

    public static final String BINARY_ENV = "STARGAZER_REDIS_SERVER";
    public static final String REDIS_URL_ENV = "REDIS_URL";

    private static final Logger log = LoggerFactory.getLogger(RedisServerProcess.class);
    private static final Pattern VERSION = Pattern.compile("v=(\\S+)");
    // glibc's wording, and musl's (the static embedded binary): "bind: Address in use".
    private static final Pattern ADDRESS_IN_USE = Pattern.compile("Address (already )?in use");
    private static final int FREE_PORT_ATTEMPTS = 3;
    // Redis sets SO_REUSEADDR, so this only covers the old process still holding the socket.
    private static final Duration REBIND_WINDOW = Duration.ofSeconds(10);
    private static final Duration STOP_GRACE = Duration.ofSeconds(10);
    private static final int LOG_TAIL_LINES = 20;
    // Debian's 6379 server (and any other Redis) must never be mistaken for ours.
    private static final int RESERVED_PORT = 6379;
    /** The Redis of the org.signal:embedded-redis jar: the fallback when the machine has no redis-server. */
    static final String EMBEDDED_VERSION = "7.0.15";
    private static final Path EMBEDDED_DIR = Paths.get(System.getProperty("java.io.tmpdir"), "stargazer-redis");

    // One hook for all instances: a crashed or forgetful test JVM must not leave redis-server orphans.
    private static final Set<RedisServerProcess> RUNNING = ConcurrentHashMap.newKeySet();
    static {
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            for (RedisServerProcess server : RUNNING) {
                if (!server.reapOnExit) continue; // left to its owner's hook meanwhile (leaveToOwner)
                server.destroyNow();
                server.deleteDataDirIfOwned();
            }
        }, "stargazer-redis-reaper"));
    }

    private final Path binary;
    private final String host;
    private final Path dataDir;
    private final boolean ownsDataDir;
    private final Path logFile;
    private final boolean appendOnly;
    private final List<String> extraArgs;
    private final String password;
    private final Duration startTimeout;
    /** In the JVM-exit reaper ({@link #RUNNING}) while running; false after {@link #leaveToOwner}. */
    private volatile boolean reapOnExit = true;
    /** The TLS port: given in the arguments, or chosen free with the port at each start-up attempt ({@link #freeTlsPort}). */
    private volatile int tlsPort;
    /** TLS on a port of our choosing ({@link Builder#tls} without {@code --tls-port}). */
    private final boolean freeTlsPort;
    private volatile int port;
    private volatile Process process;
    private volatile String version;

    private RedisServerProcess(Builder b, Path binary, Path dataDir, boolean ownsDataDir) {
        this.binary = binary;
        this.host = b.bind;
        this.port = b.port;
        this.dataDir = dataDir;
        this.ownsDataDir = ownsDataDir;
        this.logFile = b.logFile != null ? b.logFile.toAbsolutePath() : dataDir.resolve("redis.log");
        this.appendOnly = b.appendOnly;
        this.extraArgs = List.copyOf(b.args);
        this.password = valueOf(extraArgs, "--requirepass");
        this.startTimeout = b.startTimeout;
        String tls = valueOf(extraArgs, "--tls-port");
        this.tlsPort = tls == null ? 0 : Integer.parseInt(tls);
        this.freeTlsPort = b.tls != null && tls == null;
    }

    public static Builder builder() {
        return new Builder();
    }

    /** {@code REDIS_URL} when set and non-blank: callers then use that server instead of starting one. */
    public static Optional<String> redisUrlFromEnv() {
        String url = System.getenv(REDIS_URL_ENV);
        return url == null || url.isBlank() ? Optional.empty() : Optional.of(url.trim());
    }

    /** {@code $STARGAZER_REDIS_SERVER}, else {@code redis-server} on PATH, else the embedded Redis 7.0.15. */
    public static Path resolveBinary() {
        return resolveBinary(false);
    }

    /** With {@code embeddedOnly}, skips the env var and PATH: the embedded Redis 7.0.15 whatever the machine has. */
    public static Path resolveBinary(boolean embeddedOnly) {
        if (!embeddedOnly) {
            String explicit = System.getenv(BINARY_ENV);
            if (explicit != null && !explicit.isBlank()) {
                Path p = Paths.get(explicit.trim());
                if (!Files.isRegularFile(p) || !Files.isExecutable(p)) {
                    throw new IllegalStateException(BINARY_ENV + "=" + explicit + " is not an executable file");
                }
                return p;
            }
            Optional<Path> onPath = findOnPath("redis-server");
            if (onPath.isPresent()) {
                return onPath.get();
            }
        }
        return extractFromClasspath(embeddedResourceName());
    }

    /**
     * One line naming the server a binary is and where it was found, e.g. {@code redis-server 7.0.15
     * (/usr/bin/redis-server, redis-server on PATH)}: what a test run or a node says about the server it used.
     */
    public static String describe(Path binary) {
        String explicit = System.getenv(BINARY_ENV);
        String from;
        if (explicit != null && !explicit.isBlank() && Paths.get(explicit.trim()).equals(binary)) {
            from = BINARY_ENV;
        } else if (binary.startsWith(EMBEDDED_DIR)) {
            from = "extracted from the " + binary.getFileName() + " resource"
                    + (binary.getFileName().toString().equals(embeddedResourceName()) ? " of org.signal:embedded-redis" : "");
        } else if (findOnPath("redis-server").filter(binary::equals).isPresent()) {
            from = "redis-server on PATH";
        } else {
            from = "given explicitly";
        }
        String name = binary.getFileName().toString().startsWith("valkey") ? "valkey-server" : "redis-server";
        return name + " " + version(binary) + " (" + binary + ", " + from + ")";
    }

    /** Parses {@code redis-server --version} ("... v=7.0.15 ...", Valkey's too) into "7.0.15". */
    public static String version(Path binary) {
        try {
            Process p = new ProcessBuilder(binary.toString(), "--version").redirectErrorStream(true).start();
            String out;
            try (InputStream in = p.getInputStream()) {
                out = new String(in.readAllBytes(), StandardCharsets.UTF_8);
            }
            p.waitFor(10, TimeUnit.SECONDS);
            Matcher m = VERSION.matcher(out);
            if (!m.find()) {
                throw new IllegalStateException("Cannot parse version from '" + out.trim() + "' (" + binary + ")");
            }
            return m.group(1);
        } catch (IOException e) {
            throw new UncheckedIOException("Cannot run " + binary + " --version", e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("Interrupted while running " + binary + " --version", e);
        }
    }

    public int port() {
        return port;
    }

    public String host() {
        return host;
    }

    public String url() {
        return "redis://" + host + ":" + port;
    }

    /** The TLS port when started with {@link Builder#tls}, else 0. */
    public int tlsPort() {
        return tlsPort;
    }

    /** {@code rediss://host:tlsPort}; only for a server started with {@link Builder#tls}. */
    public String tlsUrl() {
        if (tlsPort == 0) {
            throw new IllegalStateException("redis-server was started without TLS");
        }
        return "rediss://" + host + ":" + tlsPort;
    }

    public String version() {
        if (version == null) {
            version = version(binary);
        }
        return version;
    }

    public Path binary() {
        return binary;
    }

    public Path dataDir() {
        return dataDir;
    }

    public Path logFile() {
        return logFile;
    }

    public long pid() {
        Process p = process;
        if (p == null) {
            throw new IllegalStateException("redis-server is not started");
        }
        return p.pid();
    }

    public boolean isAlive() {
        Process p = process;
        return p != null && p.isAlive();
    }

    /** Graceful SHUTDOWN NOSAVE (AOF is fsynced anyway), escalating to signals; removes a temp data dir. */
    public synchronized void stop() {
        shutdownProcess();
        RUNNING.remove(this);
        deleteDataDirIfOwned();
    }

    /**
     * From now on only its owner stops this server: it leaves the JVM-exit reaper, which kills servers at once and in
     * parallel with every other shutdown hook. For an owner that stops the server in its own hook, after its clients
     * have finished (the node: consumers settle their in-flight entries, then Redis stops and flushes its AOF), called
     * once that hook is in place: until then the reaper stops it, so a process ended sooner leaves no redis-server behind.
     */
    public synchronized void leaveToOwner() {
        reapOnExit = false;
        RUNNING.remove(this);
    }

    /** SIGKILL, as a crash would; the data dir is kept so {@link #restart()} can show what survived. */
    public synchronized void kill() {
        Process p = process;
        if (p != null) {
            p.destroyForcibly();
            awaitExit(p, STOP_GRACE);
        }
    }

    /** Same port, data dir and args: with appendOnly the server reloads its AOF before this returns. */
    public synchronized void restart() {
        shutdownProcess();
        launchOnSamePort();
    }

    @Override
    public void close() {
        stop();
    }

    @Override
    public String toString() {
        return "redis-server[" + url() + ", " + binary + "]";
    }

    // ---- start-up -------------------------------------------------------------------------------

    private void launchOnFreePort() {
        RuntimeException last = null;
        for (int attempt = 1; attempt <= FREE_PORT_ATTEMPTS; attempt++) {
            port = freePort(host);
            // Chosen again with the port: one taken by another process meanwhile is not tried on every attempt.
            if (freeTlsPort) tlsPort = freePort(host);
            try {
                launch();
                return;
            } catch (AddressInUse e) {
                // Another process grabbed the port (or the TLS port) between our probe and redis binding it.
                log.debug("Port {} or TLS port {} taken before redis-server bound it (attempt {})", port, tlsPort, attempt);
                last = e;
            }
        }
        throw last;
    }

    private void launchOnSamePort() {
        long deadline = System.nanoTime() + REBIND_WINDOW.toNanos();
        while (true) {
            try {
                launch();
                return;
            } catch (AddressInUse e) {
                if (System.nanoTime() > deadline) {
                    throw e;
                }
                pause(100);
            }
        }
    }

    private void launch() {
        List<String> cmd = command();
        long logOffset;
        try {
            // A restart after stop() finds its temp data dir deleted.
            Files.createDirectories(dataDir);
            Files.createDirectories(logFile.getParent());
            logOffset = Files.exists(logFile) ? Files.size(logFile) : 0;
            // A file instead of a pipe: the server can never block on a full pipe, and no reader thread is needed.
            process = new ProcessBuilder(cmd)
                    .directory(dataDir.toFile())
                    .redirectErrorStream(true)
                    .redirectOutput(ProcessBuilder.Redirect.appendTo(logFile.toFile()))
                    .start();
        } catch (IOException e) {
            throw new UncheckedIOException("Cannot start " + String.join(" ", cmd), e);
        }
        if (reapOnExit) {
            RUNNING.add(this);
        }
        Process p = process;
        long deadline = System.nanoTime() + startTimeout.toNanos();
        while (true) {
            if (!p.isAlive()) {
                awaitExit(p, STOP_GRACE);
                String tail = logTail(logOffset);
                String msg = "redis-server exited with code " + p.exitValue() + " during start-up on port " + port
                        + "; last output:\n" + tail;
                if (ADDRESS_IN_USE.matcher(tail).find()) {
                    throw new AddressInUse(msg);
                }
                throw new IllegalStateException(msg);
            }
            if (isReady(p.pid())) {
                log.info("redis-server {} started: pid {}, {}, data dir {}", binary, p.pid(), url(), dataDir);
                return;
            }
            if (System.nanoTime() > deadline) {
                destroyNow();
                throw new IllegalStateException("redis-server did not answer PING on port " + port + " within "
                        + startTimeout.toMillis() + " ms; last output:\n" + logTail(logOffset));
            }
            pause(50);
        }
    }

    private List<String> command() {
        List<String> cmd = new ArrayList<>();
        cmd.add(binary.toString());
        cmd.addAll(List.of("--port", Integer.toString(port), "--bind", host, "--dir", dataDir.toString()));
        addDefault(cmd, "--daemonize", "no");
        // Snapshots would only slow tests down and write dump.rdb files nobody asked for.
        addDefault(cmd, "--save", "");
        addDefault(cmd, "--appendonly", appendOnly ? "yes" : "no");
        if (appendOnly) {
            // Every acknowledged write is on disk, so kill()/restart() tests can demand zero loss.
            addDefault(cmd, "--appendfsync", "always");
        }
        if (freeTlsPort) cmd.addAll(List.of("--tls-port", Integer.toString(tlsPort)));
        cmd.addAll(extraArgs);
        return cmd;
    }

    private void addDefault(List<String> cmd, String directive, String value) {
        if (!extraArgs.contains(directive)) {
            cmd.add(directive);
            cmd.add(value);
        }
    }

    // Ours, not some other server on the port (process_id), and done loading its AOF/RDB (loading:0).
    private boolean isReady(long pid) {
        List<String> replies;
        try {
            replies = password != null
                    ? call(host, port, List.of("AUTH", password), List.of("PING"), List.of("INFO"))
                    : call(host, port, List.of("PING"), List.of("INFO"));
        } catch (IOException e) {
            return false;
        }
        if (replies.stream().anyMatch(r -> r.startsWith("-NOAUTH"))) {
            // Password set by means we cannot see (e.g. an ACL file): answering at all is the best signal.
            return true;
        }
        String info = replies.get(replies.size() - 1);
        return replies.contains("+PONG")
                && info.contains("process_id:" + pid + "\r\n")
                && info.contains("loading:0");
    }

    // ---- shutdown -------------------------------------------------------------------------------

    private void shutdownProcess() {
        Process p = process;
        if (p == null || !p.isAlive()) {
            return;
        }
        try {
            if (password != null) {
                call(host, port, List.of("AUTH", password), List.of("SHUTDOWN", "NOSAVE"));
            } else {
                call(host, port, List.of("SHUTDOWN", "NOSAVE"));
            }
        } catch (IOException expected) {
            // The server closes the connection instead of replying to a successful SHUTDOWN.
        }
        if (!awaitExit(p, STOP_GRACE)) {
            p.destroy();
            if (!awaitExit(p, STOP_GRACE)) {
                p.destroyForcibly();
                awaitExit(p, STOP_GRACE);
            }
        }
    }

    private void destroyNow() {
        Process p = process;
        if (p != null && p.isAlive()) {
            p.destroyForcibly();
            awaitExit(p, STOP_GRACE);
        }
    }

    private void deleteDataDirIfOwned() {
        if (!ownsDataDir || !Files.exists(dataDir)) {
            return;
        }
        try (Stream<Path> walk = Files.walk(dataDir)) {
            walk.sorted(Comparator.reverseOrder()).forEach(path -> path.toFile().delete());
        } catch (IOException e) {
            log.warn("Cannot delete redis data dir {}", dataDir, e);
        }
    }

    private static boolean awaitExit(Process p, Duration timeout) {
        try {
            return p.waitFor(timeout.toMillis(), TimeUnit.MILLISECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return !p.isAlive();
        }
    }

    // ---- helpers --------------------------------------------------------------------------------

    private String logTail(long fromOffset) {
        try (RandomAccessFile f = new RandomAccessFile(logFile.toFile(), "r")) {
            long len = f.length();
            long start = Math.max(fromOffset, len - 64 * 1024);
            byte[] buf = new byte[(int) (len - start)];
            f.seek(start);
            f.readFully(buf);
            String[] lines = new String(buf, StandardCharsets.UTF_8).split("\r?\n");
            int from = Math.max(0, lines.length - LOG_TAIL_LINES);
            return String.join("\n", List.of(lines).subList(from, lines.length));
        } catch (IOException e) {
            return "(cannot read " + logFile + ": " + e + ")";
        }
    }

    private static int freePort(String host) {
        for (int i = 0; i < 10; i++) {
            try (ServerSocket s = new ServerSocket(0, 1, InetAddress.getByName(host))) {
                int candidate = s.getLocalPort();
                if (candidate != RESERVED_PORT) {
                    return candidate;
                }
            } catch (IOException e) {
                throw new UncheckedIOException("Cannot find a free port on " + host, e);
            }
        }
        throw new IllegalStateException("Cannot find a free port on " + host);
    }

    private static String valueOf(List<String> args, String directive) {
        int i = args.indexOf(directive);
        return i >= 0 && i + 1 < args.size() ? args.get(i + 1) : null;
    }

    private static void pause(long millis) {
        try {
            Thread.sleep(millis);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("Interrupted while waiting for redis-server", e);
        }
    }

    private static Optional<Path> findOnPath(String name) {
        String path = System.getenv("PATH");
        if (path == null) {
            return Optional.empty();
        }
        for (String dir : path.split(File.pathSeparator)) {
            if (dir.isBlank()) {
                continue;
            }
            Path candidate = Paths.get(dir, name);
            if (Files.isRegularFile(candidate) && Files.isExecutable(candidate)) {
                return Optional.of(candidate);
            }
        }
        return Optional.empty();
    }

    /** The org.signal:embedded-redis resource for this OS and CPU: its static Redis 7.0.15, built with TLS. */
    static String embeddedResourceName() {
        String os = System.getProperty("os.name").toLowerCase(Locale.ROOT);
        String arch = System.getProperty("os.arch").toLowerCase(Locale.ROOT);
        String cpu = arch.equals("amd64") || arch.equals("x86_64") ? "amd64"
                : arch.equals("aarch64") || arch.equals("arm64") ? "arm64"
                : arch.equals("x86") || arch.matches("i[3-6]86") ? "386" : null;
        String system = os.contains("linux") ? "linux" : os.contains("mac") || os.contains("darwin") ? "darwin" : null;
        if (cpu == null || system == null || (system.equals("darwin") && cpu.equals("386"))) {
            throw new IllegalStateException("No embedded redis-server for " + os + "/" + arch
                    + "; install redis-server on PATH or set " + BINARY_ENV);
        }
        return "redis-server-" + EMBEDDED_VERSION + "-" + system + "-" + cpu;
    }

    /**
     * Copies an executable resource of the classpath (a redis-server binary shipped in a jar) to
     * {@code $java.io.tmpdir/stargazer-redis/<resource>} once, and returns that file. Cached across JVMs; the
     * temp-file-then-rename keeps concurrent test forks from running a half-written file.
     */
    public static Path extractFromClasspath(String resource) {
        Path target = EMBEDDED_DIR.resolve(resource);
        if (Files.isRegularFile(target) && Files.isExecutable(target)) {
            return target;
        }
        try (InputStream in = RedisServerProcess.class.getClassLoader().getResourceAsStream(resource)) {
            if (in == null) {
                throw new IllegalStateException("Resource " + resource + " not on the classpath (embedded-redis jar missing?)");
            }
            Files.createDirectories(target.getParent());
            Path tmp = Files.createTempFile(target.getParent(), resource, ".part");
            try {
                Files.copy(in, tmp, StandardCopyOption.REPLACE_EXISTING);
                if (!tmp.toFile().setExecutable(true, false)) {
                    throw new IOException("Cannot make " + tmp + " executable");
                }
                try {
                    Files.move(tmp, target, StandardCopyOption.ATOMIC_MOVE);
                } catch (AtomicMoveNotSupportedException e) {
                    Files.move(tmp, target, StandardCopyOption.REPLACE_EXISTING);
                }
            } finally {
                Files.deleteIfExists(tmp);
            }
            return target;
        } catch (IOException e) {
            throw new UncheckedIOException("Cannot extract " + resource + " to " + target, e);
        }
    }

    // ---- the probe: PING, INFO, AUTH and SHUTDOWN in RESP, so the launcher needs no Redis client ----------

    /**
     * Sends the commands pipelined on one connection; one reply each, as text: a status, error or integer line keeps
     * its +, - or : prefix, a bulk string is its content (nil: null). Arrays are not read: no probe command has one.
     */
    static List<String> call(String host, int port, List<?>... commands) throws IOException {
        try (Socket socket = new Socket()) {
            socket.connect(new InetSocketAddress(host, port), 1000);
            socket.setSoTimeout(2000);
            StringBuilder req = new StringBuilder();
            for (List<?> command : commands) {
                req.append('*').append(command.size()).append("\r\n");
                for (Object arg : command) {
                    String a = String.valueOf(arg);
                    req.append('$').append(a.getBytes(StandardCharsets.UTF_8).length).append("\r\n").append(a).append("\r\n");
                }
            }
            OutputStream out = socket.getOutputStream();
            out.write(req.toString().getBytes(StandardCharsets.UTF_8));
            out.flush();
            InputStream in = socket.getInputStream();
            List<String> replies = new ArrayList<>();
            for (int i = 0; i < commands.length; i++) {
                String line = readLine(in);
                int len = line.startsWith("$") ? Integer.parseInt(line.substring(1)) : -2;
                replies.add(len == -2 ? line : len < 0 ? null : new String(in.readNBytes(len + 2), 0, len, StandardCharsets.UTF_8));
            }
            return replies;
        }
    }

    private static String readLine(InputStream in) throws IOException {
        ByteArrayOutputStream line = new ByteArrayOutputStream();
        for (int c = in.read(); c != '\n'; c = in.read()) {
            if (c < 0) {
                throw new EOFException("Connection closed by redis-server");
            }
            line.write(c);
        }
        String s = line.toString(StandardCharsets.UTF_8);
        return s.endsWith("\r") ? s.substring(0, s.length() - 1) : s;
    }

    /** The port was taken: start-up on a free port tries another, a restart waits for the old process to let go. */
    static final class AddressInUse extends IllegalStateException {
        AddressInUse(String message) {
            super(message);
        }
    }

    /** Configures a server; {@link #start()} returns it running and answering PING. */
    public static final class Builder {
        private int port;
        private String bind = "127.0.0.1";
        private Path dataDir;
        private boolean appendOnly;
        private final List<String> args = new ArrayList<>();
        private Path binary;
        private boolean embeddedOnly;
        private Path logFile;
        private Duration startTimeout = Duration.ofSeconds(20);
        private Path[] tls;

        private Builder() {
        }

        /** 0 (the default) picks a free loopback port. */
        public Builder port(int port) {
            if (port < 0 || port > 65535) {
                throw new IllegalArgumentException("port " + port);
            }
            this.port = port;
            return this;
        }

        public Builder bind(String address) {
            this.bind = address;
            return this;
        }

        /** Kept on stop; without it a fresh temp dir is used and deleted on stop. */
        public Builder dataDir(Path dir) {
            this.dataDir = dir;
            return this;
        }

        public Builder appendOnly(boolean appendOnly) {
            this.appendOnly = appendOnly;
            return this;
        }

        /** Extra directives as on the command line, e.g. {@code arg("--requirepass", "x")}; they win over defaults. */
        public Builder arg(String... directiveAndValues) {
            for (String a : directiveAndValues) {
                if (a.equals("--port") || a.equals("--bind") || a.equals("--dir")) {
                    throw new IllegalArgumentException(a + " is set through the builder method of the same name");
                }
            }
            args.addAll(List.of(directiveAndValues));
            return this;
        }

        /**
         * Also listens with TLS on a free port ({@link RedisServerProcess#tlsPort()}), with this certificate, key and CA (PEM files),
         * not asking clients for certificates. The plain port stays open on the bind address: the launcher's own
         * readiness check and shutdown use it. Needs a redis-server built with TLS (Debian's, Valkey's and the embedded
         * 7.0.15 are).
         */
        public Builder tls(Path certFile, Path keyFile, Path caCertFile) {
            this.tls = new Path[] {certFile.toAbsolutePath(), keyFile.toAbsolutePath(), caCertFile.toAbsolutePath()};
            return this;
        }

        public Builder binary(Path binary) {
            this.binary = binary;
            return this;
        }

        /** Ignores STARGAZER_REDIS_SERVER and PATH: runs the Redis 7.0.15 shipped in the org.signal:embedded-redis jar. */
        public Builder embeddedBinaryOnly() {
            this.embeddedOnly = true;
            return this;
        }

        /** Where server output goes; defaults to {@code redis.log} in the data dir. */
        public Builder logFile(Path file) {
            this.logFile = file;
            return this;
        }

        public Builder startTimeout(Duration timeout) {
            this.startTimeout = timeout;
            return this;
        }

        public RedisServerProcess start() {
            Path bin = binary != null ? binary : resolveBinary(embeddedOnly);
            boolean owns = dataDir == null;
            Path dir;
            try {
                dir = owns ? Files.createTempDirectory("stargazer-redis-") : Files.createDirectories(dataDir);
            } catch (IOException e) {
                throw new UncheckedIOException("Cannot create redis data dir", e);
            }
            if (tls != null && !args.contains("--tls-port")) {
                // The TLS port, unless given, is chosen with the port at each attempt (launchOnFreePort).
                args.addAll(List.of("--tls-cert-file", tls[0].toString(), "--tls-key-file", tls[1].toString(),
                        "--tls-ca-cert-file", tls[2].toString(), "--tls-auth-clients", "no"));
            }
            RedisServerProcess server = new RedisServerProcess(this, bin, dir.toAbsolutePath(), owns);
            try {
                if (port == 0) {
                    server.launchOnFreePort();
                } else {
                    if (server.freeTlsPort) server.tlsPort = freePort(bind);
                    server.launch();
                }
                return server;
            } catch (RuntimeException e) {
                server.stop();
                throw e;
            }
        }
    }
}
