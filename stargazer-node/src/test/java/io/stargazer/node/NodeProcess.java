// Test helper: runs `io.stargazer.node.Main <args>` as a separate JVM and watches its log.
package io.stargazer.node;

import static org.awaitility.Awaitility.await;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

final class NodeProcess implements AutoCloseable {
    private static final Pattern OPEN = Pattern.compile("(?:Open|Dashboard at) http://127\\.0\\.0\\.1:(\\d+)/");

    private final String name;
    private final Process process;
    private final List<String> lines = new CopyOnWriteArrayList<>();
    private volatile boolean drained;

    private NodeProcess(String name, Process process) {
        this.name = name;
        this.process = process;
        Thread t = new Thread(() -> {
            try (BufferedReader r = new BufferedReader(new InputStreamReader(process.getInputStream(), StandardCharsets.UTF_8))) {
                for (String line; (line = r.readLine()) != null; ) {
                    lines.add(line);
                }
            } catch (IOException e) {
                lines.add("(log reader: " + e + ")");
            }
            drained = true;
        }, "log-" + name);
        t.setDaemon(true);
        t.start();
    }

    /** Starts {@code java -cp <test classpath> io.stargazer.node.Main args} with {@code env} added to this JVM's. */
    static NodeProcess start(String name, Map<String, String> env, String... args) {
        List<String> cmd = new ArrayList<>();
        cmd.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
        cmd.add("-Xmx256m");
        cmd.add("-cp");
        cmd.add(System.getProperty("java.class.path"));
        cmd.add("io.stargazer.node.Main");
        cmd.addAll(List.of(args));
        ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true);
        pb.environment().remove("REDIS_URL");
        pb.environment().putAll(env);
        try {
            return new NodeProcess(name, pb.start());
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** {@link #start(String, Map, String...)}, added to {@code procs} (which the caller closes). */
    static NodeProcess start(List<NodeProcess> procs, String name, Map<String, String> env, String... args) {
        NodeProcess p = start(name, env, args);
        procs.add(p);
        return p;
    }

    /**
     * How long a child node may take to start. A CI run at load 17 (the machine's two cores shared with four other
     * Maven runs) failed three starts at 40 s: each child's first log line came 39 s after it was launched (the JVM
     * itself starting), and the rest followed within a second or two.
     */
    private static final Duration START = Duration.ofSeconds(90);

    /** Waits for the "Node running" log line; fails with the log when the process dies first. */
    NodeProcess awaitRunning() {
        return awaitLine("Node running");
    }

    /** Waits for a log line containing {@code text}; fails with the log when the process dies first. */
    NodeProcess awaitLine(String text) {
        try {
            await().atMost(START).pollInterval(Duration.ofMillis(10)).until(() -> {
                if (lines.stream().anyMatch(l -> l.contains(text))) return true;
                if (!process.isAlive()) {
                    throw new AssertionError(name + " exited with " + process.exitValue() + " before logging '" + text + "':\n" + log());
                }
                return false;
            });
        } catch (org.awaitility.core.ConditionTimeoutException e) {
            // Say where the child got to: the timeout alone does not tell a slow start from a stuck one.
            throw new AssertionError(name + " did not log '" + text + "' within " + START.toSeconds() + " s; its log so far:\n" + log(), e);
        }
        return this;
    }

    /** Sends SIGTERM and returns at once (see {@link #stop} to wait for the exit). */
    void sigterm() {
        process.toHandle().destroy();
    }

    int httpPort() {
        for (String l : lines) {
            Matcher m = OPEN.matcher(l);
            if (m.find()) return Integer.parseInt(m.group(1));
        }
        throw new AssertionError(name + " printed no address:\n" + log());
    }

    String log() {
        return String.join("\n", lines);
    }

    List<String> lines() {
        return lines;
    }

    Process process() {
        return process;
    }

    /** SIGTERM, then waits for the graceful exit (the log stays readable: Process.destroy would close it). */
    int stop() throws InterruptedException {
        process.toHandle().destroy();
        if (!process.waitFor(30, TimeUnit.SECONDS)) {
            process.destroyForcibly();
            throw new AssertionError(name + " did not stop within 30 s after SIGTERM:\n" + log());
        }
        await().atMost(Duration.ofSeconds(5)).until(() -> drained);
        return process.exitValue();
    }

    /** Waits for a command that ends by itself, and for its whole log; its exit code. */
    int awaitExit() throws InterruptedException {
        if (!process.waitFor(60, TimeUnit.SECONDS)) {
            throw new AssertionError(name + " did not end within 60 s:\n" + log());
        }
        await().atMost(Duration.ofSeconds(5)).until(() -> drained);
        return process.exitValue();
    }

    /** Kills the process if it is still running, and keeps its log in target/node-logs for a look after the test. */
    @Override
    public void close() {
        if (process.isAlive()) {
            process.destroyForcibly();
        }
        try {
            Path dir = Path.of("target", "node-logs");
            java.nio.file.Files.createDirectories(dir);
            java.nio.file.Files.writeString(dir.resolve(name + ".log"), log() + "\n");
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
