// The benchmark's one command: runs every section against one Redis and writes the table.
package io.stargazer.bench;

import io.stargazer.embedded.RedisServerProcess;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;

/**
 * {@code java -jar stargazer-bench.jar [--quick] [--only=server,publish,consume,roundtrip,tools,growth,cluster,observability,relay]
 * [--out=docs] [--no-write] [--no-peers] [--rates=r1,r2]}. Starts its own redis-server (no persistence, free port) unless {@code REDIS_URL} is
 * set. Prints the table at the end and writes {@code docs/benchmarks.md} and {@code docs/benchmarks.json}.
 *
 * <p>For looking into one rate: {@code --rates=r1,r2} runs the round trip at those rates only, without the ladder and
 * without writing a row; {@code -Dbench.contenders=stargazer,redisson} (default: the bus alone) alternates those
 * contenders there, and {@code -Dbench.commandstats=true} prints after each round the server's calls and time per
 * message by command.
 */
public final class BenchMain {
    static final String SEC_SERVER = "server";
    static final String SEC_PUBLISH = "publish";
    static final String SEC_CONSUME = "consume";
    static final String SEC_ROUNDTRIP = "roundtrip";
    static final String SEC_TOOLS = "tools";
    static final String SEC_GROWTH = "growth";
    static final String SEC_CLUSTER = "cluster";
    static final List<String> SECTIONS = List.of(SEC_SERVER, SEC_PUBLISH, SEC_CONSUME, SEC_ROUNDTRIP, SEC_TOOLS, SEC_GROWTH, SEC_CLUSTER,
            ObservabilityRows.SECTION, RelayRows.SECTION);

    static final String C1 = "redis-benchmark XADD -c 1 -P 1";
    static final String C50 = "redis-benchmark XADD -c 50 -P 1";
    static final String P16 = "redis-benchmark XADD -c 50 -P 16";
    static final String PUB1 = "publish: 1 blocking publisher";
    static final String PUB16 = "publish: 16 blocking publishers";
    static final String PUBASYNC = "publish: asynchronous";
    static final String CONSUME = "consume: 1 consumer process, backlog of ";
    static final String RT_HIGHEST = "round trip: highest offered rate with p99 < 10 ms";
    static final String INBOUND_PUBLISH_1 = "inbound publish (16 threads, async), one server, 1 inbound stream";
    static final String INBOUND_PUBLISH_6 = "inbound publish (16 threads, async), one server, 6 inbound partitions";
    static final String INBOUND_E2E_1 = "inbound publish + consume, one server, 1 inbound stream";
    static final String INBOUND_E2E_6 = "inbound publish + consume, one server, 6 inbound partitions";
    /** Rounds of every alternated comparison. */
    static final int ROUNDS = 5;
    static final double P99_LIMIT_MS = 10;
    /** In-flight windows tried for asynchronous publishing; the best is reported. */
    static final int[] ASYNC_WINDOWS = {1_000, 10_000};

    /** Round-trip rates from {@code --rates=}: only these are run, without the search (for looking into one rate). */
    static final List<Double> ROUND_TRIP_RATES = new ArrayList<>();

    private final Ctx ctx;
    private final Set<String> only;
    /** False with {@code --no-peers}: only the bus and the server limit run (for comparing builds of the bus). */
    private final boolean peers;
    private final List<Result> results = new ArrayList<>();
    private final List<String> notes = new ArrayList<>();
    private final Map<String, Double> limits = new LinkedHashMap<>();

    private BenchMain(Ctx ctx, Set<String> only, boolean peers) {
        this.ctx = ctx;
        this.only = only;
        this.peers = peers;
    }

    public static void main(String[] args) throws Exception {
        System.setProperty("org.slf4j.simpleLogger.defaultLogLevel", "warn");
        boolean quick = false;
        boolean write = true;
        boolean peers = true;
        Path out = Path.of("docs");
        Set<String> only = new LinkedHashSet<>(SECTIONS);
        for (String a : args) {
            if (a.equals("--quick")) quick = true;
            else if (a.equals("--no-write")) write = false;
            else if (a.equals("--no-peers")) peers = false;
            else if (a.startsWith("--out=")) out = Path.of(a.substring(6));
            else if (a.startsWith("--rates=")) {
                for (String r : a.substring(8).split(",")) ROUND_TRIP_RATES.add(Double.parseDouble(r));
            }
            else if (a.startsWith("--only=")) {
                only.clear();
                for (String s : a.substring(7).split(",")) {
                    if (!SECTIONS.contains(s)) throw new IllegalArgumentException("unknown section '" + s + "'; known: " + SECTIONS);
                    only.add(s);
                }
            } else {
                System.err.println("usage: bench/run [--quick] [--only=" + String.join(",", SECTIONS) + "] [--out=docs] [--no-write] [--no-peers] [--rates=r1,r2]");
                System.exit(2);
            }
        }
        Instant started = Instant.now();
        String loadAtStart = loadAverage();
        RedisServerProcess server = null;
        String url = RedisServerProcess.redisUrlFromEnv().orElse(null);
        if (url == null) {
            server = RedisServerProcess.builder().appendOnly(false).start();
            url = server.url();
        }
        try (Ctx ctx = new Ctx(url, server != null, quick)) {
            BenchMain bench = new BenchMain(ctx, only, peers);
            bench.runAll();
            Duration took = Duration.between(started, Instant.now());
            bench.finish(out, write, took, server, args, loadAtStart);
        } finally {
            if (server != null) server.stop();
        }
    }

    private void runAll() throws Exception {
        // The publish and consume rows measure redis-benchmark in their own rounds; alone it runs as its own section.
        if (only.contains(SEC_GROWTH) && !only.contains(SEC_PUBLISH) && !only.contains(SEC_CONSUME)) only.add(SEC_SERVER);
        if (only.contains(SEC_SERVER) && !only.contains(SEC_PUBLISH) && !only.contains(SEC_CONSUME)) server();
        if (only.contains(SEC_PUBLISH)) publish();
        if (only.contains(SEC_CONSUME)) consume();
        if (only.contains(SEC_ROUNDTRIP)) roundTrip();
        if (only.contains(SEC_TOOLS)) tools();
        if (only.contains(SEC_GROWTH)) growth();
        if (only.contains(SEC_CLUSTER)) cluster();
        if (only.contains(ObservabilityRows.SECTION)) ObservabilityRows.run(ctx, this::add, notes::add, this::progress, P16);
        if (only.contains(RelayRows.SECTION)) RelayRows.run(ctx, this::add, notes::add, this::progress);
    }

    void progress(String what) {
        System.out.printf(Locale.ROOT, "[%tT] %s%n", System.currentTimeMillis(), what);
    }

    void note(String note) {
        notes.add(note);
    }

    boolean peers() {
        return peers;
    }

    /** Records a server figure (its median) as the limit that rows naming {@code limit} are compared with. */
    void limit(String limit, double value) {
        limits.put(limit, value);
    }

    private void add(String section, String figure, String impl, double value, String unit, String limit) {
        double lv = limit == null ? 0 : limits.getOrDefault(limit, 0.0);
        results.add(new Result(section, figure, impl, value, unit, lv > 0 ? limit : null, lv, null));
        progress(String.format(Locale.ROOT, "  %-55s %-18s %12s %s", figure, impl, Report.num(value, unit), unit));
    }

    /** An alternated figure: its median, compared with {@code limit}'s current value (if any). */
    void add(String section, String figure, String impl, Sample s, String unit, String limit) {
        double lv = limit == null ? 0 : limits.getOrDefault(limit, 0.0);
        results.add(new Result(section, figure, impl, s.median(), unit, lv > 0 ? limit : null, lv, null, s));
        progress(String.format(Locale.ROOT, "  %-55s %-18s %24s %s", figure, impl, s.describe(unit), unit));
    }

    /** A figure decided from medians ({@code value}), with the per-round figures beside it. */
    void addDecided(String section, String figure, String impl, double value, Sample perRound, String unit) {
        results.add(new Result(section, figure, impl, value, unit, null, 0, null, perRound));
        progress(String.format(Locale.ROOT, "  %-55s %-18s %12s %s (per round %s)", figure, impl, Report.num(value, unit), unit,
                perRound.describe(unit)));
    }

    // ---- sections ------------------------------------------------------------------------------------------

    private void server() throws Exception {
        progress("server limit: redis-benchmark XADD");
        if (!ServerLimit.available()) {
            notes.add("redis-benchmark was not found: no server limit and no ratios in this run.");
            return;
        }
        Object[][] runs = {{C1, 1, 1, ctx.quick ? 20_000L : 100_000L}, {C50, 50, 1, ctx.quick ? 60_000L : 300_000L},
                {P16, 50, 16, ctx.quick ? 300_000L : 1_000_000L}};
        for (Object[] r : runs) {
            String key = ctx.key("redis-benchmark");
            ctx.reset();
            double rps = ServerLimit.run(ctx, key, (Integer) r[1], (Integer) r[2], (Long) r[3]);
            limits.put((String) r[0], rps);
            add(SEC_SERVER, (String) r[0], Result.SERVER, rps, "msg/s", null);
            notes.add("`" + r[0] + "`: `" + ServerLimit.describe((Integer) r[1], (Integer) r[2], (Long) r[3]) + "`");
            ctx.reset(key);
        }
    }

    private void publish() throws Exception {
        progress("publishing");
        CompareRows.publish(this, ctx);
    }

    private void consume() throws Exception {
        long n = ctx.quick ? 200_000 : 1_000_000;
        progress("consuming a backlog of " + n);
        CompareRows.consume(this, ctx, n);
    }

    private void roundTrip() throws Exception {
        progress("round trip gateway -> worker -> gateway (worker in its own JVM)");
        ctx.reset();
        if (!ROUND_TRIP_RATES.isEmpty()) {
            // --rates: the bus alone at the given rates, for looking into one rate (e.g. under a profiler); with
            // -Dbench.contenders=stargazer,redisson those contenders, alternated at each rate (A B A B ...).
            Duration warm = ctx.quick ? Duration.ofMillis(500) : Duration.ofSeconds(1);
            Duration measure = ctx.quick ? Duration.ofMillis(1500) : Duration.ofSeconds(5);
            List<RoundTrip> trips = new ArrayList<>();
            try {
                for (String c : System.getProperty("bench.contenders", Result.STARGAZER).split(",")) {
                    RoundTrip rt = new RoundTrip(ctx, c.equals(Result.STARGAZER) ? new RoundTrip.StargazerGateway(ctx) : PeerRoundTrip.gateway(c, ctx));
                    trips.add(rt);
                    rt.run(2_000, warm, ctx.quick ? Duration.ofSeconds(1) : Duration.ofSeconds(3));
                }
                for (double rate : ROUND_TRIP_RATES) {
                    for (RoundTrip rt : trips) progress(rt.name() + " " + describe(rt.run(rate, warm, measure)).strip());
                }
            } finally {
                for (RoundTrip rt : trips) rt.close();
            }
            return;
        }
        RoundTripRows.run(this, ctx, peers ? List.of(Result.STARGAZER, Result.SPRING, Result.REDISSON) : List.of(Result.STARGAZER));
    }

    private static String describe(RoundTrip.Run r) {
        return String.format(Locale.ROOT, "    round trip %,.0f msg/s offered: delivered %,.0f/s p50 %.2f p99 %.2f p99.9 %.2f ms lost %d, "
                + "CPU per message: worker %.1f, gateway %.1f, redis %.1f µs", r.offered(), r.achieved(), r.p50Ms(), r.p99Ms(), r.p999Ms(), r.lost(),
                r.workerCpuMicrosPerMessage(), r.gatewayCpuMicrosPerMessage(), r.serverCpuMicrosPerMessage());
    }

    private void tools() throws Exception {
        progress("tools calls: ToolClient -> ToolService echo");
        ctx.reset();
        for (ToolsRows.Run r : ToolsRows.run(ctx, 1, 64)) {
            String label = "tools call, " + r.inFlight() + (r.inFlight() == 1 ? " call" : " calls") + " in flight";
            add(SEC_TOOLS, label + ": p50", Result.STARGAZER, r.p50Ms(), "ms", null);
            add(SEC_TOOLS, label + ": p99", Result.STARGAZER, r.p99Ms(), "ms", null);
            add(SEC_TOOLS, label + ": calls per second", Result.STARGAZER, r.callsPerSecond(), "calls/s", null);
        }
    }

    /** Inbound throughput on one server and on a 3+3 cluster with 6 partitions (issue 8), in the same run. */
    private void cluster() throws Exception {
        // 300 000 a round: at 100 000 a round took about a second, and the rounds measured the JIT's progress more than
        // the setups (one setup's figure moved 65 000-135 000 within one run); see ClusterRows.measure's warm-up.
        int n = ctx.quick ? 30_000 : 300_000;
        progress("inbound on one server and on a local cluster, " + n + " messages each");
        String loadBefore = loadAverage();
        Sample[][] r = ClusterRows.measure(n, ROUNDS, this::progress);
        String[] setups = {"one server, 1 inbound stream", "one server, 6 inbound partitions", "cluster 3+3, 6 inbound partitions"};
        for (int i = 0; i < setups.length; i++) {
            add(SEC_CLUSTER, "inbound publish (16 threads, async), " + setups[i], Result.STARGAZER, r[i][0], "msg/s", null);
            add(SEC_CLUSTER, "inbound publish + consume, " + setups[i], Result.STARGAZER, r[i][1], "msg/s", null);
        }
        notes.add("Inbound on one server: 1 stream and 6 partitions alternated, " + ROUNDS + " rounds of " + n + " messages (medians, "
                + "min–max), after 3 uncounted alternated runs of each, every run on the server emptied and its AOF rewritten first; the cluster once after them; load " + loadBefore + " → "
                + loadAverage() + ".");
        notes.add("Cluster rows: 16 publisher threads (256 in flight each) over 1000 channels, one worker consuming every "
                + "partition; every server appendonly with fsync every second. All six cluster nodes share this machine's "
                + "cores with the benchmark, so the cluster figure shows the cost of the cluster path here, not what separate "
                + "machines carry (docs/cluster.md has the capacity plan).");
    }

    private void growth() throws Exception {
        long n = ctx.quick ? 50_000 : 200_000;
        progress("how cost grows: publish then consume " + n + " new entries");
        long[][] cases = {{0, 0}, {100_000, 0}, {1_000_000, 0}, {0, 100_000}};
        if (ctx.quick) cases = new long[][] {{0, 0}, {100_000, 0}, {0, 100_000}};
        for (long[] c : cases) {
            ctx.reset();
            double[] r = StargazerRows.growth(ctx, c[0], c[1], n);
            String at = c[1] > 0 ? String.format(Locale.ROOT, "%,d pending in the group", c[1]).replace(',', ' ')
                    : String.format(Locale.ROOT, "stream at %,d entries", c[0]).replace(',', ' ');
            add(SEC_GROWTH, "growth: publish (asynchronous), " + at, Result.STARGAZER, r[0], "msg/s", P16);
            add(SEC_GROWTH, "growth: consume, " + at, Result.STARGAZER, r[1], "msg/s", P16);
        }
    }

    // ---- output --------------------------------------------------------------------------------------------

    private void finish(Path out, boolean write, Duration took, RedisServerProcess server, String[] args, String loadAtStart)
            throws Exception {
        Report report = new Report(results, notes);
        // The issue-16 targets (Targets) come first in targetLines; further ratio targets of other rows go here.
        List<Report.Target> targets = List.of();
        Map<String, String> machine = machine(took, server, args, loadAtStart);
        System.out.println();
        System.out.println(report.table());
        for (String l : report.targetLines(targets)) System.out.println(l);
        for (String n : notes) System.out.println("note: " + n);
        if (write) {
            Path profile = Path.of("bench", "profile-notes.md");
            String prof = Files.isRegularFile(profile) ? Files.readString(profile) : null;
            report.writeMarkdown(out.resolve("benchmarks.md"), machine, targets, METHODOLOGY, prof);
            report.writeJson(out.resolve("benchmarks.json"), machine);
            System.out.println("wrote " + out.resolve("benchmarks.md") + " and " + out.resolve("benchmarks.json"));
        }
    }

    private Map<String, String> machine(Duration took, RedisServerProcess server, String[] args, String loadAtStart) {
        Map<String, String> m = new LinkedHashMap<>();
        m.put("cores", Integer.toString(Runtime.getRuntime().availableProcessors()));
        m.put("cpu", cpuModel());
        m.put("memory", memTotal());
        m.put("java", System.getProperty("java.vm.name") + " " + System.getProperty("java.runtime.version"));
        m.put("redis", ctx.serverVersion() + (server != null ? " (own redis-server " + server.binary()
                + ", no persistence, loopback)" : " (REDIS_URL)"));
        m.put("os", System.getProperty("os.name") + " " + System.getProperty("os.version"));
        String cmd = System.getenv("BENCH_COMMAND");
        m.put("command", cmd != null ? cmd : "java -jar stargazer-bench/target/stargazer-bench.jar " + String.join(" ", args));
        m.put("load average at the start (1, 5, 15 min)", loadAtStart);
        m.put("load average at the end (1, 5, 15 min)", loadAverage());
        m.put("mode", ctx.quick ? "quick (--quick: short periods, smaller backlogs)" : "full");
        m.put("date", Instant.now().toString());
        m.put("duration", took.toSeconds() + " s");
        return m;
    }

    /** Other work on the machine skews every figure, so the report says how busy it was. */
    static String loadAverage() {
        try {
            String[] f = Files.readString(Path.of("/proc/loadavg")).trim().split(" ");
            return f[0] + ", " + f[1] + ", " + f[2];
        } catch (Exception e) {
            return "unknown";
        }
    }

    private static String cpuModel() {
        try {
            for (String l : Files.readAllLines(Path.of("/proc/cpuinfo"))) {
                if (l.startsWith("model name")) return l.substring(l.indexOf(':') + 1).trim();
            }
        } catch (Exception e) {
            return System.getProperty("os.arch");
        }
        return System.getProperty("os.arch");
    }

    private static String memTotal() {
        try {
            for (String l : Files.readAllLines(Path.of("/proc/meminfo"))) {
                if (l.startsWith("MemTotal:")) {
                    long kb = Long.parseLong(l.replaceAll("[^0-9]", ""));
                    return String.format(Locale.ROOT, "%.1f GiB", kb / 1048576.0);
                }
            }
        } catch (Exception e) {
            return Runtime.getRuntime().maxMemory() / 1048576 + " MiB max heap";
        }
        return "unknown";
    }

    static final String METHODOLOGY = """
            - Fair comparison: every row that sets contenders side by side (the bus, Spring Data Redis, Redisson and
              `redis-benchmark`) runs them alternately, A B C D A B C D ..., 5 rounds; each cell is the median of its
              rounds with the min and max in brackets, and every target is decided on medians of the same run. The
              `redis-benchmark` cell of a row is measured in that row's rounds, with the client count and pipeline the
              row is compared with. The load average is noted before and after each comparison and the whole run.
            - The envelope: `platform`, `channel_id` (64 channels of the same width), `content` (padding), `type` and a
              32-character `trace_id`: 200 bytes of MessagePack. Every entry carries `payload` (those 200 bytes) and
              `trace_id` (32 characters), with `MAXLEN ~ 1000000`, whoever writes it. redis-benchmark sends 200 printable
              bytes in `payload` (its arguments are text): the same sizes.
            - Publishing rows run flat out for a warm-up (not counted), then a measured period; the figure is
              entries stored per second. Each publish encodes the envelope (the peers call the same encoder), so all
              pay the same encoding cost. "Asynchronous": one thread keeping a bounded window of publishes in flight
              (a semaphore); the best window is reported.
            - The consume row: each contender's consumer runs in a JVM of its own (same jar, `ConsumerProcess`),
              started once for the row, so that its code is compiled for consuming alone and not after the publishing
              rows (in the harness's JVM that cost the bus about 15 % on an Intel machine, Redisson 6 %). The backlog
              is added server-side before the clock starts; the clock runs from subscribing
              until every entry has been delivered, decoded, handled by a no-op and acknowledged (the group's pending
              count back to 0); Spring Data Redis is stopped after 12 s (4 s with --quick) and counted until then. Four
              alternated warm-up rounds (one with --quick) run first and are not counted: a backlog takes only seconds,
              and without them the first rounds measure the JIT compiling each fresh consumer JVM's consuming code. Stargazer: one subscription, batch 512, 4096 in flight, 4 handler threads, automatic
              acks. Spring Data Redis: `StreamMessageListenerContainer` (batch 512) whose listener decodes and calls
              `StreamOperations.acknowledge` per record, as documented. Redisson: `RStream.readGroup` (count 512),
              decode, `ackAsync` per batch.
            - Round trip: a gateway in this JVM publishes to an inbound stream on a fixed schedule; a worker in its own
              JVM (same jar, `WorkerMain`) consumes inbound and publishes each envelope to an outbound stream; the
              gateway consumes outbound. Latency runs from when a message was *due* to be sent (its schedule slot,
              carried in the envelope) to when its echo is handled: the correction for coordinated omission. Recorded
              with HdrHistogram (3 significant digits), for 3 s after a 1 s warm-up at the same rate, and for at least
              10 000 messages (10 s at 1 000 msg/s: the p99.9 has ten messages beyond it, not three). A run "holds" when
              p99 is under 10 ms, every message came back and at least 95 % of the offered rate was delivered. The rates
              climb a ladder (1 000, 5 000, 10 000, then every 5 000 to 60 000, then 70 000 ...); at each rate the
              contenders run alternately, 5 rounds, and a contender holds the rate when the median of its rounds' p99
              is under 10 ms (a run that did not hold counting as infinite). A contender leaves the ladder after two
              rates in a row it does not hold; its figure is the highest rate it held, with the highest each round held
              in brackets. Each contender has its own worker JVM (`WorkerMain <url> <contender>`). The peers are
              written as their documentation shows: Spring Data Redis publishes with `StreamOperations.add` (blocking,
              so the gateway sends from 16 threads) and consumes with a `StreamMessageListenerContainer` (consumer group,
              batch 128) whose listener handles the record and calls `acknowledge`; Redisson publishes with
              `RStream.addAsync` and consumes with a `readGroup` loop (128 per read) and `ackAsync`; both acknowledge
              an entry only after it was handled (the worker: after its echo is stored), as the bus does.
            - Memory (every contender's worker JVM, at its highest rate held): the worker JVM samples `MemoryMXBean` heap use every 5 ms; the peak resident size is the
              kernel's `VmHWM`, reset (`clear_refs` 5) at the start of each rate. Default JVM flags (G1, heap sized by
              the JVM from the machine's memory), so the heap figures say how much garbage G1 lets build up, not a limit.
            - Tools calls: a `ToolClient` (worker bus) calls an `echo` tool of a `ToolService` (tools bus), both in the
              harness JVM, with a 2-member argument map (100 characters and an int); 1 and then 64 calls in flight;
              latency from each call to its result, after a warm-up.
            - How cost grows: the stream is prefilled server-side (0, 100 000 or 1 000 000 entries, or 100 000 read by
              another consumer and left pending in the group), then 200 000 new entries are published asynchronously
              (10 000 in flight) and consumed by one subscription as in the consume row.
            - Between rows the harness FLUSHALLs its own server; every row uses keys of its own.
            """;
}
