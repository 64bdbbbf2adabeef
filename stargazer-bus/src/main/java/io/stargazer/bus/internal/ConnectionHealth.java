package io.stargazer.bus.internal;

import io.lettuce.core.RedisChannelHandler;
import io.lettuce.core.RedisChannelWriter;
import io.lettuce.core.api.StatefulConnection;
import io.lettuce.core.api.StatefulRedisConnection;
import io.lettuce.core.cluster.api.StatefulRedisClusterConnection;
import io.lettuce.core.cluster.models.partitions.RedisClusterNode;
import io.lettuce.core.protocol.ConnectionIntent;
import io.lettuce.core.protocol.DefaultEndpoint;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Notices a shared connection whose peer is gone without the socket saying so (a half-open connection: a dropped NAT
 * or load-balancer flow, a frozen server) and replaces it. TCP keepalive ({@link Redis}) covers a peer that vanished;
 * it does not cover one whose kernel still acknowledges while nothing answers, so this sends a PING every half
 * {@code deadPeerTimeout} and, when one has had no answer for {@code deadPeerTimeout}, disconnects the connection's
 * channel: Lettuce's watchdog then opens a new one (commands written on the old one are retried or time out).
 *
 * <p>On a cluster every primary's connection is checked on its own. Runs on the bus's maintenance thread; the PING
 * replies complete on Redis I/O threads, where they only clear a field.
 */
final class ConnectionHealth {
    private static final Logger log = LoggerFactory.getLogger(ConnectionHealth.class);

    private final StatefulConnection<String, byte[]> shared;
    private final long deadPeerNanos;
    private final Map<String, Probe> probes = new ConcurrentHashMap<>();

    private static final class Probe {
        volatile long sentAt;
        volatile CompletableFuture<?> ping;
        volatile boolean replaced;
    }

    ConnectionHealth(StatefulConnection<String, byte[]> shared, Duration deadPeerTimeout) {
        this.shared = shared;
        this.deadPeerNanos = deadPeerTimeout.toNanos();
    }

    /** How often {@link #check()} should run: half the dead-peer timeout. */
    long intervalMillis() {
        return Math.max(50, deadPeerNanos / 2_000_000);
    }

    void check() {
        for (Map.Entry<String, StatefulConnection<String, byte[]>> e : connections().entrySet()) {
            check(e.getKey(), e.getValue());
        }
    }

    private void check(String name, StatefulConnection<String, byte[]> c) {
        Probe p = probes.computeIfAbsent(name, k -> new Probe());
        long now = System.nanoTime();
        CompletableFuture<?> ping = p.ping;
        if (ping != null && !ping.isDone()) {
            if (now - p.sentAt > deadPeerNanos && !p.replaced) {
                p.replaced = true;
                log.atWarn().addKeyValue("redis", name).addKeyValue("waited_ms", (now - p.sentAt) / 1_000_000)
                        .log("Redis connection answered nothing within the dead-peer timeout (SG_DEAD_PEER_TIMEOUT_MS); replacing it");
                disconnect(c);
            }
            return;
        }
        if (p.replaced) {
            p.replaced = false;
            log.atInfo().addKeyValue("redis", name).log("Redis connection answers again");
        }
        p.sentAt = now;
        try {
            p.ping = Redis.async(c).ping().toCompletableFuture();
        } catch (RuntimeException ignored) {
            p.ping = null; // not connected: Lettuce is reconnecting already
        }
    }

    /** The connections to check: the one server's, or each cluster primary's. */
    private Map<String, StatefulConnection<String, byte[]>> connections() {
        if (shared instanceof StatefulRedisClusterConnection<String, byte[]> cluster) {
            Map<String, StatefulConnection<String, byte[]>> out = new java.util.LinkedHashMap<>();
            List<RedisClusterNode> nodes = new ArrayList<>(cluster.getPartitions().getPartitions());
            for (RedisClusterNode n : nodes) {
                if (n.is(RedisClusterNode.NodeFlag.UPSTREAM) && !n.is(RedisClusterNode.NodeFlag.FAIL)) {
                    try {
                        StatefulRedisConnection<String, byte[]> c = cluster.getConnection(n.getNodeId(), ConnectionIntent.WRITE);
                        out.put(n.getUri().getHost() + ":" + n.getUri().getPort(), c);
                    } catch (RuntimeException e) {
                        // unreachable node: the cluster client's own reconnect and topology refresh handle it
                    }
                }
            }
            probes.keySet().retainAll(out.keySet());
            return out;
        }
        return Map.of("shared", shared);
    }

    private static void disconnect(StatefulConnection<String, byte[]> c) {
        if (c instanceof RedisChannelHandler<?, ?> h) {
            RedisChannelWriter w = h.getChannelWriter();
            while (w instanceof io.lettuce.core.protocol.CommandExpiryWriter || !(w instanceof DefaultEndpoint)) {
                RedisChannelWriter inner = unwrap(w);
                if (inner == null || inner == w) break;
                w = inner;
            }
            if (w instanceof DefaultEndpoint endpoint) {
                endpoint.disconnect();
                return;
            }
        }
        log.atWarn().log("Cannot replace this kind of connection (" + c.getClass().getName() + "); waiting for TCP to give up");
    }

    private static RedisChannelWriter unwrap(RedisChannelWriter w) {
        if (w instanceof io.lettuce.core.protocol.CommandExpiryWriter cew) {
            try {
                java.lang.reflect.Field f = cew.getClass().getDeclaredField("delegate");
                f.setAccessible(true);
                return (RedisChannelWriter) f.get(cew);
            } catch (ReflectiveOperationException e) {
                return null;
            }
        }
        return null;
    }
}
