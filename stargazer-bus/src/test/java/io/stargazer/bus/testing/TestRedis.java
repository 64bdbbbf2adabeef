package io.stargazer.bus.testing;

import io.stargazer.bus.BusConfig;
import io.stargazer.bus.EventBus;
import io.stargazer.bus.NodeRole;
import io.stargazer.bus.RedisUrl;
import io.stargazer.bus.Topology;
import io.stargazer.embedded.RedisServerProcess;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * The Redis server the test suites share: {@code REDIS_URL} when set, else one {@code redis-server} started for
 * this JVM on a free port (from PATH, else the embedded-redis artifact's binary). Each test takes its own
 * namespace, so tests never see each other's streams.
 */
public final class TestRedis {
    private static final AtomicInteger COUNTER = new AtomicInteger();
    private static RedisServerProcess server;
    private static RedisUrl url;

    private TestRedis() {
    }

    public static synchronized RedisUrl url() {
        if (url == null) {
            url = RedisServerProcess.redisUrlFromEnv().map(RedisUrl::parse).orElseGet(() -> {
                server = RedisServerProcess.builder().start();
                return RedisUrl.parse(server.url());
            });
        }
        return url;
    }

    /** A fresh name prefix: {@code t<n>-<random>}. */
    public static String namespace() {
        return "t" + COUNTER.incrementAndGet() + "-" + Integer.toHexString(ThreadLocalRandom.current().nextInt(1 << 24));
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
}
