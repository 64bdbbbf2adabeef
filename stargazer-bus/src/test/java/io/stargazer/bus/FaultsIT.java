package io.stargazer.bus;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;

import io.lettuce.core.RedisCommandExecutionException;
import io.stargazer.bus.testing.Closer;
import io.stargazer.bus.testing.RawRedis;
import io.stargazer.bus.testing.RedisFaults;
import io.stargazer.bus.testing.TcpProxy;
import io.stargazer.embedded.RedisServerProcess;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.SocketTimeoutException;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The fault-injection harness does what the fault promises ({@link FaultPromises}, {@link RetryOrderPromises})
 * rely on: {@link TcpProxy} delays, freezes and cuts connections and stops its threads on close; {@link RedisFaults}
 * makes a server refuse writes and pauses it, and undoes both; a server without AOF restarts empty. Checked at the
 * protocol level (RESP over a plain socket), so the harness is tested apart from the bus it is used on.
 */
@Timeout(value = 1, unit = TimeUnit.MINUTES)
class FaultsIT {
    private static final Duration SILENT = Duration.ofMillis(500);
    private static RedisServerProcess server;
    private static RedisUrl url;
    private final Closer closer = new Closer();

    @BeforeAll
    static void start() {
        server = RedisServerProcess.builder().start();
        url = RedisUrl.parse(server.url());
    }

    @AfterAll
    static void stop() {
        server.stop();
    }

    @AfterEach
    void closeAll() throws Exception {
        closer.close();
    }

    /** One RESP connection: sends inline commands, reads reply lines with a timeout. */
    private static final class Resp implements AutoCloseable {
        final Socket socket = new Socket();
        final BufferedReader in;
        final OutputStream out;

        Resp(int port) throws IOException {
            socket.connect(new InetSocketAddress("127.0.0.1", port), 2000);
            in = new BufferedReader(new InputStreamReader(socket.getInputStream(), StandardCharsets.UTF_8));
            out = socket.getOutputStream();
        }

        void send(String inlineCommand) throws IOException {
            out.write((inlineCommand + "\r\n").getBytes(StandardCharsets.UTF_8));
            out.flush();
        }

        /** The next reply line; SocketTimeoutException when nothing comes within {@code timeout}. */
        String reply(Duration timeout) throws IOException {
            socket.setSoTimeout((int) timeout.toMillis());
            return in.readLine();
        }

        String call(String inlineCommand) throws IOException {
            send(inlineCommand);
            return reply(Duration.ofSeconds(5));
        }

        @Override
        public void close() throws IOException {
            socket.close();
        }
    }

    private Resp connect(TcpProxy proxy) throws IOException {
        return closer.add(new Resp(proxy.port()));
    }

    @Test
    void theProxyCarriesTrafficBothWaysAndCountsItsConnections() throws Exception {
        TcpProxy proxy = closer.add(TcpProxy.to(url));
        assertThat(proxy.url().port()).isEqualTo(proxy.port());
        Resp c = connect(proxy);
        assertThat(c.call("PING")).isEqualTo("+PONG");
        assertThat(c.call("SET proxied yes")).isEqualTo("+OK");
        try (RawRedis raw = new RawRedis(url)) {
            assertThat(RawRedis.s(raw.sync().get(RawRedis.b("proxied")))).isEqualTo("yes");
        }
        await().atMost(Duration.ofSeconds(5)).until(() -> proxy.connectionCount() == 1);
        assertThat(proxy.acceptedCount()).isEqualTo(1);
        c.close();
        await().atMost(Duration.ofSeconds(5)).until(() -> proxy.connectionCount() == 0);
    }

    @Test
    void freezeExistingSilencesTheOpenConnectionsOnlyAndKeepsThemOpen() throws Exception {
        TcpProxy proxy = closer.add(TcpProxy.to(url));
        Resp old = connect(proxy);
        assertThat(old.call("PING")).isEqualTo("+PONG");
        proxy.freezeExisting();
        old.send("PING");
        assertThatThrownBy(() -> old.reply(SILENT)).isInstanceOf(SocketTimeoutException.class);
        Resp fresh = connect(proxy);
        assertThat(fresh.call("PING")).isEqualTo("+PONG");
        assertThat(proxy.connectionCount()).isEqualTo(2);
        assertThatThrownBy(() -> old.reply(SILENT)).as("still frozen").isInstanceOf(SocketTimeoutException.class);
        proxy.unfreeze();
        assertThat(old.reply(Duration.ofSeconds(5))).as("what was held is passed on").isEqualTo("+PONG");
    }

    @Test
    void freezeAllStallsNewConnectionsTooUntilUnfrozen() throws Exception {
        TcpProxy proxy = closer.add(TcpProxy.to(url));
        proxy.freezeAll();
        Resp c = connect(proxy);
        c.send("PING");
        assertThatThrownBy(() -> c.reply(SILENT)).isInstanceOf(SocketTimeoutException.class);
        proxy.unfreeze();
        assertThat(c.reply(Duration.ofSeconds(5))).isEqualTo("+PONG");
    }

    @Test
    void silenceAfterSendingRunsTheCommandAndLosesTheRepliesOfItsConnectionOnly() throws Exception {
        TcpProxy proxy = closer.add(TcpProxy.to(url));
        Resp a = connect(proxy);
        Resp b = connect(proxy);
        proxy.silenceAfterSending("silenced-key");
        a.send("SET silenced-key yes");
        assertThatThrownBy(() -> a.reply(SILENT)).isInstanceOf(SocketTimeoutException.class);
        try (RawRedis raw = new RawRedis(url)) {
            assertThat(RawRedis.s(raw.sync().get(RawRedis.b("silenced-key")))).as("the command ran").isEqualTo("yes");
        }
        assertThat(b.call("SET silenced-key again")).as("once: sent again, it is answered").isEqualTo("+OK");
        assertThat(proxy.repliesDropped()).isPositive();
    }

    @Test
    void cutAllResetsEveryConnectionAndNewOnesWork() throws Exception {
        TcpProxy proxy = closer.add(TcpProxy.to(url));
        Resp a = connect(proxy);
        Resp b = connect(proxy);
        assertThat(a.call("PING")).isEqualTo("+PONG");
        assertThat(b.call("PING")).isEqualTo("+PONG");
        proxy.cutAll();
        assertThat(proxy.connectionCount()).isZero();
        for (Resp r : new Resp[] {a, b}) {
            // A reset shows as an exception or as the end of the stream, never as a reply.
            String reply;
            try {
                r.send("PING");
                reply = r.reply(Duration.ofSeconds(5));
            } catch (IOException e) {
                reply = null;
            }
            assertThat(reply).isNull();
        }
        assertThat(connect(proxy).call("PING")).isEqualTo("+PONG");
    }

    @Test
    void delayAddsLatencyToEveryChunkInBothDirections() throws Exception {
        TcpProxy proxy = closer.add(TcpProxy.to(url));
        Resp c = connect(proxy);
        assertThat(c.call("PING")).isEqualTo("+PONG");
        proxy.delay(Duration.ofMillis(200));
        long t0 = System.nanoTime();
        assertThat(c.call("PING")).isEqualTo("+PONG");
        assertThat(Duration.ofNanos(System.nanoTime() - t0)).isGreaterThanOrEqualTo(Duration.ofMillis(400));
    }

    @Test
    void closingTheProxyStopsEveryThreadAndClosesEveryConnection() throws Exception {
        TcpProxy proxy = TcpProxy.to(url);
        String prefix = "tcp-proxy-" + proxy.port() + "-";
        Resp held = connect(proxy);
        assertThat(held.call("PING")).isEqualTo("+PONG");
        proxy.freezeExisting();
        held.send("PING"); // a pump holds this one while frozen
        Resp slow = connect(proxy);
        assertThat(slow.call("PING")).isEqualTo("+PONG");
        proxy.delay(Duration.ofSeconds(30));
        slow.send("PING"); // a pump sleeps 30 s before passing this one on
        proxy.close();
        assertThat(Thread.getAllStackTraces().keySet()).noneMatch(t -> t.getName().startsWith(prefix) && t.isAlive());
        assertThatThrownBy(() -> new Resp(proxy.port()).close()).isInstanceOf(IOException.class);
        for (Resp r : new Resp[] {held, slow}) {
            String reply;
            try {
                reply = r.reply(Duration.ofSeconds(5));
            } catch (IOException e) {
                reply = null;
            }
            assertThat(reply).isNull();
        }
    }

    @Test
    void aServerRefusingWritesFailsXaddWithOomAndAcceptsThemAgainWhenUndone() {
        try (RawRedis raw = new RawRedis(url)) {
            raw.xadd("oom-stream", "f", "before");
            try (RedisFaults.Fault oom = RedisFaults.refuseWrites(url)) {
                assertThatThrownBy(() -> raw.xadd("oom-stream", "f", "during")).isInstanceOf(RedisCommandExecutionException.class)
                        .hasMessageStartingWith("OOM");
                assertThat(raw.xlen("oom-stream")).as("reads still work").isEqualTo(1);
            }
            raw.xadd("oom-stream", "f", "after");
            assertThat(raw.xlen("oom-stream")).isEqualTo(2);
            assertThat(raw.sync().configGet("maxmemory")).containsEntry("maxmemory", "0");
        }
    }

    @Test
    void aPausedServerAnswersNothingUntilResumed() throws Exception {
        try (Resp c = new Resp(server.port())) {
            assertThat(c.call("PING")).isEqualTo("+PONG");
            try (RedisFaults.Fault paused = RedisFaults.pause(server)) {
                c.send("PING");
                assertThatThrownBy(() -> c.reply(SILENT)).isInstanceOf(SocketTimeoutException.class);
            }
            assertThat(c.reply(Duration.ofSeconds(5))).isEqualTo("+PONG");
        }
    }

    @Test
    void aServerWithoutAofRestartsEmptyOnTheSamePort() throws Exception {
        RedisServerProcess own = closer.add(RedisServerProcess.builder().appendOnly(false).start());
        int port = own.port();
        try (Resp c = new Resp(port)) {
            assertThat(c.call("SET before restart")).isEqualTo("+OK");
        }
        own.kill();
        own.restart();
        assertThat(own.port()).isEqualTo(port);
        try (Resp c = new Resp(port)) {
            assertThat(c.call("DBSIZE")).isEqualTo(":0");
        }
    }
}
