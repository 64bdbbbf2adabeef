// Runs the contenders of one comparison in turn, A B C A B C ..., so drift in the machine's load hits them all alike.
package io.stargazer.bench;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.function.Consumer;

/**
 * An alternated comparison: every round runs each contender once, in the order given, and the figures are kept per
 * contender. On a shared 2-core machine the load moves by tens of percent within a minute; running A's rounds and
 * then B's would hand that drift to one of them, while alternating spreads it over all. The machine's load average
 * is read before the first round and after the last.
 */
final class Alternate {
    /** One measurement of a contender; returns the figure (e.g. msg/s). */
    interface Measure {
        double run() throws Exception;
    }

    /** What a comparison gave: each contender's sample, and the load average before and after. */
    record Outcome(Map<String, Sample> samples, String loadBefore, String loadAfter) {
        Sample get(String contender) {
            return samples.get(contender);
        }

        String load() {
            return "load " + loadBefore + " → " + loadAfter;
        }
    }

    private final Map<String, Measure> contenders = new LinkedHashMap<>();
    private final Map<String, String> units = new LinkedHashMap<>();

    /** Adds a contender; its figures are printed as they come, in {@code unit}. */
    Alternate add(String name, String unit, Measure m) {
        contenders.put(name, m);
        units.put(name, unit);
        return this;
    }

    Outcome run(String what, int rounds, Consumer<String> progress) throws Exception {
        return run(what, 0, rounds, progress);
    }

    /**
     * The same after {@code warmUps} alternated rounds that are printed but not counted: for a row whose single
     * measurement is short next to the time the JIT takes to compile the code it runs (see the consume row).
     */
    Outcome run(String what, int warmUps, int rounds, Consumer<String> progress) throws Exception {
        String before = BenchMain.loadAverage();
        Map<String, List<Double>> got = new LinkedHashMap<>();
        for (String c : contenders.keySet()) got.put(c, new ArrayList<>());
        for (int round = 1 - warmUps; round <= rounds; round++) {
            StringBuilder line = new StringBuilder(round < 1
                    ? String.format(Locale.ROOT, "    %s, warm-up %d/%d (not counted):", what, round + warmUps, warmUps)
                    : String.format(Locale.ROOT, "    %s, round %d/%d:", what, round, rounds));
            for (Map.Entry<String, Measure> c : contenders.entrySet()) {
                double v = c.getValue().run();
                if (round >= 1) got.get(c.getKey()).add(v);
                line.append(' ').append(c.getKey()).append(' ').append(Report.num(v, units.get(c.getKey()))).append(';');
            }
            progress.accept(line.toString());
        }
        Map<String, Sample> samples = new LinkedHashMap<>();
        got.forEach((c, v) -> samples.put(c, Sample.of(v.stream().mapToDouble(Double::doubleValue).toArray())));
        return new Outcome(samples, before, BenchMain.loadAverage());
    }
}
