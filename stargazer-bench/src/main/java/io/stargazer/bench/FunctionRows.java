// Publishing through the stargazer functions library (FCALL) beside today's scripts (EVAL), in one run (issue 18).
package io.stargazer.bench;

import io.stargazer.bus.BusConfig;
import io.stargazer.bus.EventBus;
import io.stargazer.bus.PublishOptions;
import io.stargazer.bus.Provisioning;
import io.stargazer.bus.ServerCodeMode;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;

/**
 * Asynchronous publishing (coalesced batches) with {@code SG_SERVER_CODE=scripts} and {@code =functions}, plain and
 * with a dedupe key on every publish, alternated A B A B A B so that drift on a shared machine falls on both alike.
 * Loads the library before (provisioning, on the harness's server) and removes it after, so later rows keep scripts.
 */
final class FunctionRows {
    static final int ROUNDS = 3;

    private FunctionRows() {
    }

    /** One comparison: medians, minima and maxima of each side over the rounds. */
    record Pair(String what, double[] scripts, double[] functions) {
        double ratio() {
            return median(functions) / median(scripts);
        }

        String note() {
            return String.format(Locale.ROOT, "%s: scripts %s (min %s, max %s), functions %s (min %s, max %s) msg/s: %.2fx (target >= 0.9x): %s.",
                    what, Report.num(median(scripts), "msg/s"), Report.num(min(scripts), "msg/s"), Report.num(max(scripts), "msg/s"),
                    Report.num(median(functions), "msg/s"), Report.num(min(functions), "msg/s"), Report.num(max(functions), "msg/s"),
                    ratio(), ratio() >= 0.9 ? "PASS" : "MISS");
        }
    }

    static List<Pair> compare(Ctx ctx, int window) throws Exception {
        Provisioning.provision(ctx.redisUrl, BusConfig.builder().build());
        try {
            Pair plain = new Pair("asynchronous publishing, plain", new double[ROUNDS], new double[ROUNDS]);
            Pair dedupe = new Pair("asynchronous publishing, a dedupe key on every publish", new double[ROUNDS], new double[ROUNDS]);
            for (int r = 0; r < ROUNDS; r++) {
                plain.scripts[r] = publish(ctx, ServerCodeMode.SCRIPTS, window, false);
                plain.functions[r] = publish(ctx, ServerCodeMode.FUNCTIONS, window, false);
                dedupe.scripts[r] = publish(ctx, ServerCodeMode.SCRIPTS, window, true);
                dedupe.functions[r] = publish(ctx, ServerCodeMode.FUNCTIONS, window, true);
                System.out.printf(Locale.ROOT, "    round %d: plain scripts %s functions %s; dedupe scripts %s functions %s msg/s%n", r + 1,
                        Report.num(plain.scripts[r], "msg/s"), Report.num(plain.functions[r], "msg/s"),
                        Report.num(dedupe.scripts[r], "msg/s"), Report.num(dedupe.functions[r], "msg/s"));
            }
            return List.of(plain, dedupe);
        } finally {
            ctx.sync().functionFlush(io.lettuce.core.FlushMode.SYNC);
        }
    }

    private static double publish(Ctx ctx, ServerCodeMode mode, int window, boolean dedupe) throws Exception {
        String who = "fn-" + mode.name().toLowerCase(Locale.ROOT);
        String stream = ctx.key(who);
        String run = Long.toHexString(System.nanoTime());
        try (EventBus bus = ctx.bus(who, BusConfig.builder().serverCode(mode))) {
            if (bus.serverCode() != mode) throw new IllegalStateException("asked for " + mode + ", the bus runs " + bus.serverCode());
            return Throughput.async(window, ctx.warm, ctx.measure, i -> dedupe
                    ? bus.publishAsync(stream, Envelopes.envelope(i), PublishOptions.dedupeKey("bench:" + run + ":" + i))
                    : bus.publishAsync(stream, Envelopes.envelope(i)));
        } finally {
            ctx.reset(stream);
        }
    }

    static double median(double[] v) {
        double[] s = v.clone();
        Arrays.sort(s);
        return s[s.length / 2];
    }

    static double min(double[] v) {
        return Arrays.stream(v).min().orElse(0);
    }

    static double max(double[] v) {
        return Arrays.stream(v).max().orElse(0);
    }
}
