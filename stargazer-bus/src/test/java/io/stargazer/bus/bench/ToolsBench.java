package io.stargazer.bus.bench;

import io.stargazer.bus.BusConfig;
import io.stargazer.bus.EventBus;
import io.stargazer.bus.NodeRole;
import io.stargazer.bus.RedisUrl;
import io.stargazer.bus.Topology;
import io.stargazer.bus.tools.ToolClient;
import io.stargazer.bus.tools.ToolRegistry;
import io.stargazer.bus.tools.ToolService;
import io.stargazer.bus.tools.ToolServiceConfig;
import io.stargazer.embedded.RedisServerProcess;
import java.time.Duration;
import java.util.Arrays;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.Semaphore;

/**
 * Tool-call benchmark (not a test): one worker's ToolClient calls an {@code echo} tool of one ToolService, both in
 * this JVM, through a redis-server of its own; measures call latency (p50, p99, p99.9) and calls per second with
 * 1 and 64 calls in flight. Arguments: {@code [calls per run, default 20000]}.
 */
public final class ToolsBench {
    private ToolsBench() {
    }

    public static void main(String[] args) throws Exception {
        int calls = args.length > 0 ? Integer.parseInt(args[0]) : 20_000;
        try (RedisServerProcess redis = RedisServerProcess.builder().start()) {
            RedisUrl url = RedisUrl.parse(redis.url());
            Topology t = Topology.builder().namespace("bench").build();
            try (EventBus toolsBus = EventBus.connect(url, BusConfig.builder().topology(t).role(NodeRole.TOOLS).nodeId("bench-tools").build());
                 EventBus workerBus = EventBus.connect(url, BusConfig.builder().topology(t).role(NodeRole.WORKER).nodeId("bench-worker").build());
                 ToolService service = ToolService.start(toolsBus, ToolRegistry.builder().register("echo", a -> a.get("v")).build(),
                         ToolServiceConfig.builder().maxConcurrent(16).maxQueued(256).readAhead(0).build());
                 ToolClient client = ToolClient.create(workerBus)) {
                System.out.printf("redis %s, %d calls per run, args {v: <32 bytes text>}%n", redis.version(), calls);
                run(client, 1, Math.min(calls, 2000), false);   // warm-up
                run(client, 64, Math.min(calls, 5000), false);  // warm-up
                run(client, 1, calls, true);
                run(client, 64, calls, true);
            }
        }
    }

    private static void run(ToolClient client, int inFlight, int calls, boolean print) throws Exception {
        long[] latencies = new long[calls];
        Semaphore window = new Semaphore(inFlight);
        CountDownLatch done = new CountDownLatch(calls);
        Map<String, Object> args = Map.of("v", "0123456789abcdef0123456789abcdef");
        long t0 = System.nanoTime();
        for (int i = 0; i < calls; i++) {
            window.acquire();
            int n = i;
            long start = System.nanoTime();
            client.call("echo", args, Duration.ofSeconds(30)).whenComplete((r, e) -> {
                latencies[n] = e == null ? System.nanoTime() - start : Long.MAX_VALUE;
                window.release();
                done.countDown();
            });
        }
        done.await();
        long elapsed = System.nanoTime() - t0;
        if (!print) return;
        long errors = Arrays.stream(latencies).filter(l -> l == Long.MAX_VALUE).count();
        Arrays.sort(latencies);
        System.out.printf("in flight %3d: %8.0f calls/s  p50 %6.3f ms  p99 %6.3f ms  p99.9 %6.3f ms  errors %d%n",
                inFlight, calls / (elapsed / 1e9), pct(latencies, 0.50), pct(latencies, 0.99), pct(latencies, 0.999), errors);
    }

    private static double pct(long[] sorted, double p) {
        return sorted[Math.min(sorted.length - 1, (int) Math.ceil(p * sorted.length) - 1)] / 1e6;
    }
}
