// The worker side of the round trip, in a JVM of its own so its heap and resident size can be measured alone.
package io.stargazer.bench;

import io.stargazer.bus.BusConfig;
import io.stargazer.bus.EventBus;
import io.stargazer.bus.NodeRole;
import io.stargazer.bus.RedisUrl;
import io.stargazer.bus.Subscription;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.lang.management.ManagementFactory;
import java.lang.management.MemoryMXBean;
import java.lang.management.MemoryUsage;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.atomic.AtomicLong;

/**
 * A worker that echoes every inbound envelope to an outbound stream. Talks to the harness over stdin/stdout, one
 * line each: {@code SUB <inbound> <outbound> <group>} (re)subscribes, {@code UNSUB} stops, {@code RESET} restarts the heap peak,
 * {@code PEAK} answers {@code PEAK <heap used bytes> <heap committed bytes>}, {@code QUIT} (or end of input) exits.
 * The heap is sampled every 5 ms on a daemon thread.
 */
public final class WorkerMain {
    private WorkerMain() {
    }

    public static void main(String[] args) throws Exception {
        System.setProperty("org.slf4j.simpleLogger.defaultLogLevel", "warn");
        MemoryMXBean memory = ManagementFactory.getMemoryMXBean();
        AtomicLong peakUsed = new AtomicLong();
        AtomicLong peakCommitted = new AtomicLong();
        Thread sampler = new Thread(() -> {
            while (true) {
                MemoryUsage u = memory.getHeapMemoryUsage();
                peakUsed.accumulateAndGet(u.getUsed(), Math::max);
                peakCommitted.accumulateAndGet(u.getCommitted(), Math::max);
                try {
                    Thread.sleep(5);
                } catch (InterruptedException e) {
                    return;
                }
            }
        }, "heap-sampler");
        sampler.setDaemon(true);
        sampler.start();

        BusConfig config = BusConfig.builder().role(NodeRole.WORKER).nodeId("bench-worker").streamMaxlen(Ctx.MAXLEN).build();
        try (EventBus bus = EventBus.connect(RedisUrl.parse(args[0]), config);
             BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8))) {
            Subscription sub = null;
            System.out.println("READY");
            System.out.flush();
            String line;
            while ((line = in.readLine()) != null) {
                String[] cmd = line.trim().split(" ");
                switch (cmd[0]) {
                    case "SUB" -> {
                        if (sub != null) sub.close();
                        String outbound = cmd[2];
                        sub = bus.subscribeAsync(bus.consumer(cmd[1], cmd[3]).consumerName("bench-worker").build(),
                                d -> bus.publishAsync(outbound, d.envelope()));
                        System.out.println("OK");
                    }
                    case "UNSUB" -> {
                        if (sub != null) sub.close();
                        sub = null;
                        System.out.println("OK");
                    }
                    case "RESET" -> {
                        MemoryUsage u = memory.getHeapMemoryUsage();
                        peakUsed.set(u.getUsed());
                        peakCommitted.set(u.getCommitted());
                        System.out.println("OK");
                    }
                    case "PEAK" -> System.out.println("PEAK " + peakUsed.get() + " " + peakCommitted.get());
                    case "QUIT" -> {
                        if (sub != null) sub.close();
                        return;
                    }
                    default -> System.out.println("ERR unknown command " + cmd[0]);
                }
                System.out.flush();
            }
        }
    }
}
