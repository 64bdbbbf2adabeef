// Test helper: the node tests' view of the suite's shared server (TestServers): its URL, fresh topologies, buses.
package io.stargazer.node;

import io.stargazer.bus.BusConfig;
import io.stargazer.bus.EventBus;
import io.stargazer.bus.RedisUrl;
import io.stargazer.bus.Topology;
import io.stargazer.testing.TestServers;

final class TestRedis {
    private TestRedis() {
    }

    static RedisUrl url() {
        return RedisUrl.parse(TestServers.url());
    }

    /** The default topology under a fresh namespace of the shared server. */
    static Topology topology() {
        return Topology.builder().namespace(TestServers.namespace()).build();
    }

    static EventBus bus(BusConfig config) {
        return EventBus.connect(url(), config);
    }
}
