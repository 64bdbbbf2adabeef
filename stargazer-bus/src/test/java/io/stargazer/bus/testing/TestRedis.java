package io.stargazer.bus.testing;

import io.stargazer.bus.BusConfig;
import io.stargazer.bus.EventBus;
import io.stargazer.bus.NodeRole;
import io.stargazer.bus.RedisUrl;
import io.stargazer.bus.Topology;
import io.stargazer.bus.testing.RawRedis;
import io.stargazer.testing.TestServers;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * The bus's view of the suite's shared server ({@link TestServers#url()}: {@code REDIS_URL}, else one
 * {@code redis-server} started for this JVM): its URL, fresh topologies and buses on it. Each test takes its own
 * namespace, so tests never see each other's streams.
 */
public final class TestRedis {
    private static final AtomicInteger COUNTER = new AtomicInteger();

    private TestRedis() {
    }

    public static RedisUrl url() {
        return RedisUrl.parse(TestServers.url());
    }

    /** A fresh name prefix: {@code t<n>-<random>}. */
    public static String namespace() {
        return TestServers.namespace();
    }

    /** The default topology under a fresh namespace. */
    public static Topology topology() {
        return Topology.builder().namespace(namespace()).build();
    }

    public static BusConfig.Builder config(NodeRole role) {
        return BusConfig.builder().topology(topology()).role(role).nodeId("node-" + COUNTER.incrementAndGet());
    }

    public static EventBus bus(NodeRole role) {
        return EventBus.connect(url(), config(role).build());
    }

    public static EventBus bus(BusConfig config) {
        return EventBus.connect(url(), config);
    }

    /** Every entry of {@code stream}, read without a group, oldest first. */
    public static java.util.List<io.stargazer.bus.StreamEntry> readAll(EventBus bus, String stream) {
        java.util.List<io.stargazer.bus.StreamEntry> out = new java.util.ArrayList<>();
        String after = "0";
        java.util.List<io.stargazer.bus.StreamEntry> page;
        while (!(page = bus.read(stream, after, 1000)).isEmpty()) {
            out.addAll(page);
            after = page.get(page.size() - 1).id();
        }
        return out;
    }

    /** One channel id for each of {@code partitions} inbound partitions, in the order of {@code Topology.inboundStreams()}. */
    public static java.util.List<String> oneChannelPerPartition(int partitions) {
        String[] found = new String[partitions];
        int left = partitions;
        for (int i = 0; left > 0; i++) {
            String c = "c" + i;
            int p = io.stargazer.bus.Topology.partitionOf(c, partitions);
            if (found[p] == null) {
                found[p] = c;
                left--;
            }
        }
        return java.util.List.of(found);
    }
}
