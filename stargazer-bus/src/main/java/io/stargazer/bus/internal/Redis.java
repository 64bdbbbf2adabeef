package io.stargazer.bus.internal;

import io.lettuce.core.AbstractRedisClient;
import io.lettuce.core.ClientOptions;
import io.lettuce.core.RedisClient;
import io.lettuce.core.RedisCommandExecutionException;
import io.lettuce.core.RedisCommandTimeoutException;
import io.lettuce.core.RedisException;
import io.lettuce.core.RedisURI;
import io.lettuce.core.SocketOptions;
import io.lettuce.core.SslOptions;
import io.lettuce.core.SslVerifyMode;
import io.lettuce.core.TimeoutOptions;
import io.lettuce.core.api.StatefulConnection;
import io.lettuce.core.api.StatefulRedisConnection;
import io.lettuce.core.cluster.ClusterClientOptions;
import io.lettuce.core.cluster.ClusterTopologyRefreshOptions;
import io.lettuce.core.cluster.RedisClusterClient;
import io.lettuce.core.cluster.api.StatefulRedisClusterConnection;
import io.lettuce.core.cluster.api.async.RedisClusterAsyncCommands;
import io.lettuce.core.cluster.api.sync.RedisClusterCommands;
import io.lettuce.core.codec.ByteArrayCodec;
import io.lettuce.core.codec.RedisCodec;
import io.lettuce.core.codec.StringCodec;
import io.lettuce.core.resource.ClientResources;
import io.stargazer.bus.BusConnectionException;
import io.stargazer.bus.RedisServerException;
import io.stargazer.bus.RedisUrl;
import io.stargazer.bus.StargazerException;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The Lettuce client of one bus, and the translation of Lettuce's exceptions into the bus's own.
 *
 * <p>Two codecs: publishing and diagnostics use String keys and byte[] values; reading uses byte[] for both, so an
 * entry's field names survive byte for byte into a dead-letter copy even when they are not UTF-8.
 *
 * <p>One server uses Lettuce's {@link RedisClient}; a Redis Cluster ({@link RedisUrl#cluster()}) its
 * {@link RedisClusterClient}, which routes each command by its first key and follows MOVED/ASK. Callers see the
 * commands through the interfaces both share ({@link RedisClusterAsyncCommands}, {@link RedisClusterCommands}), and
 * every command the bus sends names at most one key (scripts too), so no command spans two slots.
 */
public final class Redis implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(Redis.class);

    static final RedisCodec<String, byte[]> CODEC = RedisCodec.of(StringCodec.UTF8, ByteArrayCodec.INSTANCE);
    static final RedisCodec<byte[], byte[]> BYTES = ByteArrayCodec.INSTANCE;
    /** Upper bound for any non-blocking command; blocking reads get their BLOCK time on top. */
    static final Duration COMMAND_TIMEOUT = Duration.ofSeconds(10);
    /** Cluster: how often the topology is re-read anyway; failures and redirects trigger a re-read sooner. */
    static final Duration TOPOLOGY_REFRESH = Duration.ofSeconds(5);
    /** Cluster: the least time between two triggered re-reads, so a failover is followed within about this. */
    static final Duration ADAPTIVE_REFRESH_LIMIT = Duration.ofSeconds(1);

    private final RedisUrl url;
    private final AbstractRedisClient client;
    /**
     * Client for dedicated reader connections, with auto-reconnect off: Lettuce would otherwise keep a blocked
     * read across a lost connection for replay, and the reader would only notice at the command timeout. The
     * reader loop reconnects itself, with backoff, and re-reads its pending entries. The same holds on a cluster,
     * more so: a replayed read would wait for a primary that may never come back (its replica took over), while
     * a failed read makes the reader build a new cluster connection on a freshly read topology.
     */
    private final AbstractRedisClient readerClient;
    private final StatefulConnection<String, byte[]> shared;
    private final RedisClusterAsyncCommands<String, byte[]> sharedAsync;
    private final RedisClusterCommands<String, byte[]> sharedSync;
    private final ServerVersion version;
    private volatile ServerCode code = ServerCode.SCRIPTS;
    /** The shared connection's Netty event loop, where publish batches are formed and sent (StreamPublisher). */
    private final io.netty.util.concurrent.EventExecutor publishLoop;
    private volatile boolean readerConnected;

    private final Resources resources;

    private Redis(RedisUrl url, AbstractRedisClient client, AbstractRedisClient readerClient, StatefulConnection<String, byte[]> shared,
            ServerVersion version, Resources resources) {
        this.resources = resources;
        this.url = url;
        this.client = client;
        this.readerClient = readerClient;
        this.shared = shared;
        this.sharedAsync = async(shared);
        this.sharedSync = sync(shared);
        this.version = version;
        this.publishLoop = eventLoopOf(shared);
    }

    /** Blocking reads wait at most this long (ConsumerConfig caps blockTimeout at it); their command timeout adds the dead-peer timeout. */
    static final Duration MAX_BLOCK = Duration.ofSeconds(5);
    /**
     * The longest wait between Lettuce's attempts to reconnect a lost connection (doubling from 1 ms up to it). Lettuce's
     * own default doubles up to 30 s, so a node found Redis back up to as long again as the outage had lasted (14 s after a
     * 20 s outage, each publish meanwhile refused "not connected": tests from outside, helper-86); an attempt a second
     * costs a refused TCP connect while Redis is down.
     */
    static final Duration MAX_RECONNECT_DELAY = Duration.ofSeconds(1);
    /** How long Netty may take to stop an event loop at shutdown (Lettuce's default). */
    static final Duration SHUTDOWN_QUIET_TIMEOUT = Duration.ofSeconds(2);
    /** How long a close waits for Lettuce's shutdown before it returns anyway ({@link #shutdown}). */
    static final Duration SHUTDOWN_WAIT = Duration.ofSeconds(5);

    static Redis connect(RedisUrl url, String clientName) {
        return connect(url, clientName, io.stargazer.bus.BusConfig.DEFAULT_DEAD_PEER_TIMEOUT);
    }

    /**
     * Connects; {@code deadPeerTimeout} bounds how long a dead peer goes unnoticed: TCP keepalive probes start after it
     * on every connection, a blocking read that gets no answer within its BLOCK time plus it fails (and its reader
     * reconnects), and {@link ConnectionHealth} replaces a shared connection whose PING is unanswered for it.
     */
    static Redis connect(RedisUrl url, String clientName, Duration deadPeerTimeout) {
        return connect(url, clientName, deadPeerTimeout, null);
    }

    /**
     * As above, on {@code resources} when given (the caller owns and shuts them down; tests use them to reach
     * Netty's pipeline), else on resources of the bus's own, shut down with it.
     */
    static Redis connect(RedisUrl url, String clientName, Duration deadPeerTimeout, ClientResources resources) {
        return connect(url, clientName, deadPeerTimeout, resources, false);
    }

    /** As above; {@code owned}: the given resources are shut down with the connection, as its own would be (tests). */
    static Redis connect(RedisUrl url, String clientName, Duration deadPeerTimeout, ClientResources resources, boolean owned) {
        if (url.tls() && !url.verifyPeer()) {
            log.atWarn().addKeyValue("redis", url).addKeyValue("setting", RedisUrl.ENV_TLS_VERIFY + "=none")
                    .log("TLS certificate verification is OFF: the connection is encrypted but the server is not authenticated");
        }
        if (url.cluster()) {
            return connectCluster(url, clientName, deadPeerTimeout, resources, owned);
        }
        RedisURI uri = toUri(url, clientName);
        Resources r = new Resources(resources, owned);
        RedisClient client = RedisClient.create(r.withWriteOnce, uri);
        client.setOptions(options(url, COMMAND_TIMEOUT, true, deadPeerTimeout));
        RedisClient readerClient = RedisClient.create(r.withWriteOnce, readerUri(uri, deadPeerTimeout));
        readerClient.setOptions(options(url, readerTimeouts(deadPeerTimeout), false, deadPeerTimeout));
        try {
            StatefulRedisConnection<String, byte[]> conn = throughHandshakeRace(() -> client.connect(CODEC));
            return new Redis(url, client, readerClient, conn, ServerVersion.detect(conn.sync()), r);
        } catch (RuntimeException e) {
            shutdown(readerClient);
            shutdown(client);
            r.shutdown();
            throw translate(e, "connecting to " + url);
        }
    }

    /**
     * The clients' resources: the caller's, or of this connection's own (shut down with it), each channel's pipeline
     * given {@link WriteOnce}'s handler. The clients share them, so a client's shutdown leaves their threads alone and
     * the last wait of a close is theirs, bounded like the clients' ({@link #shutdown(AbstractRedisClient)}).
     */
    private static final class Resources {
        final WriteOnce writeOnce = new WriteOnce();
        /** Null when the caller owns them. */
        final ClientResources own;
        final ClientResources withWriteOnce;

        Resources(ClientResources given, boolean owned) {
            // Lettuce times every command into per-command histograms whenever LatencyUtils is on the class path (as
            // with micrometer-core, so in most Spring Boot applications); the bus reads none of them, and the timing
            // was 1-2 % of each JVM's samples in a profile of the round trip (bench/profile-notes.md). Resources a
            // caller passes keep the caller's choice.
            own = given == null ? io.lettuce.core.resource.DefaultClientResources.builder()
                    .commandLatencyRecorder(io.lettuce.core.metrics.CommandLatencyRecorder.disabled()).build() : owned ? given : null;
            ClientResources base = given == null ? own : given;
            // Shares the base's threads, which only the base's shutdown stops: named here, since mutate() alone gives
            // the copy I/O threads of its own and the base's executor and timer as its own to shut down.
            withWriteOnce = base.mutate().eventLoopGroupProvider(base.eventLoopGroupProvider()).eventExecutorGroup(base.eventExecutorGroup())
                    .timer(base.timer()).nettyCustomizer(writeOnce.customizer(base.nettyCustomizer()))
                    .reconnectDelay(io.lettuce.core.resource.Delay.exponential(Duration.ofMillis(1), MAX_RECONNECT_DELAY, 2, TimeUnit.MILLISECONDS))
                    .build();
        }

        void shutdown() {
            await(withWriteOnce.shutdown(0, SHUTDOWN_QUIET_TIMEOUT.toMillis(), TimeUnit.MILLISECONDS));
            if (own != null) await(own.shutdown(0, SHUTDOWN_QUIET_TIMEOUT.toMillis(), TimeUnit.MILLISECONDS));
        }

        private static void await(java.util.concurrent.Future<?> f) {
            try {
                f.get(SHUTDOWN_WAIT.toMillis(), TimeUnit.MILLISECONDS);
            } catch (TimeoutException e) {
                log.atWarn().log("The Redis client's resources did not finish shutting down within " + SHUTDOWN_WAIT.toMillis() + " ms");
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            } catch (ExecutionException e) {
                log.atWarn().log("The Redis client's resources failed to shut down: " + e.getCause());
            }
        }
    }

    private static Redis connectCluster(RedisUrl url, String clientName, Duration deadPeerTimeout, ClientResources resources,
            boolean owned) {
        List<RedisURI> seeds = new ArrayList<>();
        for (RedisUrl.Endpoint e : url.seeds()) {
            RedisURI seed = toUri(url, clientName);
            seed.setHost(e.host());
            seed.setPort(e.port());
            seeds.add(seed);
        }
        Resources r = new Resources(resources, owned);
        RedisClusterClient client = RedisClusterClient.create(r.withWriteOnce, seeds);
        client.setOptions(clusterOptions(url, COMMAND_TIMEOUT, true, deadPeerTimeout));
        RedisClusterClient readerClient = RedisClusterClient.create(r.withWriteOnce,
                seeds.stream().map(seed -> readerUri(seed, deadPeerTimeout)).toList());
        readerClient.setOptions(clusterOptions(url, readerTimeouts(deadPeerTimeout), false, deadPeerTimeout));
        try {
            StatefulRedisClusterConnection<String, byte[]> conn = throughHandshakeRace(() -> client.connect(CODEC));
            return new Redis(url, client, readerClient, conn, ServerVersion.detect(conn.sync()), r);
        } catch (RuntimeException e) {
            shutdown(readerClient);
            shutdown(client);
            r.shutdown();
            throw translate(e, "connecting to " + url);
        }
    }

    /**
     * The topology is re-read every {@link #TOPOLOGY_REFRESH} and, at most once per {@link #ADAPTIVE_REFRESH_LIMIT},
     * on any sign it changed (MOVED/ASK, an uncovered slot, an unknown node, a failed reconnect): so after a
     * failover commands go to the promoted replica within seconds, without the application doing anything.
     */
    private static ClusterClientOptions clusterOptions(RedisUrl url, Duration timeout, boolean autoReconnect, Duration deadPeerTimeout) {
        return clusterOptions(url, TimeoutOptions.builder().timeoutCommands(true).fixedTimeout(timeout).build(), autoReconnect, deadPeerTimeout);
    }

    private static ClusterClientOptions clusterOptions(RedisUrl url, TimeoutOptions timeouts, boolean autoReconnect, Duration deadPeerTimeout) {
        return ClusterClientOptions.builder(options(url, timeouts, autoReconnect, deadPeerTimeout))
                .topologyRefreshOptions(ClusterTopologyRefreshOptions.builder()
                        .enablePeriodicRefresh(TOPOLOGY_REFRESH)
                        .enableAllAdaptiveRefreshTriggers()
                        .adaptiveRefreshTriggersTimeout(ADAPTIVE_REFRESH_LIMIT)
                        .refreshTriggersReconnectAttempts(1)
                        .build())
                .build();
    }

    /** How many times a connect that lost Lettuce's handshake race is tried in all (see {@link #lostHandshake}). */
    static final int HANDSHAKE_ATTEMPTS = 3;
    private static final String HANDSHAKE_HANDLER_GONE = "RedisHandshakeHandler not registered";

    /**
     * True when a connect failed because Lettuce (6.5) found its handshake handler gone when the TCP connect's
     * listener ran: the server had already refused the login (or closed the connection) and the refusal emptied the
     * channel's pipeline first, so the reason was lost. Connecting again reports it.
     */
    static boolean lostHandshake(Throwable t) {
        for (Throwable c = t; c != null; c = c.getCause()) {
            if (c instanceof IllegalStateException && HANDSHAKE_HANDLER_GONE.equals(c.getMessage())) {
                return true;
            }
            for (Throwable s : c.getSuppressed()) {
                if (lostHandshake(s)) {
                    return true;
                }
            }
        }
        return false;
    }

    /** Connects, again up to {@link #HANDSHAKE_ATTEMPTS} in all while the failure is a {@link #lostHandshake lost race}. */
    static <C> C throughHandshakeRace(java.util.function.Supplier<C> connect) {
        for (int attempt = 1; ; attempt++) {
            try {
                return connect.get();
            } catch (RuntimeException e) {
                if (attempt >= HANDSHAKE_ATTEMPTS || !lostHandshake(e)) {
                    throw e;
                }
                log.atDebug().addKeyValue("attempt", attempt).log("the server answered the handshake before Lettuce looked; connecting again to learn its answer");
            }
        }
    }

    public RedisUrl url() {
        return url;
    }

    /** True on a Redis Cluster: keyless commands (CLIENT ID, CLIENT UNBLOCK) would reach an arbitrary node there. */
    public boolean cluster() {
        return url.cluster();
    }

    public ServerVersion version() {
        return version;
    }

    /** How the bus's server-side logic runs on this server (decided once at connect; scripts until then). */
    public ServerCode code() {
        return code;
    }

    void useCode(ServerCode code) {
        this.code = code;
    }

    /** The event loop publish batches are formed and sent on. */
    public io.netty.util.concurrent.EventExecutor publishLoop() {
        return publishLoop;
    }

    /**
     * The Netty event loop a connection's replies complete on: where a PING's completion runs. Should it ever run
     * elsewhere (a Lettuce configured to complete on another executor), one event loop of the client's own group
     * serves: what matters for ordering is that every batch is sent from one thread. The stage that names the loop is
     * attached before the PING is written, so it runs where the reply completes it: attached after
     * ({@code ping().thenRun}), it ran on this thread whenever the answer came first, found no loop, and the guess
     * below picked another loop of the group for about one connection in eight (PublishLoopIT), whose every publish
     * batch then reached its channel's loop as a task of its own.
     */
    private io.netty.util.concurrent.EventExecutor eventLoopOf(StatefulConnection<String, byte[]> conn) {
        java.util.concurrent.CompletableFuture<io.netty.util.concurrent.EventExecutor> loop = new java.util.concurrent.CompletableFuture<>();
        io.lettuce.core.protocol.AsyncCommand<String, byte[], String> ping = new io.lettuce.core.protocol.AsyncCommand<>(
                new io.lettuce.core.protocol.Command<>(io.lettuce.core.protocol.CommandType.PING, new io.lettuce.core.output.StatusOutput<>(CODEC)));
        ping.whenComplete((ok, e) -> loop.complete(e == null ? io.netty.util.internal.ThreadExecutorMap.currentExecutor() : null));
        conn.dispatch(ping);
        io.netty.util.concurrent.EventExecutor found;
        try {
            found = loop.get(COMMAND_TIMEOUT.toMillis(), java.util.concurrent.TimeUnit.MILLISECONDS);
        } catch (Exception e) {
            found = null;
        }
        return found != null ? found : client.getResources().eventLoopGroupProvider()
                .allocate(io.netty.channel.nio.NioEventLoopGroup.class).next();
    }

    /** Watches the shared connection for a dead peer (see {@link ConnectionHealth}); the caller runs its checks. */
    ConnectionHealth health(Duration deadPeerTimeout) {
        return new ConnectionHealth(shared, deadPeerTimeout);
    }

    /** The multiplexed connection for publishing, acknowledging and diagnostics. Thread-safe; never blocks on reads. */
    public RedisClusterAsyncCommands<String, byte[]> sharedAsync() {
        return sharedAsync;
    }

    /** Blocking form of {@link #sharedAsync()}, on the same connection. */
    public RedisClusterCommands<String, byte[]> sharedSync() {
        return sharedSync;
    }

    /**
     * A connection of its own, for blocking reads that must not hold up anything else. On a cluster, every call
     * after the first re-reads the topology first: readers reconnect only after a failure, which may be a failover.
     */
    public StatefulConnection<byte[], byte[]> dedicated() {
        try {
            if (readerClient instanceof RedisClusterClient c) {
                if (readerConnected) {
                    c.refreshPartitions();
                }
                readerConnected = true;
                return throughHandshakeRace(() -> c.connect(BYTES));
            }
            return throughHandshakeRace(() -> ((RedisClient) readerClient).connect(BYTES));
        } catch (RuntimeException e) {
            throw translate(e, "connecting to " + url);
        }
    }

    /** The blocking commands of a connection from {@link #dedicated()} (or any single-server or cluster connection). */
    public static <K, V> RedisClusterCommands<K, V> sync(StatefulConnection<K, V> c) {
        if (c instanceof StatefulRedisConnection<K, V> s) return s.sync();
        return ((StatefulRedisClusterConnection<K, V>) c).sync();
    }

    static <K, V> RedisClusterAsyncCommands<K, V> async(StatefulConnection<K, V> c) {
        if (c instanceof StatefulRedisConnection<K, V> s) return s.async();
        return ((StatefulRedisClusterConnection<K, V>) c).async();
    }

    @Override
    public void close() {
        try {
            shared.close();
        } finally {
            // The clients share their resources: both are shut down first, without them.
            shutdown(readerClient);
            shutdown(client);
            resources.shutdown();
        }
    }

    /** When the shared connection was last replaced for answering from a server that is not the primary (System.nanoTime). */
    private final java.util.concurrent.atomic.AtomicLong replacedAsNotPrimary = new java.util.concurrent.atomic.AtomicLong(System.nanoTime() - NOT_PRIMARY_SPACING_NANOS);
    /** At most one replacement per this, so a primary that is only briefly in a replica's role does not make a storm of connects. */
    static final long NOT_PRIMARY_SPACING_NANOS = 1_000_000_000L;

    /**
     * The shared connection's server answered READONLY or MASTERDOWN: on a single server reached by a name that moves
     * at a failover (a managed Redis's endpoint, a virtual IP), the connection still leads to the demoted primary while
     * a new one would reach the promoted replica. The blocking path's own connections are dropped the same way
     * (CallerConnections); this replaces the shared one, at most once a second. A cluster follows its topology instead.
     */
    void notThePrimary(String code) {
        if (cluster()) return;
        long now = System.nanoTime();
        long last = replacedAsNotPrimary.get();
        if (now - last >= NOT_PRIMARY_SPACING_NANOS && replacedAsNotPrimary.compareAndSet(last, now)) {
            log.atWarn().addKeyValue("redis", url).addKeyValue("reply", code)
                    .log("Redis answered as a replica on the shared connection; replacing it, so that the server's address is looked up again");
            ConnectionHealth.disconnect(shared);
        }
    }

    /** The resources this connection's clients use (tests). */
    ClientResources clientResources() {
        return resources.withWriteOnce;
    }

    /** Publishes that must not be written twice ({@link WriteOnce}). */
    WriteOnce writeOnce() {
        return resources.writeOnce;
    }

    /**
     * Shuts a client down, waiting at most {@link #SHUTDOWN_WAIT}. Lettuce's own {@code shutdown()} waits without a
     * limit for its connections and event loops to finish, and it can wait forever (redis/lettuce#2278, open): a
     * close of the bus must return whatever Lettuce does. What is left then is Lettuce's threads, which end on their
     * own or with the process.
     */
    static void shutdown(AbstractRedisClient c) {
        try {
            c.shutdownAsync(0, SHUTDOWN_QUIET_TIMEOUT.toMillis(), TimeUnit.MILLISECONDS).get(SHUTDOWN_WAIT.toMillis(), TimeUnit.MILLISECONDS);
        } catch (TimeoutException e) {
            log.atWarn().log("The Redis client did not finish shutting down within " + SHUTDOWN_WAIT.toMillis()
                    + " ms; closing without waiting for it");
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } catch (ExecutionException e) {
            log.atWarn().log("The Redis client's shutdown failed: " + e.getCause());
        }
    }

    /**
     * The readers' address: the same, its handshake (HELLO, AUTH, CLIENT SETNAME: Lettuce bounds it by the address's
     * timeout, not by TimeoutOptions) bounded by {@code deadPeerTimeout} like the readers' other non-blocking commands.
     * With the command timeout (10 s), a reader whose new connection went silent mid-handshake (a flow frozen as it
     * opened) stayed deaf 10 s: a tools client's call timed out with its reply unread (ReaderTimeoutIT, in CI).
     */
    private static RedisURI readerUri(RedisURI uri, Duration deadPeerTimeout) {
        RedisURI copy = RedisURI.builder(uri).build();
        copy.setTimeout(deadPeerTimeout);
        return copy;
    }

    private static RedisURI toUri(RedisUrl url, String clientName) {
        RedisURI.Builder b = RedisURI.builder().withHost(url.host()).withPort(url.port()).withDatabase(url.database())
                .withSsl(url.tls()).withClientName(clientName.replaceAll("[^A-Za-z0-9_.:-]", "_"));
        if (url.tls()) {
            b.withVerifyPeer(url.verifyPeer() ? SslVerifyMode.FULL : SslVerifyMode.NONE);
        }
        char[] password = url.password();
        if (password != null) {
            if (url.user() != null) {
                b.withAuthentication(url.user(), password);
            } else {
                b.withPassword(password);
            }
        }
        b.withTimeout(COMMAND_TIMEOUT);
        return b.build();
    }

    private static ClientOptions options(RedisUrl url, Duration timeout, boolean autoReconnect, Duration deadPeerTimeout) {
        return options(url, TimeoutOptions.builder().timeoutCommands(true).fixedTimeout(timeout).build(), autoReconnect, deadPeerTimeout);
    }

    /**
     * The readers' command timeouts: a {@link BlockingRead} gets its own BLOCK plus {@code deadPeerTimeout}, so a reader
     * whose connection went silent (a frozen or half-open flow) gives up and reconnects that long after its read, as
     * docs/reliability.md says; any other command of a reader (a takeover pass, a pending-list read, the tools client's
     * maintenance of its reply stream) answers at once from a live server, so it gets {@code deadPeerTimeout}, as the
     * shared connection's PING does. One fixed timeout for all (the longest BLOCK plus it) made a reader blocking 1 s
     * wait as long as one blocking 5 s before it noticed, and a reader caught in a maintenance command just as long.
     */
    static TimeoutOptions readerTimeouts(Duration deadPeerTimeout) {
        long deadPeerMillis = deadPeerTimeout.toMillis();
        long otherMillis = deadPeerMillis;
        return TimeoutOptions.builder().timeoutCommands(true).timeoutSource(new TimeoutOptions.TimeoutSource() {
            @Override
            public long getTimeout(io.lettuce.core.protocol.RedisCommand<?, ?, ?> command) {
                BlockingRead<?> read = io.lettuce.core.protocol.CommandWrapper.unwrap(command, BlockingRead.class);
                return read == null ? otherMillis : read.blockMillis + deadPeerMillis;
            }

            @Override
            public TimeUnit getTimeUnit() {
                return TimeUnit.MILLISECONDS;
            }
        }).build();
    }

    /** A blocking read (XREAD, XREADGROUP with BLOCK) of a reader's own connection, timed out by its own BLOCK. */
    static final class BlockingRead<T> extends io.lettuce.core.protocol.Command<byte[], byte[], T> {
        final long blockMillis;

        BlockingRead(io.lettuce.core.protocol.ProtocolKeyword type, io.lettuce.core.output.CommandOutput<byte[], byte[], T> output,
                io.lettuce.core.protocol.CommandArgs<byte[], byte[]> args, long blockMillis) {
            super(type, output, args);
            this.blockMillis = Math.max(0, blockMillis);
        }
    }

    private static ClientOptions options(RedisUrl url, TimeoutOptions timeouts, boolean autoReconnect, Duration deadPeerTimeout) {
        // Keepalive probes after deadPeerTimeout of silence, three of them a third of it apart: a vanished peer is
        // noticed within about twice the timeout instead of the kernel's default two hours.
        // Both between 1 s and the kernel's largest (Linux: 32767 s; Lettuce takes whole seconds as an int), so a very
        // long deadPeerTimeout (up to BusConfig.MAX_DURATION) still connects.
        Duration probeInterval = keepAliveSeconds(deadPeerTimeout.dividedBy(3));
        SocketOptions.KeepAliveOptions keepAlive = SocketOptions.KeepAliveOptions.builder().enable()
                .idle(keepAliveSeconds(deadPeerTimeout)).interval(probeInterval).count(3).build();
        ClientOptions.Builder b = ClientOptions.builder()
                .autoReconnect(autoReconnect)
                // Commands written on a connection that then died are not held for a server that may not come back
                // (a killed cluster primary, a long outage): they fail at the first failed reconnect, and callers decide.
                .cancelCommandsOnReconnectFailure(true)
                // Fail fast while disconnected instead of queueing without bound: callers see an error and retry.
                .disconnectedBehavior(ClientOptions.DisconnectedBehavior.REJECT_COMMANDS)
                .socketOptions(SocketOptions.builder().connectTimeout(Duration.ofSeconds(5)).keepAlive(keepAlive).build())
                .timeoutOptions(timeouts);
        if (url.tls() && url.caFile() != null) {
            b.sslOptions(SslOptions.builder().jdkSslProvider().trustManager(url.caFile().toFile()).build());
        }
        return b.build();
    }

    static final Duration MAX_KEEPALIVE = Duration.ofSeconds(32_767);

    static Duration keepAliveSeconds(Duration d) {
        return d.compareTo(Duration.ofSeconds(1)) < 0 ? Duration.ofSeconds(1) : d.compareTo(MAX_KEEPALIVE) > 0 ? MAX_KEEPALIVE : d;
    }

    /** Unwraps future wrappers and maps Lettuce's exceptions to the bus's: server replies by their first word. */
    public static StargazerException translate(Throwable t, String context) {
        Throwable e = t;
        while ((e instanceof CompletionException || e instanceof ExecutionException) && e.getCause() != null) {
            e = e.getCause();
        }
        if (e instanceof StargazerException se) {
            return se;
        }
        if (e instanceof RedisCommandExecutionException rce) {
            return RedisServerException.of(rce.getMessage(), context, rce);
        }
        if (e instanceof java.util.concurrent.CancellationException) {
            return new BusConnectionException(context + ": the connection to Redis was lost and could not be restored at once", e);
        }
        if (e instanceof RedisCommandTimeoutException) {
            return new BusConnectionException(context + ": Redis did not answer in time (" + e.getMessage() + ")", e);
        }
        if (e instanceof java.io.IOException) {
            // Lettuce fails the command at the head of a connection that was reset (or closed) with the socket's own
            // exception: a failure of the way to Redis like any other (a publish's outcome is then unknown).
            return new BusConnectionException(context + ": the connection to Redis failed (" + e + ")", e);
        }
        if (e instanceof RedisException re) {
            // Lettuce wraps authentication failures during the handshake: find the server's reply underneath.
            for (Throwable c = re.getCause(); c != null; c = c.getCause()) {
                if (c instanceof RedisCommandExecutionException rce) {
                    return RedisServerException.of(rce.getMessage(), context, re);
                }
            }
            if (re instanceof io.lettuce.core.RedisConnectionException) {
                return new BusConnectionException(context + ": " + whyNotConnected(re), re);
            }
            return new BusConnectionException(context + ": " + describe(re), re);
        }
        return new StargazerException(context + ": " + e, e);
    }

    /**
     * Why a connection could not be made, in an operator's words: Lettuce says "Unable to connect to
     * host/&lt;unresolved&gt;:port" around the cause, and for a port where something other than Redis answers, a decoder's
     * "Invalid first byte: 72 (H) ... decoding using null".
     */
    static String whyNotConnected(Throwable e) {
        Throwable root = e;
        while (root.getCause() != null && root.getCause() != root) root = root.getCause();
        String m = String.valueOf(root.getMessage());
        if (root instanceof java.net.ConnectException) return "connection refused (is Redis running there?)";
        if (root instanceof java.net.UnknownHostException) return "unknown host " + m;
        if (root instanceof io.lettuce.core.RedisException && m.startsWith("Invalid first byte")) {
            return "what answered there does not speak Redis's protocol (an HTTP port, or TLS expected: rediss://)";
        }
        if (root == e) return m;
        return m.isEmpty() || "null".equals(m) ? root.getClass().getSimpleName() : m;
    }

    private static String describe(Throwable e) {
        StringBuilder sb = new StringBuilder(String.valueOf(e.getMessage()));
        Throwable c = e.getCause();
        if (c != null && c.getMessage() != null && !sb.toString().contains(c.getMessage())) {
            sb.append(" (").append(c.getMessage()).append(')');
        }
        return sb.toString();
    }

    static void logClosed(String what, Throwable t) {
        log.atDebug().addKeyValue("what", what).setCause(t).log("ignored error while closing");
    }
}
