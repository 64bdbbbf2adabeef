// Tools calls: a worker's ToolClient calling an echo tool of a ToolService, through the benchmark's Redis.
package io.stargazer.bench;

import io.stargazer.bus.BusConfig;
import io.stargazer.bus.EventBus;
import io.stargazer.bus.NodeRole;
import io.stargazer.bus.Topology;
import io.stargazer.bus.tools.ToolClient;
import io.stargazer.bus.tools.ToolRegistry;
import io.stargazer.bus.tools.ToolService;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import org.HdrHistogram.Histogram;

/**
 * Calls {@code echo} (returns its arguments) with a small argument map, for a warm-up and then a measured period,
 * keeping {@code inFlight} calls outstanding. Latency is from each call to its result; calls per second over the
 * measured period. Client and service run in this JVM with a bus each, as two processes would.
 */
final class ToolsRows {
    record Run(int inFlight, double callsPerSecond, double p50Ms, double p99Ms, double p999Ms) {
    }

    private ToolsRows() {
    }

    static Run[] run(Ctx ctx, int... inFlights) throws Exception {
        Topology topology = Topology.builder().namespace(ctx.key("tools").replace(':', '-')).build();
        Map<String, Object> args = Map.of("text", "x".repeat(100), "n", 42);
        try (EventBus toolsBus = EventBus.connect(ctx.redisUrl, BusConfig.builder().topology(topology).role(NodeRole.TOOLS)
                     .nodeId("bench-tools").streamMaxlen(Ctx.MAXLEN).build());
             EventBus workerBus = EventBus.connect(ctx.redisUrl, BusConfig.builder().topology(topology).role(NodeRole.WORKER)
                     .nodeId("bench-worker").streamMaxlen(Ctx.MAXLEN).build());
             ToolService service = ToolService.start(toolsBus, ToolRegistry.builder().register("echo", a -> a).build());
             ToolClient client = ToolClient.create(workerBus)) {
            Run[] out = new Run[inFlights.length];
            for (int k = 0; k < inFlights.length; k++) {
                out[k] = measure(client, args, inFlights[k], ctx.warm, ctx.measure);
            }
            return out;
        } finally {
            ctx.reset();
        }
    }

    private static Run measure(ToolClient client, Map<String, Object> args, int inFlight, Duration warm, Duration measure)
            throws Exception {
        Histogram h = new Histogram(TimeUnit.MINUTES.toNanos(1), 3);
        Semaphore window = new Semaphore(inFlight);
        AtomicReference<Throwable> failure = new AtomicReference<>();
        long start = System.nanoTime();
        long from = start + warm.toNanos();
        long end = from + measure.toNanos();
        long counted = 0;
        long now;
        while ((now = System.nanoTime()) < end && failure.get() == null) {
            if (!window.tryAcquire(100, TimeUnit.MILLISECONDS)) continue;
            long t0 = System.nanoTime();
            boolean record = t0 >= from;
            if (record) counted++;
            client.call("echo", args, Duration.ofSeconds(30)).whenComplete((r, e) -> {
                if (e != null) failure.compareAndSet(null, e);
                else if (record) {
                    synchronized (h) {
                        h.recordValue(System.nanoTime() - t0);
                    }
                }
                window.release();
            });
        }
        if (!window.tryAcquire(inFlight, 60, TimeUnit.SECONDS)) throw new IllegalStateException("tool calls did not finish");
        long t1 = System.nanoTime();
        if (failure.get() != null) throw new IllegalStateException("tool call failed", failure.get());
        double seconds = (Math.max(t1, end) - from) / 1e9;
        return new Run(inFlight, counted / seconds, h.getValueAtPercentile(50) / 1e6, h.getValueAtPercentile(99) / 1e6,
                h.getValueAtPercentile(99.9) / 1e6);
    }
}
