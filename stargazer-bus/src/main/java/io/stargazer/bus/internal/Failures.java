package io.stargazer.bus.internal;

import io.lettuce.core.RedisCommandExecutionException;
import io.lettuce.core.RedisCommandTimeoutException;
import io.lettuce.core.RedisConnectionException;
import io.stargazer.bus.BackpressureException;
import io.stargazer.bus.BusConnectionException;
import io.stargazer.bus.PublishQueueFullException;
import io.stargazer.bus.RedisServerException;
import java.time.Duration;
import java.util.Set;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ExecutionException;

/**
 * What a handler's failure means, and how long to wait before trying again.
 *
 * <p>An infrastructure failure (Redis unreachable or not answering, out of memory, read-only after a failover,
 * loading its data set, busy with a script, a cluster without a quorum) says nothing about the entry: the same
 * handler will succeed once the server is back. Such failures do not use up the entry's deliveries and never
 * dead-letter it; anything else is the handler's own failure and counts.
 */
final class Failures {
    /**
     * Server error codes that mean "the server cannot serve now", not "this entry is bad". MOVED and ASK reach the bus
     * only when Lettuce's redirects ran out (its {@code maxRedirects}, 5 by default, which the bus keeps): during a
     * slot migration whose nodes do not yet agree on the slot's owner, each sending the command to the other. The
     * command ran nowhere, and the same one succeeds once they agree.
     */
    static final Set<String> TRANSIENT_CODES = Set.of("OOM", "READONLY", "LOADING", "BUSY", "MASTERDOWN", "CLUSTERDOWN",
            "TRYAGAIN", "NOREPLICAS", "MOVED", "ASK");
    /** Cluster replies that say a command ran nowhere and goes to (another) node later: see {@link #TRANSIENT_CODES}. */
    static final Set<String> REDIRECT_CODES = Set.of("MOVED", "ASK", "TRYAGAIN");
    /** Cap of the backoff between tries after an infrastructure failure: the server may be back any moment. */
    static final Duration MAX_INFRASTRUCTURE_BACKOFF = Duration.ofSeconds(2);

    private Failures() {
    }

    /** The exception itself, without the wrappers futures put around it. */
    static Throwable unwrap(Throwable t) {
        Throwable e = t;
        while ((e instanceof CompletionException || e instanceof ExecutionException) && e.getCause() != null) {
            e = e.getCause();
        }
        return e;
    }

    /** True when {@code t} or one of its causes is a failure of Redis or of the way to it, or backpressure (see the class comment). */
    static boolean isInfrastructure(Throwable t) {
        for (Throwable e = t; e != null; e = e.getCause() == e ? null : e.getCause()) {
            if (e instanceof BusConnectionException || e instanceof RedisConnectionException
                    || e instanceof RedisCommandTimeoutException || e instanceof Relaying.TargetFull
                    || e instanceof BackpressureException || e instanceof PublishQueueFullException) {
                return true;
            }
            if (e instanceof RedisServerException rse && TRANSIENT_CODES.contains(rse.code())) {
                return true;
            }
            if (e instanceof RedisCommandExecutionException rce && TRANSIENT_CODES.contains(RedisServerException.codeOf(rce.getMessage()))) {
                return true;
            }
            // The library's function gone from the server (an empty restart, FUNCTION FLUSH): nothing ran, the bus runs
            // scripts from its next call (ServerCode), and the entry is not at fault. Before, an answer refused so counted
            // as a delivery, and with one delivery allowed a healthy entry was dead-lettered (helper-86). Only the bus's
            // own calls count here (their failures reach a handler as RedisServerException, Redis.translate): a
            // handler's own FCALL of a function its application never loaded fails with Lettuce's exception and is
            // the handler's failure, counted, or it would be retried for ever and hold its channel.
            if (e instanceof RedisServerException && String.valueOf(e.getMessage()).contains("Function not found")) {
                return true;
            }
        }
        return false;
    }

    /** True when {@code error} is a cluster's redirect the client could not follow ({@link #REDIRECT_CODES}): nothing ran. */
    static boolean isRedirect(Throwable error) {
        Throwable e = unwrap(error);
        String code = e instanceof RedisServerException rse ? rse.code()
                : e instanceof RedisCommandExecutionException ? RedisServerException.codeOf(e.getMessage()) : "";
        return REDIRECT_CODES.contains(code);
    }

    /** The {@link io.stargazer.bus.NotRetryableException} in {@code t}'s cause chain, or null. */
    static Throwable notRetryable(Throwable t) {
        for (Throwable e = t; e != null; e = e.getCause() == e ? null : e.getCause()) {
            if (e instanceof io.stargazer.bus.NotRetryableException) return e;
        }
        return null;
    }

    /** Delay before try {@code attempt + 1}: {@code base}, doubling per attempt, at most {@code max}. */
    static long backoffMillis(Duration base, Duration max, long attempt) {
        long shift = Math.max(0, Math.min(30, attempt - 1));
        long b = base.toMillis();
        long grown = b > (Long.MAX_VALUE >> shift) ? Long.MAX_VALUE : b << shift;
        return Math.min(max.toMillis(), grown);
    }

    /** A one-line description of a failure for logs and dead letters: its type and message, causes unwrapped. */
    static String describe(Throwable t) {
        if (t == null) {
            return "nacked";
        }
        Throwable e = unwrap(t);
        String m = e.getMessage();
        return m == null || m.isEmpty() ? e.getClass().getName() : e.getClass().getSimpleName() + ": " + m;
    }
}
