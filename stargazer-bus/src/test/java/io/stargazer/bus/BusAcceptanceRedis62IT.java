package io.stargazer.bus;

import io.stargazer.embedded.RedisServerProcess;
import io.stargazer.testing.TestServers;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Nested;

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

    /** Issue 17, faults 2 to 6 on this server: lost groups, half-open and stalled connections, slow handlers, refused writes. */
    @Nested
    class ProductionFaults extends FaultPromises {
        ProductionFaults() {
            super(BusAcceptanceRedis62IT.this);
        }
    }

    /** Issue 20 on this server: one channel stays in order through retries and takeovers. */
    @Nested
    class OrderThroughRetries extends RetryOrderPromises {
        OrderThroughRetries() {
            super(BusAcceptanceRedis62IT.this);
        }
    }

    /** Issue 13 on this server: dedupe keys and answers through the delivery store once. */
    @Nested
    class OnceNotTwice extends OncePromises {
        OnceNotTwice() {
            super(BusAcceptanceRedis62IT.this);
        }
    }
}
