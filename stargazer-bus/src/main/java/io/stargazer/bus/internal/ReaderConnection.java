package io.stargazer.bus.internal;

import io.lettuce.core.RedisCommandInterruptedException;
import io.lettuce.core.RedisException;
import io.lettuce.core.UnblockType;
import io.lettuce.core.output.NestedMultiOutput;
import io.lettuce.core.protocol.AsyncCommand;
import io.lettuce.core.protocol.CommandArgs;
import io.lettuce.core.protocol.ProtocolKeyword;
import java.util.List;
import java.util.concurrent.ExecutionException;
import io.lettuce.core.api.StatefulConnection;
import io.lettuce.core.cluster.api.sync.RedisClusterCommands;

/**
 * The connection of one blocking reader (a subscription's, a tools client's): opened when first needed, dropped
 * after any error so the reader's loop opens a fresh one (its client has auto-reconnect off, see {@link Redis}),
 * and woken from another thread when the reader stops, so a blocked read ends now rather than at its BLOCK time.
 * Used by the reader's own thread only, except {@link #unblock()}.
 */
final class ReaderConnection {
    private final Redis redis;
    private final String what;
    private StatefulConnection<byte[], byte[]> conn;
    /** CLIENT ID of the open connection, or -1; on a cluster always -1 (CLIENT UNBLOCK would reach any node). */
    private volatile long clientId = -1;

    ReaderConnection(Redis redis, String what) {
        this.redis = redis;
        this.what = what;
    }

    /** The commands of the connection, opening it first when there is none. */
    RedisClusterCommands<byte[], byte[]> sync() {
        if (conn == null) {
            conn = redis.dedicated();
            clientId = redis.cluster() ? -1 : Redis.sync(conn).clientId();
        }
        return Redis.sync(conn);
    }

    /**
     * A blocking read ({@code type} XREAD or XREADGROUP with {@code BLOCK blockMillis} in {@code args}), which fails
     * with a command timeout when no answer comes within its block plus the dead-peer timeout (Redis.readerTimeouts).
     */
    Object read(ProtocolKeyword type, CommandArgs<byte[], byte[]> args, long blockMillis) {
        return await(send(type, args, blockMillis));
    }

    /** Sends a read as {@link #read} does, without waiting for its reply: {@link #await} takes it. */
    AsyncCommand<byte[], byte[], List<Object>> send(ProtocolKeyword type, CommandArgs<byte[], byte[]> args, long blockMillis) {
        sync(); // opens the connection when there is none
        AsyncCommand<byte[], byte[], List<Object>> cmd = new AsyncCommand<>(
                new Redis.BlockingRead<>(type, new NestedMultiOutput<>(Redis.BYTES), args, blockMillis));
        conn.dispatch(cmd);
        return cmd;
    }

    /** The reply of a read {@link #send} sent, as {@link #read} returns it. */
    Object await(AsyncCommand<byte[], byte[], List<Object>> cmd) {
        try {
            return cmd.get();
        } catch (ExecutionException e) {
            if (e.getCause() instanceof RuntimeException r) throw r;
            throw new RedisException(e.getCause());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            cmd.cancel(true);
            throw new RedisCommandInterruptedException(e);
        }
    }

    /** Closes the connection, if any; the next {@link #sync()} opens a new one. */
    void drop() {
        StatefulConnection<byte[], byte[]> c = conn;
        conn = null;
        clientId = -1;
        if (c != null) {
            try {
                c.close();
            } catch (RuntimeException e) {
                Redis.logClosed(what, e);
            }
        }
    }

    /**
     * Ends a read blocked on this connection at once (CLIENT UNBLOCK from the shared connection). Any thread; does not
     * wait for Redis: a closing reader waits on its own bound, and a paused Redis held the caller here for the whole
     * command timeout (10 s) before.
     */
    void unblock() {
        long id = clientId;
        if (id >= 0) {
            try {
                redis.sharedAsync().clientUnblock(id, UnblockType.TIMEOUT).whenComplete((r, e) -> {
                    if (e != null) Redis.logClosed(what + " unblock", e);
                });
            } catch (RuntimeException e) {
                Redis.logClosed(what + " unblock", e);
            }
        }
    }
}
