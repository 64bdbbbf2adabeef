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
 * {@code java -jar stargazer-bench.jar [--quick] [--only=server,publish,consume,roundtrip,tools,growth,cluster,observability]
 * [--out=docs] [--no-write] [--no-peers] [--rates=r1,r2]}. Starts its own redis-server (no persistence, free port) unless {@code REDIS_URL} is
 * set. Prints the table at the end and writes {@code docs/benchmarks.md} and {@code docs/benchmarks.json}.
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
            ObservabilityRows.SECTION);

    static final String C1 = "redis-benchmark XADD -c 1 -P 1";
    static final String C50 = "redis-benchmark XADD -c 50 -P 1";
    static final String P16 = "redis-benchmark XADD -c 50 -P 16";
    static final String PUB1 = "publish: 1 blocking publisher";
    static final String PUB16 = "publish: 16 blocking publishers";
    static final String PUBASYNC = "publish: asynchronous";
    static final String CONSUME = "consume: 1 consumer process, backlog of ";
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
            bench.notes.add(0, "Load average when the run started (1, 5, 15 min): " + loadAtStart + ".");
            bench.finish(out, write, took, server, args);
        } finally {
            if (server != null) server.stop();
        }
    }

    private void runAll() throws Exception {
        if (only.contains(SEC_PUBLISH) || only.contains(SEC_CONSUME) || only.contains(SEC_GROWTH)) only.add(SEC_SERVER);
        if (only.contains(SEC_SERVER)) server();
        if (only.contains(SEC_PUBLISH)) publish();
        if (only.contains(SEC_CONSUME)) consume();
        if (only.contains(SEC_ROUNDTRIP)) roundTrip();
        if (only.contains(SEC_TOOLS)) tools();
        if (only.contains(SEC_GROWTH)) growth();
        if (only.contains(SEC_CLUSTER)) cluster();
        if (only.contains(ObservabilityRows.SECTION)) ObservabilityRows.run(ctx, this::add, notes::add, this::progress, P16);
    }

    private void progress(String what) {
        System.out.printf(Locale.ROOT, "[%tT] %s%n", System.currentTimeMillis(), what);
    }

    private void add(String section, String figure, String impl, double value, String unit, String limit) {
        double lv = limit == null ? 0 : limits.getOrDefault(limit, 0.0);
        results.add(new Result(section, figure, impl, value, unit, lv > 0 ? limit : null, lv, null));
        progress(String.format(Locale.ROOT, "  %-55s %-18s %12s %s", figure, impl, Report.num(value, unit), unit));
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

    private static double median(double[] v) {
        double[] s = v.clone();
        java.util.Arrays.sort(s);
        return s[s.length / 2];
    }

    private static double min(double[] v) {
        return java.util.Arrays.stream(v).min().orElse(0);
    }

    private static double max(double[] v) {
        return java.util.Arrays.stream(v).max().orElse(0);
    }

    private void publish() throws Exception {
        progress("publishing");
        ctx.reset();
        add(SEC_PUBLISH, PUB1, Result.STARGAZER, StargazerRows.publishBlocking(ctx, 1), "msg/s", C1);
        if (peers) {
            add(SEC_PUBLISH, PUB1, Result.SPRING, SpringPeer.publishBlocking(ctx, 1), "msg/s", C1);
            add(SEC_PUBLISH, PUB1, Result.REDISSON, RedissonPeer.publishBlocking(ctx, 1), "msg/s", C1);
            Path script = Path.of("bench", "seed_publish.py");
            String why = PythonSeed.unavailable(script);
            if (why == null) {
                add(SEC_PUBLISH, PUB1, Result.PYTHON, PythonSeed.publish(ctx, script, ctx.quick ? 3_000 : 20_000), "msg/s", C1);
            } else {
                notes.add("Python seed row left out: " + why);
            }
        }
        add(SEC_PUBLISH, PUB16, Result.STARGAZER, StargazerRows.publishBlocking(ctx, 16), "msg/s", C50);
        if (peers) {
            add(SEC_PUBLISH, PUB16, Result.SPRING, SpringPeer.publishBlocking(ctx, 16), "msg/s", C50);
            add(SEC_PUBLISH, PUB16, Result.REDISSON, RedissonPeer.publishBlocking(ctx, 16), "msg/s", C50);
        }
        double best = 0;
        int bestWindow = 0;
        for (int w : ASYNC_WINDOWS) {
            double r = StargazerRows.publishAsync(ctx, w);
            progress(String.format(Locale.ROOT, "    stargazer async, %d in flight: %s msg/s", w, Report.num(r, "msg/s")));
            if (r > best) {
                best = r;
                bestWindow = w;
            }
        }
        add(SEC_PUBLISH, PUBASYNC, Result.STARGAZER, best, "msg/s", P16);
        notes.add("Asynchronous publishing: best of " + windows() + " in flight; Stargazer's best was " + bestWindow + ".");
        // Dedupe keys side by side with plain publishing: alternated (A B A B A B), medians with min and max.
        double[] plain = new double[3];
        double[] dedupe = new double[3];
        for (int round = 0; round < 3; round++) {
            plain[round] = StargazerRows.publishAsync(ctx, bestWindow);
            dedupe[round] = StargazerRows.publishAsyncDedupe(ctx, bestWindow);
            progress(String.format(Locale.ROOT, "    round %d: plain %s, dedupe %s msg/s", round + 1, Report.num(plain[round], "msg/s"),
                    Report.num(dedupe[round], "msg/s")));
        }
        double plainMedian = median(plain);
        double dedupeMedian = median(dedupe);
        add(SEC_PUBLISH, "asynchronous publishing, plain (median of 3, alternated with the next row)", Result.STARGAZER, plainMedian, "msg/s", P16);
        add(SEC_PUBLISH, "asynchronous publishing, a dedupe key on every publish (median of 3)", Result.STARGAZER, dedupeMedian, "msg/s", P16);
        notes.add(String.format(Locale.ROOT, "Dedupe keys (docs/once.md): plain %s (min %s, max %s), with a key per publish %s (min %s, "
                + "max %s) msg/s, %d in flight: the keys cost %.0f %% of asynchronous publishing (target: at most 25 %%): %s.",
                Report.num(plainMedian, "msg/s"), Report.num(min(plain), "msg/s"), Report.num(max(plain), "msg/s"),
                Report.num(dedupeMedian, "msg/s"), Report.num(min(dedupe), "msg/s"), Report.num(max(dedupe), "msg/s"), bestWindow,
                100 * (1 - dedupeMedian / plainMedian), dedupeMedian >= 0.75 * plainMedian ? "PASS" : "MISS"));
        for (io.stargazer.bus.TrimPolicy policy : io.stargazer.bus.TrimPolicy.values()) {
            add(SEC_PUBLISH, "asynchronous publishing, group consumed, cap 100 000, trim policy " + policy.name(), Result.STARGAZER,
                    StargazerRows.publishAsyncTrimmed(ctx, policy, bestWindow), "msg/s", P16);
        }
        for (FunctionRows.Pair p : FunctionRows.compare(ctx, bestWindow)) {
            add(SEC_PUBLISH, p.what() + ", functions (FCALL, median of 3, alternated with scripts)", Result.STARGAZER, FunctionRows.median(p.functions()), "msg/s", P16);
            add(SEC_PUBLISH, p.what() + ", scripts (EVAL, median of 3)", Result.STARGAZER, FunctionRows.median(p.scripts()), "msg/s", P16);
            notes.add("Server code (docs/functions.md), " + bestWindow + " in flight: " + p.note());
        }
        notes.add("Trim policy rows: the stream has a group that a no-op subscription keeps up with, and a cap of 100 000, so "
                + "trimming runs throughout; SAFE trims in the background below what every group has acknowledged, EVICT "
                + "puts MAXLEN ~ on every XADD (the original's behaviour).");
        if (!peers) return;
        best = 0;
        for (int w : ASYNC_WINDOWS) {
            double r = RedissonPeer.publishAsync(ctx, w);
            progress(String.format(Locale.ROOT, "    redisson async, %d in flight: %s msg/s", w, Report.num(r, "msg/s")));
            best = Math.max(best, r);
        }
        add(SEC_PUBLISH, PUBASYNC, Result.REDISSON, best, "msg/s", P16);
        notes.add("Spring Data Redis has no asynchronous StreamOperations: its asynchronous cell is empty.");
    }

    private static String windows() {
        StringBuilder sb = new StringBuilder();
        for (int w : ASYNC_WINDOWS) sb.append(sb.length() == 0 ? "" : " and ").append(w);
        return sb.toString();
    }

    private void consume() throws Exception {
        long n = ctx.quick ? 200_000 : 1_000_000;
        String figure = CONSUME + String.format(Locale.ROOT, "%,d", n).replace(',', ' ');
        progress("consuming a backlog of " + n);
        ctx.reset();
        add(SEC_CONSUME, figure, Result.STARGAZER, StargazerRows.consumeBacklog(ctx, n), "msg/s", P16);
        if (!peers) return;
        add(SEC_CONSUME, figure, Result.SPRING, SpringPeer.consumeBacklog(ctx, n), "msg/s", P16);
        add(SEC_CONSUME, figure, Result.REDISSON, RedissonPeer.consumeBacklog(ctx, n), "msg/s", P16);
    }

    private void roundTrip() throws Exception {
        progress("round trip gateway -> worker -> gateway (worker in its own JVM)");
        ctx.reset();
        Duration warm = ctx.quick ? Duration.ofMillis(500) : Duration.ofSeconds(1);
        Duration measure = ctx.quick ? Duration.ofMillis(1500) : Duration.ofSeconds(5);
        Duration searchMeasure = ctx.quick ? Duration.ofSeconds(1) : Duration.ofSeconds(3);
        Map<Double, RoundTrip.Run> runs = new LinkedHashMap<>();
        try (RoundTrip rt = new RoundTrip(ctx)) {
            // Warms both JVMs (JIT, heap sizing) so the first reported rate does not pay for it; not reported.
            rt.run(2_000, warm, ctx.quick ? Duration.ofSeconds(1) : Duration.ofSeconds(3));
            rt.run(8_000, warm, ctx.quick ? Duration.ofSeconds(1) : Duration.ofSeconds(3));
            if (!ROUND_TRIP_RATES.isEmpty()) {
                for (double rate : ROUND_TRIP_RATES) progress(describe(rt.run(rate, warm, measure)));
                return;
            }
            for (double rate : new double[] {1_000, 10_000, 50_000}) {
                RoundTrip.Run r = rt.run(rate, warm, measure);
                runs.put(rate, r);
                String label = String.format(Locale.ROOT, "round trip at %,.0f msg/s offered", rate).replace(',', ' ');
                add(SEC_ROUNDTRIP, label + ": p50", Result.STARGAZER, r.p50Ms(), "ms", null);
                add(SEC_ROUNDTRIP, label + ": p99", Result.STARGAZER, r.p99Ms(), "ms", null);
                add(SEC_ROUNDTRIP, label + ": p99.9", Result.STARGAZER, r.p999Ms(), "ms", null);
                add(SEC_ROUNDTRIP, label + ": delivered", Result.STARGAZER, r.achieved(), "msg/s", null);
                if (r.lost() > 0) notes.add(label + ": " + r.lost() + " messages had not come back 10 s after the last was due.");
            }
            // The highest rate holding p99 under the limit: bracket it between a rate that holds and one that does not.
            double lo = 0;
            double hi = 0;
            for (Map.Entry<Double, RoundTrip.Run> e : runs.entrySet()) {
                if (e.getValue().holds(P99_LIMIT_MS)) lo = Math.max(lo, e.getKey());
            }
            for (Map.Entry<Double, RoundTrip.Run> e : runs.entrySet()) {
                if (!e.getValue().holds(P99_LIMIT_MS) && e.getKey() > lo && (hi == 0 || e.getKey() < hi)) hi = e.getKey();
            }
            while (hi == 0 && lo > 0 && lo < 400_000) {
                double next = lo * 1.5;
                RoundTrip.Run r = rt.run(next, warm, searchMeasure);
                runs.put(next, r);
                progress(describe(r));
                if (r.holds(P99_LIMIT_MS)) lo = next;
                else hi = next;
            }
            for (int step = 0; step < (ctx.quick ? 2 : 4) && hi > 0 && hi - lo > Math.max(1_000, lo * 0.05); step++) {
                double mid = Math.round((lo + hi) / 2 / 500) * 500.0;
                RoundTrip.Run r = rt.run(mid, warm, searchMeasure);
                runs.put(mid, r);
                progress(describe(r));
                if (r.holds(P99_LIMIT_MS)) lo = mid;
                else hi = mid;
            }
            add(SEC_ROUNDTRIP, "round trip: highest offered rate with p99 < 10 ms", Result.STARGAZER, lo, "msg/s", null);
            RoundTrip.Run top = runs.get(lo);
            if (top != null) {
                String at = " (worker JVM, at " + String.format(Locale.ROOT, "%,.0f", lo).replace(',', ' ') + " msg/s)";
                add(SEC_ROUNDTRIP, "memory: peak heap used" + at, Result.STARGAZER, top.heapBytes() / 1048576.0, "MiB", null);
                add(SEC_ROUNDTRIP, "memory: peak heap committed" + at, Result.STARGAZER, top.heapCommittedBytes() / 1048576.0, "MiB", null);
                add(SEC_ROUNDTRIP, "memory: peak resident size (VmHWM)" + at, Result.STARGAZER, top.rssBytes() / 1048576.0, "MiB", null);
                notes.add(String.format(Locale.ROOT, "Round trip at the highest rate holding p99 < 10 ms: p50 %.2f ms, p99 %.2f ms, p99.9 %.2f ms.",
                        top.p50Ms(), top.p99Ms(), top.p999Ms()));
            }
            StringBuilder tried = new StringBuilder("Round-trip rates tried (offered → p99): ");
            runs.forEach((rate, r) -> tried.append(String.format(Locale.ROOT, "%,.0f → %.2f ms%s; ", rate, r.p99Ms(),
                    r.lost() > 0 ? " (" + r.lost() + " not back)" : "")));
            notes.add(tried.toString().strip());
        }
    }

    private static String describe(RoundTrip.Run r) {
        return String.format(Locale.ROOT, "    round trip %,.0f msg/s offered: delivered %,.0f/s p50 %.2f p99 %.2f p99.9 %.2f ms lost %d",
                r.offered(), r.achieved(), r.p50Ms(), r.p99Ms(), r.p999Ms(), r.lost());
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
        int n = ctx.quick ? 30_000 : 100_000;
        progress("inbound on one server and on a local cluster, " + n + " messages each");
        double[][] r = ClusterRows.measure(n);
        String[] setups = {"one server, 1 inbound stream", "one server, 6 inbound partitions", "cluster 3+3, 6 inbound partitions"};
        for (int i = 0; i < setups.length; i++) {
            add(SEC_CLUSTER, "inbound publish (16 threads, async), " + setups[i], Result.STARGAZER, r[i][0], "msg/s", null);
            add(SEC_CLUSTER, "inbound publish + consume, " + setups[i], Result.STARGAZER, r[i][1], "msg/s", null);
        }
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

    private void finish(Path out, boolean write, Duration took, RedisServerProcess server, String[] args) throws Exception {
        Report report = new Report(results, notes);
        List<Report.Target> targets = List.of(
                new Report.Target(PUBASYNC, 0.60, "asynchronous publishing ≥ 60 % of `redis-benchmark -c 50 -P 16`"),
                new Report.Target(PUB16, 0.80, "16 blocking publishers ≥ 80 % of `redis-benchmark -c 50 -P 1`"),
                new Report.Target(results.stream().map(Result::figure).filter(f -> f.startsWith(CONSUME)).findFirst().orElse(CONSUME),
                        0.25, "one consumer process ≥ 25 % of `redis-benchmark -c 50 -P 16`"));
        Map<String, String> machine = machine(took, server, args);
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

    private Map<String, String> machine(Duration took, RedisServerProcess server, String[] args) {
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
            - The envelope: `platform`, `channel_id` (64 channels of the same width), `content` (padding), `type` and a
              32-character `trace_id`: 200 bytes of MessagePack. Every entry carries `payload` (those 200 bytes) and
              `trace_id` (32 characters), with `MAXLEN ~ 1000000`, whoever writes it. redis-benchmark sends 200 printable
              bytes in `payload` (its arguments are text): the same sizes.
            - Publishing rows run flat out for a warm-up (not counted), then a measured period; the figure is
              entries stored per second. Each publish encodes the envelope (the peers call the same encoder), so all
              pay the same encoding cost. "Asynchronous": one thread keeping a bounded window of publishes in flight
              (a semaphore); the best window is reported.
            - The consume row: the backlog is added server-side before the clock starts; the clock runs from subscribing
              until every entry has been delivered, decoded, handled by a no-op and acknowledged (the group's pending
              count back to 0). Stargazer: one subscription, batch 512, 4096 in flight, 4 handler threads, automatic
              acks. Spring Data Redis: `StreamMessageListenerContainer` (batch 512) whose listener decodes and calls
              `StreamOperations.acknowledge` per record, as documented. Redisson: `RStream.readGroup` (count 512),
              decode, `ackAsync` per batch.
            - Round trip: a gateway in this JVM publishes to an inbound stream on a fixed schedule; a worker in its own
              JVM (same jar, `WorkerMain`) consumes inbound and publishes each envelope to an outbound stream; the
              gateway consumes outbound. Latency runs from when a message was *due* to be sent (its schedule slot,
              carried in the envelope) to when its echo is handled: the correction for coordinated omission. Recorded
              with HdrHistogram (3 significant digits), after a 1 s warm-up at the same rate. A rate "holds" when p99 is
              under 10 ms, every message came back and at least 95 % of the offered rate was delivered; the highest
              holding rate is bracketed by raising the rate ×1.5 from the highest fixed rate that holds, then halving
              the gap.
            - Memory: the worker JVM samples `MemoryMXBean` heap use every 5 ms; the peak resident size is the
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
