// The backpressure-wait timer names a held publish's destination as the publish meters do: a tools reply on a reply_to
// the request chose (outside the reply prefix) is {reply_to}, not one series per name a caller chose. Before, the
// guard reported the stream's own name.
package io.stargazer.bus.internal;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.stargazer.bus.BackpressureException;
import io.stargazer.bus.Envelope;
import io.stargazer.bus.PublishOptions;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

@Timeout(value = 2, unit = TimeUnit.MINUTES)
class BackpressureDestinationIT {
    private final List<AutoCloseable> closeables = new ArrayList<>();

    @AfterEach
    void closeAll() throws Exception {
        for (int i = closeables.size() - 1; i >= 0; i--) closeables.get(i).close();
    }

    @Test
    void aHeldPublishIsTimedUnderItsMeteredDestination() throws Exception {
        FullStream full = FullStream.start(closeables, Duration.ofSeconds(30), Duration.ofMillis(300));
        List<String> waited = new CopyOnWriteArrayList<>();
        full.impl().addHooks(new BusHooks() {
            @Override
            public void backpressureWaited(String stream, long nanos, boolean gotRoom) {
                waited.add(stream + (gotRoom ? " room" : " timeout"));
            }
        });
        var held = full.impl().publishAsync(full.stream(), Envelope.of("seq", -1), PublishOptions.NONE,
                RedisToolService.OTHER_REPLY_DESTINATION);
        assertThatThrownBy(() -> held.get(30, TimeUnit.SECONDS)).hasCauseInstanceOf(BackpressureException.class);
        assertThat(waited).containsExactly(RedisToolService.OTHER_REPLY_DESTINATION + " timeout");
    }
}
