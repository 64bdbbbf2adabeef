package io.stargazer.bus.internal;

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
import io.lettuce.core.api.StatefulRedisConnection;
import io.lettuce.core.codec.ByteArrayCodec;
import io.lettuce.core.codec.RedisCodec;
import io.lettuce.core.codec.StringCodec;
import io.stargazer.bus.BusConnectionException;
import io.stargazer.bus.RedisServerException;
import io.stargazer.bus.RedisUrl;
import io.stargazer.bus.StargazerException;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ExecutionException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The Lettuce client of one bus, and the translation of Lettuce's exceptions into the bus's own.
 *
 * <p>Two codecs: publishing and diagnostics use String keys and byte[] values; reading uses byte[] for both, so an
 * entry's field names survive byte for byte into a dead-letter copy even when they are not UTF-8.
 */
public final class Redis implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(Redis.class);

    static final RedisCodec<String, byte[]> CODEC = RedisCodec.of(StringCodec.UTF8, ByteArrayCodec.INSTANCE);
    static final RedisCodec<byte[], byte[]> BYTES = ByteArrayCodec.INSTANCE;
    /** Upper bound for any non-blocking command; blocking reads get their BLOCK time on top. */
    static final Duration COMMAND_TIMEOUT = Duration.ofSeconds(10);

    private final RedisUrl url;
    private final RedisClient client;
    /**
     * Client for dedicated reader connections, with auto-reconnect off: Lettuce would otherwise keep a blocked
     * read across a lost connection for replay, and the reader would only notice at the command timeout. The
     * reader loop reconnects itself, with backoff, and re-reads its pending entries.
     */
    private final RedisClient readerClient;
    private final StatefulRedisConnection<String, byte[]> shared;
    private final ServerVersion version;
    /** The shared connection's Netty event loop, where publish batches are formed and sent (StreamPublisher). */
    private final io.netty.util.concurrent.EventExecutor publishLoop;

    private Redis(RedisUrl url, RedisClient client, RedisClient readerClient, StatefulRedisConnection<String, byte[]> shared,
            ServerVersion version) {
        this.url = url;
        this.client = client;
        this.readerClient = readerClient;
        this.shared = shared;
        this.version = version;
        this.publishLoop = eventLoopOf(shared);
    }

    static Redis connect(RedisUrl url, String clientName) {
        if (url.tls() && !url.verifyPeer()) {
            log.atWarn().addKeyValue("redis", url).addKeyValue("setting", RedisUrl.ENV_TLS_VERIFY + "=none")
                    .log("TLS certificate verification is OFF: the connection is encrypted but the server is not authenticated");
        }
        RedisURI uri = toUri(url, clientName);
        RedisClient client = RedisClient.create(uri);
        client.setOptions(options(url, COMMAND_TIMEOUT, true));
        RedisClient readerClient = RedisClient.create(client.getResources(), uri);
        readerClient.setOptions(options(url, COMMAND_TIMEOUT, false));
        try {
            StatefulRedisConnection<String, byte[]> conn = client.connect(CODEC);
            String info = conn.sync().info("server");
            ServerVersion version = ServerVersion.fromInfo(info);
            return new Redis(url, client, readerClient, conn, version);
        } catch (RuntimeException e) {
            readerClient.shutdown(Duration.ZERO, Duration.ofSeconds(2));
            client.shutdown(Duration.ZERO, Duration.ofSeconds(2));
            throw translate(e, "connecting to " + url);
        }
    }

    public RedisUrl url() {
        return url;
    }

    public ServerVersion version() {
        return version;
    }

    /** The event loop publish batches are formed and sent on. */
    public io.netty.util.concurrent.EventExecutor publishLoop() {
        return publishLoop;
    }

    /**
     * The Netty event loop a connection's replies complete on: where a PING's completion runs. Should it ever run
     * elsewhere (a Lettuce configured to complete on another executor), one event loop of the client's own group
     * serves: what matters for ordering is that every batch is sent from one thread.
     */
    private io.netty.util.concurrent.EventExecutor eventLoopOf(StatefulRedisConnection<String, byte[]> conn) {
        java.util.concurrent.CompletableFuture<io.netty.util.concurrent.EventExecutor> loop = new java.util.concurrent.CompletableFuture<>();
        conn.async().ping().thenRun(() -> loop.complete(io.netty.util.internal.ThreadExecutorMap.currentExecutor()));
        io.netty.util.concurrent.EventExecutor found;
        try {
            found = loop.get(COMMAND_TIMEOUT.toMillis(), java.util.concurrent.TimeUnit.MILLISECONDS);
        } catch (Exception e) {
            found = null;
        }
        return found != null ? found : client.getResources().eventLoopGroupProvider()
                .allocate(io.netty.channel.nio.NioEventLoopGroup.class).next();
    }

    /** The multiplexed connection for publishing, acknowledging and diagnostics. Thread-safe; never blocks on reads. */
    public StatefulRedisConnection<String, byte[]> shared() {
        return shared;
    }

    /** A connection of its own, for blocking reads that must not hold up anything else. */
    public StatefulRedisConnection<byte[], byte[]> dedicated() {
        try {
            return readerClient.connect(BYTES);
        } catch (RuntimeException e) {
            throw translate(e, "connecting to " + url);
        }
    }

    @Override
    public void close() {
        try {
            shared.close();
        } finally {
            // The reader client shares the main client's resources: shut it down first, without them.
            readerClient.shutdown(Duration.ZERO, Duration.ofSeconds(2));
            client.shutdown(Duration.ZERO, Duration.ofSeconds(2));
        }
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

    private static ClientOptions options(RedisUrl url, Duration timeout, boolean autoReconnect) {
        ClientOptions.Builder b = ClientOptions.builder()
                .autoReconnect(autoReconnect)
                // Fail fast while disconnected instead of queueing without bound: callers see an error and retry.
                .disconnectedBehavior(ClientOptions.DisconnectedBehavior.REJECT_COMMANDS)
                .socketOptions(SocketOptions.builder().connectTimeout(Duration.ofSeconds(5)).keepAlive(true).build())
                .timeoutOptions(TimeoutOptions.builder().timeoutCommands(true).fixedTimeout(timeout).build());
        if (url.tls() && url.caFile() != null) {
            b.sslOptions(SslOptions.builder().jdkSslProvider().trustManager(url.caFile().toFile()).build());
        }
        return b.build();
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
        if (e instanceof RedisCommandTimeoutException) {
            return new BusConnectionException(context + ": Redis did not answer in time (" + e.getMessage() + ")", e);
        }
        if (e instanceof RedisException re) {
            // Lettuce wraps authentication failures during the handshake: find the server's reply underneath.
            for (Throwable c = re.getCause(); c != null; c = c.getCause()) {
                if (c instanceof RedisCommandExecutionException rce) {
                    return RedisServerException.of(rce.getMessage(), context, re);
                }
            }
            return new BusConnectionException(context + ": " + describe(re), re);
        }
        return new StargazerException(context + ": " + e, e);
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
