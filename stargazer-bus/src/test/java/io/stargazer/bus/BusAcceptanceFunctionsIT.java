package io.stargazer.bus;

import static org.assertj.core.api.Assertions.assertThat;

import io.stargazer.bus.testing.TestRedis;
import io.stargazer.embedded.RedisServerProcess;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Nested;
import org.junit.jupiter.api.Test;

// The acceptance suite with the bus's server-side logic running as the stargazer functions library (FCALL), on a
// Redis 7 of its own that was provisioned first: every promise holds the same as with scripts (issue 18).
class BusAcceptanceFunctionsIT extends BusAcceptanceSuite {
    private static RedisServerProcess server;

    @BeforeAll
    static void start() {
        server = RedisServerProcess.builder().start();
        Provisioning.provision(RedisUrl.parse(server.url()), BusConfig.builder().topology(TestRedis.topology()).build());
    }

    @AfterAll
    static void stop() {
        server.stop();
    }

    @Override
    protected RedisUrl url() {
        return RedisUrl.parse(server.url());
    }

    /**
     * The promises that restart or kill a server of their own start it without the library, so they run with scripts
     * here (SG_SERVER_CODE=auto), as in BusAcceptanceIT; those that only fill it up (out of memory) take it provisioned
     * ({@link #deployOwn}).
     */
    @Override
    protected RedisServerProcess.Builder ownServer() {
        return RedisServerProcess.builder();
    }

    @Override
    protected ServerCodeMode deployOwn(RedisUrl url) {
        Provisioning.provision(url, BusConfig.builder().topology(TestRedis.topology()).build());
        return ServerCodeMode.FUNCTIONS;
    }

    @Test
    void theBusOfThisSuiteRunsFunctions() {
        try (EventBus bus = EventBus.connect(url(), BusConfig.builder().topology(TestRedis.topology()).build())) {
            assertThat(bus.serverCode()).isEqualTo(ServerCodeMode.FUNCTIONS);
        }
    }

    /** Issue 17, faults 2 to 6 with functions: lost groups, half-open and stalled connections, slow handlers, refused writes. */
    @Nested
    class ProductionFaults extends FaultPromises {
        ProductionFaults() {
            super(BusAcceptanceFunctionsIT.this);
        }
    }

    /** Issue 20 with functions: one channel stays in order through retries and takeovers. */
    @Nested
    class OrderThroughRetries extends RetryOrderPromises {
        OrderThroughRetries() {
            super(BusAcceptanceFunctionsIT.this);
        }
    }

    /** Issue 13 with functions: dedupe keys (sg_publish) and answers (sg_reply) stored once. */
    @Nested
    class OnceNotTwice extends OncePromises {
        OnceNotTwice() {
            super(BusAcceptanceFunctionsIT.this);
        }
    }
}
