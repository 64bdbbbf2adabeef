// Test helper: the SG_* variables that put a node on a test's own namespace of the shared test Redis.
package io.stargazer.node;

import io.stargazer.bus.Topology;
import java.util.HashMap;
import java.util.Map;

final class TestEnv {
    private TestEnv() {
    }

    static Map<String, String> of(Topology t) {
        Map<String, String> env = new HashMap<>();
        env.put("REDIS_URL", TestRedis.url().toString());
        env.put(Topology.ENV_INBOUND_STREAM, t.inboundStream());
        env.put(Topology.ENV_OUTBOUND_STREAM_PREFIX, t.outboundStreamPrefix());
        env.put(Topology.ENV_WORKER_GROUP, t.workerGroup());
        env.put(Topology.ENV_GATEWAY_GROUP_PREFIX, t.gatewayGroupPrefix());
        env.put(Topology.ENV_TOOLS_STREAM, t.toolsStream());
        env.put(Topology.ENV_TOOLS_GROUP, t.toolsGroup());
        env.put(Topology.ENV_TOOLS_REPLY_STREAM_PREFIX, t.toolsReplyStreamPrefix());
        env.put("SG_PLATFORMS", "webchat");
        return env;
    }
}
