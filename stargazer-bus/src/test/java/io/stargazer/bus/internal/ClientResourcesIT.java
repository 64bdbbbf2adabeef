package io.stargazer.bus.internal;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.stargazer.bus.BusConfig;
import io.stargazer.bus.Envelope;
import io.stargazer.bus.EventBus;
import io.stargazer.bus.NodeRole;
import io.stargazer.bus.RedisUrl;
import io.stargazer.bus.Topology;
import io.stargazer.bus.testing.Closer;
import io.stargazer.bus.testing.TestRedis;
import io.stargazer.embedded.RedisServerProcess;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The Lettuce resources the bus's clients share (Redis.Resources, made for WriteOnce's handler): resources a caller
 * owns are left working when the connection closes (a review found the copy shutting down the caller's executor and
 * timer), and whole-bus connect/close cycles leave no thread behind.
 */
@Timeout(value = 3, unit = TimeUnit.MINUTES)
class ClientResourcesIT {
    private final Closer closer = new Closer();

    @AfterEach
    void closeAll() throws Exception {
        closer.close();
    }

    /**
     * Resources the caller owns ({@code Redis.connect(url, name, deadPeerTimeout, resources)}, owned false) are left
     * alone by the connection's close (mutate() alone copies the base's "not shared" flags, and shutting the copy down
     * stopped the caller's computation threads and timer).
     */
    @Test
    void theCallersResourcesStillWorkAfterTheConnectionCloses() throws Exception {
        RedisServerProcess server = closer.add(RedisServerProcess.builder().start());
        io.lettuce.core.resource.ClientResources mine = io.lettuce.core.resource.ClientResources.create();
        try {
            Redis.connect(RedisUrl.parse(server.url()), "callers", BusConfig.DEFAULT_DEAD_PEER_TIMEOUT, mine).close();
            assertThat(mine.eventExecutorGroup().isShuttingDown()).as("the caller's computation threads shut down").isFalse();
            assertThat(org.assertj.core.api.Assertions.catchThrowable(() -> mine.timer().newTimeout(x -> { }, 1, TimeUnit.SECONDS)))
                    .as("the caller's timer stopped").isNull();
        } finally {
            mine.shutdown(0, 2, TimeUnit.SECONDS);
        }
    }

    /**
     * The bus's own resources do not time every command: Lettuce does so by default whenever LatencyUtils is on the
     * class path (it is here, through micrometer-core), into histograms the bus never reads. A caller's resources keep
     * what the caller chose.
     */
    @Test
    void ownResourcesRecordNoCommandLatencyAndTheCallersKeepTheirChoice() throws Exception {
        RedisServerProcess server = closer.add(RedisServerProcess.builder().start());
        RedisUrl url = RedisUrl.parse(server.url());
        assertThat(io.lettuce.core.metrics.DefaultCommandLatencyCollector.isAvailable())
                .as("LatencyUtils on the test class path, so Lettuce's default would record").isTrue();
        try (Redis own = Redis.connect(url, "own", BusConfig.DEFAULT_DEAD_PEER_TIMEOUT)) {
            assertThat(own.clientResources().commandLatencyRecorder().isEnabled()).as("own resources time commands").isFalse();
            assertThat(own.sharedSync().ping()).isEqualTo("PONG");
        }
        io.lettuce.core.resource.ClientResources mine = io.lettuce.core.resource.ClientResources.create();
        try (Redis callers = Redis.connect(url, "callers", BusConfig.DEFAULT_DEAD_PEER_TIMEOUT, mine)) {
            assertThat(callers.clientResources().commandLatencyRecorder().isEnabled())
                    .as("the caller's resources keep Lettuce's default").isTrue();
        } finally {
            mine.shutdown(0, 2, TimeUnit.SECONDS);
        }
    }

    /** Connect/close cycles of a whole bus leave no thread behind. */
    @Test
    void connectCloseCyclesLeaveNoThreads() throws Exception {
        RedisServerProcess server = closer.add(RedisServerProcess.builder().start());
        RedisUrl url = RedisUrl.parse(server.url());
        Topology t = Topology.builder().namespace(TestRedis.namespace()).build();
        cycle(url, t); // class loading, JVM-wide pools (GlobalEventExecutor, ...)
        // A baseline for the thread count, after the first cycle's threads have ended (a measurement, not a wait for
        // a condition: no condition says when the JVM-wide pools are done starting).
        await().pollDelay(Duration.ofSeconds(3)).atMost(Duration.ofSeconds(5)).until(() -> true);
        int before = Thread.activeCount();
        List<String> namesBefore = names();
        long slowest = 0;
        for (int i = 0; i < 8; i++) {
            long start = System.nanoTime();
            cycle(url, t);
            slowest = Math.max(slowest, TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start));
        }
        try {
            await().atMost(Duration.ofSeconds(20)).until(() -> Thread.activeCount() <= before + 2);
        } finally {
            List<String> after = names();
            after.removeAll(namesBefore);
            System.out.println("threads before " + before + " after " + Thread.activeCount() + " new: " + after + " slowest cycle ms " + slowest);
        }
    }

    private static void cycle(RedisUrl url, Topology t) throws Exception {
        try (EventBus bus = EventBus.connect(url, BusConfig.builder().topology(t).role(NodeRole.STANDALONE).nodeId("cycles").build())) {
            bus.ensureGroup(t.inboundStream(), t.workerGroup());
            bus.publish(t.inboundStream(), Envelope.of("channel_id", "c", "n", 1));
            CompletableFuture<Void> got = new CompletableFuture<>();
            try (var s = bus.subscribe(bus.consumer(t.inboundStream(), t.workerGroup()).build(), d -> got.complete(null))) {
                got.get(20, TimeUnit.SECONDS);
            }
        }
    }

    private static List<String> names() {
        List<String> out = new ArrayList<>();
        for (Thread th : Thread.getAllStackTraces().keySet()) out.add(th.getName());
        return out;
    }
}
