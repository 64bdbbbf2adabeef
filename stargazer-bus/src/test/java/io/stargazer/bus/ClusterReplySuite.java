// Promise (issue 13, docs/once.md): on a Redis Cluster, a worker process SIGKILLed between storing its answer and
// acknowledging the entry gives no second answer after another worker takes the entry over. Two layouts: the answer
// stream in another slot (on another primary) than the source stream, where Delivery.reply publishes with the derived
// dedupe key and then acknowledges; and both streams in one slot (a shared hash tag), where one script does both.
// Run by ClusterReplyIT on the default redis-server and by ClusterReplyRedis62IT on Redis 6.2.
package io.stargazer.bus;

import static org.assertj.core.api.Assertions.assertThat;

import io.lettuce.core.AclSetuserArgs;
import io.lettuce.core.Limit;
import io.lettuce.core.Range;
import io.lettuce.core.models.stream.PendingMessage;
import io.lettuce.core.protocol.CommandType;
import io.stargazer.bus.testing.RawRedis;
import io.stargazer.bus.testing.TestRedis;
import io.stargazer.embedded.RedisServerProcess;
import io.stargazer.testing.ChildJvm;
import io.stargazer.testing.RedisClusterProcess;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.stream.IntStream;
import org.awaitility.Awaitility;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

@Timeout(180)
abstract class ClusterReplySuite {
    private static final int ENTRIES = 20;
    /** A user that may do everything but XACK (set on every node: a cluster does not share its ACL users). */
    private static final String NO_ACK_USER = "sg-no-ack";
    private static final String NO_ACK_PASSWORD = "no-ack-pw";

    static RedisClusterProcess cluster;
    private static RedisUrl url;

    /** Starts 3 primaries (no replicas: no failover here) of {@code builder}'s binary; the subclass's @BeforeAll. */
    static void startCluster(RedisClusterProcess.Builder builder) {
        cluster = builder.primaries(3).replicasPerPrimary(0).start();
        url = RedisUrl.parse(cluster.url());
        for (RedisServerProcess node : cluster.nodes()) {
            try (RawRedis admin = new RawRedis(RedisUrl.parse(node.url()))) {
                admin.sync().aclSetuser(NO_ACK_USER, AclSetuserArgs.Builder.on().addPassword(NO_ACK_PASSWORD)
                        .allKeys().allChannels().allCommands().removeCommand(CommandType.XACK));
            }
        }
    }

    @AfterAll
    static void stop() {
        if (cluster != null) cluster.close();
        cluster = null;
    }

    /**
     * The two-step path, with the kill landing between the steps for every entry: the first worker logs in as a user
     * that may not XACK, so each answer it stores (publish with the dedupe key {@code reply:<in>:<id>}) is followed by
     * an acknowledgement the server refuses, and every entry stays pending in its name, answered. That is checked
     * (all answers stored, all entries pending) before the SIGKILL. A second worker then takes every entry over and
     * answers it again with Delivery.reply: the answer stream must hold one answer per entry, and each of the second
     * worker's replies must return the first answer's id.
     */
    @Test
    void aWorkerKilledBetweenStoringItsAnswerInAnotherSlotAndAcknowledgingGivesNoSecondAnswer() throws Exception {
        BusConfig config = TestRedis.config(NodeRole.STANDALONE).build();
        Topology t = config.topology();
        String in = t.inboundStream();
        String out = IntStream.range(0, 100).mapToObj(i -> t.outboundStream("p" + i))
                .filter(s -> cluster.primaryFor(s) != cluster.primaryFor(in)).findFirst().orElseThrow();
        assertThat(cluster.keySlot(out)).isNotEqualTo(cluster.keySlot(in));
        String group = t.workerGroup();
        try (EventBus bus = EventBus.connect(url, config)) {
            bus.ensureGroup(in, group);
            for (int i = 0; i < ENTRIES; i++) bus.publish(in, Envelope.of("channel_id", "c" + (i % 4), "n", i));
            String childUrl = "redis://" + NO_ACK_USER + ":" + NO_ACK_PASSWORD + "@" + cluster.url().substring("redis://".length());
            try (ChildJvm child = ChildJvm.start(ReplyWorkerChild.class, childUrl, in, group, out, "-2", "reply")) {
                Awaitility.await().atMost(60, TimeUnit.SECONDS)
                        .until(() -> IntStream.range(0, ENTRIES).allMatch(n -> child.printed("ANSWERED " + n)));
                // Every answer is stored and no entry acknowledged: the kill lands between the two, for each entry.
                assertThat(ReplyIT.countAnswers(bus, out)).hasSize(ENTRIES).allSatisfy((n, c) -> assertThat(c).isEqualTo(1));
                assertThat(bus.pendingCount(in, group)).isEqualTo(ENTRIES);
                child.kill();
            }
            List<String> storedByChild = TestRedis.readAll(bus, out).stream().map(StreamEntry::id).toList();

            List<String> returnedToB = takeOverAndAnswer(bus, in, group, out);
            Map<Long, Integer> counts = ReplyIT.countAnswers(bus, out);
            assertThat(counts).hasSize(ENTRIES);
            assertThat(counts.values()).as("answers per entry: %s", counts).containsOnly(1);
            assertThat(returnedToB).containsExactlyInAnyOrderElementsOf(storedByChild);
        }
    }

    /**
     * Both streams in one slot (a shared hash tag): one script stores the answer and acknowledges the entry, so a worker
     * killed right after answering has acknowledged too (checked: the entry is no longer pending), and the takeover
     * answers only the entries it had not answered.
     */
    @Test
    void aWorkerKilledRightAfterAnsweringInTheSameSlotGivesNoSecondAnswer() throws Exception {
        String tag = "{" + TestRedis.namespace() + "}";
        String in = tag + ":in";
        String out = tag + ":out";
        String group = "workers";
        try (EventBus bus = EventBus.connect(url, TestRedis.config(NodeRole.STANDALONE).build());
             RawRedis primary = new RawRedis(RedisUrl.parse(cluster.primaryFor(in).url()))) {
            bus.ensureGroup(in, group);
            List<String> ids = new ArrayList<>();
            for (int i = 0; i < ENTRIES; i++) ids.add(bus.publish(in, Envelope.of("channel_id", "c" + (i % 4), "n", i)));
            try (ChildJvm child = ChildJvm.start(ReplyWorkerChild.class, cluster.url(), in, group, out, "7", "reply")) {
                Awaitility.await().atMost(60, TimeUnit.SECONDS).until(() -> child.printed("ANSWERED 7"));
                List<PendingMessage> pending = primary.sync().xpending(in.getBytes(StandardCharsets.UTF_8),
                        group.getBytes(StandardCharsets.UTF_8), Range.create("-", "+"), Limit.from(ENTRIES));
                assertThat(pending).extracting(PendingMessage::getId).doesNotContain(ids.get(7));
                child.kill();
            }
            takeOverAndAnswer(bus, in, group, out);
            Map<Long, Integer> counts = ReplyIT.countAnswers(bus, out);
            assertThat(counts).hasSize(ENTRIES);
            assertThat(counts.values()).as("answers per entry: %s", counts).containsOnly(1);
        }
    }

    /** A second worker takes over what the killed one held and answers it with Delivery.reply; returns the ids it got. */
    private static List<String> takeOverAndAnswer(EventBus bus, String in, String group, String out) {
        List<String> returned = new CopyOnWriteArrayList<>();
        try (Subscription b = bus.subscribe(bus.consumer(in, group).consumerName("b").claimIdle(Duration.ofMillis(500)).build(),
                d -> returned.add(d.reply(out, Envelope.of("channel_id", d.envelope().channelId(),
                        "answer_to", d.envelope().longValue("n", -1))).join()))) {
            Awaitility.await().atMost(60, TimeUnit.SECONDS).until(() -> bus.pendingCount(in, group) == 0
                    && ReplyIT.countAnswers(bus, out).size() == ENTRIES);
        }
        return returned;
    }
}
