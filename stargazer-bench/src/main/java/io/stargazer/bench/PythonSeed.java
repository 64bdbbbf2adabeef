// The original Python module's publish path, run with the Debian python3-redis and python3-msgpack packages.
package io.stargazer.bench;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/** Runs {@code bench/seed_publish.py} with {@code /usr/bin/python3} and reads its JSON line. */
final class PythonSeed {
    static final String PYTHON = "/usr/bin/python3";
    private static final Pattern FIELD = Pattern.compile("\"(count|seconds|payload_bytes)\": ([0-9.eE+-]+)");

    private PythonSeed() {
    }

    /** Why the seed row cannot run here, or null when it can. */
    static String unavailable(Path script) {
        if (!Files.isRegularFile(script)) return script + " not found";
        if (!Files.isExecutable(Path.of(PYTHON))) return PYTHON + " not found";
        try {
            Process p = new ProcessBuilder(PYTHON, "-c", "import redis.asyncio, msgpack").redirectErrorStream(true).start();
            String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).trim();
            return p.waitFor() == 0 ? null : PYTHON + " lacks python3-redis/python3-msgpack: " + out;
        } catch (Exception e) {
            return e.toString();
        }
    }

    /** Publishes per second of the seed's {@code publish_inbound}, one awaited call after the other. */
    static double publish(Ctx ctx, Path script, int count) throws Exception {
        String stream = ctx.key("seed");
        try {
            ProcessBuilder pb = new ProcessBuilder(List.of(PYTHON, script.toString(), ctx.redisUrl.host(),
                    Integer.toString(ctx.redisUrl.port()), stream, "bench-group", Integer.toString(count),
                    Integer.toString(Math.max(200, count / 10)), Long.toString(Ctx.MAXLEN)));
            if (ctx.redisUrl.password() != null) pb.environment().put("BENCH_REDIS_PASSWORD", new String(ctx.redisUrl.password()));
            Process p = pb.redirectErrorStream(true).start();
            String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            if (!p.waitFor(5, TimeUnit.MINUTES) || p.exitValue() != 0) {
                throw new IllegalStateException("seed_publish.py failed: " + out);
            }
            double n = 0;
            double seconds = 0;
            double size = 0;
            Matcher m = FIELD.matcher(out);
            while (m.find()) {
                switch (m.group(1)) {
                    case "count" -> n = Double.parseDouble(m.group(2));
                    case "seconds" -> seconds = Double.parseDouble(m.group(2));
                    default -> size = Double.parseDouble(m.group(2));
                }
            }
            if (size != Envelopes.SIZE) throw new IllegalStateException("seed envelope is " + size + " bytes, not " + Envelopes.SIZE);
            if (seconds <= 0) throw new IllegalStateException("seed_publish.py printed no timing: " + out);
            return n / seconds;
        } finally {
            ctx.reset(stream);
        }
    }
}
