// Runs a real local Redis Cluster (N primaries, each with replicas) from the same redis-server binary as
// RedisServerProcess, and forms it with plain cluster commands, so tests need no redis-cli (absent where only the
// embedded binary exists).
package io.stargazer.testing;

import io.lettuce.core.ClientOptions;
import io.lettuce.core.RedisClient;
import io.lettuce.core.RedisURI;
import io.lettuce.core.SocketOptions;
import io.lettuce.core.api.StatefulRedisConnection;
import io.lettuce.core.api.sync.RedisCommands;
import io.lettuce.core.codec.StringCodec;
import io.stargazer.embedded.RedisServerProcess;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.ThreadLocalRandom;
import java.util.function.BooleanSupplier;
import java.util.function.Function;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A Redis Cluster of {@code primaries} primaries, each with {@code replicasPerPrimary} replicas, on loopback ports.
 * Slots are split evenly and in order over the primaries, as {@code redis-cli --cluster create} does (3 primaries:
 * 0-5460, 5461-10922, 10923-16383). Every node runs {@code --cluster-enabled yes --cluster-node-timeout T
 * --appendonly yes} (fsync every second, as a production node would) in its own data directory.
 *
 * <p>{@link #start()} returns once every node reports {@code cluster_state:ok}, knows every other node, and every
 * replica's link to its primary is up.
 */
public final class RedisClusterProcess implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(RedisClusterProcess.class);
    public static final int SLOTS = 16384;
    /** Slots per CLUSTER ADDSLOTS: Redis 6.2 has no ADDSLOTSRANGE, and one command per slot would be slow. */
    private static final int ADDSLOTS_CHUNK = 1000;
    /** The cluster bus listens on port + 10000, so a node's port must leave room for it. */
    private static final int BUS_PORT_OFFSET = 10000;

    private final String host;
    private final Duration formTimeout;
    private final List<RedisServerProcess> primaries;
    private final List<RedisServerProcess> replicas;
    private final List<RedisServerProcess> nodes;
    private final RedisClient client;
    private final java.util.concurrent.atomic.AtomicBoolean closed = new java.util.concurrent.atomic.AtomicBoolean();

    private RedisClusterProcess(String host, Duration formTimeout, List<RedisServerProcess> primaries,
            List<RedisServerProcess> replicas) {
        this.client = RedisClient.create();
        // A dead node (killed by a test) must fail a probe at once, not be waited for or reconnected to.
        client.setOptions(ClientOptions.builder().autoReconnect(false)
                .socketOptions(SocketOptions.builder().connectTimeout(Duration.ofSeconds(1)).build()).build());
        this.host = host;
        this.formTimeout = formTimeout;
        this.primaries = List.copyOf(primaries);
        this.replicas = List.copyOf(replicas);
        List<RedisServerProcess> all = new ArrayList<>(primaries);
        all.addAll(replicas);
        this.nodes = List.copyOf(all);
    }

    public static Builder builder() {
        return new Builder();
    }

    /** The primaries as started (after a failover one of them may be a replica, or dead). */
    public List<RedisServerProcess> primaries() {
        return primaries;
    }

    /** The replicas as started, in primary order: replica i*k .. i*k+k-1 follow primary i. */
    public List<RedisServerProcess> replicas() {
        return replicas;
    }

    public List<RedisServerProcess> nodes() {
        return nodes;
    }

    /** The bus's cluster URL naming every node as a seed: {@code redis://h:p1,h:p2,...?cluster=true}. */
    public String url() {
        StringBuilder sb = new StringBuilder("redis://");
        for (int i = 0; i < nodes.size(); i++) {
            if (i > 0) sb.append(',');
            sb.append(host).append(':').append(nodes.get(i).port());
        }
        return sb.append("?cluster=true").toString();
    }

    /** {@code CLUSTER KEYSLOT key}, asked of a live node. */
    public int keySlot(String key) {
        return on(anyLive(), r -> r.clusterKeyslot(key)).intValue();
    }

    /** The node that serves {@code key}'s slot as primary now, in a live node's view. */
    public RedisServerProcess primaryFor(String key) {
        int slot = keySlot(key);
        for (String line : clusterNodes(anyLive())) {
            String[] f = line.split(" ");
            if (!f[2].contains("master") || f[2].contains("fail")) continue;
            for (int i = 8; i < f.length; i++) {
                if (f[i].startsWith("[")) continue; // a slot being migrated
                String[] range = f[i].split("-");
                int lo = Integer.parseInt(range[0]);
                int hi = range.length > 1 ? Integer.parseInt(range[1]) : lo;
                if (slot >= lo && slot <= hi) return byAddress(f[1]);
            }
        }
        throw new IllegalStateException("no live primary serves slot " + slot + " of '" + key + "'");
    }

    /** Waits until every live node reports {@code cluster_state:ok} and every slot has a live primary. */
    public void awaitHealthy(Duration timeout) {
        await("every live node reports cluster_state:ok with all slots served", timeout, () -> {
            for (RedisServerProcess n : nodes) {
                if (!n.isAlive()) continue;
                if (!on(n, RedisCommands::clusterInfo).contains("cluster_state:ok")) return false;
                int served = 0;
                for (String line : clusterNodes(n)) {
                    String[] f = line.split(" ");
                    if (!f[2].contains("master") || f[2].contains("fail") || !byAddress(f[1]).isAlive()) continue;
                    for (int i = 8; i < f.length; i++) {
                        if (f[i].startsWith("[")) continue;
                        String[] range = f[i].split("-");
                        served += range.length > 1 ? Integer.parseInt(range[1]) - Integer.parseInt(range[0]) + 1 : 1;
                    }
                }
                if (served != SLOTS) return false;
            }
            return true;
        });
    }

    /** Stops every node (SHUTDOWN NOSAVE) and removes their data directories. */
    @Override
    public void close() {
        if (!closed.compareAndSet(false, true)) return;
        try {
            RawRedis.shutdown(client);
            for (RedisServerProcess n : nodes) {
                try {
                    n.stop();
                } catch (RuntimeException e) {
                    log.warn("Cannot stop cluster node {}", n, e);
                }
            }
        } finally {
            OneAtATime.release();
        }
    }

    /**
     * One cluster at a time on the machine, across JVMs (the bus module's tests run in two): six nodes writing
     * append-only files, with node timeouts of 1-2 s, two clusters at once on two vCPUs could starve a node past its
     * timeout and have it failed over unasked. A lock on a file in the temp directory, taken before the nodes start and
     * let go when the cluster is closed (by the OS if the JVM dies); clusters of one JVM share it.
     */
    private static final class OneAtATime {
        private static int held;
        /** Open while held: its lock goes with it. */
        private static FileChannel channel;

        static synchronized void acquire() {
            if (held++ > 0) return;
            try {
                channel = FileChannel.open(Path.of(System.getProperty("java.io.tmpdir"), "stargazer-redis-cluster.lock"),
                        StandardOpenOption.CREATE, StandardOpenOption.WRITE);
                channel.lock();
            } catch (IOException e) {
                held--;
                closeQuietly();
                throw new UncheckedIOException("cannot take the machine's cluster lock", e);
            }
        }

        static synchronized void release() {
            if (held == 0 || --held > 0) return;
            closeQuietly(); // closing the channel lets the lock go
        }

        private static void closeQuietly() {
            try {
                if (channel != null) channel.close();
            } catch (IOException e) {
                log.warn("Cannot close the cluster lock's file", e);
            } finally {
                channel = null;
            }
        }
    }

    @Override
    public String toString() {
        return "redis-cluster[" + primaries.size() + " primaries, " + replicas.size() + " replicas, " + url() + "]";
    }

    // ---- forming -------------------------------------------------------------------------------------------

    private void form(int replicasPerPrimary) {
        List<String> ids = new ArrayList<>();
        for (int i = 0; i < nodes.size(); i++) {
            RedisServerProcess n = nodes.get(i);
            ids.add(on(n, RedisCommands::clusterMyId));
            // Distinct epochs up front, as redis-cli does, instead of leaving the cluster to resolve collisions.
            long epoch = i + 1;
            on(n, r -> r.clusterSetConfigEpoch(epoch));
        }
        int n = primaries.size();
        for (int i = 0; i < n; i++) {
            int first = (int) Math.round(i * (double) SLOTS / n);
            int last = (int) Math.round((i + 1) * (double) SLOTS / n) - 1;
            for (int from = first; from <= last; from += ADDSLOTS_CHUNK) {
                int[] slots = java.util.stream.IntStream.rangeClosed(from, Math.min(last, from + ADDSLOTS_CHUNK - 1)).toArray();
                on(primaries.get(i), r -> r.clusterAddSlots(slots));
            }
        }
        for (int i = 1; i < nodes.size(); i++) {
            int port = nodes.get(i).port();
            on(nodes.get(0), r -> r.clusterMeet(host, port));
        }
        await("every node knows every other node", formTimeout, () -> {
            for (RedisServerProcess node : nodes) {
                List<String> lines = clusterNodes(node);
                if (lines.size() != nodes.size() || lines.stream().anyMatch(l -> l.contains("handshake"))) return false;
            }
            return true;
        });
        for (int r = 0; r < replicas.size(); r++) {
            String primaryId = ids.get(r / replicasPerPrimary);
            on(replicas.get(r), c -> c.clusterReplicate(primaryId));
        }
        await("cluster_state:ok on every node, every replica in sync and known as one everywhere", formTimeout, () -> {
            for (RedisServerProcess node : nodes) {
                if (!on(node, RedisCommands::clusterInfo).contains("cluster_state:ok")) return false;
                long slaves = clusterNodes(node).stream().filter(l -> l.split(" ")[2].contains("slave")).count();
                if (slaves != replicas.size()) return false;
            }
            for (RedisServerProcess replica : replicas) {
                if (!on(replica, r -> r.info("replication")).contains("master_link_status:up")) return false;
            }
            return true;
        });
        log.info("Redis Cluster formed: {}", this);
    }

    // ---- commands, one short connection each (nodes die and come back in tests) -------------------------------

    private RedisServerProcess anyLive() {
        return nodes.stream().filter(RedisServerProcess::isAlive).findFirst()
                .orElseThrow(() -> new IllegalStateException("no cluster node is alive"));
    }

    private RedisServerProcess byAddress(String addr) {
        // "127.0.0.1:30001@40001" (Redis 7 may add ",hostname")
        String hostPort = addr.split("@")[0];
        int port = Integer.parseInt(hostPort.substring(hostPort.lastIndexOf(':') + 1));
        return nodes.stream().filter(n -> n.port() == port).findFirst()
                .orElseThrow(() -> new IllegalStateException("unknown node " + addr));
    }

    private List<String> clusterNodes(RedisServerProcess n) {
        List<String> out = new ArrayList<>();
        for (String line : on(n, RedisCommands::clusterNodes).split("\n")) {
            if (!line.isBlank()) out.add(line.trim());
        }
        return out;
    }

    /** Runs {@code command} on node {@code n}; a refused command or an unreachable node throws. */
    private <T> T on(RedisServerProcess n, Function<RedisCommands<String, String>, T> command) {
        RedisURI uri = RedisURI.builder().withHost(n.host()).withPort(n.port()).withTimeout(Duration.ofSeconds(5)).build();
        try (StatefulRedisConnection<String, String> c = client.connect(StringCodec.UTF8, uri)) {
            return command.apply(c.sync());
        }
    }

    private static void await(String what, Duration timeout, BooleanSupplier condition) {
        long deadline = System.nanoTime() + timeout.toNanos();
        RuntimeException last = null;
        while (true) {
            try {
                if (condition.getAsBoolean()) return;
            } catch (RuntimeException e) {
                last = e; // a node briefly unreachable (failing over): keep waiting
            }
            if (System.nanoTime() > deadline) {
                throw new IllegalStateException("Redis Cluster: timed out after " + timeout.toMillis() + " ms waiting until " + what, last);
            }
            try {
                Thread.sleep(50);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IllegalStateException("interrupted waiting until " + what, e);
            }
        }
    }

    /** A loopback port whose cluster bus port (+10000) is free too; below 55535 so the bus port exists. */
    private static int freeClusterPort(String host) {
        for (int attempt = 0; attempt < 50; attempt++) {
            int p = ThreadLocalRandom.current().nextInt(20000, 45000);
            if (p == 6379 || p + BUS_PORT_OFFSET == 6379) continue;
            try (ServerSocket a = new ServerSocket(p, 1, InetAddress.getByName(host));
                 ServerSocket b = new ServerSocket(p + BUS_PORT_OFFSET, 1, InetAddress.getByName(host))) {
                return p;
            } catch (IOException taken) {
                // try another
            }
        }
        throw new IllegalStateException("no free port pair (p, p+10000) on " + host);
    }

    /** Configures a cluster; {@link #start()} returns it formed and healthy. */
    public static final class Builder {
        private int primaries = 3;
        private int replicasPerPrimary = 1;
        private Duration nodeTimeout = Duration.ofSeconds(2);
        private String appendFsync = "everysec";
        private boolean requireFullCoverage = true;
        private Path binary;
        private Duration formTimeout = Duration.ofSeconds(30);

        private Builder() {
        }

        public Builder primaries(int n) {
            if (n < 1 || n > 100) throw new IllegalArgumentException("primaries " + n);
            this.primaries = n;
            return this;
        }

        public Builder replicasPerPrimary(int n) {
            if (n < 0 || n > 5) throw new IllegalArgumentException("replicasPerPrimary " + n);
            this.replicasPerPrimary = n;
            return this;
        }

        /** {@code cluster-node-timeout}: how long a primary must be unreachable before its replica takes over. */
        public Builder nodeTimeout(Duration t) {
            this.nodeTimeout = t;
            return this;
        }

        /** {@code appendfsync} of every node: {@code everysec} (default), {@code always} or {@code no}. */
        public Builder appendFsync(String policy) {
            if (!List.of("always", "everysec", "no").contains(policy)) throw new IllegalArgumentException("appendfsync " + policy);
            this.appendFsync = policy;
            return this;
        }

        /**
         * {@code cluster-require-full-coverage} (Redis's default: yes). With {@code false} the shards that are up keep
         * serving their slots while another shard fails over, instead of the whole cluster answering CLUSTERDOWN.
         */
        public Builder requireFullCoverage(boolean v) {
            this.requireFullCoverage = v;
            return this;
        }

        /** The redis-server binary of every node; by default the one {@link RedisServerProcess#resolveBinary()} picks. */
        public Builder binary(Path binary) {
            this.binary = binary;
            return this;
        }

        public Builder formTimeout(Duration t) {
            this.formTimeout = t;
            return this;
        }

        public RedisClusterProcess start() {
            Path bin = Optional.ofNullable(binary).orElseGet(RedisServerProcess::resolveBinary);
            String host = "127.0.0.1";
            List<RedisServerProcess> ps = new ArrayList<>();
            List<RedisServerProcess> rs = new ArrayList<>();
            OneAtATime.acquire(); // let go by close(), below on failure
            try {
                for (int i = 0; i < primaries; i++) ps.add(startNode(bin, host));
                for (int i = 0; i < primaries * replicasPerPrimary; i++) rs.add(startNode(bin, host));
            } catch (RuntimeException e) {
                for (RedisServerProcess n : ps) n.stop();
                for (RedisServerProcess n : rs) n.stop();
                OneAtATime.release();
                throw e;
            }
            RedisClusterProcess cluster = new RedisClusterProcess(host, formTimeout, ps, rs);
            try {
                cluster.form(Math.max(1, replicasPerPrimary));
                return cluster;
            } catch (RuntimeException e) {
                cluster.close();
                throw e;
            }
        }

        private RedisServerProcess startNode(Path bin, String host) {
            RuntimeException last = null;
            for (int attempt = 0; attempt < 3; attempt++) {
                try {
                    return RedisServerProcess.builder().binary(bin).bind(host).port(freeClusterPort(host))
                            .arg("--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                                    "--cluster-node-timeout", Long.toString(nodeTimeout.toMillis()),
                                    "--appendonly", "yes", "--appendfsync", appendFsync,
                                    "--cluster-require-full-coverage", requireFullCoverage ? "yes" : "no")
                            .start();
                } catch (IllegalStateException e) {
                    last = e; // the port was taken between the probe and the bind
                }
            }
            throw last;
        }
    }
}
