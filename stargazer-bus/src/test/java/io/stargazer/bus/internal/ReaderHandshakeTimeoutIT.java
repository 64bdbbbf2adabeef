package io.stargazer.bus.internal;

import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.lettuce.core.RedisCommandTimeoutException;
import io.stargazer.bus.BusConnectionException;
import io.stargazer.bus.testing.TcpProxy;
import io.stargazer.bus.testing.TestRedis;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * A reader's new connection whose flow goes silent during the handshake gives up after the dead-peer timeout, like
 * its other non-blocking commands. Lettuce bounds the handshake by the address's timeout, not by TimeoutOptions: with
 * the command timeout (10 s) there, a tools client whose reader was still opening its connection as the flow froze
 * stayed deaf 10 s, and its call timed out with the reply unread (ReaderTimeoutIT's tools case, in CI and 6 of 25
 * runs under CPU load: every sample of the reader's thread was in RedisClient.connect).
 */
@Timeout(value = 2, unit = TimeUnit.MINUTES)
class ReaderHandshakeTimeoutIT {
    @Test
    void aReaderConnectionWhoseHandshakeGetsNoAnswerFailsAfterTheDeadPeerTimeout() {
        try (TcpProxy link = TcpProxy.to(TestRedis.url());
             Redis redis = Redis.connect(link.url(), "handshake", Duration.ofSeconds(1), null)) {
            link.freezeAll(); // new connections are accepted, then carry nothing: the handshake is never answered
            assertThatThrownBy(redis::dedicated).isInstanceOf(BusConnectionException.class)
                    .hasRootCauseInstanceOf(RedisCommandTimeoutException.class)
                    .hasMessageContaining("timed out after 1 second(s)");
        }
    }
}
