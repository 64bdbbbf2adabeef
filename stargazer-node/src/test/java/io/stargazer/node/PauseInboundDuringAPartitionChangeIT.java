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
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * With SG_INBOUND_PARTITIONS_ALSO, `stargazer pause|resume inbound GROUP` acts on both counts' partitions (b31d4cd): what a
 * pause leaves once the other count is removed again (docs/cluster.md removes it after step 4), and a pause while the
 * other count's partitions have no such group yet. Found by the second review of b31d4cd.
 */
@Timeout(120)
class PauseInboundDuringAPartitionChangeIT {

    private static void group(RawRedis raw, String stream, String group) {
        raw.sync().xgroupCreate(XReadArgs.StreamOffset.from(RawRedis.b(stream), "0"), RawRedis.b(group), XGroupCreateArgs.Builder.mkstream());
    }

    private static List<String> pausedOf(Topology t, List<String> streams) {
        try (EventBus bus = TestRedis.bus(BusConfig.builder().topology(t).role(NodeRole.GATEWAY).nodeId("review-pause").build())) {
            List<String> out = new ArrayList<>();
            for (String s : streams) if (bus.paused(s, t.workerGroup())) out.add(s);
            return out;
        }
    }

    /** Paused with the other count given, resumed (as docs/cluster.md says) after it was removed: the old partitions stay paused. */
    @Test
    void aResumeAfterTheOtherCountIsRemovedLeavesNoPartitionPaused() throws Exception {
        Topology t = TestRedis.topology();
        Map<String, String> env = new HashMap<>(TestEnv.of(t));
        env.put(Topology.ENV_INBOUND_PARTITIONS, "3");
        env.put(Topology.ENV_INBOUND_PARTITIONS_ALSO, "2");
        List<String> all = new ArrayList<>(Topology.partitionNames(t.inboundStream(), 3));
        all.addAll(Topology.partitionNames(t.inboundStream(), 2));
        try (RawRedis raw = new RawRedis(RedisURI.create(TestRedis.url().toString()))) {
            for (String s : all) group(raw, s, t.workerGroup());

            Result pause = MainCliTest.run(env, "pause", "inbound", t.workerGroup());
            assertThat(pause.code()).as(pause.err()).isZero();
            assertThat(pausedOf(t, all)).as("both counts paused").containsExactlyInAnyOrderElementsOf(all);

            Map<String, String> after = new HashMap<>(env);
            after.remove(Topology.ENV_INBOUND_PARTITIONS_ALSO);
            Result resume = MainCliTest.run(after, "resume", "inbound", t.workerGroup());
            assertThat(resume.code()).as(resume.err()).isZero();
            assertThat(pausedOf(t, all)).as("partitions left paused after `resume inbound`").isEmpty();
            for (String s : Topology.partitionNames(t.inboundStream(), 2)) {
                assertThat(resume.out()).as("the other count's partition named").contains("resumed " + s + " " + t.workerGroup());
            }
        }
    }

    /** The same going from one stream to partitions: the unpartitioned stream, paused as the other count, is resumed too. */
    @Test
    void aResumeAfterTheOtherCountIsRemovedResumesTheUnpartitionedStreamToo() throws Exception {
        Topology t = TestRedis.topology();
        Map<String, String> env = new HashMap<>(TestEnv.of(t));
        env.put(Topology.ENV_INBOUND_PARTITIONS, "2");
        env.put(Topology.ENV_INBOUND_PARTITIONS_ALSO, "1");
        List<String> all = new ArrayList<>(Topology.partitionNames(t.inboundStream(), 2));
        all.add(t.inboundStream());
        try (RawRedis raw = new RawRedis(RedisURI.create(TestRedis.url().toString()))) {
            for (String s : all) group(raw, s, t.workerGroup());
            Result pause = MainCliTest.run(env, "pause", "inbound", t.workerGroup());
            assertThat(pause.code()).as(pause.err()).isZero();
            assertThat(pausedOf(t, all)).containsExactlyInAnyOrderElementsOf(all);

            env.remove(Topology.ENV_INBOUND_PARTITIONS_ALSO);
            Result resume = MainCliTest.run(env, "resume", "inbound", t.workerGroup());
            assertThat(resume.code()).as(resume.err()).isZero();
            assertThat(resume.out()).contains("resumed " + t.inboundStream() + " " + t.workerGroup());
            assertThat(pausedOf(t, all)).isEmpty();
        }
    }

    /**
     * An old-count operator (2, also 3) before the new workers created their group on the new partitions: without the
     * other count `pause inbound` paused every old partition and succeeded; with it, it fails half-way.
     */
    @Test
    void pauseInboundWhileTheOtherCountHasNoGroupYetSucceedsForTheGroupsThatExist() throws Exception {
        Topology t = TestRedis.topology();
        Map<String, String> env = new HashMap<>(TestEnv.of(t));
        env.put(Topology.ENV_INBOUND_PARTITIONS, "2");
        env.put(Topology.ENV_INBOUND_PARTITIONS_ALSO, "3");
        List<String> old = Topology.partitionNames(t.inboundStream(), 2);
        try (RawRedis raw = new RawRedis(RedisURI.create(TestRedis.url().toString()))) {
            for (String s : old) group(raw, s, t.workerGroup());
            for (String s : Topology.partitionNames(t.inboundStream(), 3)) {
                if (!old.contains(s)) raw.xadd(s, "payload", "published by a new-count gateway");
            }

            Result pause = MainCliTest.run(env, "pause", "inbound", t.workerGroup());
            assertThat(pause.code()).as("exit code; out=" + pause.out() + " err=" + pause.err()).isZero();
            assertThat(pausedOf(t, old)).containsExactlyInAnyOrderElementsOf(old);
            for (String s : Topology.partitionNames(t.inboundStream(), 3)) {
                assertThat(pause.out()).as("the other count's partition without the group")
                        .contains("no group, skipped " + s + " " + t.workerGroup());
            }
        }
    }
}
