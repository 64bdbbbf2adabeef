// One benchmark row run alone for a long while, so a profiler (JFR via JAVA_OPTS) sees only that row.
package io.stargazer.bench;

import io.stargazer.embedded.RedisServerProcess;
import java.time.Duration;

/**
 * {@code java $JAVA_OPTS -cp stargazer-bench/target/stargazer-bench.jar io.stargazer.bench.ProfileMain ROW SECONDS}, ROW one
 * of {@code pub1} (the bus, 1 blocking publisher), {@code pub1-spring}, {@code pub16}, {@code pub16-spring},
 * {@code pub16-alternated} (the bus and Spring Data Redis in turn in this one JVM, as {@code bench/run} does; SECONDS is
 * the number of rounds), {@code async}, {@code async-dedupe}
 * (10 000 in flight), {@code consume} (a backlog of
 * 1 000 000, repeated), {@code inbound1} / {@code inbound6} (the inbound rows, repeated), {@code inbound-publish-only} (1
 * stream and 6 partitions alternated, the publishers without a worker), {@code inbound1-alone} / {@code inbound6-alone}
 * (one of those setups per JVM, for its kernel time and context switches), {@code inbound-worker-alone} (1 stream and 6
 * partitions alternated: a backlog published with no worker, then the worker alone consumes it), {@code inbound-cpu}
 * (the row's runs alternated on one server emptied before each, with this JVM's and the server's CPU per message),
 * {@code inbound-commands} (the
 * server's commands per message with 1 and with 6 partitions, from INFO commandstats). Starts its own redis-server
 * (or uses REDIS_URL) and prints the row's figure; e.g. with
 * {@code JAVA_OPTS=-XX:StartFlightRecording=filename=pub1.jfr,settings=profile}, then
 * {@code jfr print --events jdk.ExecutionSample pub1.jfr}. {@code -Dbench.blockingPublishConnections=N} runs the bus's
 * rows with that many connections of their own for blocking publishes; {@code -Dbench.inboundWindow=N} gives the inbound
 * rows' 16 publishing threads N publishes in flight each (256).
 */
public final class ProfileMain {
    private ProfileMain() {
    }

    /** One inbound run on a fresh appendonly server, then the server's calls per message for each command. */
    private static void commandsPerMessage(int partitions, int messages) throws Exception {
        try (RedisServerProcess server = ClusterRows.appendOnlyServer()) {
            io.stargazer.bus.RedisUrl url = io.stargazer.bus.RedisUrl.parse(server.url());
            ClusterRows.run(url, partitions, Math.min(messages, 20_000));
            io.lettuce.core.RedisClient client = io.lettuce.core.RedisClient.create(server.url());
            try (var conn = client.connect()) {
                conn.sync().configResetstat();
                double[] r = ClusterRows.run(url, partitions, messages);
                StringBuilder sb = new StringBuilder(String.format(java.util.Locale.ROOT,
                        "%d partitions: publish %.0f, end to end %.0f msg/s; calls per 1000 messages (and their server time per message):", partitions, r[0], r[1]));
                long calls = 0;
                double usec = 0;
                for (String line : conn.sync().info("commandstats").split("\r?\n")) {
                    java.util.regex.Matcher m = java.util.regex.Pattern.compile("cmdstat_([a-z|]+):calls=(\\d+),usec=(\\d+)").matcher(line);
                    if (!m.find()) continue;
                    long c = Long.parseLong(m.group(2));
                    long u = Long.parseLong(m.group(3));
                    calls += c;
                    usec += u;
                    if (c * 1000L / messages > 0) {
                        sb.append(String.format(java.util.Locale.ROOT, " %s %d (%.2f µs)", m.group(1), c * 1000L / messages, u / (double) messages));
                    }
                }
                sb.append(String.format(java.util.Locale.ROOT, "; all %d; server time in commands %.2f µs per message", calls * 1000L / messages,
                        usec / messages));
                System.out.println(sb);
            } finally {
                client.shutdown();
            }
        }
    }

    /** This JVM's CPU time, to read the cost per message apart from what other processes take from the cores. */
    private static final com.sun.management.OperatingSystemMXBean CPU =
            (com.sun.management.OperatingSystemMXBean) java.lang.management.ManagementFactory.getOperatingSystemMXBean();

    /** {@link ClusterRows#run} without a worker for each of {@code setups} (partition counts) in turn until {@code end}. */
    private static void publishersAlone(int[] setups, int messages, long end) throws Exception {
        try (RedisServerProcess s = ClusterRows.appendOnlyServer()) {
            io.stargazer.bus.RedisUrl u = io.stargazer.bus.RedisUrl.parse(s.url());
            for (int partitions : setups) ClusterRows.run(u, partitions, 20_000, false); // warm-up
            do {
                for (int partitions : setups) {
                    long cpu0 = CPU.getProcessCpuTime();
                    double rate = ClusterRows.run(u, partitions, messages, false)[0];
                    System.out.printf(java.util.Locale.ROOT, "%d partitions, publishers alone: %.0f msg/s, %.2f µs CPU per message%n",
                            partitions, rate, (CPU.getProcessCpuTime() - cpu0) / 1e3 / messages);
                }
            } while (System.nanoTime() < end);
        }
    }

    /**
     * The worker alone: {@code messages} published with no worker, then consumed by one worker subscribing to every
     * inbound partition (as {@link ClusterRows#run}'s), for each of {@code setups} in turn until {@code end}: the rate
     * and this JVM's CPU per message while it consumes, to read what partitioning costs the consuming side apart.
     */
    private static void workerAlone(int[] setups, int messages, long end) throws Exception {
        try (ClusterRows.FreshServer s = new ClusterRows.FreshServer()) {
            boolean warm = true;
            do {
                for (int partitions : setups) {
                    s.freshStart();
                    double[] r = ClusterRows.consumeBacklog(s.url, partitions, warm ? 50_000 : messages);
                    if (!warm) {
                        System.out.printf(java.util.Locale.ROOT, "%d partitions, worker alone: %.0f msg/s, %.2f µs CPU per message%n",
                                partitions, r[0], r[1]);
                    }
                }
                warm = false;
            } while (System.nanoTime() < end);
        }
    }

    /**
     * The inbound row's runs, 1 stream and 6 partitions alternated on one server emptied before each run (as the row):
     * the rate, and the CPU per message of this JVM and of the redis-server process (its /proc/PID/stat) apart.
     */
    private static void inboundCpu(int messages, long end) throws Exception {
        try (ClusterRows.FreshServer s = new ClusterRows.FreshServer()) {
            int run = 0;
            do {
                for (int partitions : SETUPS) {
                    s.freshStart();
                    long cpu0 = CPU.getProcessCpuTime();
                    long server0 = processCpuNanos(s.server.pid());
                    boolean warm = run < INBOUND_CPU_WARM_UP_RUNS;
                    double[] r = ClusterRows.run(s.url, partitions, warm ? 100_000 : messages);
                    long jvm = CPU.getProcessCpuTime() - cpu0;
                    long server = processCpuNanos(s.server.pid()) - server0;
                    if (!warm) {
                        System.out.printf(java.util.Locale.ROOT, "%d partitions: publish %.0f, end to end %.0f msg/s; CPU per message: JVM %.2f µs, "
                                + "redis-server %.2f µs%n", partitions, r[0], r[1], jvm / 1e3 / messages, server / 1e3 / messages);
                    }
                    run++;
                }
            } while (System.nanoTime() < end || run < INBOUND_CPU_WARM_UP_RUNS + SETUPS.length);
        }
    }

    /** {@code inbound-cpu}'s uncounted runs before it prints: the JIT settles after 3 or 4 of each setup. */
    private static final int INBOUND_CPU_WARM_UP_RUNS = 6;

    /** The setups of {@code inbound-cpu}: -Dbench.setups=6 for one alone (a profile of it), default 1 and 6. */
    private static final int[] SETUPS = java.util.Arrays.stream(System.getProperty("bench.setups", "1,6").split(","))
            .mapToInt(Integer::parseInt).toArray();

    /**
     * User and system CPU of process {@code pid} so far ({@code /proc/PID/stat}, taking Linux's usual 100 clock ticks a
     * second): the redis-server process's own, not that of an AOF rewrite child it forks.
     */
    private static long processCpuNanos(long pid) throws java.io.IOException {
        String stat = java.nio.file.Files.readString(java.nio.file.Path.of("/proc/" + pid + "/stat"));
        String[] f = stat.substring(stat.lastIndexOf(')') + 2).split(" ");
        return (Long.parseLong(f[11]) + Long.parseLong(f[12])) * 10_000_000L; // utime, stime (fields 14, 15)
    }

    public static void main(String[] args) throws Exception {
        System.setProperty("org.slf4j.simpleLogger.defaultLogLevel", "warn");
        String row = args[0];
        Duration d = Duration.ofSeconds(args.length > 1 ? Long.parseLong(args[1]) : 20);
        RedisServerProcess server = null;
        String url = RedisServerProcess.redisUrlFromEnv().orElse(null);
        if (url == null) {
            server = RedisServerProcess.builder().appendOnly(false).start();
            url = server.url();
        }
        try (Ctx ctx = new Ctx(url, server != null, false)) {
            Ctx timed = ctx.withMeasure(Duration.ofSeconds(2), d);
            long end = System.nanoTime() + d.toNanos();
            switch (row) {
                case "pub1" -> System.out.println(row + ": " + StargazerRows.publishBlocking(timed, 1) + " msg/s");
                case "pub1-spring" -> System.out.println(row + ": " + SpringPeer.publishBlocking(timed, 1) + " msg/s");
                case "pub16" -> System.out.println(row + ": " + StargazerRows.publishBlocking(timed, 16) + " msg/s");
                case "pub16-spring" -> System.out.println(row + ": " + SpringPeer.publishBlocking(timed, 16) + " msg/s");
                case "pub16-alternated" -> {
                    // As bench/run measures the row: the bus and Spring Data Redis in turn in one JVM; SECONDS is the rounds.
                    Alternate.Outcome o = new Alternate().add(Result.STARGAZER, "msg/s", () -> StargazerRows.publishBlocking(ctx, 16))
                            .add(Result.SPRING, "msg/s", () -> SpringPeer.publishBlocking(ctx, 16))
                            .run(row, (int) d.toSeconds(), System.out::println);
                    o.samples().forEach((who, sample) -> System.out.println(row + ": " + who + " " + sample.describe("msg/s")));
                }
                case "async" -> System.out.println(row + ": " + StargazerRows.publishAsync(timed, 10_000) + " msg/s");
                case "async-dedupe" -> System.out.println(row + ": " + StargazerRows.publishAsyncDedupe(timed, 10_000) + " msg/s");
                case "consume" -> {
                    // CPU time of this JVM per message as well: steadier than the rate on a machine others load.
                    var os = (com.sun.management.OperatingSystemMXBean) java.lang.management.ManagementFactory.getOperatingSystemMXBean();
                    do {
                        String stream = ctx.key("backlog");
                        ctx.createGroup(stream, "bench-group");
                        ctx.prefill(stream, 1_000_000);
                        try (io.stargazer.bus.EventBus bus = ctx.bus("consume")) {
                            long cpu0 = os.getProcessCpuTime();
                            double rate = StargazerRows.consume(ctx, bus, stream, "bench-group", 1_000_000, 0);
                            System.out.printf(java.util.Locale.ROOT, "%s: %.0f msg/s, %.2f µs CPU per message%n", row, rate,
                                    (os.getProcessCpuTime() - cpu0) / 1e3 / 1_000_000);
                        }
                        ctx.reset(stream);
                    } while (System.nanoTime() < end);
                }
                case "inbound1", "inbound6" -> {
                    do {
                        int messages = 100_000;
                        long cpu0 = CPU.getProcessCpuTime();
                        Sample[] r = ClusterRows.single(row.equals("inbound1") ? 1 : 6, messages);
                        // This JVM's CPU per message, single's warm-up run included: steadier than the rate on a busy machine.
                        System.out.printf(java.util.Locale.ROOT, "%s: publish %.0f, end to end %.0f msg/s, %.2f µs CPU per message%n", row,
                                r[0].median(), r[1].median(), (CPU.getProcessCpuTime() - cpu0) / 1e3 / (messages + ClusterRows.warmUp(messages)));
                    } while (System.nanoTime() < end);
                }
                // The publishers alone (no worker) on one appendonly server: 1 stream and 6 partitions alternated, or one
                // setup per JVM so that its kernel time and context switches can be read apart (/usr/bin/time).
                case "inbound-publish-only" -> publishersAlone(new int[] {1, 6}, 200_000, end);
                case "inbound1-alone" -> publishersAlone(new int[] {1}, 300_000, end);
                case "inbound6-alone" -> publishersAlone(new int[] {6}, 300_000, end);
                case "inbound-worker-alone" -> workerAlone(new int[] {1, 6}, 300_000, end);
                case "inbound-cpu" -> inboundCpu(300_000, end);
                case "inbound-commands" -> {
                    for (int partitions : new int[] {1, 6, 1, 6}) commandsPerMessage(partitions, 100_000);
                }
                default -> throw new IllegalArgumentException("unknown row " + row);
            }
        } finally {
            if (server != null) server.stop();
        }
    }
}
