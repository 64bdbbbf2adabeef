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
 * A worker that echoes every inbound envelope to an outbound stream: with the bus, or (second argument
 * {@code spring-data-redis} or {@code redisson}) with a peer ({@link PeerRoundTrip}). Talks to the harness over stdin/stdout, one
 * line each: {@code SUB <inbound> <outbound> <group>} (re)subscribes, {@code UNSUB} stops, {@code RESET} restarts the heap peak
 * and answers {@code OK <process CPU ns>}, {@code PEAK} answers {@code PEAK <heap used bytes> <heap committed bytes> <process
 * CPU ns>}, {@code QUIT} (or end of input) exits.
 * The heap is sampled every 5 ms on a daemon thread.
 */
public final class WorkerMain {
    private WorkerMain() {
    }

    /** One contender's worker side. */
    interface Echo extends AutoCloseable {
        /** Starts echoing {@code inbound} (read with {@code group}) to {@code outbound}; closing the result stops it. */
        AutoCloseable start(String inbound, String outbound, String group) throws Exception;

        @Override
        void close();
    }

    /** The bus's worker: {@code subscribeAsync} with the consumer's defaults, each delivery published back with publishAsync. */
    private static final class StargazerEcho implements Echo {
        private final EventBus bus;

        StargazerEcho(RedisUrl url) {
            BusConfig config = BusConfig.builder().role(NodeRole.WORKER).nodeId("bench-worker").streamMaxlen(Ctx.MAXLEN).build();
            bus = EventBus.connect(url, config);
        }

        @Override
        public AutoCloseable start(String inbound, String outbound, String group) {
            Subscription sub = bus.subscribeAsync(bus.consumer(inbound, group).consumerName("bench-worker").build(),
                    d -> bus.publishAsync(outbound, d.envelope()));
            return sub::close;
        }

        @Override
        public void close() {
            bus.close();
        }
    }

    /** CPU time of this whole JVM (every thread, GC included), so contenders are charged for all they do. */
    private static long cpuNanos() {
        return ((com.sun.management.OperatingSystemMXBean) ManagementFactory.getOperatingSystemMXBean()).getProcessCpuTime();
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

        RedisUrl url = RedisUrl.parse(args[0]);
        String mode = args.length > 1 ? args[1] : Result.STARGAZER;
        try (Echo echo = mode.equals(Result.STARGAZER) ? new StargazerEcho(url) : PeerRoundTrip.echo(mode, url);
             BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8))) {
            AutoCloseable sub = null;
            System.out.println("READY");
            System.out.flush();
            String line;
            while ((line = in.readLine()) != null) {
                String[] cmd = line.trim().split(" ");
                switch (cmd[0]) {
                    case "SUB" -> {
                        if (sub != null) sub.close();
                        sub = echo.start(cmd[1], cmd[2], cmd[3]);
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
                        System.out.println("OK " + cpuNanos());
                    }
                    case "PEAK" -> System.out.println("PEAK " + peakUsed.get() + " " + peakCommitted.get() + " " + cpuNanos());
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
