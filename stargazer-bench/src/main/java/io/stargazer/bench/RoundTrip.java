// The round trip gateway -> worker -> gateway at fixed offered rates, latency corrected for coordinated omission.
package io.stargazer.bench;

import io.stargazer.bus.Envelope;
import io.stargazer.bus.EventBus;
import io.stargazer.bus.Subscription;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStreamWriter;
import java.io.Writer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Locale;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import java.util.concurrent.locks.LockSupport;
import java.util.function.Consumer;
import org.HdrHistogram.Histogram;

/**
 * The gateway side runs here: one sender publishes to the inbound stream on a fixed schedule (each message is due
 * at {@code start + i / rate}), and a subscription on the outbound stream records, for each echo, the time since
 * the message was <em>due</em> (not since it was actually sent), so a stalled sender or a queue shows up in the
 * latency instead of hiding it. The worker echoing inbound to outbound runs in a separate JVM ({@link WorkerMain}).
 * The same schedule and measurement serve every contender: only the {@link Gateway} (and the worker's mode) differ.
 */
final class RoundTrip implements AutoCloseable {
    /** One contender's gateway: sends to inbound without waiting, receives echoes from outbound. */
    interface Gateway extends AutoCloseable {
        /** The contender, as in {@link Result}; also the worker's mode. */
        String impl();

        /** Starts consuming {@code outbound} with {@code group}; each echo's envelope goes to {@code onEcho}. */
        AutoCloseable receive(String outbound, String group, Consumer<Envelope> onEcho) throws Exception;

        /** Sends one envelope; must not wait for the reply (a failure goes to {@code onFailure}). */
        void send(String inbound, Envelope envelope, Consumer<Throwable> onFailure);

        @Override
        void close();
    }

    /** The bus's gateway: {@code publishAsync} and a subscription with the consumer's defaults. */
    static final class StargazerGateway implements Gateway {
        private final EventBus bus;

        StargazerGateway(Ctx ctx) {
            bus = ctx.bus("gateway");
        }

        @Override
        public String impl() {
            return Result.STARGAZER;
        }

        @Override
        public AutoCloseable receive(String outbound, String group, Consumer<Envelope> onEcho) {
            Subscription sub = bus.subscribe(bus.consumer(outbound, group).consumerName("bench-gateway").build(),
                    d -> onEcho.accept(d.envelope()));
            return () -> sub.close(Duration.ofSeconds(2));
        }

        @Override
        public void send(String inbound, Envelope envelope, Consumer<Throwable> onFailure) {
            bus.publishAsync(inbound, envelope).whenComplete((id, e) -> {
                if (e != null) onFailure.accept(e);
            });
        }

        @Override
        public void close() {
            bus.close();
        }
    }

    /** What one offered rate gave. {@code heapBytes}/{@code rssBytes}: the worker's peaks during it. */
    record Run(double offered, double achieved, long count, long sent, long lost, double p50Ms, double p99Ms, double p999Ms,
               long heapBytes, long heapCommittedBytes, long rssBytes, long workerCpuNanos, long gatewayCpuNanos,
               long serverCpuNanos) {
        /** The worker JVM's CPU time (all its threads) per message, in microseconds. */
        double workerCpuMicrosPerMessage() {
            return perMessage(workerCpuNanos);
        }

        /** The harness JVM's (the gateway's) CPU time per message, in microseconds. */
        double gatewayCpuMicrosPerMessage() {
            return perMessage(gatewayCpuNanos);
        }

        /** redis-server's CPU time per message (both streams, every command), in microseconds. */
        double serverCpuMicrosPerMessage() {
            return perMessage(serverCpuNanos);
        }

        /** Over every message sent in the run (warm-up included), as the CPU times cover the whole run. */
        private double perMessage(long nanos) {
            return nanos / 1e3 / Math.max(1, sent);
        }

        boolean holds(double p99LimitMs) {
            return lost == 0 && p99Ms < p99LimitMs && achieved >= offered * 0.95;
        }
    }

    private static final com.sun.management.OperatingSystemMXBean OS =
            (com.sun.management.OperatingSystemMXBean) java.lang.management.ManagementFactory.getOperatingSystemMXBean();
    private final Ctx ctx;
    private final Gateway gateway;
    private final Process worker;
    private final BufferedReader workerOut;
    private final Writer workerIn;

    RoundTrip(Ctx ctx) throws IOException {
        this(ctx, new StargazerGateway(ctx));
    }

    RoundTrip(Ctx ctx, Gateway gateway) throws IOException {
        this.ctx = ctx;
        this.gateway = gateway;
        this.worker = ChildJvm.start(WorkerMain.class, ctx.url, gateway.impl());
        this.workerOut = new BufferedReader(new InputStreamReader(worker.getInputStream(), StandardCharsets.UTF_8));
        this.workerIn = new OutputStreamWriter(worker.getOutputStream(), StandardCharsets.UTF_8);
        expect("READY");
    }

    private String command(String line) throws IOException {
        workerIn.write(line + "\n");
        workerIn.flush();
        String reply = reply();
        if (reply == null) throw new IllegalStateException("worker exited (command " + line.split(" ")[0] + ")");
        return reply;
    }

    /** The worker's next protocol line; other lines (the JVM's own, e.g. a flight recorder's) are skipped. */
    private String reply() throws IOException {
        return ChildJvm.reply(workerOut, PROTOCOL);
    }

    private static final java.util.regex.Pattern PROTOCOL = java.util.regex.Pattern.compile("(READY|OK|PEAK|ERR)\\b.*");

    private void expect(String word) throws IOException {
        String reply = reply();
        if (!word.equals(reply)) throw new IllegalStateException("worker said " + reply + ", expected " + word);
    }

    /** Peak resident size of the worker since the last reset (VmHWM); 0 where /proc is missing. */
    private long rssPeak() {
        try {
            for (String l : Files.readAllLines(Path.of("/proc/" + worker.pid() + "/status"))) {
                if (l.startsWith("VmHWM:")) return Long.parseLong(l.replaceAll("[^0-9]", "")) * 1024;
            }
        } catch (IOException | RuntimeException e) {
            return 0;
        }
        return 0;
    }

    private void resetRssPeak() {
        try {
            Files.writeString(Path.of("/proc/" + worker.pid() + "/clear_refs"), "5");
        } catch (IOException | RuntimeException e) {
            // not Linux, or not allowed: the peak then covers the worker's whole life, which is reported as such
        }
    }

    /**
     * {@code -Dbench.commandstats=true}: after each round, the server's calls and time in commands per message sent, by
     * command (INFO commandstats, reset when the round starts): where redis-server's CPU per message goes.
     */
    private static final boolean COMMANDSTATS = Boolean.getBoolean("bench.commandstats");

    /** The contender's name ({@link Result}'s). */
    String name() {
        return gateway.impl();
    }

    private void printCommands(double rate, long sent, long serverCpuNanos) {
        StringBuilder sb = new StringBuilder(String.format(Locale.ROOT, "commandstats %s at %.0f msg/s, per message:", gateway.impl(), rate));
        double calls = 0;
        double usec = 0;
        java.util.regex.Pattern line = java.util.regex.Pattern.compile("cmdstat_([a-z|]+):calls=(\\d+),usec=(\\d+)");
        for (String l : ctx.sync().info("commandstats").split("\r?\n")) {
            java.util.regex.Matcher m = line.matcher(l);
            if (!m.find() || m.group(1).equals("info") || m.group(1).startsWith("config")) continue;
            double c = Long.parseLong(m.group(2)) / (double) sent;
            double u = Long.parseLong(m.group(3)) / (double) sent;
            calls += c;
            usec += u;
            sb.append(String.format(Locale.ROOT, " %s %.3f (%.2f µs)", m.group(1), c, u));
        }
        sb.append(String.format(Locale.ROOT, "; all %.3f calls, %.2f µs in commands, %.2f µs of server CPU", calls, usec,
                serverCpuNanos / 1e3 / sent));
        System.out.println(sb);
    }

    /** Offers {@code rate} messages per second for {@code warm + measure}; records those due in the measured part. */
    Run run(double rate, Duration warm, Duration measure) throws Exception {
        String inbound = ctx.key("rt-in");
        String outbound = ctx.key("rt-out");
        String workerGroup = "bench-workers";
        String gatewayGroup = "bench-gateway";
        ctx.createGroup(inbound, workerGroup);
        ctx.createGroup(outbound, gatewayGroup);
        if (!"OK".equals(command("SUB " + inbound + " " + outbound + " " + workerGroup))) throw new IllegalStateException("SUB");

        Histogram histogram = new Histogram(TimeUnit.MINUTES.toNanos(10), 3);
        AtomicLong received = new AtomicLong();
        AtomicLong recordFrom = new AtomicLong(Long.MAX_VALUE);
        AtomicLong recordTo = new AtomicLong(Long.MAX_VALUE);
        AtomicReference<Throwable> failure = new AtomicReference<>();
        AutoCloseable sub = gateway.receive(outbound, gatewayGroup, envelope -> {
            long now = System.nanoTime();
            long due = Envelopes.stamp(envelope);
            if (due >= recordFrom.get() && due < recordTo.get()) {
                synchronized (histogram) {
                    histogram.recordValue(Math.max(0, now - due));
                }
            }
            received.incrementAndGet();
        });
        try {
            String[] reset = command("RESET").split(" ");
            if (!"OK".equals(reset[0])) throw new IllegalStateException("RESET");
            long cpuAtStart = Long.parseLong(reset[1]);
            long gatewayCpuAtStart = OS.getProcessCpuTime();
            long serverCpuAtStart = ctx.serverCpuNanos();
            if (COMMANDSTATS) ctx.sync().configResetstat();
            resetRssPeak();
            long interval = (long) (1e9 / rate);
            long start = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(20);
            long from = start + warm.toNanos();
            long end = from + measure.toNanos();
            recordFrom.set(from);
            recordTo.set(end);
            long sent = 0;
            long recordedSent = 0;
            for (long i = 0; ; i++) {
                long due = start + i * interval;
                if (due >= end) break;
                // Parks, never spins: at 20 000 msg/s and above a spinning sender kept one of the machine's two cores
                // busy, taken from the worker and Redis. A send made late by the park's slack is charged to the
                // latency all the same, which runs from the due time.
                long wait;
                while ((wait = due - System.nanoTime()) > 0) LockSupport.parkNanos(wait);
                gateway.send(inbound, Envelopes.stamped((int) i, due), e -> failure.compareAndSet(null, e));
                sent++;
                if (due >= from) recordedSent++;
            }
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
            while (received.get() < sent && System.nanoTime() < deadline && failure.get() == null) Thread.sleep(2);
            if (failure.get() != null) throw new IllegalStateException("gateway publish failed", failure.get());
            String[] peak = command("PEAK").split(" ");
            long workerCpu = Long.parseLong(peak[3]) - cpuAtStart;
            long gatewayCpu = OS.getProcessCpuTime() - gatewayCpuAtStart;
            long serverCpu = ctx.serverCpuNanos() - serverCpuAtStart;
            if (COMMANDSTATS) printCommands(rate, sent, serverCpu);
            long rss = rssPeak();
            double seconds = measure.toNanos() / 1e9;
            Histogram h;
            synchronized (histogram) {
                h = histogram.copy();
            }
            long lost = sent - received.get();
            return new Run(rate, h.getTotalCount() / seconds, h.getTotalCount(), sent, Math.max(0, lost),
                    h.getValueAtPercentile(50) / 1e6, h.getValueAtPercentile(99) / 1e6, h.getValueAtPercentile(99.9) / 1e6,
                    Long.parseLong(peak[1]), Long.parseLong(peak[2]), rss, workerCpu, gatewayCpu, serverCpu);
        } finally {
            sub.close();
            command("UNSUB");
            ctx.reset(inbound, outbound);
        }
    }

    @Override
    public void close() {
        try {
            workerIn.write("QUIT\n");
            workerIn.flush();
            if (!worker.waitFor(15, TimeUnit.SECONDS)) worker.destroy();
        } catch (IOException | InterruptedException e) {
            worker.destroy();
        }
        gateway.close();
    }
}
