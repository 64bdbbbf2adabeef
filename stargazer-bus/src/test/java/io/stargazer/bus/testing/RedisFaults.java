package io.stargazer.bus.testing;

import io.stargazer.bus.RedisUrl;
import io.stargazer.embedded.RedisServerProcess;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * Faults of the server itself, for tests that must meet them as an operator would: a Redis that refuses writes
 * (out of memory) and a Redis that stops answering (the process paused). Each returns an {@link AutoCloseable}
 * that undoes it, so a failing test never leaves a broken server behind. For a Redis that comes back empty, use
 * {@link RedisServerProcess#kill()} and {@link RedisServerProcess#restart()} on a server started without the
 * append-only file (and with {@code save ""}, the launcher's default): it restarts with no data.
 */
public final class RedisFaults {
    private RedisFaults() {
    }

    /** Undoes a fault; idempotent. */
    public interface Fault extends AutoCloseable {
        @Override
        void close();
    }

    /**
     * Makes the server refuse every write that may use memory (XADD, XGROUP CREATE, ...: "OOM command not allowed"):
     * {@code maxmemory} below what it uses now, with {@code maxmemory-policy noeviction} so nothing is evicted.
     * XACK, XCLAIM, XREADGROUP and reads still work when sent as commands or from a script without a shebang (EVAL,
     * scripts mode); a function (FCALL) is refused as a whole unless it carries {@code allow-oom} or {@code no-writes},
     * whatever it calls, so a test of OOM with the library needs a provisioned server (SuitePromises.ownServerAsDeployed).
     * Unlike a full production server, it stays refused until closed: {@code maxmemory} is 1 byte, so no trim or
     * deletion brings the server back under it (fill the server for real to test that). Closing restores both settings.
     */
    public static Fault refuseWrites(RedisUrl url) {
        RawRedis raw = new RawRedis(url);
        try {
            // One parameter per CONFIG GET/SET: Redis 6.2 takes no more.
            String maxmemory = raw.sync().configGet("maxmemory").getOrDefault("maxmemory", "0");
            String policy = raw.sync().configGet("maxmemory-policy").getOrDefault("maxmemory-policy", "noeviction");
            raw.sync().configSet("maxmemory-policy", "noeviction");
            raw.sync().configSet("maxmemory", "1");
            return once(() -> {
                try {
                    raw.sync().configSet("maxmemory", maxmemory);
                    raw.sync().configSet("maxmemory-policy", policy);
                } finally {
                    raw.close();
                }
            });
        } catch (RuntimeException e) {
            raw.close();
            throw e;
        }
    }

    /**
     * Stops the server process with SIGSTOP: its sockets stay open and accept, but nothing is answered until
     * closing sends SIGCONT. A paused VM, a stalled disk, a fork that took too long.
     */
    public static Fault pause(RedisServerProcess server) {
        return pause(server.pid());
    }

    /** Stops process {@code pid} with SIGSTOP until closing sends SIGCONT: a worker's GC pause or frozen VM, too. */
    public static Fault pause(long pid) {
        signal("STOP", pid);
        return once(() -> signal("CONT", pid));
    }

    /** A fault undone by {@code undo}, which runs on the first close only. */
    private static Fault once(Runnable undo) {
        AtomicBoolean undone = new AtomicBoolean();
        return () -> {
            if (undone.compareAndSet(false, true)) undo.run();
        };
    }

    private static void signal(String signal, long pid) {
        try {
            Process p = new ProcessBuilder("kill", "-" + signal, Long.toString(pid)).redirectErrorStream(true).start();
            String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            if (!p.waitFor(10, TimeUnit.SECONDS) || p.exitValue() != 0) {
                throw new IllegalStateException("kill -" + signal + " " + pid + " failed: " + out.trim());
            }
        } catch (IOException e) {
            throw new UncheckedIOException("cannot run kill -" + signal, e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted sending SIG" + signal + " to " + pid, e);
        }
    }
}
