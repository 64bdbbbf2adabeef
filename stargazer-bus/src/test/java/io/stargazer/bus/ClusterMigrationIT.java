// Promise: during a slot migration whose nodes do not yet agree on the slot's owner (the source told of the new owner
// before the target, as a manual migration or a resharding tool may leave it for a moment), an acknowledgement and a
// publish that the cluster keeps redirecting past Lettuce's redirects (MOVED) are written again once the nodes agree:
// the handler is not run a second time, and the publish is stored once, in order, instead of failing.
package io.stargazer.bus;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.lettuce.core.MigrateArgs;
import io.lettuce.core.RedisClient;
import io.lettuce.core.api.StatefulRedisConnection;
import io.lettuce.core.api.sync.RedisCommands;
import io.stargazer.bus.testing.TestRedis;
import io.stargazer.embedded.RedisServerProcess;
import io.stargazer.testing.CapturedStderr;
import io.stargazer.testing.RedisClusterProcess;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

@Timeout(value = 3, unit = TimeUnit.MINUTES)
class ClusterMigrationIT {
    static final Duration WAIT = Duration.ofSeconds(30);
    static RedisClusterProcess cluster;
    static RedisUrl url;

    @BeforeAll
    static void start() {
        cluster = RedisClusterProcess.builder().primaries(3).replicasPerPrimary(0).start();
        url = RedisUrl.parse(cluster.url());
    }

    @AfterAll
    static void stop() {
        if (cluster != null) cluster.close();
    }

    @Test
    void anAcknowledgementRedirectedDuringAMigrationIsSentAgainAndTheHandlerDoesNotRunTwice() throws Exception {
        String stream = "mig:{" + TestRedis.namespace() + "-acks}";
        Map<String, AtomicInteger> runs = new ConcurrentHashMap<>();
        CountDownLatch started = new CountDownLatch(1);
        CountDownLatch release = new CountDownLatch(1);
        try (EventBus bus = EventBus.connect(url, TestRedis.config(NodeRole.WORKER).build()); CapturedStderr err = new CapturedStderr()) {
            bus.ensureGroup(stream, "g");
            ConsumerConfig config = ConsumerConfig.builder(stream, "g").consumerName("c").claimIdle(Duration.ofSeconds(2))
                    .blockTimeout(Duration.ofMillis(500)).build();
            try (Subscription sub = bus.subscribe(config, d -> {
                runs.computeIfAbsent(d.id(), k -> new AtomicInteger()).incrementAndGet();
                started.countDown();
                release.await(30, TimeUnit.SECONDS);
            })) {
                String id = bus.publish(stream, Envelope.of("channel_id", "ch", "n", 1));
                assertThat(started.await(10, TimeUnit.SECONDS)).isTrue();
                try (Migration m = Migration.sourceToldFirst(stream)) {
                    release.countDown(); // the handler returns: its XACK bounces between the two nodes
                    await().atMost(WAIT).until(() -> err.text().lines().anyMatch(l -> l.contains("Acknowledgement failed")
                            && l.contains("MOVED")));
                    m.tellEveryNode();
                }
                await().atMost(WAIT).until(() -> bus.pendingCount(stream, "g") == 0 && sub.state() == Subscription.State.RUNNING);
                assertThat(runs).containsOnlyKeys(id);
                assertThat(runs.get(id).get()).as("handler runs of " + id).isEqualTo(1);
            }
        }
    }

    @Test
    void aPublishRedirectedDuringAMigrationIsWrittenAgainOnceAndInOrder() throws Exception {
        String stream = "mig:{" + TestRedis.namespace() + "-publish}";
        try (EventBus bus = EventBus.connect(url, TestRedis.config(NodeRole.GATEWAY).build())) {
            String first = bus.publish(stream, Envelope.of("channel_id", "ch", "n", 1));
            CompletableFuture<String> during;
            try (Migration m = Migration.sourceToldFirst(stream)) {
                long before = m.movedReplies();
                during = bus.publishAsync(stream, Envelope.of("channel_id", "ch", "n", 2));
                // Two rounds of Lettuce's redirects at least: the publish was refused (before, it failed with MOVED).
                await().atMost(WAIT).until(() -> during.isDone() || m.movedReplies() - before >= 12);
                m.tellEveryNode();
            }
            String second = during.get(WAIT.toSeconds(), TimeUnit.SECONDS);
            String third = bus.publish(stream, Envelope.of("channel_id", "ch", "n", 3));
            List<StreamEntry> entries = TestRedis.readAll(bus, stream);
            assertThat(entries).extracting(StreamEntry::id).containsExactly(first, second, third);
        }
    }

    /**
     * Moves the slot of {@code key} from its primary to another the way a manual migration does, and tells only the
     * source of the new owner ({@link #tellEveryNode} tells the rest): meanwhile each node sends the slot's commands to
     * the other.
     */
    static final class Migration implements AutoCloseable {
        final int slot;
        final RedisServerProcess source;
        final RedisServerProcess target;
        final RedisClient client = RedisClient.create();
        final Map<RedisServerProcess, StatefulRedisConnection<String, String>> conns = new ConcurrentHashMap<>();
        boolean told;

        private Migration(String key) {
            slot = cluster.keySlot(key);
            source = cluster.primaryFor(key);
            target = cluster.primaries().stream().filter(p -> p != source).findFirst().orElseThrow();
        }

        static Migration sourceToldFirst(String key) {
            Migration m = new Migration(key);
            String sourceId = m.on(m.source).clusterMyId();
            String targetId = m.on(m.target).clusterMyId();
            m.on(m.target).clusterSetSlotImporting(m.slot, sourceId);
            m.on(m.source).clusterSetSlotMigrating(m.slot, targetId);
            List<String> keys = m.on(m.source).clusterGetKeysInSlot(m.slot, 1000);
            if (!keys.isEmpty()) {
                m.on(m.source).migrate(m.target.host(), m.target.port(), 0, 10_000, MigrateArgs.Builder.keys(keys));
            }
            m.on(m.source).clusterSetSlotNode(m.slot, targetId);
            return m;
        }

        RedisCommands<String, String> on(RedisServerProcess node) {
            return conns.computeIfAbsent(node, n -> client.connect(io.lettuce.core.RedisURI.create(n.host(), n.port()))).sync();
        }

        /** MOVED replies the two nodes gave so far ({@code INFO errorstats}). */
        long movedReplies() {
            return moved(source) + moved(target);
        }

        private long moved(RedisServerProcess node) {
            for (String line : on(node).info("errorstats").split("\r?\n")) {
                if (line.startsWith("errorstat_MOVED:count=")) return Long.parseLong(line.substring("errorstat_MOVED:count=".length()).trim());
            }
            return 0;
        }

        void tellEveryNode() {
            String targetId = on(target).clusterMyId();
            for (RedisServerProcess n : cluster.primaries()) on(n).clusterSetSlotNode(slot, targetId);
            told = true;
        }

        @Override
        public void close() {
            if (!told) tellEveryNode();
            conns.values().forEach(StatefulRedisConnection::close);
            client.shutdown();
        }
    }
}
