// The benchmark's child JVMs (the round trip's worker, the consume row's consumers): started and spoken to one way.
package io.stargazer.bench;

import java.io.BufferedReader;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Pattern;

/**
 * A child JVM on this jar, with {@code BENCH_WORKER_OPTS} as its options (e.g. a flight recorder's flags), its standard
 * error passed through, and a line protocol on its standard input and output.
 */
final class ChildJvm {
    private ChildJvm() {
    }

    static Process start(Class<?> main, String... args) throws IOException {
        List<String> cmd = new ArrayList<>(List.of(ProcessHandle.current().info().command().orElse("java"), "-cp", jarPath()));
        String opts = System.getenv("BENCH_WORKER_OPTS");
        if (opts != null && !opts.isBlank()) cmd.addAll(List.of(opts.trim().split("\\s+")));
        cmd.add(main.getName());
        cmd.addAll(List.of(args));
        return new ProcessBuilder(cmd).redirectError(ProcessBuilder.Redirect.INHERIT).start();
    }

    /** The child's next line that {@code protocol} matches; other lines (the JVM's own) are skipped. Null at its end. */
    static String reply(BufferedReader out, Pattern protocol) throws IOException {
        String l;
        while ((l = out.readLine()) != null) {
            if (protocol.matcher(l).matches()) return l;
        }
        return null;
    }

    private static String jarPath() {
        try {
            return Path.of(ChildJvm.class.getProtectionDomain().getCodeSource().getLocation().toURI()).toString();
        } catch (Exception e) {
            return System.getProperty("java.class.path");
        }
    }
}
