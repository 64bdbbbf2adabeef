package io.stargazer.bus;

import io.stargazer.bus.testing.TestRedis;
import io.stargazer.embedded.RedisServerProcess;

// The acceptance suite on the suite's shared server: REDIS_URL, else redis-server from PATH (else embedded).
class BusAcceptanceIT extends BusAcceptanceSuite {
    @Override
    protected RedisUrl url() {
        return TestRedis.url();
    }

    @Override
    protected RedisServerProcess.Builder ownServer() {
        return RedisServerProcess.builder();
    }
}
