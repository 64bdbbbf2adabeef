// The rows that compare the bus with its peers and the server: publishing and consuming, contenders alternated.
package io.stargazer.bench;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * Each comparison runs its contenders in turn, {@link BenchMain#ROUNDS} rounds ({@link Alternate}): the bus, Spring Data
 * Redis, Redisson and {@code redis-benchmark} with the client count and pipeline the row is compared with. Every cell
 * is the median of the rounds with the min and max beside it; the bus's ratio to the server is of the two medians.
 */
final class CompareRows {
    private CompareRows() {
    }

    /** redis-benchmark XADD at {@code clients}/{@code pipeline}, {@code n} requests, on a key of its own. */
    private static Alternate.Measure server(Ctx ctx, int clients, int pipeline, long n) {
        return () -> {
            String key = ctx.key("redis-benchmark");
            try {
                return ServerLimit.run(ctx, key, clients, pipeline, n);
            } finally {
                ctx.reset(key);
            }
        };
    }

    /** Adds every contender's row, and the server's median as the limit of this row (and of later rows naming it). */
    private static void report(BenchMain bench, String section, String figure, String limit, Alternate.Outcome o) {
        Sample server = o.get(Result.SERVER);
        if (server != null) bench.limit(limit, server.median());
        for (Map.Entry<String, Sample> e : o.samples().entrySet()) {
            bench.add(section, figure, e.getKey(), e.getValue(), "msg/s", e.getKey().equals(Result.STARGAZER) ? limit : null);
        }
        bench.note("\"" + figure + "\": " + o.samples().keySet() + " alternated, " + BenchMain.ROUNDS + " rounds; " + o.load() + ".");
    }

    static void publish(BenchMain bench, Ctx ctx) throws Exception {
        boolean rb = ServerLimit.available();
        if (!rb) bench.note("redis-benchmark was not found: no server limit and no ratios in this run.");
        long n1 = ctx.quick ? 20_000L : 100_000L;
        long n50 = ctx.quick ? 60_000L : 300_000L;
        long n16 = ctx.quick ? 300_000L : 1_000_000L;
        ctx.reset();

        blocking(bench, ctx, 1, BenchMain.PUB1, BenchMain.C1, rb, 1, n1);
        if (bench.peers()) {
            java.nio.file.Path script = java.nio.file.Path.of("bench", "seed_publish.py");
            String why = PythonSeed.unavailable(script);
            if (why == null) {
                bench.add(BenchMain.SEC_PUBLISH, BenchMain.PUB1, Result.PYTHON,
                        Sample.of(PythonSeed.publish(ctx, script, ctx.quick ? 3_000 : 20_000)), "msg/s", null);
                bench.note("The Python seed's cell is one run after the alternated rounds (it is not a target's contender).");
            } else {
                bench.note("Python seed row left out: " + why);
            }
        }

        blocking(bench, ctx, 16, BenchMain.PUB16, BenchMain.C50, rb, 50, n50);

        // The in-flight window: each asynchronous contender's best of the windows in one pass (not reported), then alternated.
        int ours = bestWindow(bench, "stargazer", w -> StargazerRows.publishAsync(ctx, w));
        Alternate async = new Alternate().add(Result.STARGAZER, "msg/s", () -> StargazerRows.publishAsync(ctx, ours));
        int theirs = 0;
        if (bench.peers()) {
            theirs = bestWindow(bench, "redisson", w -> RedissonPeer.publishAsync(ctx, w));
            int w = theirs;
            async.add(Result.REDISSON, "msg/s", () -> RedissonPeer.publishAsync(ctx, w));
        }
        if (rb) async.add(Result.SERVER, "msg/s", server(ctx, 50, 16, n16));
        report(bench, BenchMain.SEC_PUBLISH, BenchMain.PUBASYNC, BenchMain.P16, async.run("asynchronous publishing", BenchMain.ROUNDS, bench::progress));
        if (rb) bench.note("`" + BenchMain.P16 + "`: `" + ServerLimit.describe(50, 16, n16) + "`");
        bench.note("Asynchronous publishing: each contender's window chosen from " + windows() + " in flight in one pass before the rounds; "
                + "Stargazer " + ours + (bench.peers() ? ", Redisson " + theirs : "") + ". Spring Data Redis has no asynchronous "
                + "StreamOperations: its asynchronous cell is empty.");

        // Dedupe keys side by side with plain publishing, alternated.
        Alternate dedupe = new Alternate().add("plain", "msg/s", () -> StargazerRows.publishAsync(ctx, ours))
                .add("dedupe", "msg/s", () -> StargazerRows.publishAsyncDedupe(ctx, ours));
        Alternate.Outcome d = dedupe.run("plain vs dedupe keys", BenchMain.ROUNDS, bench::progress);
        Sample plain = d.get("plain");
        Sample keyed = d.get("dedupe");
        bench.add(BenchMain.SEC_PUBLISH, "asynchronous publishing, plain (alternated with the next row)", Result.STARGAZER, plain, "msg/s", BenchMain.P16);
        bench.add(BenchMain.SEC_PUBLISH, "asynchronous publishing, a dedupe key on every publish", Result.STARGAZER, keyed, "msg/s", BenchMain.P16);
        bench.note(String.format(Locale.ROOT, "Dedupe keys (docs/once.md): plain %s, with a key per publish %s msg/s, %d in flight, %s: the keys "
                + "cost %.0f %% of asynchronous publishing (target: at most 25 %%): %s.", plain.describe("msg/s"), keyed.describe("msg/s"), ours,
                d.load(), 100 * (1 - keyed.median() / plain.median()), keyed.median() >= 0.75 * plain.median() ? "PASS" : "MISS"));

        for (io.stargazer.bus.TrimPolicy policy : io.stargazer.bus.TrimPolicy.values()) {
            bench.add(BenchMain.SEC_PUBLISH, "asynchronous publishing, group consumed, cap 100 000, trim policy " + policy.name(), Result.STARGAZER,
                    Sample.of(StargazerRows.publishAsyncTrimmed(ctx, policy, ours)), "msg/s", BenchMain.P16);
        }
        for (FunctionRows.Pair p : FunctionRows.compare(ctx, ours)) {
            bench.add(BenchMain.SEC_PUBLISH, p.what() + ", functions (FCALL, median of 3, alternated with scripts)", Result.STARGAZER,
                    Sample.of(p.functions()), "msg/s", BenchMain.P16);
            bench.add(BenchMain.SEC_PUBLISH, p.what() + ", scripts (EVAL, median of 3)", Result.STARGAZER, Sample.of(p.scripts()), "msg/s",
                    BenchMain.P16);
            bench.note("Server code (docs/functions.md), " + ours + " in flight: " + p.note());
        }
        bench.note("Trim policy rows (one run each): the stream has a group that a no-op subscription keeps up with, and a cap of 100 000, so "
                + "trimming runs throughout; SAFE trims in the background below what every group has acknowledged, EVICT "
                + "puts MAXLEN ~ on every XADD (the original's behaviour).");
    }

    /** {@code threads} blocking publishers of each contender, and redis-benchmark at {@code clients}, alternated. */
    private static void blocking(BenchMain bench, Ctx ctx, int threads, String figure, String limit, boolean rb, int clients, long n)
            throws Exception {
        Alternate a = new Alternate().add(Result.STARGAZER, "msg/s", () -> StargazerRows.publishBlocking(ctx, threads));
        if (bench.peers()) {
            a.add(Result.SPRING, "msg/s", () -> SpringPeer.publishBlocking(ctx, threads))
                    .add(Result.REDISSON, "msg/s", () -> RedissonPeer.publishBlocking(ctx, threads));
        }
        if (rb) a.add(Result.SERVER, "msg/s", server(ctx, clients, 1, n));
        report(bench, BenchMain.SEC_PUBLISH, figure, limit, a.run(figure, BenchMain.ROUNDS, bench::progress));
        if (rb) bench.note("`" + limit + "`: `" + ServerLimit.describe(clients, 1, n) + "`");
    }

    private interface Windowed {
        double run(int window) throws Exception;
    }

    private static int bestWindow(BenchMain bench, String who, Windowed w) throws Exception {
        double best = -1;
        int bestWindow = BenchMain.ASYNC_WINDOWS[0];
        for (int window : BenchMain.ASYNC_WINDOWS) {
            double r = w.run(window);
            bench.progress(String.format(Locale.ROOT, "    %s async, %d in flight (choosing the window): %s msg/s", who, window, Report.num(r, "msg/s")));
            if (r > best) {
                best = r;
                bestWindow = window;
            }
        }
        return bestWindow;
    }

    private static String windows() {
        StringBuilder sb = new StringBuilder();
        for (int w : BenchMain.ASYNC_WINDOWS) sb.append(sb.length() == 0 ? "" : " and ").append(w);
        return sb.toString();
    }

    static void consume(BenchMain bench, Ctx ctx, long n) throws Exception {
        String figure = BenchMain.CONSUME + String.format(Locale.ROOT, "%,d", n).replace(',', ' ');
        long n16 = ctx.quick ? 300_000L : 1_000_000L;
        Duration springCap = ctx.quick ? Duration.ofSeconds(4) : Duration.ofSeconds(12);
        ctx.reset();
        // Each contender's consumer in a JVM of its own, started once for the row (ConsumerProcess says why).
        List<ConsumerProcess> processes = new ArrayList<>();
        try {
            ConsumerProcess bus = new ConsumerProcess(ctx, Result.STARGAZER);
            processes.add(bus);
            Alternate c = new Alternate().add(Result.STARGAZER, "msg/s", () -> bus.consume(n, springCap));
            if (bench.peers()) {
                ConsumerProcess spring = new ConsumerProcess(ctx, Result.SPRING);
                processes.add(spring);
                ConsumerProcess redisson = new ConsumerProcess(ctx, Result.REDISSON);
                processes.add(redisson);
                c.add(Result.SPRING, "msg/s", () -> spring.consume(n, springCap))
                        .add(Result.REDISSON, "msg/s", () -> redisson.consume(n, springCap));
                bench.note("Spring Data Redis consumes the same backlog but is stopped after " + springCap.toSeconds() + " s (its per-record "
                        + "acknowledgement would take minutes for the whole backlog); its figure is entries acknowledged per second until then.");
            }
            consumeRounds(bench, ctx, figure, n16, c);
        } finally {
            for (ConsumerProcess p : processes) p.close();
        }
    }

    private static void consumeRounds(BenchMain bench, Ctx ctx, String figure, long n16, Alternate c) throws Exception {
        if (ServerLimit.available()) c.add(Result.SERVER, "msg/s", server(ctx, 50, 16, n16));
        // Uncounted rounds first: one backlog takes 2-8 s, and in the first rounds every contender's consuming code was
        // still being compiled (a run of 5 rounds in the harness's JVM climbed from 121 000 to 274 000 msg/s for the bus
        // and from 100 000 to 277 000 for Redisson, round by round). Four since each consumer is a fresh JVM of its own:
        // after two, the bus's still climbed through the counted rounds on an Intel machine (347 172, 395 137, 423 032,
        // 437 996, 434 577 msg/s; Redisson 267 511-277 360 from the first; bench/profile-notes.md, stop 57).
        int warmUps = ctx.quick ? 1 : 4;
        bench.note("The consume row runs " + warmUps + " alternated warm-up round" + (warmUps == 1 ? "" : "s") + " (not counted) before its "
                + BenchMain.ROUNDS + " rounds.");
        report(bench, BenchMain.SEC_CONSUME, figure, BenchMain.P16, c.run("consume", warmUps, BenchMain.ROUNDS, bench::progress));
    }
}
