package io.stargazer.bus.internal;

import io.lettuce.core.AbstractRedisAsyncCommands;
import io.lettuce.core.RedisException;
import io.lettuce.core.RedisFuture;
import io.lettuce.core.cluster.api.async.RedisClusterAsyncCommands;
import io.lettuce.core.protocol.CommandHandler;
import io.lettuce.core.protocol.CommandWrapper;
import io.lettuce.core.protocol.RedisCommand;
import io.lettuce.core.resource.NettyCustomizer;
import io.netty.channel.Channel;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Commands that must never be written twice: a plain publish's XADD or batch script, and a retry's ownership check that
 * counts a delivery (Ownership.confirm: run twice, one handler failure counted as two). Lettuce runs a connection with
 * auto-reconnect "at least once": what was written and not yet answered when the connection dies is written again on
 * the next one, so a publish that Redis had stored (its reply lost with the connection, or a paused server that runs
 * both copies when it resumes) was stored twice, and behind publishes made after it, while its caller was told it was
 * stored once. A command {@link #mark marked} here that is still unanswered when its connection goes inactive is failed
 * with {@link LostAfterWrite} instead (the publisher reports an unknown outcome, which a dedupe key makes safe to
 * retry); Lettuce skips a completed command when it writes its buffer again.
 *
 * <p>How: a handler placed before Lettuce's {@link CommandHandler} in every channel's pipeline ({@link #customizer})
 * sees the channel go inactive first, on the channel's event loop, and fails the marked commands on the handler's
 * stack (written, unanswered) before Lettuce drains it for the rewrite. A publish is built, marked, and only then
 * dispatched ({@link #dispatch}), so it is marked before any event loop can write it (a first version marked it after
 * the dispatch, assuming the publishing thread was its channel's event loop; after a reconnect the new channel may be
 * on another loop, and a review made a publish be stored twice in that gap).
 *
 * <p>Not marked, as a second write changes nothing: keyed publishes (deduped), acknowledgements, dead letters (stored
 * once), trim checks and reads. Answers stored with their acknowledgement (Delivery.reply's one step) and the relay's
 * moves are marked: deduped only within the dedupe window, one written again after that stored its entry twice (a
 * retry of the failed delivery runs only while the entry is still pending, unacknowledged).
 */
final class WriteOnce {
    /** The reason a marked command fails when its connection went away after it was written. */
    static final class LostAfterWrite extends RedisException {
        LostAfterWrite() {
            super("the connection to Redis was lost after the command was written, before its reply");
        }
    }

    private final Set<RedisCommand<?, ?, ?>> marked = Collections.newSetFromMap(new ConcurrentHashMap<>());

    /**
     * Dispatches {@code command} through {@code redis}, marked before it can be written (so on whichever event loop its
     * channel is, and however soon that channel dies); it is forgotten when it completes.
     */
    <T> RedisFuture<T> dispatch(RedisClusterAsyncCommands<String, byte[]> redis, RedisCommand<String, byte[], T> command) {
        marked.add(command);
        try {
            RedisFuture<T> reply = ((AbstractRedisAsyncCommands<String, byte[]>) redis).dispatch(command);
            reply.whenComplete((r, e) -> marked.remove(command));
            return reply;
        } catch (RuntimeException e) {
            marked.remove(command);
            throw e;
        }
    }

    /** Commands marked and not yet answered (tests). */
    int pending() {
        return marked.size();
    }

    /** Adds the handler to each new channel, after what {@code next} (another customizer, or none) does. */
    NettyCustomizer customizer(NettyCustomizer next) {
        return new NettyCustomizer() {
            @Override
            public void afterBootstrapInitialized(io.netty.bootstrap.Bootstrap bootstrap) {
                if (next != null) next.afterBootstrapInitialized(bootstrap);
            }

            @Override
            public void afterChannelInitialized(Channel channel) {
                if (next != null) next.afterChannelInitialized(channel);
                ChannelHandlerContext handler = channel.pipeline().context(CommandHandler.class);
                if (handler != null) {
                    channel.pipeline().addBefore(handler.name(), "stargazer-write-once", new Inactive((CommandHandler) handler.handler()));
                }
            }
        };
    }

    /** Fails the marked commands its channel's command handler still waits on, as the channel goes inactive. */
    private final class Inactive extends ChannelInboundHandlerAdapter {
        private final CommandHandler commands;

        Inactive(CommandHandler commands) {
            this.commands = commands;
        }

        @Override
        public void channelInactive(ChannelHandlerContext ctx) throws Exception {
            if (!marked.isEmpty()) {
                List<RedisCommand<?, ?, ?>> lost = new ArrayList<>();
                for (RedisCommand<?, ?, ?> c : commands.getStack()) {
                    if (isMarked(c)) lost.add(c);
                }
                for (RedisCommand<?, ?, ?> c : lost) c.completeExceptionally(new LostAfterWrite());
            }
            super.channelInactive(ctx);
        }

        private boolean isMarked(RedisCommand<?, ?, ?> c) {
            for (RedisCommand<?, ?, ?> layer = c; layer != null; ) {
                if (marked.contains(layer)) return true;
                layer = layer instanceof CommandWrapper<?, ?, ?> w ? w.getDelegate() : null;
            }
            return false;
        }
    }
}
