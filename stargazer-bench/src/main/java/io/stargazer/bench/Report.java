// Turns the run's figures into the printed table, docs/benchmarks.md and docs/benchmarks.json.
package io.stargazer.bench;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/** One table row per figure, one column per implementation; targets checked as ratios within the same run. */
final class Report {
    static String title(String impl) {
        return TITLES.getOrDefault(impl, impl);
    }

    static final List<String> COLUMNS = List.of(Result.STARGAZER, Result.SPRING, Result.REDISSON, Result.PYTHON, Result.SERVER);
    private static final Map<String, String> TITLES = Map.of(Result.STARGAZER, "Stargazer", Result.SPRING, "Spring Data Redis",
            Result.REDISSON, "Redisson", Result.PYTHON, "Python seed", Result.SERVER, "redis-benchmark");

    /** A target: {@code figure} of the bus at least {@code min} times the server's figure it is compared with. */
    record Target(String figure, double min, String text) {
    }

    private final List<Result> results;
    private final List<String> notes;

    Report(List<Result> results, List<String> notes) {
        this.results = results;
        this.notes = notes;
    }

    private Map<String, Map<String, Result>> byFigure() {
        Map<String, Map<String, Result>> rows = new LinkedHashMap<>();
        for (Result r : results) rows.computeIfAbsent(r.figure(), k -> new LinkedHashMap<>()).put(r.impl(), r);
        return rows;
    }

    static String num(double v, String unit) {
        if (unit.equals("ms")) return String.format(Locale.ROOT, "%.2f", v);
        if (unit.equals("µs")) return String.format(Locale.ROOT, "%.1f", v);
        if (unit.equals("MiB")) return String.format(Locale.ROOT, "%.1f", v);
        if (v >= 100) return String.format(Locale.ROOT, "%,.0f", v);
        return String.format(Locale.ROOT, "%.1f", v);
    }

    /** The markdown table (also what is printed). */
    String table() {
        StringBuilder sb = new StringBuilder();
        sb.append("| figure |");
        for (String c : COLUMNS) sb.append(' ').append(TITLES.get(c)).append(" |");
        sb.append(" unit | server limit compared with | Stargazer ÷ limit |\n|---|");
        for (int i = 0; i < COLUMNS.size(); i++) sb.append("---:|");
        sb.append("---|---|---:|\n");
        for (Map.Entry<String, Map<String, Result>> row : byFigure().entrySet()) {
            Map<String, Result> cells = row.getValue();
            Result any = cells.values().iterator().next();
            sb.append("| ").append(row.getKey()).append(" |");
            for (String c : COLUMNS) {
                Result r = cells.get(c);
                sb.append(' ').append(r == null ? "–" : r.cell()).append(" |");
            }
            Result own = cells.get(Result.STARGAZER);
            Result withLimit = own != null && own.limitValue() > 0 ? own
                    : cells.values().stream().filter(r -> r.limitValue() > 0).findFirst().orElse(null);
            sb.append(' ').append(any.unit()).append(" | ")
                    .append(withLimit == null ? "" : withLimit.limitName() + " (" + num(withLimit.limitValue(), any.unit()) + ")")
                    .append(" | ").append(own != null && own.ratio() != null ? pct(own.ratio()) : "").append(" |\n");
        }
        return sb.toString();
    }

    static String pct(double ratio) {
        return String.format(Locale.ROOT, "%.0f %%", ratio * 100);
    }

    /** PASS/MISS lines for the ratio targets and the peers. */
    List<String> targetLines(List<Target> targets) {
        List<String> out = new ArrayList<>(Targets.lines(results));
        Map<String, Map<String, Result>> rows = byFigure();
        for (Target t : targets) {
            Result r = rows.getOrDefault(t.figure(), Map.of()).get(Result.STARGAZER);
            if (r == null || r.ratio() == null) {
                out.add("- NOT RUN: " + t.text());
                continue;
            }
            out.add(String.format(Locale.ROOT, "- %s: %s — %s %s vs %s %s = %s (target ≥ %s)",
                    r.ratio() >= t.min() ? "PASS" : "MISS", t.text(), num(r.value(), r.unit()), r.unit(), r.limitName(),
                    num(r.limitValue(), r.unit()), pct(r.ratio()), pct(t.min())));
        }
        for (Map.Entry<String, Map<String, Result>> row : rows.entrySet()) {
            Result own = row.getValue().get(Result.STARGAZER);
            for (String peer : List.of(Result.SPRING, Result.REDISSON)) {
                Result p = row.getValue().get(peer);
                if (own == null || p == null) continue;
                boolean lowerIsBetter = own.unit().equals("ms") || own.unit().equals("µs") || own.unit().equals("MiB");
                boolean ahead = lowerIsBetter ? own.value() < p.value() : own.value() > p.value();
                out.add(String.format(Locale.ROOT, "- %s: ahead of %s on \"%s\" — %s vs %s %s (×%.2f)", ahead ? "PASS" : "MISS",
                        TITLES.get(peer), row.getKey(), own.cell(), p.cell(), own.unit(), p.value() == 0 ? 0 : own.value() / p.value()));
            }
        }
        return out;
    }

    void writeMarkdown(Path file, Map<String, String> machine, List<Target> targets, String methodology, String profile)
            throws IOException {
        StringBuilder sb = new StringBuilder();
        sb.append("# Benchmarks\n\n");
        sb.append("Written by `stargazer-bench` (see `bench/run`); every figure below comes from one run, on one Redis, ")
                .append("with the same 200-byte envelope. Do not edit by hand: run the command again.\n\n");
        sb.append("## Machine and run\n\n");
        machine.forEach((k, v) -> sb.append("- ").append(k).append(": ").append(v).append('\n'));
        sb.append("\n## Results\n\n").append(table()).append('\n');
        sb.append("## Targets (ratios within this run)\n\n");
        for (String l : targetLines(targets)) sb.append(l).append('\n');
        if (!notes.isEmpty()) {
            sb.append("\n## Notes of this run\n\n");
            for (String n : notes) sb.append("- ").append(n).append('\n');
        }
        sb.append("\n## How each figure is measured\n\n").append(methodology.strip()).append('\n');
        if (profile != null && !profile.isBlank()) {
            sb.append("\n## Where the time goes\n\n").append(profile.strip()).append('\n');
        }
        Files.createDirectories(file.toAbsolutePath().getParent());
        Files.writeString(file, sb.toString());
    }

    void writeJson(Path file, Map<String, String> machine) throws IOException {
        StringBuilder sb = new StringBuilder("{\n  \"machine\": {");
        boolean first = true;
        for (Map.Entry<String, String> e : machine.entrySet()) {
            sb.append(first ? "\n" : ",\n").append("    ").append(str(e.getKey())).append(": ").append(str(e.getValue()));
            first = false;
        }
        sb.append("\n  },\n  \"rows\": [");
        first = true;
        for (Result r : results) {
            sb.append(first ? "\n" : ",\n").append("    {\"name\": ").append(str(r.figure() + " — " + r.impl()))
                    .append(", \"figure\": ").append(str(r.figure())).append(", \"implementation\": ").append(str(r.impl()))
                    .append(", \"section\": ").append(str(r.section()))
                    .append(", \"value\": ").append(String.format(Locale.ROOT, "%.3f", r.value()))
                    .append(", \"unit\": ").append(str(r.unit()));
            if (r.ratio() != null) {
                sb.append(", \"ratio_to_server_limit\": ").append(String.format(Locale.ROOT, "%.4f", r.ratio()))
                        .append(", \"server_limit\": ").append(str(r.limitName()))
                        .append(", \"server_limit_value\": ").append(String.format(Locale.ROOT, "%.3f", r.limitValue()));
            }
            if (r.sample() != null && r.sample().rounds() > 1) {
                sb.append(", \"median\": ").append(String.format(Locale.ROOT, "%.3f", r.sample().median()))
                        .append(", \"min\": ").append(String.format(Locale.ROOT, "%.3f", r.sample().min()))
                        .append(", \"max\": ").append(String.format(Locale.ROOT, "%.3f", r.sample().max()))
                        .append(", \"rounds\": [");
                double[] v = r.sample().values();
                for (int i = 0; i < v.length; i++) sb.append(i == 0 ? "" : ", ").append(String.format(Locale.ROOT, "%.3f", v[i]));
                sb.append(']');
            }
            if (r.note() != null) sb.append(", \"note\": ").append(str(r.note()));
            sb.append('}');
            first = false;
        }
        sb.append("\n  ]\n}\n");
        Files.createDirectories(file.toAbsolutePath().getParent());
        Files.writeString(file, sb.toString());
    }

    static String str(String s) {
        StringBuilder sb = new StringBuilder("\"");
        for (char c : s.toCharArray()) {
            switch (c) {
                case '"' -> sb.append("\\\"");
                case '\\' -> sb.append("\\\\");
                case '\n' -> sb.append("\\n");
                case '\t' -> sb.append("\\t");
                default -> {
                    if (c < 0x20) sb.append(String.format("\\u%04x", (int) c));
                    else sb.append(c);
                }
            }
        }
        return sb.append('"').toString();
    }
}
