// The consume row's consumer, one JVM per contender: a consumer process, as the row says, whose code only consumes.
package io.stargazer.bench;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStreamWriter;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Locale;
import java.util.concurrent.TimeUnit;

/**
 * One contender's consumer in a JVM of its own (same jar), started once for the consume row and run once a round.
 *
 * <p>Why: in the harness's JVM the consumer ran after the publishing rows, whose code had left shared call sites (the
 * Lettuce outputs, {@code CompletableFuture} stages) compiled for other types; on an Intel machine that cost the bus
 * about 15 % of the row (71.3 % of {@code redis-benchmark -c 50 -P 16} alone, 63.0 % after the publishing rows) and
 * Redisson 6 % (bench/profile-notes.md, stop 55), so the row measured the harness's history as much as the consumer.
 * In a process of its own each contender's consumer is compiled for consuming alone, as in a consumer service.
 *
 * <p>Protocol, one line each over stdin/stdout: the child prints {@code READY}; {@code RUN <n> <cap ms>} consumes a
 * backlog of n (prefilled server-side in the child, outside the clock, as in the harness) and answers
 * {@code RATE <msg/s>} or {@code ERR <why>}; {@code QUIT} (or end of input) exits. {@code BENCH_WORKER_OPTS} is passed
 * to the child JVM, as to the round trip's worker.
 */
final class ConsumerProcess implements AutoCloseable {
    private final String contender;
    private final Process process;
    private final BufferedReader out;
    private final OutputStreamWriter in;

    ConsumerProcess(Ctx ctx, String contender) throws IOException {
        this.contender = contender;
        process = ChildJvm.start(ConsumerProcess.class, ctx.url, contender, Boolean.toString(ctx.quick));
        out = new BufferedReader(new InputStreamReader(process.getInputStream(), StandardCharsets.UTF_8));
        in = new OutputStreamWriter(process.getOutputStream(), StandardCharsets.UTF_8);
        String ready;
        try {
            ready = reply();
        } catch (IOException | RuntimeException e) {
            close();
            throw e;
        }
        if (!"READY".equals(ready)) {
            close();
            throw new IllegalStateException(contender + "'s consumer process said " + ready + ", expected READY");
        }
    }

    /** Consumes a backlog of {@code n} in the child; Spring Data Redis is stopped after {@code cap}. */
    double consume(long n, Duration cap) throws IOException {
        in.write("RUN " + n + " " + cap.toMillis() + "\n");
        in.flush();
        String reply = reply();
        if (reply == null) throw new IllegalStateException(contender + "'s consumer process exited");
        if (!reply.startsWith("RATE ")) throw new IllegalStateException(contender + "'s consumer process: " + reply);
        return Double.parseDouble(reply.substring("RATE ".length()));
    }

    private static final java.util.regex.Pattern PROTOCOL = java.util.regex.Pattern.compile("(READY|RATE|ERR)\\b.*");

    private String reply() throws IOException {
        return ChildJvm.reply(out, PROTOCOL);
    }

    @Override
    public void close() {
        try {
            in.write("QUIT\n");
            in.flush();
        } catch (IOException e) {
            // already gone
        }
        try {
            if (!process.waitFor(30, TimeUnit.SECONDS)) process.destroyForcibly().waitFor(10, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            process.destroyForcibly();
            Thread.currentThread().interrupt();
        }
    }

    /** The child: {@code ConsumerProcess <redis url> <contender> <quick>}. */
    public static void main(String[] args) throws Exception {
        System.setProperty("org.slf4j.simpleLogger.defaultLogLevel", "warn");
        String contender = args[1];
        try (Ctx ctx = new Ctx(args[0], false, Boolean.parseBoolean(args[2]));
             BufferedReader commands = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8))) {
            System.out.println("READY");
            System.out.flush();
            String line;
            while ((line = commands.readLine()) != null) {
                String[] cmd = line.trim().split(" ");
                if (cmd[0].equals("QUIT")) return;
                if (!cmd[0].equals("RUN")) {
                    System.out.println("ERR unknown command " + cmd[0]);
                } else {
                    long n = Long.parseLong(cmd[1]);
                    Duration cap = Duration.ofMillis(Long.parseLong(cmd[2]));
                    try {
                        double rate = switch (contender) {
                            case Result.STARGAZER -> StargazerRows.consumeBacklog(ctx, n);
                            case Result.SPRING -> SpringPeer.consumeBacklog(ctx, n, cap);
                            case Result.REDISSON -> RedissonPeer.consumeBacklog(ctx, n);
                            default -> throw new IllegalArgumentException("no consumer for " + contender);
                        };
                        System.out.println(String.format(Locale.ROOT, "RATE %.3f", rate));
                    } catch (Exception e) {
                        e.printStackTrace(); // to the harness's standard error; the line below only names it
                        System.out.println("ERR " + String.valueOf(e).replace('\n', ' '));
                    }
                }
                System.out.flush();
            }
        }
    }
}
