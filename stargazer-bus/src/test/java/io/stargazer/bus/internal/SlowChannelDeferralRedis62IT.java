package io.stargazer.bus.internal;

import io.stargazer.bus.RedisUrl;
import io.stargazer.embedded.RedisServerProcess;
import io.stargazer.testing.TestServers;
import org.junit.jupiter.api.AfterAll;

// SlowChannelDeferralIT on Redis 6.2, the oldest server supported: the read-back's XREADGROUP of the consumer's own
// pending list and the XCLAIM ... RETRYCOUNT that puts its count back, and the takeover of deferred entries after close.
class SlowChannelDeferralRedis62IT extends SlowChannelDeferralIT {
    /** Started by the first test that asks for its address, stopped after the last. */
    private static RedisServerProcess server;

    @Override
    protected RedisUrl url() {
        synchronized (SlowChannelDeferralRedis62IT.class) {
            if (server == null) server = TestServers.redis62().start();
            return RedisUrl.parse(server.url());
        }
    }

    @AfterAll
    static void stopServer() {
        if (server != null) server.stop();
    }
}
