package io.stargazer.bus;

import io.stargazer.embedded.RedisServerProcess;
import io.stargazer.testing.TestServers;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;

// The acceptance suite on Redis 6.2 (the codemonstur embedded-redis jar's binary), the oldest server supported:
// no lag in XINFO GROUPS, no deleted-id list from XAUTOCLAIM.
class BusAcceptanceRedis62IT extends BusAcceptanceSuite {
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

    @Override
    protected RedisServerProcess.Builder ownServer() {
        return TestServers.redis62();
    }
}
