package io.stargazer.bus.testing;

import io.stargazer.bus.RedisUrl;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.time.Duration;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * A TCP proxy on loopback in front of a server (a Redis), for the faults a network brings: latency, a flow that
 * stays open but carries nothing (a NAT or load-balancer entry that was dropped), and connections cut abruptly.
 *
 * <p>Threads: one acceptor, and per proxied connection two pumps (client to server, server to client), each a
 * blocking read-then-write loop. A frozen connection's pumps hold what they read and write nothing, so both ends
 * keep an open socket that answers nothing, as a half-open flow does; the kernel buffers fill and the sender's
 * writes stall. {@link #close()} closes every socket, wakes and interrupts every thread, and waits for them to end.
 */
public final class TcpProxy implements AutoCloseable {
    private static final int CHUNK = 16 * 1024;
    private static final Duration CONNECT_TIMEOUT = Duration.ofSeconds(2);
    private static final Duration STOP_WAIT = Duration.ofSeconds(5);

    private final RedisUrl target;
    private final ServerSocket server;
    private final Thread acceptor;
    private final Set<Link> links = ConcurrentHashMap.newKeySet();
    private final List<Thread> threads = new CopyOnWriteArrayList<>();
    private final AtomicInteger accepted = new AtomicInteger();
    /** Guards the frozen flags; pumps wait on it while frozen. */
    private final Object flow = new Object();
    private boolean newConnectionsFrozen;
    private volatile long delayNanos;
    /** The bytes (a command name's RESP form, or any text) whose next {@link #commandsToCut} sendings cut their connection, or null. */
    private volatile byte[] cutCommand;
    private final AtomicInteger commandsToCut = new AtomicInteger();
    private final AtomicInteger commandsCut = new AtomicInteger();
    private final AtomicInteger repliesDropped = new AtomicInteger();
    /** The bytes whose next sending silences the replies of its connection ({@link #silenceAfterSending}), or null. */
    private final java.util.concurrent.atomic.AtomicReference<byte[]> silenceAfter = new java.util.concurrent.atomic.AtomicReference<>();
    private volatile boolean closed;

    private TcpProxy(RedisUrl target) throws IOException {
        this.target = target;
        this.server = new ServerSocket(0, 50, InetAddress.getLoopbackAddress());
        this.acceptor = thread("accept", this::acceptLoop);
        acceptor.start();
    }

    /** A proxy listening on a free loopback port, forwarding to {@code target}'s host and port. */
    public static TcpProxy to(RedisUrl target) {
        try {
            return new TcpProxy(target);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot listen on loopback", e);
        }
    }

    public int port() {
        return server.getLocalPort();
    }

    /** The target's URL (database, user and password kept) with the proxy's address instead. */
    public RedisUrl url() {
        RedisUrl u = RedisUrl.parse("redis://127.0.0.1:" + port() + "/" + target.database());
        char[] password = target.password();
        return password == null ? u : u.withCredentials(target.user(), new String(password));
    }

    /** Latency added before each chunk is passed on, in both directions; zero (the default) for none. */
    public void delay(Duration perChunk) {
        this.delayNanos = perChunk.toNanos();
    }

    /**
     * The connections open now stop carrying bytes in both directions and stay open; connections made later work
     * normally. A dropped NAT or load-balancer flow: only a client that replaces its connection gets through.
     */
    public void freezeExisting() {
        synchronized (flow) {
            for (Link l : links) l.frozen = true;
        }
    }

    /** Every connection, open now or made later, carries nothing (new ones are accepted, then stall). */
    public void freezeAll() {
        synchronized (flow) {
            newConnectionsFrozen = true;
            for (Link l : links) l.frozen = true;
        }
    }

    /** Every frozen connection carries bytes again (what was held is passed on first), and new ones work. */
    public void unfreeze() {
        synchronized (flow) {
            newConnectionsFrozen = false;
            for (Link l : links) l.frozen = false;
            flow.notifyAll();
        }
    }

    /**
     * Every frozen connection but those numbered {@code held} (connections are numbered from 1 as they are accepted: a
     * connection's number is {@link #acceptedCount} just after it was made) carries bytes again; those stay frozen
     * until {@link #unfreeze}. To let one of several commands waiting on the wire be answered before the others.
     */
    public void unfreezeAllBut(int... held) {
        java.util.Set<Integer> kept = java.util.Arrays.stream(held).boxed().collect(java.util.stream.Collectors.toSet());
        synchronized (flow) {
            for (Link l : links) if (!kept.contains(l.number)) l.frozen = false;
            flow.notifyAll();
        }
    }

    /** Closes every open connection at once with a reset, both sides; the proxy keeps accepting new ones. */
    public void cutAll() {
        for (Link l : links) l.abort();
    }

    /**
     * The next {@code times} connections that send {@code command} (its name, as clients send it: {@code XCLAIM})
     * are reset instead, the command not passed on: a connection lost at the moment that one command goes out. The
     * name is looked for within each chunk the client sends (a name split across two chunks is missed).
     */
    public void cutConnectionsSending(String command, int times) {
        cutConnectionsCarrying("$" + command.length() + "\r\n" + command + "\r\n", times);
    }

    /**
     * As {@link #cutConnectionsSending}, for any bytes the client sends: {@code text} as UTF-8 (text in an envelope's
     * payload is there as it is, so one publish's command can be told from every other).
     */
    public void cutConnectionsCarrying(String text, int times) {
        cutCommand = text.getBytes(java.nio.charset.StandardCharsets.UTF_8);
        commandsToCut.set(times);
    }

    /**
     * The next connection that sends {@code text} (UTF-8, within one chunk the client sends) passes it on to the server
     * and from then on loses everything the server answers on it, as {@link #dropRepliesOnExisting} does for that one
     * connection: a flow that goes silent just as one command is written, while the others work. Once: the same text
     * sent again (on the connection that replaces it) is passed on and answered.
     */
    public void silenceAfterSending(String text) {
        silenceAfter.set(text.getBytes(java.nio.charset.StandardCharsets.UTF_8));
    }

    /** Chunks of replies dropped so far ({@link #dropRepliesOnExisting}, {@link #dropRepliesOnExistingFrom}, {@link #silenceAfterSending}). */
    public int repliesDropped() {
        return repliesDropped.get();
    }

    /** Connections reset by {@link #cutConnectionsSending} so far. */
    public int commandsCut() {
        return commandsCut.get();
    }

    /** Connections open now. */
    public int connectionCount() {
        return links.size();
    }

    /** Connections accepted since the proxy started. */
    public int acceptedCount() {
        return accepted.get();
    }

    @Override
    public void close() {
        closed = true;
        try {
            server.close();
        } catch (IOException ignored) {
            // closing anyway
        }
        cutAll();
        synchronized (flow) {
            flow.notifyAll();
        }
        long deadline = System.nanoTime() + STOP_WAIT.toNanos();
        for (Thread t : threads) {
            t.interrupt();
            try {
                t.join(Math.max(1, TimeUnit.NANOSECONDS.toMillis(deadline - System.nanoTime())));
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                break;
            }
            if (t.isAlive()) {
                throw new IllegalStateException("proxy thread " + t.getName() + " did not stop");
            }
        }
    }

    @Override
    public String toString() {
        return "TcpProxy[127.0.0.1:" + port() + " -> " + target.host() + ":" + target.port() + "]";
    }

    // ---- internals ------------------------------------------------------------------------------------

    private void acceptLoop() {
        while (!closed) {
            Socket client;
            try {
                client = server.accept();
            } catch (IOException e) {
                return; // closed
            }
            int n = accepted.incrementAndGet();
            Socket upstream = new Socket();
            try {
                client.setTcpNoDelay(true);
                upstream.setTcpNoDelay(true);
                upstream.connect(new InetSocketAddress(target.host(), target.port()), (int) CONNECT_TIMEOUT.toMillis());
            } catch (IOException e) {
                // The target is down: the client sees its connection closed, as with a server that refuses.
                closeQuietly(upstream);
                resetQuietly(client);
                continue;
            }
            Link link = new Link(client, upstream, n);
            synchronized (flow) {
                link.frozen = newConnectionsFrozen;
            }
            links.add(link);
            if (closed) {
                link.abort();
                return;
            }
            thread("c" + n + "-up", () -> link.pump(client, upstream)).start();
            thread("c" + n + "-down", () -> link.pump(upstream, client)).start();
        }
    }

    private Thread thread(String name, Runnable body) {
        Thread t = new Thread(() -> {
            try {
                body.run();
            } finally {
                threads.remove(Thread.currentThread());
            }
        }, "tcp-proxy-" + port() + "-" + name);
        t.setDaemon(true);
        threads.add(t);
        return t;
    }

    /**
     * The connections open now keep carrying requests to the server but drop everything it answers (a reply lost on
     * the way back: the command ran, the client never hears of it); new connections work normally.
     */
    public void dropRepliesOnExisting() {
        for (Link l : links) {
            l.dropReplies = true;
        }
    }

    /**
     * The connections open now work until the server answers one of them with {@code text} (UTF-8; an envelope's
     * payload text is there as it is): that reply, and everything the server answers any of them from then on, is lost
     * on the way back, as with {@link #dropRepliesOnExisting}; new connections work normally. So the read that delivers
     * a given entry loses its reply whenever it comes, not only if it was already blocked when the entry was published
     * (a read's BLOCK can run out in between: LostReadReplyIT lost that race in CI). The whole chunk that carries the
     * text is lost, with any earlier replies read in the same chunk. A text split across two chunks of a reply is
     * missed: a test checks {@link #repliesDropped} to know that a reply was lost.
     */
    public void dropRepliesOnExistingFrom(String text) {
        byte[] trigger = text.getBytes(java.nio.charset.StandardCharsets.UTF_8);
        Set<Link> those = Set.copyOf(links);
        for (Link l : those) {
            l.dropWith = those;
            l.dropFrom = trigger;
        }
    }

    /** One proxied connection: the client's socket and ours to the target. */
    private final class Link {
        final Socket client;
        final Socket upstream;
        volatile boolean dropReplies;
        /** A reply carrying this makes every link of {@link #dropWith} drop replies ({@link #dropRepliesOnExistingFrom}). */
        volatile byte[] dropFrom;
        volatile Set<Link> dropWith;
        /** Guarded by {@link #flow}. */
        boolean frozen;
        final int number;
        private final AtomicInteger directionsDone = new AtomicInteger();

        Link(Socket client, Socket upstream, int number) {
            this.client = client;
            this.upstream = upstream;
            this.number = number;
        }

        void pump(Socket from, Socket to) {
            byte[] buf = new byte[CHUNK];
            try {
                InputStream in = from.getInputStream();
                OutputStream out = to.getOutputStream();
                while (true) {
                    int n = in.read(buf);
                    if (!awaitFlowing()) {
                        return; // a frozen flow passes nothing on, not even the end of stream
                    }
                    if (n < 0) {
                        to.shutdownOutput(); // pass the end of stream on, as a half-close
                        break;
                    }
                    long d = delayNanos;
                    if (d > 0) {
                        TimeUnit.NANOSECONDS.sleep(d);
                    }
                    byte[] trigger = dropFrom;
                    if (from == upstream && trigger != null && contains(buf, n, trigger)) {
                        for (Link l : dropWith) l.dropReplies = true;
                    }
                    if (dropReplies && from == upstream) {
                        repliesDropped.incrementAndGet();
                        continue; // the server's answer is lost on the way back
                    }
                    byte[] cut = cutCommand;
                    if (from == client && cut != null && contains(buf, n, cut)
                            && commandsToCut.getAndUpdate(v -> Math.max(0, v - 1)) > 0) {
                        commandsCut.incrementAndGet();
                        abort();
                        return;
                    }
                    byte[] silence = silenceAfter.get();
                    if (from == client && silence != null && contains(buf, n, silence) && silenceAfter.compareAndSet(silence, null)) {
                        dropReplies = true; // what this chunk asks is done, and its answer lost
                    }
                    out.write(buf, 0, n);
                    out.flush();
                }
                if (directionsDone.incrementAndGet() == 2) {
                    close();
                }
            } catch (IOException | InterruptedException e) {
                abort(); // one side reset or the proxy closes: the other side is reset too
            }
        }

        /** Waits while this connection is frozen; false when the proxy closed or the link was cut meanwhile. */
        private boolean awaitFlowing() throws InterruptedException {
            synchronized (flow) {
                while (frozen && !closed && links.contains(this)) {
                    flow.wait();
                }
            }
            return !closed && links.contains(this);
        }

        void abort() {
            if (links.remove(this)) {
                resetQuietly(client);
                resetQuietly(upstream);
                synchronized (flow) {
                    flow.notifyAll();
                }
            }
        }

        private void close() {
            if (links.remove(this)) {
                closeQuietly(client);
                closeQuietly(upstream);
            }
        }
    }

    private static boolean contains(byte[] buf, int n, byte[] what) {
        return io.netty.buffer.ByteBufUtil.indexOf(io.netty.buffer.Unpooled.wrappedBuffer(what),
                io.netty.buffer.Unpooled.wrappedBuffer(buf, 0, n)) >= 0;
    }

    private static void resetQuietly(Socket s) {
        try {
            s.setSoLinger(true, 0); // close with RST, as a crashed peer or a middlebox's reset would
        } catch (IOException ignored) {
            // already closed
        }
        closeQuietly(s);
    }

    private static void closeQuietly(Socket s) {
        try {
            s.close();
        } catch (IOException ignored) {
            // closing anyway
        }
    }
}
