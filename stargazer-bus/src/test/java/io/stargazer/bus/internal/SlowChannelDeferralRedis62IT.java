package io.stargazer.bus.internal;

import io.stargazer.bus.RedisUrl;
import io.stargazer.embedded.RedisServerProcess;
import io.stargazer.testing.TestServers;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;

// SlowChannelDeferralIT on Redis 6.2, the oldest server supported: the read-back's XREADGROUP of the consumer's own
// pending list and the XCLAIM ... RETRYCOUNT that puts its count back, and the takeover of deferred entries after close.
class SlowChannelDeferralRedis62IT extends SlowChannelDeferralIT {
    private static RedisServerProcess server;

    @BeforeAll
    static void start() {
        server = TestServers.redis62().start();
    }

    @AfterAll
    static void stop() {
        server.stop();
    }

    @Override
    protected RedisUrl url() {
        return RedisUrl.parse(server.url());
    }
}
