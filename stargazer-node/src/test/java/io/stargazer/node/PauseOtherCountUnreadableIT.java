// Promise (operator tools): `stargazer pause inbound GROUP` during a partition-count change (SG_INBOUND_PARTITIONS_ALSO)
// skips only the other count's partitions where the group is not there. One it cannot act on (NOPERM for an operator user
// made for one count; a timeout alike) fails the command; before, an unreadable XINFO GROUPS was taken for "no group":
// "no group, skipped" and exit code 0, and those partitions went on consuming. Such a failure comes before any partition
// is paused: before, this count's partitions were paused first, and the exit code said the command had failed.
package io.stargazer.node;

import static org.assertj.core.api.Assertions.assertThat;

import io.lettuce.core.AclSetuserArgs;
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
class PauseOtherCountUnreadableIT {

    @Test
    void aPauseThatCannotReadTheOtherCountsGroupsDoesNotSaySkippedAndSucceed() {
        Topology t = TestRedis.topology();
        List<String> own = Topology.partitionNames(t.inboundStream(), 2);
        List<String> other = Topology.partitionNames(t.inboundStream(), 3);
        String user = "revop" + Long.toHexString(System.nanoTime());
        try (RawRedis raw = new RawRedis(RedisURI.create(TestRedis.url().toString()))) {
            for (String s : own) raw.sync().xgroupCreate(XReadArgs.StreamOffset.from(RawRedis.b(s), "0"), RawRedis.b(t.workerGroup()), XGroupCreateArgs.Builder.mkstream());
            for (String s : other) raw.sync().xgroupCreate(XReadArgs.StreamOffset.from(RawRedis.b(s), "0"), RawRedis.b(t.workerGroup()), XGroupCreateArgs.Builder.mkstream());
            // An operator user whose rules name the 2-partition streams only (made before the change, without --also-partitions).
            raw.sync().aclSetuser(user, AclSetuserArgs.Builder.on().nopass().allCommands().keyPattern("*of-2~*").allChannels());
            Map<String, String> env = new HashMap<>(TestEnv.of(t));
            RedisURI u = RedisURI.create(TestRedis.url().toString());
            env.put("REDIS_URL", "redis://" + user + ":x@" + u.getHost() + ":" + u.getPort());
            env.put(Topology.ENV_INBOUND_PARTITIONS, "2");
            env.put(Topology.ENV_INBOUND_PARTITIONS_ALSO, "3");
            Result pause = MainCliTest.run(env, "pause", "inbound", t.workerGroup());

            try (EventBus bus = TestRedis.bus(BusConfig.builder().topology(t).role(NodeRole.GATEWAY).nodeId("pause-check").build())) {
                long pausedOther = other.stream().filter(s -> bus.paused(s, t.workerGroup())).count();
                assertThat(pausedOther).as("the other count's partitions, which have the group, are not paused").isZero();
                // All or nothing: the command fails before pausing this count's partitions either.
                assertThat(own.stream().filter(s -> bus.paused(s, t.workerGroup())).toList()).as("this count's partitions left paused").isEmpty();
            }
            assertThat(pause.out()).doesNotContain("paused");
            // Not paused there, and it could not tell: the command must not pass this off as "no group" with exit code 0.
            assertThat(pause.code()).as("exit code; out=" + pause.out() + " err=" + pause.err()).isNotZero();
        } finally {
            try (RawRedis raw = new RawRedis(RedisURI.create(TestRedis.url().toString()))) {
                raw.sync().aclDeluser(user);
            }
        }
    }
}
