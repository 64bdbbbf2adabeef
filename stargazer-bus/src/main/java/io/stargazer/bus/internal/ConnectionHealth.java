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
 * channel: Lettuce's watchdog then opens a new one (commands written on the old one are written again there, except
 * publishes and a retry's counting ownership check, which fail with an unknown outcome: {@link WriteOnce}).
 *
 * <p>On a cluster every primary's connection is checked on its own: the very connection the cluster client routes the
 * primary's slots to (Lettuce keeps it by host and port; a connection asked for by node id is another one, and checking
 * that one, as before, replaced a connection that carried nothing, while publishes waiting on the routed one were
 * answered by a paused primary after its replica had taken over, and then discarded as it rejoined as a replica: told
 * "stored", lost). A connection whose PING is outstanding is still checked when its node is no longer a primary or is
 * marked failed (a failover meanwhile): what waits on it is failed as of unknown outcome at the dead-peer timeout.
 * Runs on the bus's maintenance thread; the PING replies complete on Redis I/O threads, where they only clear a field.
 */
final class ConnectionHealth {
    private static final Logger log = LoggerFactory.getLogger(ConnectionHealth.class);

    private final StatefulConnection<String, byte[]> shared;
    private final long deadPeerNanos;
    private final Map<String, Probe> probes = new ConcurrentHashMap<>();
    /** Cluster nodes the cluster marks failed, with when this check first saw them so (System.nanoTime). */
    private final Map<String, Long> down = new ConcurrentHashMap<>();
    private final Map<String, Long> downReported = new ConcurrentHashMap<>();
    /** How often a node that stays down is mentioned again. */
    private static final long DOWN_REPORT_NANOS = 30_000_000_000L;

    private static final class Probe {
        /** The connection probed, so one whose node left the primaries is still checked while its PING is out. */
        volatile StatefulConnection<String, byte[]> connection;
        volatile long sentAt;
        volatile CompletableFuture<?> ping;
        /** The connection the outstanding PING was sent on has been replaced for it. */
        volatile boolean replaced;
        /** Replaced, and no PING answered since: "answers again" is logged when one is (not when one merely ends). */
        volatile boolean unanswered;
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
        Map<String, StatefulConnection<String, byte[]>> current = connections();
        for (Map.Entry<String, StatefulConnection<String, byte[]>> e : current.entrySet()) {
            check(e.getKey(), e.getValue());
        }
        // Nodes no longer checked as primaries: kept until a PING still out on them is answered or has replaced them.
        for (var it = probes.entrySet().iterator(); it.hasNext();) {
            Map.Entry<String, Probe> e = it.next();
            if (current.containsKey(e.getKey())) continue;
            Probe p = e.getValue();
            CompletableFuture<?> ping = p.ping;
            if (ping != null && !ping.isDone() && !p.replaced && p.connection != null) {
                check(e.getKey(), p.connection);
            } else {
                it.remove();
            }
        }
    }

    private void check(String name, StatefulConnection<String, byte[]> c) {
        Probe p = probes.computeIfAbsent(name, k -> new Probe());
        if (p.connection != c) {
            p.connection = c; // a new connection (a topology change): its own probe
            p.ping = null;
            p.replaced = false;
            p.unanswered = false;
        }
        long now = System.nanoTime();
        CompletableFuture<?> ping = p.ping;
        if (ping != null && !ping.isDone()) {
            if (now - p.sentAt > deadPeerNanos && !p.replaced) {
                p.replaced = true;
                p.unanswered = true;
                log.atWarn().addKeyValue("redis", name).addKeyValue("waited_ms", (now - p.sentAt) / 1_000_000)
                        .log("Redis connection answered nothing within the dead-peer timeout (SG_DEAD_PEER_TIMEOUT_MS); replacing it");
                disconnect(c);
            }
            return;
        }
        // A PING that ended with an error (refused while reconnecting, timed out on a new connection that a stopped
        // server's kernel accepted) is no answer: the line waits for one that Redis answered.
        if (p.unanswered && ping != null && !ping.isCompletedExceptionally()) {
            p.unanswered = false;
            log.atInfo().addKeyValue("redis", name).log("Redis connection answers again");
        }
        p.replaced = false;
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
            noteDownNodes(nodes);
            for (RedisClusterNode n : nodes) {
                if (n.is(RedisClusterNode.NodeFlag.UPSTREAM) && !n.is(RedisClusterNode.NodeFlag.FAIL)) {
                    try {
                        // By host and port, as the cluster client routes a slot's commands (not by node id: another connection).
                        StatefulRedisConnection<String, byte[]> c = cluster.getConnection(n.getUri().getHost(), n.getUri().getPort(),
                                ConnectionIntent.WRITE);
                        out.put(n.getUri().getHost() + ":" + n.getUri().getPort(), c);
                    } catch (RuntimeException e) {
                        // unreachable node: the cluster client's own reconnect and topology refresh handle it
                    }
                }
            }
            return out;
        }
        return Map.of("shared", shared);
    }

    /**
     * One line when the cluster marks a node failed, one every 30 s while it stays so, one when it is back: instead of
     * a connection error per reconnect attempt and per topology refresh (Lettuce logs those at WARN under
     * {@code io.lettuce.core.protocol.ConnectionWatchdog} and
     * {@code io.lettuce.core.cluster.topology.DefaultClusterTopologyRefresh}; the node sets both to ERROR, docs/cluster.md).
     */
    private void noteDownNodes(List<RedisClusterNode> nodes) {
        long now = System.nanoTime();
        java.util.Set<String> failedNow = new java.util.HashSet<>();
        for (RedisClusterNode n : nodes) {
            if (n.is(RedisClusterNode.NodeFlag.FAIL) || n.is(RedisClusterNode.NodeFlag.EVENTUAL_FAIL)) {
                failedNow.add(n.getUri().getHost() + ":" + n.getUri().getPort());
            }
        }
        for (String node : failedNow) {
            Long since = down.putIfAbsent(node, now);
            if (since == null) {
                downReported.put(node, now);
                log.atWarn().addKeyValue("redis", node).log("Redis Cluster node is down (the cluster marks it failed); "
                        + "its slots are served by the replica promoted in its place; connection errors to it are summarised here");
            } else if (now - downReported.getOrDefault(node, since) > DOWN_REPORT_NANOS) {
                downReported.put(node, now);
                log.atWarn().addKeyValue("redis", node).addKeyValue("down_s", (now - since) / 1_000_000_000L)
                        .log("Redis Cluster node is still down");
            }
        }
        for (String node : List.copyOf(down.keySet())) {
            if (!failedNow.contains(node)) {
                Long since = down.remove(node);
                downReported.remove(node);
                log.atInfo().addKeyValue("redis", node).addKeyValue("down_s", since == null ? 0 : (now - since) / 1_000_000_000L)
                        .log("Redis Cluster node is no longer marked failed");
            }
        }
    }

    /** Closes the channel of {@code c} for Lettuce to open a new one (which looks the server's address up again). */
    static void disconnect(StatefulConnection<String, byte[]> c) {
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
