package io.stargazer.bus;

import io.stargazer.bus.testing.TestRedis;
import io.stargazer.embedded.RedisServerProcess;
import org.junit.jupiter.api.Nested;

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

    /** Issue 17, faults 2 to 6 on this server: lost groups, half-open and stalled connections, slow handlers, refused writes. */
    @Nested
    class ProductionFaults extends FaultPromises {
        ProductionFaults() {
            super(BusAcceptanceIT.this);
        }
    }

    /** Issue 20 on this server: one channel stays in order through retries and takeovers. */
    @Nested
    class OrderThroughRetries extends RetryOrderPromises {
        OrderThroughRetries() {
            super(BusAcceptanceIT.this);
        }
    }

    /** Issue 13 on this server: dedupe keys and answers through the delivery store once. */
    @Nested
    class OnceNotTwice extends OncePromises {
        OnceNotTwice() {
            super(BusAcceptanceIT.this);
        }
    }
}
