package io.stargazer.bus;

import io.stargazer.bus.testing.Closer;
import io.stargazer.embedded.RedisServerProcess;
import java.util.function.UnaryOperator;
import org.junit.jupiter.api.AfterEach;

/**
 * What the groups of promises nested in each acceptance suite ({@link FaultPromises}, {@link RetryOrderPromises})
 * share: the suite's servers, and closing what a test opened when it ends.
 */
abstract class SuitePromises {
    private final BusAcceptanceSuite suite;
    final Closer closer = new Closer();

    /** Runs against the servers of {@code suite}: a subclass is a {@code @Nested} class of each acceptance suite. */
    SuitePromises(BusAcceptanceSuite suite) {
        this.suite = suite;
    }

    @AfterEach
    void closeAll() throws Exception {
        closer.close();
    }

    /** The server these promises are checked against. */
    RedisUrl url() {
        return suite.url();
    }

    /** A server of the same version a test may stop, kill, restart and fill up. */
    RedisServerProcess.Builder ownServer() {
        return suite.ownServer();
    }

    /** A server of its own, as the suite deploys it ({@link BusAcceptanceSuite#deployOwn}), and the code a bus runs there. */
    record Deployed(RedisUrl url, ServerCodeMode code) {
    }

    Deployed ownServerAsDeployed() {
        RedisUrl url = RedisUrl.parse(closer.add(ownServer().start()).url());
        return new Deployed(url, suite.deployOwn(url));
    }

    /** A standalone node's bus, closed when the test ends. */
    EventBus bus(RedisUrl url, Topology topology, String nodeId, UnaryOperator<BusConfig.Builder> tune) {
        return closer.add(EventBus.connect(url, tune.apply(BusConfig.builder().topology(topology).role(NodeRole.STANDALONE).nodeId(nodeId))
                .build()));
    }

    EventBus bus(RedisUrl url, Topology topology, String nodeId) {
        return bus(url, topology, nodeId, UnaryOperator.identity());
    }
}
