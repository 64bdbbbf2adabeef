package io.stargazer.bus.internal;

import io.lettuce.core.output.CommandOutput;
import io.lettuce.core.output.StatusOutput;
import io.lettuce.core.protocol.Command;
import io.lettuce.core.protocol.CommandArgs;
import io.lettuce.core.protocol.CommandType;
import io.lettuce.core.protocol.RedisStateMachine;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufAllocator;
import io.netty.buffer.UnpooledByteBufAllocator;
import io.stargazer.bus.PublishOutcomeUnknownException;
import io.stargazer.bus.RedisServerException;
import io.stargazer.bus.RedisUrl;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.StandardSocketOptions;
import java.nio.ByteBuffer;
import java.nio.channels.SelectionKey;
import java.nio.channels.Selector;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.concurrent.ConcurrentLinkedDeque;
import java.util.concurrent.atomic.AtomicInteger;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Connections of their own for blocking publishes, each written and read on the publishing thread itself.
 *
 * <p>Why: a blocking publish through the shared connection crosses two threads and back (the caller hands the command
 * to Lettuce's event loop, which writes it, reads the reply and wakes the caller): on a virtual machine each hand-off
 * costs more than the publish (measured: 10 000 blocking publishes a second and about 80 µs of client CPU each through
 * the shared connection; 23 000 and 25 µs with the caller writing and reading a socket itself). So a blocking publish
 * that finds one of these connections free uses it, the way {@code redis-benchmark} or a Jedis client does (the
 * blocking publishes to one stream waiting at once go out in one write: {@link CallerBatches}); when none is free (more
 * streams published to at once than {@link io.stargazer.bus.BusConfig#blockingPublishConnections()}), it goes
 * through the shared connection, where concurrent publishes coalesce into batches.
 *
 * <p>Threads: none of its own. A connection is used by one caller at a time: taken from the idle set, used, put back.
 * The sockets are non-blocking and waited on with a selector of their own, so that before each use the caller can see,
 * without waiting, whether the server closed the connection while it was idle (a restart, a failover, the server's
 * idle {@code timeout}, {@code CLIENT KILL}): such a connection is replaced before anything is written on it, so the
 * publish is not made uncertain by it. Commands are encoded and replies decoded by Lettuce's own protocol classes.
 *
 * <p>What a caller learns: {@link #take} returns null when no connection can be had at once (all in use, the bus
 * closing, or the last attempt to open one failed less than {@link #RETRY_AFTER} ago): nothing was sent, so the caller
 * publishes the shared way, which waits out an outage within the publish timeout. {@link #call} throws
 * {@link NotSent} when the command surely did not reach the server, {@link PublishOutcomeUnknownException} when it
 * may have (no answer by the deadline, the connection silent for the dead-peer timeout after the write, or lost after
 * it), and {@link RedisServerException} for an error reply; {@link #publishAll} gives each of several pipelined
 * commands its own outcome of those kinds.
 *
 * <p>A connection that stays open but carries nothing (a NAT or load-balancer flow dropped, a frozen server) is taken
 * for dead as the shared connection's is ({@link ConnectionHealth}): a call that waits {@code deadPeerTimeout} with no
 * byte moving fails then, not at its deadline, and the sockets have TCP keepalive timed from it as Lettuce's have.
 *
 * <p>Used on a single server over plain TCP; a cluster and TLS keep every publish on Lettuce's connections.
 */
final class CallerConnections implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(CallerConnections.class);
    /** After a failed attempt to open a connection, blocking publishes go the shared way for this long. */
    static final Duration RETRY_AFTER = Duration.ofSeconds(1);
    /**
     * Opening a connection (TCP and the login) takes at most this, or half of what is left of the publish's time: a
     * server that takes new connections slowly must not use up the time the shared connection could still publish in.
     */
    static final Duration CONNECT_TIMEOUT = Duration.ofSeconds(1);
    /** Error replies that mean "not here, not now" rather than "not this publish": the publish goes the shared way. */
    private static final java.util.Set<String> NOT_THE_PRIMARY = java.util.Set.of("READONLY", "MASTERDOWN", "LOADING");
    /**
     * Whether {@code error}, an error reply to a plain command, is one of {@link #NOT_THE_PRIMARY}: by its code alone,
     * since its text may name the stream (no script runs on these connections, so no refusal comes wrapped in an ERR).
     */
    private static boolean notThePrimary(String error) {
        return NOT_THE_PRIMARY.contains(RedisServerException.codeOf(error));
    }

    /** A buffer grown past this for one large envelope is shrunk back after it, so idle connections stay small. */
    private static final int KEEP_BUFFER_BYTES = 64 << 10;
    /** A connection's buffers as made, and as shrunk back to. */
    private static final int INITIAL_BUFFER_BYTES = 1024;
    private static final ByteBufAllocator ALLOC = UnpooledByteBufAllocator.DEFAULT;

    private final RedisUrl url;
    private final String clientName;
    private final int max;
    /** SG_DEAD_PEER_TIMEOUT_MS: a call with no byte moving this long takes its connection for dead. */
    private final long deadPeerNanos;
    private final ConcurrentLinkedDeque<Conn> idle = new ConcurrentLinkedDeque<>();
    private final AtomicInteger open = new AtomicInteger();
    private volatile long retryAt = System.nanoTime();
    private volatile boolean closed;
    /** The server's address, resolved on the first connect and again after a failed one (no lookup per publish). */
    private volatile InetSocketAddress address;
    /** Whether a failure to open a connection was logged at WARN already (later ones go to DEBUG). */
    private final java.util.concurrent.atomic.AtomicBoolean warned = new java.util.concurrent.atomic.AtomicBoolean();

    /**
     * Publishes written on a connection of its own and not answered (by their deadline, or before the connection had
     * carried nothing for the dead-peer timeout), with their connections kept open, unused, until the answer comes, the
     * server ends the connection, or {@link #giveUpAt} ({@link #settle}). Meanwhile no publish made after it is written
     * to their streams ({@link #unanswered(String)}; a batch of other threads' publishes that another writer of the stream
     * had already passed that check for may still go): Redis reads its sockets in the order the kernel lists them, not the order
     * the bytes came in, so a paused server that resumed could store a later publish of the stream, written on the
     * shared connection, before this one.
     */
    private final java.util.Queue<Unanswered> unanswered = new java.util.concurrent.ConcurrentLinkedQueue<>();

    /**
     * The outputs of a pipeline's replies from {@code next} on are still to be read, in order. Only the outputs are kept,
     * not the commands: their payloads are not needed for reading the answers.
     */
    private static final class Unanswered {
        final String stream;
        final Conn conn;
        final CommandOutput<String, byte[], ?>[] outputs;
        final long giveUpAt;
        int next;

        Unanswered(String stream, Conn conn, CommandOutput<String, byte[], ?>[] outputs, int next, long giveUpAt) {
            this.stream = stream;
            this.conn = conn;
            this.outputs = outputs;
            this.next = next;
            this.giveUpAt = giveUpAt;
        }
    }

    /** The command surely did not reach the server: the caller may send it another way. */
    static final class NotSent extends Exception {
        NotSent(String message, Throwable cause) {
            super(message, cause, false, false);
        }
    }

    private static final class Conn {
        final SocketChannel ch;
        final Selector selector;
        final SelectionKey key;
        final ByteBuf out;
        final ByteBuf in;
        final RedisStateMachine decoder = new RedisStateMachine(ALLOC);
        final ByteBuffer probe = ByteBuffer.allocateDirect(1);
        /** When a byte last moved on it, written or read, during a call (System.nanoTime). */
        long lastMoved;
        /** Whether the current exchange wrote a byte, and how many of its replies were read ({@link #exchange}). */
        boolean written;
        int answered;

        /** Takes over {@code ch} and {@code selector}: closed by {@link #close}. */
        Conn(SocketChannel ch, Selector selector) throws IOException {
            this.ch = ch;
            this.selector = selector;
            this.key = ch.register(selector, 0);
            this.out = ALLOC.directBuffer(INITIAL_BUFFER_BYTES);
            this.in = ALLOC.directBuffer(INITIAL_BUFFER_BYTES);
        }

        void close() {
            try {
                selector.close();
            } catch (IOException e) {
                Redis.logClosed("a caller connection's selector", e);
            }
            try {
                ch.close();
            } catch (IOException e) {
                Redis.logClosed("a caller connection", e);
            }
            out.release();
            in.release();
            decoder.close();
        }
    }

    /** The connections it may open: a stream never has more writers than that (CallerBatches). */
    int max() {
        return max;
    }

    CallerConnections(RedisUrl url, String clientName, int max, Duration deadPeerTimeout) {
        this.url = url;
        this.clientName = clientName.replaceAll("[^A-Za-z0-9_.:-]", "_") + ":publish";
        this.max = max;
        this.deadPeerNanos = Math.max(1, deadPeerTimeout.toNanos());
    }

    /**
     * Until when an unanswered publish holds its stream, its connection silent since {@code lastMoved}: one dead-peer
     * timeout after the connection is taken for dead (two after its last byte), and never longer than
     * {@link Redis#COMMAND_TIMEOUT} from {@code now} (the bound before the dead-peer check came here).
     */
    long giveUpAt(long now, long lastMoved) {
        long byDeadPeer = lastMoved + Math.min(2 * deadPeerNanos, Long.MAX_VALUE / 4);
        long byCommandTimeout = now + Redis.COMMAND_TIMEOUT.toNanos();
        return byDeadPeer - byCommandTimeout < 0 ? byDeadPeer : byCommandTimeout;
    }

    /** A connection for this caller alone until {@link #give}; null when none can be had at once (see the class comment). */
    Conn take(long deadlineNanos) {
        Conn c;
        while ((c = idle.pollFirst()) != null) {
            if (usable(c)) return c;
            discard(c);
        }
        if (closed || System.nanoTime() - retryAt < 0 || deadlineNanos - System.nanoTime() <= 0) {
            return null;
        }
        if (open.incrementAndGet() > max) {
            open.decrementAndGet();
            return null;
        }
        boolean opened = false;
        try {
            c = connect(Math.max(1, Math.min((deadlineNanos - System.nanoTime()) / 2, CONNECT_TIMEOUT.toNanos())));
            opened = true;
            return c;
        } catch (IOException | RuntimeException | NotSent e) {
            address = null;
            retryAt = System.nanoTime() + RETRY_AFTER.toNanos();
            boolean first = warned.compareAndSet(false, true);
            (first ? log.atWarn() : log.atDebug()).addKeyValue("redis", url).addKeyValue("retry_after_ms", RETRY_AFTER.toMillis())
                    .log("Could not open a connection of its own for blocking publishes (" + e.getMessage() + "); they go "
                            + "through the shared connection meanwhile" + (first ? " (later failures are logged at DEBUG)" : ""));
            return null;
        } finally {
            if (!opened) open.decrementAndGet();
        }
    }

    /** Back to the idle set after a complete exchange; a connection left in an unknown state must be {@link #discard}ed instead. */
    void give(Conn c) {
        if (c.out.capacity() > KEEP_BUFFER_BYTES) c.out.clear().capacity(INITIAL_BUFFER_BYTES);
        if (c.in.capacity() > KEEP_BUFFER_BYTES && !c.in.isReadable()) c.in.clear().capacity(INITIAL_BUFFER_BYTES);
        idle.offerFirst(c);
        if (closed && idle.remove(c)) {
            discard(c);
        }
    }

    void discard(Conn c) {
        open.decrementAndGet();
        c.close();
    }

    /**
     * Sends {@code args} as {@code type} on {@code stream}'s behalf and returns the reply's value. After a
     * {@link RedisServerException} the connection is still in step (the caller gives it back); after any other
     * exception the caller must {@link #discard} it.
     */
    <T> T call(Conn c, CommandType type, CommandOutput<String, byte[], T> output, CommandArgs<String, byte[]> args,
            long deadlineNanos, String stream, String context) throws NotSent {
        @SuppressWarnings("unchecked")
        Command<String, byte[], ?>[] one = new Command[] {new Command<>(type, output, args)};
        try {
            exchange(c, one, deadlineNanos);
        } catch (IOException | TimedOut | Silent e) {
            if (!c.written) {
                throw new NotSent(context + ": nothing was written (" + e.getMessage() + ")", e);
            }
            throw unknown(stream, context, e);
        } catch (RuntimeException e) {
            if (!c.written) {
                throw e;
            }
            throw unknown(stream, context, e);
        }
        if (output.hasError()) {
            throw RedisServerException.of(output.getError(), context, null);
        }
        return output.get();
    }

    /** A written command whose answer was not read, for the reason {@code e}. */
    private PublishOutcomeUnknownException unknown(String stream, String context, Exception e) {
        return new PublishOutcomeUnknownException(stream, context + (e instanceof TimedOut
                ? ": written, but Redis did not answer within the publish timeout (SG_PUBLISH_TIMEOUT_MS): the entry may or may not be stored"
                : e instanceof Silent
                ? ": written, but the connection carried nothing for the dead-peer timeout (SG_DEAD_PEER_TIMEOUT_MS, "
                        + deadPeerNanos / 1_000_000 + " ms) and is taken for dead: the entry may or may not be stored"
                : e instanceof IOException
                ? ": the connection was lost after the write: the entry may or may not be stored (" + e.getMessage() + ")"
                // Written, then something else went wrong (a reply the decoder could not read).
                : ": written, but the reply could not be read: the entry may or may not be stored (" + e + ")"), e);
    }

    /**
     * Writes {@code commands} at once (pipelined) and reads their replies in order into their outputs, an error reply
     * included. {@link Conn#written} and {@link Conn#answered} say how far it got, whatever it throws.
     */
    private void exchange(Conn c, Command<String, byte[], ?>[] commands, long deadlineNanos) throws IOException, TimedOut, Silent {
        // Selector.select returns at once while the interrupt flag is set: cleared for the wait, set again after.
        boolean interrupted = Thread.interrupted();
        c.written = false;
        c.answered = 0;
        c.lastMoved = System.nanoTime();
        try {
            c.out.clear();
            for (Command<String, byte[], ?> command : commands) command.encode(c.out);
            ByteBuffer bytes = c.out.nioBuffer();
            while (bytes.hasRemaining()) {
                if (c.ch.write(bytes) > 0) {
                    c.written = true;
                    c.lastMoved = System.nanoTime();
                } else {
                    interrupted |= await(c, SelectionKey.OP_WRITE, deadlineNanos, deadPeerNanos);
                }
            }
            while (c.answered < commands.length) {
                if (c.decoder.decode(c.in, commands[c.answered].getOutput())) {
                    c.answered++;
                    continue;
                }
                c.in.ensureWritable(4096);
                int n = c.in.writeBytes(c.ch, c.in.writableBytes());
                if (n < 0) {
                    throw new IOException("the server closed the connection");
                }
                if (n == 0) {
                    interrupted |= await(c, SelectionKey.OP_READ, deadlineNanos, deadPeerNanos);
                } else {
                    c.lastMoved = System.nanoTime();
                }
            }
            c.in.discardReadBytes();
        } finally {
            if (interrupted) Thread.currentThread().interrupt();
        }
    }

    private static final class TimedOut extends Exception {
        TimedOut() {
            super("no answer by the deadline", null, false, false);
        }
    }

    /** Nothing moved on the connection for the dead-peer timeout, before the deadline: taken for dead. */
    private static final class Silent extends Exception {
        Silent() {
            super("nothing carried for the dead-peer timeout", null, false, false);
        }
    }

    /**
     * Waits until the socket is ready for {@code ops}; true when the thread was interrupted meanwhile (the flag is
     * cleared). {@link TimedOut} at the deadline; {@link Silent} when {@code silentNanos} passed since a byte last
     * moved ({@link Conn#lastMoved}) before the deadline did.
     */
    private static boolean await(Conn c, int ops, long deadlineNanos, long silentNanos) throws IOException, TimedOut, Silent {
        long now = System.nanoTime();
        long left = deadlineNanos - now;
        if (left <= 0) {
            throw new TimedOut();
        }
        long quiet = c.lastMoved + silentNanos - now;
        if (quiet <= 0) {
            throw new Silent();
        }
        c.key.interestOps(ops);
        c.selector.select(Math.max(1, Math.min(left, quiet) / 1_000_000));
        c.selector.selectedKeys().clear();
        return Thread.interrupted();
    }

    /** Open, and nothing unasked waiting on it: a server that closed it left an end of stream to read. */
    private static boolean usable(Conn c) {
        try {
            c.probe.clear();
            return c.ch.read(c.probe) == 0;
        } catch (IOException e) {
            return false;
        }
    }

    /** Opens and logs in a connection within {@code timeoutNanos}; on any failure nothing is left open. */
    private Conn connect(long timeoutNanos) throws IOException, NotSent {
        long deadline = System.nanoTime() + timeoutNanos;
        InetSocketAddress to = address;
        if (to == null || to.isUnresolved()) {
            to = new InetSocketAddress(url.host(), url.port()); // the lookup, once per opened connection at most
            if (to.isUnresolved()) throw new IOException("cannot resolve " + url.host());
            address = to;
        }
        SocketChannel ch = SocketChannel.open();
        Selector selector = null;
        Conn c;
        try {
            ch.configureBlocking(false);
            ch.setOption(StandardSocketOptions.TCP_NODELAY, true);
            // As on Lettuce's connections (Redis.options): a peer that vanished while the connection sat idle is noticed
            // by the kernel, with probes after the dead-peer timeout of silence, three a third of it apart (before: only
            // SO_KEEPALIVE, so the kernel's default, two hours on Linux).
            ch.setOption(StandardSocketOptions.SO_KEEPALIVE, true);
            keepAliveTimes(ch);
            selector = Selector.open();
            c = new Conn(ch, selector);
        } catch (IOException | RuntimeException e) {
            if (selector != null) selector.close();
            ch.close();
            throw e;
        }
        boolean interrupted = false;
        boolean ready = false;
        try {
            if (!ch.connect(to)) {
                while (!ch.finishConnect()) {
                    interrupted |= await(c, SelectionKey.OP_CONNECT, deadline, Long.MAX_VALUE / 4);
                }
            }
            char[] password = url.password();
            if (password != null) {
                CommandArgs<String, byte[]> auth = new CommandArgs<>(Redis.CODEC);
                if (url.user() != null) auth.add(url.user());
                auth.add(new String(password).getBytes(StandardCharsets.UTF_8));
                login(c, CommandType.AUTH, auth, deadline, false);
            }
            if (url.database() != 0) {
                login(c, CommandType.SELECT, new CommandArgs<>(Redis.CODEC).add(url.database()), deadline, false);
            }
            // Only a label for CLIENT LIST: a user whose ACL refuses it (NOPERM) still publishes on this connection.
            login(c, CommandType.CLIENT, new CommandArgs<>(Redis.CODEC).add("SETNAME").add(clientName), deadline, true);
            // A server that refused the connection itself (maxclients) wrote its error and closed it: the first reply
            // read is that error, whichever command it answers. Only a connection still open is kept.
            if (!usable(c)) throw new IOException("the server closed the connection during the login");
            ready = true;
            return c;
        } catch (TimedOut | Silent e) {
            throw new IOException("connecting to " + url + ": " + e.getMessage(), e);
        } finally {
            if (!ready) c.close();
            if (interrupted) Thread.currentThread().interrupt();
        }
    }

    /**
     * TCP_KEEPIDLE, TCP_KEEPINTERVAL and TCP_KEEPCOUNT ({@code jdk.net.ExtendedSocketOptions}) as Lettuce's connections
     * have them, where the platform has them. Found by name among the channel's options, so that the module need not
     * read {@code jdk.net} (a trimmed runtime may lack it: then only SO_KEEPALIVE, as before).
     */
    private void keepAliveTimes(SocketChannel ch) throws IOException {
        Duration deadPeer = Duration.ofNanos(deadPeerNanos);
        for (java.net.SocketOption<?> o : ch.supportedOptions()) {
            Integer v = switch (o.name()) {
                case "TCP_KEEPIDLE" -> (int) Redis.keepAliveSeconds(deadPeer).toSeconds();
                case "TCP_KEEPINTERVAL" -> (int) Redis.keepAliveSeconds(deadPeer.dividedBy(3)).toSeconds();
                case "TCP_KEEPCOUNT" -> 3;
                default -> null;
            };
            if (v != null && o.type() == Integer.class) {
                @SuppressWarnings("unchecked")
                java.net.SocketOption<Integer> option = (java.net.SocketOption<Integer>) o;
                ch.setOption(option, v);
            }
        }
    }

    /** One step of the login; an error reply fails it unless {@code optional} and an ACL refusal (NOPERM). */
    private void login(Conn c, CommandType type, CommandArgs<String, byte[]> args, long deadline, boolean optional) throws NotSent {
        try {
            call(c, type, new StatusOutput<>(Redis.CODEC), args, deadline, null, "logging in");
        } catch (RedisServerException e) {
            if (!optional || !"NOPERM".equals(e.code())) throw new NotSent("logging in to " + url + ": " + e.getMessage(), e);
        } catch (RuntimeException e) {
            throw new NotSent("logging in to " + url + ": " + e.getMessage(), e);
        }
    }

    /** Closes the idle connections now and the others as their callers give them back. */
    @Override
    public void close() {
        closed = true;
        discardIdle();
        Unanswered u;
        while ((u = unanswered.poll()) != null) {
            discard(u.conn);
        }
    }

    /** Whether a publish to {@code stream} on one of these connections is still unanswered (see {@link #unanswered}). */
    boolean unanswered(String stream) {
        if (unanswered.isEmpty()) return false;
        for (Unanswered u : unanswered) {
            if (u.stream.equals(stream)) return true;
        }
        return false;
    }

    /**
     * Looks, without waiting, at each unanswered publish's connection (the bus's timer, every tick): one whose answer
     * came, whose server ended it, or whose time is up is closed, and {@code settled} told its stream.
     */
    void settle(long now, java.util.function.Consumer<String> settled) {
        for (Unanswered u : unanswered) {
            if (answeredOrGone(u) || now - u.giveUpAt >= 0) {
                if (unanswered.remove(u)) {
                    discard(u.conn);
                    settled.accept(u.stream);
                }
            }
        }
    }

    private static boolean answeredOrGone(Unanswered u) {
        Conn c = u.conn;
        try {
            c.in.ensureWritable(4096);
            if (c.in.writeBytes(c.ch, c.in.writableBytes()) < 0) return true;
            while (u.next < u.outputs.length && c.decoder.decode(c.in, u.outputs[u.next])) u.next++;
            return u.next == u.outputs.length;
        } catch (IOException | RuntimeException e) {
            return true;
        }
    }

    /**
     * Commands that each add one entry to {@code stream} (XADDs of different callers' publishes, no order promised among
     * them), pipelined on a connection of its own: {@code replies[i]} is the value of command {@code i}'s reply, a
     * {@link RedisServerException} for an error reply, a {@link PublishOutcomeUnknownException} when it was written and
     * its reply not read, or null when it surely did not store its entry and may go the shared way (no connection could
     * be had, nothing was written, or a server that cannot take writes now refused it).
     */
    void publishAll(String stream, Command<String, byte[], ?>[] commands, long deadlineNanos, Object[] replies) {
        java.util.Arrays.fill(replies, null);
        Conn c = take(deadlineNanos);
        if (c == null) {
            return;
        }
        String context = "publishing to stream '" + stream + "'";
        Exception failed = null;
        try {
            exchange(c, commands, deadlineNanos);
        } catch (IOException | TimedOut | Silent | RuntimeException e) {
            failed = e;
        } catch (Error e) {
            discard(c);
            throw e;
        }
        boolean refusedHere = false;
        for (int i = 0; i < c.answered; i++) {
            CommandOutput<String, byte[], ?> output = commands[i].getOutput();
            if (!output.hasError()) {
                Object value = output.get();
                // Null is kept for "not stored, send it again": a nil reply (none of ours asks for one) is an error.
                replies[i] = value != null ? value : new IllegalStateException(context + ": Redis answered nil");
                continue;
            }
            // A server that cannot take writes now (a demoted primary after a failover, one still loading) did nothing
            // with it, and the shared connection may already be on the right server.
            if (notThePrimary(output.getError())) refusedHere = true;
            else replies[i] = RedisServerException.of(output.getError(), context, null);
        }
        if (refusedHere) {
            // Not this server for a while: the next publishes go the shared way rather than use or open connections to it
            // (the idle ones reach the same server, and take() looks at them before it looks at retryAt).
            address = null;
            retryAt = System.nanoTime() + RETRY_AFTER.toNanos();
            discardIdle();
        }
        if (failed == null) {
            if (refusedHere) discard(c);
            else give(c);
            return;
        }
        if (!c.written) {
            discard(c);
            if (failed instanceof RuntimeException e) {
                // Not the connection: the commands could not be encoded. The shared way would fail the same.
                java.util.Arrays.fill(replies, e);
                return;
            }
            log.atDebug().addKeyValue("stream", stream).setCause(failed).log("A blocking publish's own connection failed before the write; it goes through the shared one");
            return;
        }
        PublishOutcomeUnknownException unknown = unknown(stream, context, failed);
        for (int i = c.answered; i < commands.length; i++) replies[i] = unknown;
        if ((failed instanceof TimedOut || failed instanceof Silent) && !closed) {
            // Held, before the callers learn the outcome: their next publishes to the stream must find it (see unanswered).
            // Not used again: the connection is closed when the hold ends (giveUpAt), or earlier by its answers.
            @SuppressWarnings("unchecked")
            CommandOutput<String, byte[], ?>[] outputs = new CommandOutput[commands.length];
            for (int i = 0; i < commands.length; i++) outputs[i] = commands[i].getOutput();
            // The written batch is not needed for reading its answers: a held connection keeps a small buffer, not it.
            c.out.clear().capacity(INITIAL_BUFFER_BYTES);
            Unanswered u = new Unanswered(stream, c, outputs, c.answered, giveUpAt(System.nanoTime(), c.lastMoved));
            unanswered.add(u);
            // A close() between the check and the add emptied the queue before this one was in it.
            if (closed && unanswered.remove(u)) discard(c);
        } else {
            discard(c);
        }
        if (failed instanceof Silent) {
            // The idle ones most likely went the same way (one NAT or load balancer, one frozen server): opened
            // again when needed, rather than each costing a publish its outcome and its stream a hold.
            discardIdle();
            log.atWarn().addKeyValue("redis", url).addKeyValue("stream", stream)
                    .log("A blocking publish's own connection carried nothing within the dead-peer timeout (SG_DEAD_PEER_TIMEOUT_MS); "
                            + "the idle ones are closed, and publishes to the stream wait at most one more dead-peer timeout for its answer, then go on the shared connection");
        }
    }

    private void discardIdle() {
        Conn idleOne;
        while ((idleOne = idle.pollFirst()) != null) {
            discard(idleOne);
        }
    }
}
