// The issue-16 targets, checked on the medians of alternated comparisons within one run.
package io.stargazer.bench;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * Each target compares two figures of the same run, both medians of rounds run alternately: the bus against the
 * best peer, against {@code redis-benchmark} measured in the same rounds, or one setup of the bus against another.
 * A target whose figures were not measured in this run prints as NOT RUN.
 */
final class Targets {
    static final String PEERS = "best peer";

    private Targets() {
    }

    static List<String> lines(List<Result> results) {
        Map<String, Map<String, Result>> rows = new LinkedHashMap<>();
        for (Result r : results) rows.computeIfAbsent(r.figure(), k -> new LinkedHashMap<>()).put(r.impl(), r);
        String consume = results.stream().map(Result::figure).filter(f -> f.startsWith(BenchMain.CONSUME)).findFirst()
                .orElse(BenchMain.CONSUME);
        List<String> out = new ArrayList<>();
        out.add(vsPeers(rows, BenchMain.PUB1, 1.1, "1 blocking publisher ≥ 1.1× the best peer"));
        out.add(vsImpl(rows, BenchMain.PUB1, Result.SERVER, 0.70, "1 blocking publisher ≥ 70 % of `redis-benchmark -c 1 -P 1`"));
        out.add(vsPeers(rows, BenchMain.PUB16, 1.2, "16 blocking publishers ≥ 1.2× the best peer"));
        out.add(vsImpl(rows, BenchMain.PUBASYNC, Result.SERVER, 0.90, "asynchronous publishing ≥ 90 % of `redis-benchmark -c 50 -P 16`"));
        out.add(vsImpl(rows, consume, Result.SERVER, 0.70, "one consumer process ≥ 70 % of `redis-benchmark -c 50 -P 16`"));
        out.add(absolute(rows, BenchMain.RT_HIGHEST, 45_000, "round trip: highest rate with p99 < 10 ms ≥ 45 000 msg/s"));
        out.add(vsPeers(rows, BenchMain.RT_HIGHEST, 1.5, "round trip: highest rate with p99 < 10 ms ≥ 1.5× the best peer"));
        out.add(vsFigure(rows, BenchMain.INBOUND_PUBLISH_6, BenchMain.INBOUND_PUBLISH_1, 0.90,
                "inbound publishing, 6 partitions on one server ≥ 90 % of the single stream"));
        out.add(vsFigure(rows, BenchMain.INBOUND_E2E_6, BenchMain.INBOUND_E2E_1, 0.90,
                "inbound publish + consume, 6 partitions on one server ≥ 90 % of the single stream"));
        return out;
    }

    private static Result own(Map<String, Map<String, Result>> rows, String figure) {
        return rows.getOrDefault(figure, Map.of()).get(Result.STARGAZER);
    }

    private static String line(boolean pass, String text, String detail) {
        return "- " + (pass ? "PASS" : "MISS") + ": " + text + " — " + detail;
    }

    private static String notRun(String text) {
        return "- NOT RUN: " + text;
    }

    private static String ratio(double r, double min, boolean times) {
        return times ? String.format(Locale.ROOT, "×%.2f (target ≥ ×%.2f)", r, min)
                : String.format(Locale.ROOT, "%.1f %% (target ≥ %s)", r * 100, Report.pct(min));
    }

    private static String vsPeers(Map<String, Map<String, Result>> rows, String figure, double min, String text) {
        Result own = own(rows, figure);
        Result best = null;
        for (String peer : List.of(Result.SPRING, Result.REDISSON)) {
            Result p = rows.getOrDefault(figure, Map.of()).get(peer);
            if (p != null && (best == null || p.value() > best.value())) best = p;
        }
        if (own == null || best == null) return notRun(text);
        if (best.value() <= 0) return line(own.value() > 0, text, own.cell() + " " + own.unit() + " vs best peer 0");
        double r = own.value() / best.value();
        return line(r >= min, text, String.format(Locale.ROOT, "Stargazer %s vs %s %s %s = %s", own.cell(), Report.title(best.impl()),
                best.cell(), own.unit(), ratio(r, min, true)));
    }

    private static String vsImpl(Map<String, Map<String, Result>> rows, String figure, String impl, double min, String text) {
        Result own = own(rows, figure);
        Result other = rows.getOrDefault(figure, Map.of()).get(impl);
        if (own == null || other == null || other.value() <= 0) return notRun(text);
        double r = own.value() / other.value();
        return line(r >= min, text, String.format(Locale.ROOT, "Stargazer %s vs %s %s %s = %s", own.cell(), Report.title(impl),
                other.cell(), own.unit(), ratio(r, min, false)));
    }

    private static String vsFigure(Map<String, Map<String, Result>> rows, String figure, String base, double min, String text) {
        Result own = own(rows, figure);
        Result other = own(rows, base);
        if (own == null || other == null || other.value() <= 0) return notRun(text);
        double r = own.value() / other.value();
        return line(r >= min, text, String.format(Locale.ROOT, "%s vs %s %s = %s", own.cell(), other.cell(), own.unit(),
                ratio(r, min, false)));
    }

    private static String absolute(Map<String, Map<String, Result>> rows, String figure, double min, String text) {
        Result own = own(rows, figure);
        if (own == null) return notRun(text);
        return line(own.value() >= min, text, own.cell() + " " + own.unit());
    }
}
