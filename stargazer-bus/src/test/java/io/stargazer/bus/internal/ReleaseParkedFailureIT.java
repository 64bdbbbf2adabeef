// Promise: a publish held while its stream was full is always answered. When room came, the held publishes were taken
// off their queue one by one and handed on; one whose hand-over threw (here a metrics hook; any bug on that path) was
// neither written nor failed, and its caller waited for ever: it had left the queue the timer expires held publishes
// from. Found in review of 25e3fce.
package io.stargazer.bus.internal;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.stargazer.bus.Envelope;
import io.stargazer.bus.PublishOptions;
import io.stargazer.bus.RedisUrl;
import io.stargazer.bus.testing.RawRedis;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

@Timeout(value = 2, unit = TimeUnit.MINUTES)
class ReleaseParkedFailureIT {
    private final List<AutoCloseable> closeables = new ArrayList<>();

    @AfterEach
    void closeAll() throws Exception {
        for (int i = closeables.size() - 1; i >= 0; i--) closeables.get(i).close();
    }

    @Test
    void aHeldPublishWhoseReleaseThrowsIsAnsweredNotLeftWaiting() throws Exception {
        FullStream full = FullStream.start(closeables, Duration.ofSeconds(60), Duration.ofSeconds(60));
        full.impl().addHooks(new BusHooks() {
            @Override
            public void backpressureWaited(String stream, long nanos, boolean gotRoom) {
                if (gotRoom) throw new IllegalStateException("hook failed on release");
            }
        });
        var held = full.impl().publishAsync(full.stream(), Envelope.of("seq", -1), PublishOptions.NONE, full.stream());
        // Room: the group reads and acknowledges everything, and the next re-check (every 50 ms while full) trims.
        try (RawRedis raw = new RawRedis(RedisUrl.parse(full.server().url()))) {
            var read = raw.sync().xreadgroup(io.lettuce.core.Consumer.from(RawRedis.utf8("slow"), RawRedis.utf8("c")),
                    io.lettuce.core.XReadArgs.Builder.count(100_000),
                    io.lettuce.core.XReadArgs.StreamOffset.lastConsumed(RawRedis.utf8(full.stream())));
            raw.sync().xack(RawRedis.utf8(full.stream()), RawRedis.utf8("slow"), read.stream().map(m -> m.getId()).toArray(String[]::new));
        }
        // Well within the publish and backpressure timeouts (60 s): answered because room came, not because time ran out.
        assertThatThrownBy(() -> held.get(20, TimeUnit.SECONDS)).isInstanceOf(ExecutionException.class)
                .hasRootCauseMessage("hook failed on release");
        assertThat(full.guard().isFull(full.stream())).isFalse();
    }
}
