package io.stargazer.node;

import static org.assertj.core.api.Assertions.assertThat;

import io.stargazer.bus.BusConfig;
import io.stargazer.bus.EventBus;
import io.stargazer.bus.GroupInfo;
import io.stargazer.bus.NodeRole;
import io.stargazer.bus.Topology;
import io.stargazer.node.web.WebChatGateway;
import java.util.List;
import org.junit.jupiter.api.Test;

// A crashed gateway's group would keep the webchat outbound stream from being trimmed (SAFE) until answers are held:
// live gateways delete the groups of gateways that are gone, and never a live one's.
class GatewayGroupSweepIT {
    private static EventBus bus(Topology t, String id) {
        return TestRedis.bus(BusConfig.builder().topology(t).role(NodeRole.GATEWAY).nodeId(id).build());
    }

    @Test
    void aLiveGatewayDeletesTheGroupsOfDeadGatewaysButNotOfLiveOnes() {
        Topology t = TestRedis.topology();
        try (EventBus busA = bus(t, "gw-a"); EventBus busB = bus(t, "gw-b");
                WebChatGateway a = WebChatGateway.start(busA, new NodeMetrics());
                WebChatGateway b = WebChatGateway.start(busB, new NodeMetrics())) {
            String stream = t.outboundStream("webchat");
            String dead = WebChatGateway.groupOf(busA, "gw-dead");
            busA.ensureGroup(stream, dead); // a crashed gateway's group: no presence key refreshes it

            // First sweep: the presence key is missing once, which a gateway between start and refresh never shows,
            // but a sweep does not delete on one look.
            assertThat(a.removeDeadGatewayGroups()).isEmpty();
            assertThat(b.removeDeadGatewayGroups()).isEmpty();
            // Second sweep: still missing, so it is gone. The live gateways' groups stay, however quiet they are.
            assertThat(a.removeDeadGatewayGroups()).containsExactly(dead);
            List<String> left = busA.groups(stream).stream().map(GroupInfo::name).toList();
            assertThat(left).containsExactlyInAnyOrder(WebChatGateway.groupOf(busA, "gw-a"), WebChatGateway.groupOf(busA, "gw-b"));
            assertThat(b.removeDeadGatewayGroups()).isEmpty();
            assertThat(busA.isAlive(WebChatGateway.groupOf(busA, "gw-b") + ":alive")).isTrue();
        }
    }
}
