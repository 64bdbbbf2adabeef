package io.stargazer.bus.internal;

import static org.assertj.core.api.Assertions.assertThat;

import io.lettuce.core.RedisCommandExecutionException;
import io.lettuce.core.RedisCommandTimeoutException;
import io.stargazer.bus.BackpressureException;
import io.stargazer.bus.BusConnectionException;
import io.stargazer.bus.PublishQueueFullException;
import io.stargazer.bus.RedisServerException;
import java.time.Duration;
import java.util.concurrent.CompletionException;
import org.junit.jupiter.api.Test;

/** Which failures are Redis's own (not counted against an entry), and the retry schedule. */
class FailuresTest {
    @Test
    void redisOutagesAreInfrastructureWhereverTheyAreInTheCauseChain() {
        assertThat(Failures.isInfrastructure(new BusConnectionException("lost", null))).isTrue();
        assertThat(Failures.isInfrastructure(new IllegalStateException("answer failed",
                RedisServerException.of("OOM command not allowed when used memory > 'maxmemory'.", "XADD", null)))).isTrue();
        assertThat(Failures.isInfrastructure(new CompletionException(RedisServerException.of("READONLY You can't write", "", null)))).isTrue();
        assertThat(Failures.isInfrastructure(new RuntimeException(new RedisCommandExecutionException("LOADING Redis is loading")))).isTrue();
        assertThat(Failures.isInfrastructure(new RedisCommandTimeoutException("timeout"))).isTrue();
        // The library gone with an empty restart: the server's state, not the entry's fault.
        assertThat(Failures.isInfrastructure(new CompletionException(RedisServerException.of("ERR Function not found", "FCALL", null)))).isTrue();
        // A handler's own FCALL of a function its application never loaded (Lettuce's exception, not the bus's): the
        // handler's failure, counted like any other, or it would be retried for ever.
        assertThat(Failures.isInfrastructure(new RedisCommandExecutionException("ERR Function not found"))).isFalse();
        assertThat(Failures.isInfrastructure(new IllegalStateException("Function not found, said the handler"))).isFalse();
    }

    @Test
    void backpressureFromAnotherStreamIsNotTheEntrysFailure() {
        assertThat(Failures.isInfrastructure(new IllegalStateException("answer failed",
                new BackpressureException("out", 1000, 1000, "gateway", "held 300 ms")))).isTrue();
        assertThat(Failures.isInfrastructure(new CompletionException(new PublishQueueFullException("out", 10)))).isTrue();
    }

    @Test
    void aHandlersOwnFailureOrAnotherServerErrorIsNot() {
        assertThat(Failures.isInfrastructure(new IllegalStateException("model said no"))).isFalse();
        assertThat(Failures.isInfrastructure(RedisServerException.of("WRONGTYPE Operation against a key", "", null))).isFalse();
        assertThat(Failures.isInfrastructure(RedisServerException.of("NOPERM this user has no permissions", "", null))).isFalse();
        assertThat(Failures.isInfrastructure(null)).isFalse();
    }

    @Test
    void backoffDoublesFromTheBaseUpToTheMax() {
        Duration base = Duration.ofMillis(100);
        Duration max = Duration.ofSeconds(1);
        assertThat(Failures.backoffMillis(base, max, 1)).isEqualTo(100);
        assertThat(Failures.backoffMillis(base, max, 2)).isEqualTo(200);
        assertThat(Failures.backoffMillis(base, max, 4)).isEqualTo(800);
        assertThat(Failures.backoffMillis(base, max, 5)).isEqualTo(1000);
        assertThat(Failures.backoffMillis(base, max, 500)).isEqualTo(1000);
        assertThat(Failures.backoffMillis(Duration.ofDays(10000), Duration.ofDays(20000), 60)).isEqualTo(Duration.ofDays(20000).toMillis());
    }

    @Test
    void describeNamesTheRealCause() {
        assertThat(Failures.describe(new CompletionException(new IllegalStateException("model said no"))))
                .isEqualTo("IllegalStateException: model said no");
        assertThat(Failures.describe(null)).isEqualTo("nacked");
    }
}
