// Promise (operator tools): `stargazer pause inbound GROUP` pauses every partition or none; a group missing on some of this
// count's partitions is a usage error naming them, with no partition left paused by it. Before, the partitions before the
// first without the group were paused, then exit code 2 said the command had been refused (PauseOtherCountUnreadableIT
// holds the same for a partition that cannot be read).
package io.stargazer.node;

import static org.assertj.core.api.Assertions.assertThat;

import io.lettuce.core.RedisURI;
import io.lettuce.core.XGroupCreateArgs;
import io.lettuce.core.XReadArgs;
import io.stargazer.bus.BusConfig;
import io.stargazer.bus.EventBus;
import io.stargazer.bus.NodeRole;
import io.stargazer.bus.Topology;
import io.stargazer.node.MainCliTest.Result;
import io.stargazer.testing.RawRedis;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

@Timeout(120)
class PausePartlyGroupedIT {

    @Test
    void aGroupMissingOnSomePartitionsPausesNoneAndNamesThose() {
        Topology t = TestRedis.topology();
        Map<String, String> env = new HashMap<>(TestEnv.of(t));
        env.put(Topology.ENV_INBOUND_PARTITIONS, "3");
        List<String> partitions = Topology.partitionNames(t.inboundStream(), 3);
        try (RawRedis raw = new RawRedis(RedisURI.create(TestRedis.url().toString()))) {
            // The workers of partition 2 never started (or its group was lost in an empty restart).
            for (String s : partitions.subList(0, 2)) group(raw, s, t.workerGroup());
            Result pause = MainCliTest.run(env, "pause", "inbound", t.workerGroup());

            assertThat(pause.code()).as("exit code; out=" + pause.out() + " err=" + pause.err()).isEqualTo(2);
            assertThat(pause.err()).contains(partitions.get(2)).contains("nothing was paused");
            assertThat(pause.out()).doesNotContain("paused");
            try (EventBus bus = TestRedis.bus(BusConfig.builder().topology(t).role(NodeRole.GATEWAY).nodeId("pause-check").build())) {
                assertThat(partitions.stream().filter(s -> bus.paused(s, t.workerGroup())).toList()).as("partitions left paused").isEmpty();
            }
        }
    }

    private static void group(RawRedis raw, String stream, String group) {
        raw.sync().xgroupCreate(XReadArgs.StreamOffset.from(RawRedis.b(stream), "0"), RawRedis.b(group), XGroupCreateArgs.Builder.mkstream());
    }
}
