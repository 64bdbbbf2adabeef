package io.stargazer.bus.tools;

import java.time.Clock;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * Tools for the tests of the tools path, each with a result type or an error the tests check: {@code add} and
 * {@code mul} of two whole numbers {@code a} and {@code b} (a Long), {@code div} (a Double; {@code b} 0 is
 * {@code bad_arguments} "division by zero"), {@code now} (the clock's instant as ISO-8601 text). A missing or
 * non-integer argument is {@code bad_arguments}, thrown by the tool (not by an {@link ArgumentCheck}).
 */
public final class TestTools {
    private TestTools() {
    }

    public static ToolRegistry.Builder register(ToolRegistry.Builder b) {
        return register(b, Clock.systemUTC());
    }

    public static ToolRegistry.Builder register(ToolRegistry.Builder b, Clock clock) {
        return b.register("add", args -> whole(args, "a") + whole(args, "b"))
                .register("mul", args -> whole(args, "a") * whole(args, "b"))
                .register("div", args -> {
                    long divisor = whole(args, "b");
                    if (divisor == 0) throw new IllegalArgumentException("division by zero");
                    return (double) whole(args, "a") / divisor;
                })
                .register("now", args -> clock.instant().toString());
    }

    /** A tool "count" that answers which run of it this is ("run 1", ...); the first run waits for {@code release}. */
    public static ToolRegistry firstRunWaits(AtomicInteger runs, CountDownLatch release) {
        return ToolRegistry.builder().register("count", a -> {
            int n = runs.incrementAndGet();
            if (n == 1) release.await(60, TimeUnit.SECONDS);
            return "run " + n;
        }).build();
    }

    /**
     * A tool deaf to interrupts (as close() sends them): counts {@code running} down, then runs on until {@code release}
     * is counted down, and returns {@code result}.
     */
    public static ToolFunction deafToInterrupts(CountDownLatch running, CountDownLatch release, String result) {
        return args -> {
            running.countDown();
            while (true) {
                try {
                    if (release.await(100, TimeUnit.MILLISECONDS)) return result;
                } catch (InterruptedException e) {
                    // keeps running
                }
            }
        };
    }

    private static long whole(Map<String, Object> args, String name) {
        if (!(args.get(name) instanceof Long v)) {
            throw new IllegalArgumentException("'" + name + "' must be a whole number");
        }
        return v;
    }
}
