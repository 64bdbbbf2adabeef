package io.stargazer.bus.internal;

import static org.awaitility.Awaitility.await;

import io.stargazer.bus.Backpressure;
import io.stargazer.bus.BusConfig;
import io.stargazer.bus.Envelope;
import io.stargazer.bus.EventBus;
import io.stargazer.bus.NodeRole;
import io.stargazer.bus.RedisUrl;
import io.stargazer.bus.TrimPolicy;
import io.stargazer.bus.testing.TestRedis;
import io.stargazer.embedded.RedisServerProcess;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * A bus on a redis-server of its own (the tests pause it) whose inbound stream is full under SAFE trimming: a group
 * that never reads holds it at its cap of {@value #CAP}, so publishes are held ({@code SG_BACKPRESSURE=block}). What
 * the fill-up loop got held has ended when it is returned, so only the test's own publishes are held after it.
 */
record FullStream(RedisServerProcess server, EventBus bus, RedisEventBus impl, String stream, StreamGuard guard, StreamGuard.State state) {
    static final int CAP = 1000;

    /** Registers the server and the bus in {@code closeables}, to be closed by the test. */
    static FullStream start(List<AutoCloseable> closeables, Duration publishTimeout, Duration backpressureTimeout) throws Exception {
        RedisServerProcess server = RedisServerProcess.builder().start();
        closeables.add(server);
        EventBus bus = EventBus.connect(RedisUrl.parse(server.url()), BusConfig.builder().topology(TestRedis.topology()).role(NodeRole.WORKER)
                .nodeId("held").streamMaxlen(CAP).trimPolicy(TrimPolicy.SAFE).backpressure(Backpressure.BLOCK)
                .backpressureTimeout(backpressureTimeout).publishTimeout(publishTimeout).build());
        closeables.add(bus);
        String stream = bus.topology().inboundStream();
        bus.ensureGroup(stream, "slow"); // never reads: nothing may be trimmed
        List<CompletableFuture<String>> fill = new ArrayList<>();
        for (int i = 0; i < CAP; i++) fill.add(bus.publishInboundAsync(Envelope.of("seq", i)));
        CompletableFuture.allOf(fill.toArray(CompletableFuture[]::new)).get(30, TimeUnit.SECONDS);
        RedisEventBus impl = (RedisEventBus) bus;
        StreamGuard guard = impl.guard();
        AtomicInteger seq = new AtomicInteger(CAP);
        // Each publish counts toward the next check; the check that finds the stream at its cap marks it full.
        await().atMost(Duration.ofSeconds(60)).pollInterval(Duration.ofMillis(50)).until(() -> {
            if (guard.isFull(stream)) return true;
            bus.publishInboundAsync(Envelope.of("seq", seq.incrementAndGet()));
            return false;
        });
        StreamGuard.State st = guard.state(stream);
        await().atMost(Duration.ofSeconds(60)).until(() -> {
            synchronized (st.parked) {
                return st.parked.isEmpty();
            }
        });
        return new FullStream(server, bus, impl, stream, guard, st);
    }
}
