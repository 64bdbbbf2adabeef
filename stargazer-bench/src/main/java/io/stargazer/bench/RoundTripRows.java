// The round trip of the bus and of its peers: a ladder of fixed offered rates, contenders alternated at each rate.
package io.stargazer.bench;

import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * Climbs a ladder of offered rates. At each rate every contender still in runs once per round, in turn (A B C A B C
 * ...), {@link #ROUNDS} rounds; a contender holds a rate when the median of its rounds' p99 is under the limit, a run
 * counting as failed (infinite p99) when a message did not come back or less than 95 % of the offered rate was
 * delivered. A contender leaves the ladder after two rates in a row it does not hold (one may fail to a burst of
 * the machine's other work); its figure is the highest rate it held.
 * Each contender has its own worker JVM, started once and warmed before the ladder.
 */
final class RoundTripRows {
    static final int ROUNDS = BenchMain.ROUNDS;
    static final double[] LADDER = {1_000, 5_000, 10_000, 15_000, 20_000, 25_000, 30_000, 35_000, 40_000, 45_000, 50_000,
            55_000, 60_000, 70_000, 80_000, 90_000, 100_000};
    static final double[] QUICK_LADDER = {1_000, 5_000, 10_000, 20_000, 30_000, 40_000, 50_000, 60_000, 80_000};
    /**
     * Messages a measured round holds at least (outside --quick), so that its p99.9 has ten beyond it: three seconds at
     * 1 000 msg/s made it the third-worst of 3 000, and one GC pause of a few milliseconds in any of the three processes
     * decided the row (bench/profile-notes.md, stop 53).
     */
    static final int MIN_MEASURED = 10_000;
    /** Rates whose p50/p99/p99.9 are shown for every contender. */
    static final double[] SHOWN = {1_000, 10_000};

    private RoundTripRows() {
    }

    /** What a contender did at one rate, over the rounds. */
    private record AtRate(List<RoundTrip.Run> runs) {
        double p99ForHolding(RoundTrip.Run r) {
            return r.lost() == 0 && r.achieved() >= r.offered() * 0.95 ? r.p99Ms() : Double.POSITIVE_INFINITY;
        }

        Sample p99s() {
            return Sample.of(runs.stream().mapToDouble(this::p99ForHolding).toArray());
        }

        boolean holds(double limitMs) {
            return p99s().median() < limitMs;
        }
    }

    static void run(BenchMain bench, Ctx ctx, List<String> contenders) throws Exception {
        Duration warm = ctx.quick ? Duration.ofMillis(500) : Duration.ofSeconds(1);
        Duration measure = ctx.quick ? Duration.ofSeconds(1) : Duration.ofSeconds(3);
        Map<String, RoundTrip> trips = new LinkedHashMap<>();
        String loadBefore = BenchMain.loadAverage();
        try {
            for (String c : contenders) {
                RoundTrip rt = new RoundTrip(ctx, c.equals(Result.STARGAZER) ? new RoundTrip.StargazerGateway(ctx) : PeerRoundTrip.gateway(c, ctx));
                trips.put(c, rt);
                // Warms both JVMs (JIT, heap sizing) so the first rate does not pay for it; not reported.
                rt.run(2_000, warm, ctx.quick ? Duration.ofSeconds(1) : Duration.ofSeconds(3));
                rt.run(8_000, warm, ctx.quick ? Duration.ofSeconds(1) : Duration.ofSeconds(3));
            }
            Map<String, Map<Double, AtRate>> got = new LinkedHashMap<>();
            for (String c : contenders) got.put(c, new LinkedHashMap<>());
            List<String> active = new ArrayList<>(contenders);
            Map<String, Integer> failedInARow = new LinkedHashMap<>();
            for (double rate : ctx.quick ? QUICK_LADDER : LADDER) {
                if (active.isEmpty()) break;
                Map<String, List<RoundTrip.Run>> runs = new LinkedHashMap<>();
                for (String c : active) runs.put(c, new ArrayList<>());
                Duration measureHere = ctx.quick ? measure
                        : Duration.ofMillis(Math.max(measure.toMillis(), (long) Math.ceil(MIN_MEASURED * 1000.0 / rate)));
                for (int round = 0; round < ROUNDS; round++) {
                    for (String c : active) {
                        RoundTrip.Run r = trips.get(c).run(rate, warm, measureHere);
                        runs.get(c).add(r);
                        bench.progress(String.format(Locale.ROOT, "    round trip %,.0f msg/s, round %d, %s: delivered %,.0f/s p50 %.2f p99 %.2f "
                                + "p99.9 %.2f ms lost %d; CPU per message: worker %.1f, gateway %.1f, redis %.1f µs", rate, round + 1, c,
                                r.achieved(), r.p50Ms(), r.p99Ms(), r.p999Ms(), r.lost(), r.workerCpuMicrosPerMessage(),
                                r.gatewayCpuMicrosPerMessage(), r.serverCpuMicrosPerMessage()));
                    }
                }
                for (String c : new ArrayList<>(active)) {
                    AtRate a = new AtRate(runs.get(c));
                    got.get(c).put(rate, a);
                    int failed = a.holds(BenchMain.P99_LIMIT_MS) ? 0 : failedInARow.getOrDefault(c, 0) + 1;
                    failedInARow.put(c, failed);
                    if (failed >= 2) active.remove(c);
                }
            }
            report(bench, got);
        } finally {
            for (RoundTrip rt : trips.values()) rt.close();
        }
        bench.note("Round trip: " + ROUNDS + " rounds at each rate, contenders alternated (" + String.join(", ", contenders) + "); "
                + "load " + loadBefore + " → " + BenchMain.loadAverage() + ".");
    }

    private static void report(BenchMain bench, Map<String, Map<Double, AtRate>> got) {
        for (double shown : SHOWN) {
            String label = String.format(Locale.ROOT, "round trip at %,.0f msg/s offered", shown).replace(',', ' ');
            for (Map.Entry<String, Map<Double, AtRate>> c : got.entrySet()) {
                AtRate a = c.getValue().get(shown);
                if (a == null) continue;
                bench.add(BenchMain.SEC_ROUNDTRIP, label + ": p50", c.getKey(), sample(a, RoundTrip.Run::p50Ms), "ms", null);
                bench.add(BenchMain.SEC_ROUNDTRIP, label + ": p99", c.getKey(), sample(a, RoundTrip.Run::p99Ms), "ms", null);
                bench.add(BenchMain.SEC_ROUNDTRIP, label + ": p99.9", c.getKey(), sample(a, RoundTrip.Run::p999Ms), "ms", null);
                bench.add(BenchMain.SEC_ROUNDTRIP, label + ": CPU per message, worker JVM", c.getKey(),
                        sample(a, RoundTrip.Run::workerCpuMicrosPerMessage), "µs", null);
                bench.add(BenchMain.SEC_ROUNDTRIP, label + ": CPU per message, gateway JVM", c.getKey(),
                        sample(a, RoundTrip.Run::gatewayCpuMicrosPerMessage), "µs", null);
                bench.add(BenchMain.SEC_ROUNDTRIP, label + ": CPU per message, redis-server", c.getKey(),
                        sample(a, RoundTrip.Run::serverCpuMicrosPerMessage), "µs", null);
            }
        }
        for (Map.Entry<String, Map<Double, AtRate>> c : got.entrySet()) {
            double held = 0;
            for (Map.Entry<Double, AtRate> e : c.getValue().entrySet()) {
                if (e.getValue().holds(BenchMain.P99_LIMIT_MS)) held = e.getKey();
            }
            // Per round: the highest rate that round's run held (for the min–max beside the figure decided on medians).
            double[] perRound = new double[ROUNDS];
            for (int round = 0; round < ROUNDS; round++) {
                for (Map.Entry<Double, AtRate> e : c.getValue().entrySet()) {
                    RoundTrip.Run r = e.getValue().runs().get(round);
                    if (e.getValue().p99ForHolding(r) < BenchMain.P99_LIMIT_MS) perRound[round] = e.getKey();
                }
            }
            bench.addDecided(BenchMain.SEC_ROUNDTRIP, BenchMain.RT_HIGHEST, c.getKey(), held, Sample.of(perRound), "msg/s");
            AtRate top = c.getValue().get(held);
            if (top != null) {
                String at = " (worker JVM, at the highest rate held)";
                bench.add(BenchMain.SEC_ROUNDTRIP, "memory: peak heap used" + at, c.getKey(),
                        sample(top, r -> r.heapBytes() / 1048576.0), "MiB", null);
                bench.add(BenchMain.SEC_ROUNDTRIP, "memory: peak resident size (VmHWM)" + at, c.getKey(),
                        sample(top, r -> r.rssBytes() / 1048576.0), "MiB", null);
            }
            StringBuilder tried = new StringBuilder("Round trip, " + Report.title(c.getKey()) + ", per offered rate: median p99, and the "
                    + "CPU the three processes used (worker + gateway + redis-server, µs per message; cores at that rate): ");
            c.getValue().forEach((rate, a) -> {
                double cpu = sample(a, r -> r.workerCpuMicrosPerMessage() + r.gatewayCpuMicrosPerMessage() + r.serverCpuMicrosPerMessage()).median();
                tried.append(String.format(Locale.ROOT, "%,.0f → %s, %.0f µs (%.0f + %.0f + %.0f), %.2f cores; ", rate,
                        Double.isInfinite(a.p99s().median()) ? "not all back or < 95 % delivered" : String.format(Locale.ROOT, "%.2f ms", a.p99s().median()),
                        cpu, sample(a, RoundTrip.Run::workerCpuMicrosPerMessage).median(), sample(a, RoundTrip.Run::gatewayCpuMicrosPerMessage).median(),
                        sample(a, RoundTrip.Run::serverCpuMicrosPerMessage).median(), cpu * rate / 1e6));
            });
            bench.note(tried.toString().strip());
        }
    }

    private static Sample sample(AtRate a, java.util.function.ToDoubleFunction<RoundTrip.Run> f) {
        return Sample.of(a.runs().stream().mapToDouble(f).toArray());
    }
}
