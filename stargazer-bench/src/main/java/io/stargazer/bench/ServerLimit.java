// The server's own limit: redis-benchmark running XADD with the benchmark's fields and sizes.
package io.stargazer.bench;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Runs {@code redis-benchmark ... XADD key MAXLEN ~ 1000000 * payload <200 bytes> trace_id <32 chars>} at a
 * given client count and pipeline depth, and reads its requests per second.
 */
final class ServerLimit {
    private static final Pattern RPS = Pattern.compile("([0-9]+(?:\\.[0-9]+)?) requests per second");

    private ServerLimit() {
    }

    static String binary() {
        return System.getenv().getOrDefault("REDIS_BENCHMARK", "redis-benchmark");
    }

    static boolean available() {
        try {
            Process p = new ProcessBuilder(binary(), "--version").redirectErrorStream(true).start();
            p.getInputStream().readAllBytes();
            return p.waitFor() == 0;
        } catch (Exception e) {
            return false;
        }
    }

    /** The command line, with the payload shortened, for the report. */
    static String describe(int clients, int pipeline, long n) {
        return binary() + " -h HOST -p PORT -n " + n + " -c " + clients + " -P " + pipeline
                + " -q XADD KEY MAXLEN ~ " + Ctx.MAXLEN + " '*' payload <200 bytes> trace_id <32 chars>";
    }

    static double run(Ctx ctx, String key, int clients, int pipeline, long n) throws Exception {
        List<String> cmd = new ArrayList<>(List.of(binary(), "-h", ctx.redisUrl.host(), "-p", Integer.toString(ctx.redisUrl.port()),
                "-n", Long.toString(n), "-c", Integer.toString(clients), "-P", Integer.toString(pipeline), "-q"));
        char[] password = ctx.redisUrl.password();
        if (password != null) {
            if (ctx.redisUrl.user() != null) cmd.addAll(List.of("--user", ctx.redisUrl.user()));
            cmd.addAll(List.of("-a", new String(password)));
        }
        if (ctx.redisUrl.database() != 0) cmd.addAll(List.of("--dbnum", Integer.toString(ctx.redisUrl.database())));
        cmd.addAll(List.of("XADD", key, "MAXLEN", "~", Long.toString(Ctx.MAXLEN), "*",
                "payload", Envelopes.printablePayload(), "trace_id", Envelopes.TRACE_ID));
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        StringBuilder out = new StringBuilder();
        try (BufferedReader r = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8))) {
            String line;
            while ((line = r.readLine()) != null) out.append(line).append('\n');
        }
        int rc = p.waitFor();
        Matcher m = RPS.matcher(out);
        double last = -1;
        while (m.find()) last = Double.parseDouble(m.group(1));
        if (rc != 0 || last < 0) {
            throw new IllegalStateException("redis-benchmark failed (exit " + rc + "): " + tail(out.toString()));
        }
        return last;
    }

    private static String tail(String s) {
        return s.length() > 500 ? s.substring(s.length() - 500) : s;
    }
}
