// Promise: Topology builds the stream and group names the Python services use, from SG_* variables or code, and refuses bad names naming the variable and value.
package io.stargazer.bus;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.catchThrowableOfType;

import io.stargazer.bus.internal.Settings;
import java.nio.charset.StandardCharsets;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.zip.CRC32;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;

class TopologyTest {

    private static final List<String> NAME_VARIABLES = List.of(Topology.ENV_INBOUND_STREAM, Topology.ENV_OUTBOUND_STREAM_PREFIX,
            Topology.ENV_WORKER_GROUP, Topology.ENV_GATEWAY_GROUP_PREFIX, Topology.ENV_TOOLS_STREAM, Topology.ENV_TOOLS_GROUP,
            Topology.ENV_TOOLS_REPLY_STREAM_PREFIX, Topology.ENV_DEAD_LETTER_SUFFIX);

    @Test
    void defaultsAreTheOriginalModules() {
        Topology t = Topology.defaults();
        assertThat(t.inboundStream()).isEqualTo("sg:stream:inbound");
        assertThat(t.outboundStreamPrefix()).isEqualTo("sg:stream:outbound");
        assertThat(t.workerGroup()).isEqualTo("sg:workers");
        assertThat(t.gatewayGroupPrefix()).isEqualTo("sg:gateway");
        assertThat(t.toolsStream()).isEqualTo("sg:stream:tools");
        assertThat(t.toolsGroup()).isEqualTo("sg:tools");
        assertThat(t.toolsReplyStreamPrefix()).isEqualTo("sg:tools:reply");
        assertThat(t.deadLetterSuffix()).isEqualTo(":dead");
        assertThat(t.inboundPartitions()).isEqualTo(1);
    }

    @Test
    void emptyEnvironmentGivesTheDefaults() {
        assertThat(Topology.fromEnvironment(Map.of())).isEqualTo(Topology.defaults());
        assertThat(Topology.fromEnvironment(Map.of("PATH", "/bin", "SG_UNRELATED", "x"))).isEqualTo(Topology.defaults());
    }

    @Test
    void fromEnvironmentReadsEverySgVariable() {
        Map<String, String> env = new HashMap<>();
        env.put("SG_INBOUND_STREAM", "in");
        env.put("SG_OUTBOUND_STREAM_PREFIX", "out");
        env.put("SG_WORKER_GROUP", "wg");
        env.put("SG_GATEWAY_GROUP_PREFIX", "gw");
        env.put("SG_TOOLS_STREAM", "ts");
        env.put("SG_TOOLS_GROUP", "tg");
        env.put("SG_TOOLS_REPLY_STREAM_PREFIX", "tr");
        env.put("SG_DEAD_LETTER_SUFFIX", ".dlq");
        env.put("SG_INBOUND_PARTITIONS", "4");

        Topology t = Topology.fromEnvironment(env);

        assertThat(t).isEqualTo(named(4));
        assertThat(t.outboundStream("discord")).isEqualTo("out:discord");
        assertThat(t.gatewayGroup("matrix")).isEqualTo("gw:matrix");
        assertThat(t.toolsReplyStream("w1")).isEqualTo("tr:w1");
        assertThat(t.deadLetterStream("in:0")).isEqualTo("in:0.dlq");
        assertThat(t.inboundStreams()).containsExactly("in:{part-0-of-4~0}", "in:{part-1-of-4~20}", "in:{part-2-of-4~2}", "in:{part-3-of-4~13}");
    }

    @Test
    void namesAreBuiltLikeTheOriginal() {
        Topology t = Topology.defaults();
        assertThat(t.outboundStream("discord")).isEqualTo("sg:stream:outbound:discord");
        assertThat(t.gatewayGroup("discord")).isEqualTo("sg:gateway:discord");
        assertThat(t.gatewayGroup("web-chat_2")).isEqualTo("sg:gateway:web-chat_2");
        assertThat(t.toolsReplyStream("w1")).isEqualTo("sg:tools:reply:w1");
        assertThat(t.deadLetterStream("sg:stream:inbound")).isEqualTo("sg:stream:inbound:dead");
    }

    /** A blank variable counts as unset (node.md; compose's VAR=${UNSET}): the default holds. */
    @ParameterizedTest
    @ValueSource(strings = {"", " ", "\t"})
    void aBlankNameVariableCountsAsUnset(String blank) {
        for (String variable : NAME_VARIABLES) {
            assertThat(Topology.fromEnvironment(Map.of(variable, blank))).as(variable).usingRecursiveComparison().isEqualTo(Topology.defaults());
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"a b", "a\tb", "a\nb", "trailing ", "nb\u00a0sp", "bell\u0007"})
    void badNamesAreRefusedNamingVariableAndValue(String bad) {
        for (String variable : NAME_VARIABLES) {
            ConfigException e = catchThrowableOfType(() -> Topology.fromEnvironment(Map.of(variable, bad)),
                    ConfigException.class);
            assertThat(e).as(variable + "=" + bad).isNotNull();
            assertThat(e.setting()).isEqualTo(variable);
            assertThat(e.getMessage()).contains(variable).contains(Settings.printable(bad));
            assertThat(e.getMessage()).as("one line").doesNotContain("\n").doesNotContain("\t");
            if (bad.isEmpty()) {
                assertThat(e.getMessage()).contains("empty");
            } else {
                assertThat(e.getMessage()).contains("'" + Settings.printable(bad) + "'");
            }
        }
    }

    @Test
    void controlCharactersAreShownEscaped() {
        ConfigException e = catchThrowableOfType(() -> Topology.fromEnvironment(Map.of("SG_WORKER_GROUP", "a\tb")),
                ConfigException.class);
        assertThat(e.getMessage()).contains("'a\\u0009b'");
    }

    @Test
    void badNamesAreRefusedByTheBuilder() {
        assertThatThrownBy(() -> Topology.builder().inboundStream("has space"))
                .isInstanceOf(ConfigException.class).hasMessageContaining("SG_INBOUND_STREAM").hasMessageContaining("has space");
        assertThatThrownBy(() -> Topology.builder().deadLetterSuffix(""))
                .isInstanceOf(ConfigException.class).hasMessageContaining("SG_DEAD_LETTER_SUFFIX");
        assertThatThrownBy(() -> Topology.builder().outboundStreamPrefix(null))
                .isInstanceOf(ConfigException.class).hasMessageContaining("SG_OUTBOUND_STREAM_PREFIX");
        assertThatThrownBy(() -> Topology.defaults().toolsReplyStream("w 1"))
                .isInstanceOf(ConfigException.class).hasMessageContaining("w 1");
    }

    @ParameterizedTest
    @ValueSource(strings = {"", "disc ord", "disc:ord", "a/b", "d\u00e9", "x\n"})
    void platformThatIsNotATokenIsRefused(String bad) {
        Topology t = Topology.defaults();
        assertThatThrownBy(() -> t.outboundStream(bad)).isInstanceOf(ConfigException.class)
                .hasMessageContaining("'" + Settings.printable(bad) + "'").hasMessageContaining("platform");
        assertThatThrownBy(() -> t.gatewayGroup(bad)).isInstanceOf(ConfigException.class);
    }

    @Test
    void nullPlatformIsRefused() {
        assertThatThrownBy(() -> Topology.defaults().outboundStream(null)).isInstanceOf(ConfigException.class);
    }

    // ---- partitions ------------------------------------------------------------------------------------------

    @Test
    void onePartitionKeepsTheSingleStreamName() {
        Topology t = Topology.defaults();
        assertThat(t.inboundStreams()).containsExactly("sg:stream:inbound");
        assertThat(t.inboundStreamFor("c-1")).isEqualTo("sg:stream:inbound");
        assertThat(t.inboundStreamFor(null)).isEqualTo("sg:stream:inbound");
    }

    @Test
    void nPartitionsGiveNNames() {
        Topology t = Topology.builder().inboundPartitions(6).build();
        // Computed with Python (docs/cluster.md): binascii.crc_hqx(tag.encode(), 0) % 16384 in the middle half of range i.
        assertThat(t.inboundStreams()).containsExactly("sg:stream:inbound:{part-0-of-6~43}", "sg:stream:inbound:{part-1-of-6~2}", "sg:stream:inbound:{part-2-of-6~20}", "sg:stream:inbound:{part-3-of-6~10}", "sg:stream:inbound:{part-4-of-6~23}", "sg:stream:inbound:{part-5-of-6~21}");
    }

    @Test
    void partitionsLandInTheMiddleOfTheirSlotRange() {
        for (int n : new int[] {2, 3, 6, 7, 16, 1024}) {
            List<String> names = Topology.partitionNames("x", n);
            assertThat(names).hasSize(n).doesNotHaveDuplicates();
            for (int i = 0; i < n; i++) {
                int lo = i * 16384 / n;
                int hi = (i + 1) * 16384 / n;
                assertThat(Topology.slot(names.get(i))).isBetween(lo + (hi - lo) / 4, hi - (hi - lo) / 4 - 1);
            }
        }
    }

    /** Each of 3 evenly split shards (redis-cli's split: 0-5460, 5461-10922, 10923-16383) gets 2 of 6 partitions. */
    @Test
    void sixPartitionsGiveTwoPerShardOfThree() {
        int[] perShard = new int[3];
        for (String s : Topology.builder().namespace("any-namespace").inboundPartitions(6).build().inboundStreams()) {
            int slot = Topology.slot(s);
            perShard[slot <= 5460 ? 0 : slot <= 10922 ? 1 : 2]++;
        }
        assertThat(perShard).containsExactly(2, 2, 2);
    }

    /** Values from Redis's CLUSTER KEYSLOT (7.0). */
    @ParameterizedTest
    @CsvSource({"foo, 12182", "bar, 5061", "{user1000}.following, 3443", "foo{}{bar}, 8363", "foo{{bar}}zap, 4015", "'', 0",
            "h\u00e9llo{\u00e9}, 10180"})
    void slotIsRedisClusterKeyslot(String key, int expected) {
        assertThat(Topology.slot(key)).isEqualTo(expected);
    }

    @Test
    void partitionedInboundNameWithAHashTagIsRefused() {
        assertThatThrownBy(() -> Topology.builder().inboundStream("{app}:in").inboundPartitions(4).build())
                .isInstanceOf(ConfigException.class).hasMessageContaining("SG_INBOUND_STREAM");
        assertThat(Topology.builder().inboundStream("{app}:in").build().inboundStreams()).containsExactly("{app}:in");
    }

    @Test
    void partitionIsCrc32OfUtf8ChannelIdModN() {
        for (int n : new int[] {2, 3, 6, 7, 16, 1024}) {
            Topology t = Topology.builder().inboundPartitions(n).build();
            Topology again = Topology.fromEnvironment(Map.of("SG_INBOUND_PARTITIONS", String.valueOf(n)));
            for (int i = 0; i < 500; i++) {
                String channel = (i % 3 == 0 ? "h\u00e9llo-" : i % 3 == 1 ? "discord:" : "\uD83D\uDE00") + i;
                CRC32 crc = new CRC32();
                crc.update(channel.getBytes(StandardCharsets.UTF_8));
                long expected = crc.getValue() % n;
                String stream = t.inboundStreamFor(channel);
                assertThat(stream).isEqualTo(t.inboundStreams().get((int) expected))
                        .startsWith("sg:stream:inbound:{part-" + expected + "-of-" + n + "~");
                assertThat(t.inboundStreamFor(channel)).isEqualTo(stream);
                assertThat(again.inboundStreamFor(channel)).isEqualTo(stream);
                assertThat(t.inboundStreams()).contains(stream);
            }
        }
    }

    /** Values computed once with Python: {@code zlib.crc32(channel.encode()) % 6}. */
    @ParameterizedTest
    @CsvSource({"c-1, 2", "c-2, 0", "room-42, 5", "discord:123, 0", "h\u00e9llo, 2"})
    void partitionMatchesPythonsZlibCrc32(String channel, int expected) {
        assertThat(Topology.partitionOf(channel, 6)).isEqualTo(expected);
        assertThat(Topology.builder().inboundPartitions(6).build().inboundStreamFor(channel))
                .isEqualTo(Topology.partitionNames("sg:stream:inbound", 6).get(expected));
    }

    @Test
    void crc32AboveTwoToThe31IsNotNegative() {
        // zlib.crc32(b'c-1') = 3290756798 > 2^31: a signed int would give a negative partition.
        assertThat(Topology.partitionOf("c-1", 1024)).isEqualTo((int) (3290756798L % 1024));
    }

    @Test
    void missingChannelGoesToPartitionZero() {
        assertThat(Topology.builder().inboundPartitions(6).build().inboundStreamFor(null))
                .isEqualTo("sg:stream:inbound:{part-0-of-6~43}");
    }

    @ParameterizedTest
    @ValueSource(ints = {0, -1, 1025, 2000})
    void partitionsOutOfRangeAreRefused(int n) {
        assertThatThrownBy(() -> Topology.builder().inboundPartitions(n))
                .isInstanceOf(ConfigException.class).hasMessageContaining("SG_INBOUND_PARTITIONS")
                .hasMessageContaining("'" + n + "'");
        assertThatThrownBy(() -> Topology.fromEnvironment(Map.of("SG_INBOUND_PARTITIONS", String.valueOf(n))))
                .isInstanceOf(ConfigException.class).hasMessageContaining("SG_INBOUND_PARTITIONS");
    }

    @Test
    void partitionLimitsAreAccepted() {
        assertThat(Topology.builder().inboundPartitions(1024).build().inboundStreams()).hasSize(1024);
        assertThat(Topology.fromEnvironment(Map.of("SG_INBOUND_PARTITIONS", " 3 ")).inboundPartitions()).isEqualTo(3);
    }

    @Test
    void partitionsThatAreNotANumberAreRefusedNamingTheVariable() {
        assertThatThrownBy(() -> Topology.fromEnvironment(Map.of("SG_INBOUND_PARTITIONS", "four")))
                .isInstanceOf(ConfigException.class).hasMessageContaining("SG_INBOUND_PARTITIONS").hasMessageContaining("'four'");
    }

    // ---- other helpers ---------------------------------------------------------------------------------------

    @Test
    void groupForFindsTheConsumingGroup() {
        Topology t = Topology.builder().inboundPartitions(3).build();
        assertThat(t.groupFor(t.inboundStreams().get(2))).isEqualTo("sg:workers");
        assertThat(t.groupFor("sg:stream:inbound:2")).isNull();
        assertThat(t.groupFor("sg:stream:tools")).isEqualTo("sg:tools");
        assertThat(t.groupFor("sg:stream:outbound:discord")).isEqualTo("sg:gateway:discord");
        assertThat(t.groupFor("sg:stream:outbound:discord:dead")).isNull();
        assertThat(t.groupFor("sg:stream:inbound")).isNull();
        assertThat(t.groupFor("elsewhere")).isNull();
    }

    @Test
    void toBuilderKeepsEveryName() {
        Topology t = named(5);
        assertThat(t.toBuilder().build()).isEqualTo(t).hasSameHashCodeAs(t);
        assertThat(t.toBuilder().build()).hasToString(t.toString());
        assertThat(t.toBuilder().workerGroup("other").build().workerGroup()).isEqualTo("other");
    }

    @Test
    void namespacePrefixesEveryNameButTheSuffix() {
        Topology t = Topology.builder().namespace("t1").build();
        assertThat(t.inboundStream()).isEqualTo("t1:sg:stream:inbound");
        assertThat(t.outboundStream("discord")).isEqualTo("t1:sg:stream:outbound:discord");
        assertThat(t.workerGroup()).isEqualTo("t1:sg:workers");
        assertThat(t.gatewayGroup("discord")).isEqualTo("t1:sg:gateway:discord");
        assertThat(t.toolsStream()).isEqualTo("t1:sg:stream:tools");
        assertThat(t.toolsGroup()).isEqualTo("t1:sg:tools");
        assertThat(t.toolsReplyStream("w1")).isEqualTo("t1:sg:tools:reply:w1");
        assertThat(t.deadLetterSuffix()).isEqualTo(":dead");
        assertThatThrownBy(() -> Topology.builder().namespace("t 1")).isInstanceOf(ConfigException.class)
                .hasMessageContaining("namespace");
    }

    @Test
    void relayModeSendsEachSharedStreamThroughTheOutboxOfTheRoleThatWritesIt() {
        Topology t = Topology.builder().namespace("t1").build();
        assertThat(t.outboxes(List.of("discord", "webchat"))).containsExactly("t1:sg:outbox:gateway:discord",
                "t1:sg:outbox:gateway:webchat", "t1:sg:outbox:worker", "t1:sg:outbox:tools", "t1:sg:outbox:operator");
        assertThat(t.relayGroup()).isEqualTo("t1:sg:relay");
        String gwDiscord = t.gatewayOutbox("discord");
        assertThat(t.outboxFor(t.inboundStream(), "discord")).isEqualTo(gwDiscord);
        assertThat(t.outboxFor(t.deadLetterStream(t.outboundStream("discord")), null)).isEqualTo(gwDiscord);
        assertThat(t.outboxFor(t.outboundStream("webchat"), null)).isEqualTo(t.workerOutbox());
        assertThat(t.outboxFor(t.toolsStream(), null)).isEqualTo(t.workerOutbox());
        assertThat(t.outboxFor(t.deadLetterStream(t.inboundStream()), null)).isEqualTo(t.workerOutbox());
        assertThat(t.outboxFor(t.toolsReplyStream("w1"), null)).isEqualTo(t.toolsOutbox());
        assertThat(t.outboxFor(t.deadLetterStream(t.toolsStream()), null)).isEqualTo(t.toolsOutbox());
        assertThat(t.outboxFor("app:stream", null)).isNull();
        assertThat(t.outboxFor(t.workerOutbox(), null)).isNull();
        assertThatThrownBy(() -> t.outboxFor(t.inboundStream(), null)).isInstanceOf(ConfigException.class).hasMessageContaining("platform");
        assertThat(t.groupFor(gwDiscord)).isEqualTo(t.relayGroup());
        assertThat(t.groupFor(t.toolsOutbox())).isEqualTo(t.relayGroup());

        List<String> ps = List.of("discord", "webchat");
        assertThat(t.mayRelay(gwDiscord, t.inboundStream(), ps)).isTrue();
        assertThat(t.mayRelay(gwDiscord, t.deadLetterStream(t.outboundStream("discord")), ps)).isTrue();
        assertThat(t.mayRelay(gwDiscord, t.deadLetterStream(t.outboundStream("webchat")), ps)).isFalse();
        assertThat(t.mayRelay(gwDiscord, t.outboundStream("discord"), ps)).isFalse();
        assertThat(t.mayRelay(gwDiscord, t.toolsStream(), ps)).isFalse();
        assertThat(t.mayRelay(t.workerOutbox(), t.outboundStream("webchat"), ps)).isTrue();
        assertThat(t.mayRelay(t.workerOutbox(), t.outboundStream("matrix"), ps)).isFalse();
        assertThat(t.mayRelay(t.workerOutbox(), t.inboundStream(), ps)).isFalse();
        assertThat(t.mayRelay(t.toolsOutbox(), t.toolsReplyStream("w9"), ps)).isTrue();
        assertThat(t.mayRelay(t.toolsOutbox(), t.toolsStream(), ps)).isFalse();
        // A dead-letter suffix without ':' makes an outbound dead-letter stream look like a platform's stream: it is
        // still the gateway's (it was sent through the workers' outbox).
        Topology dashed = Topology.builder().namespace("t1").deadLetterSuffix("-dead").build();
        assertThat(dashed.outboxFor(dashed.deadLetterStream(dashed.outboundStream("webchat")), null)).isEqualTo(dashed.gatewayOutbox("webchat"));
        assertThat(dashed.mayRelay(dashed.workerOutbox(), dashed.deadLetterStream(dashed.outboundStream("webchat")), ps)).isFalse();
        // The operator's outbox carries replayed dead letters: back to the streams the bus consumes and the outboxes only.
        assertThat(t.groupFor(t.operatorOutbox())).isEqualTo(t.relayGroup());
        assertThat(t.mayRelay(t.operatorOutbox(), t.inboundStream(), ps)).isTrue();
        assertThat(t.mayRelay(t.operatorOutbox(), t.toolsStream(), ps)).isTrue();
        assertThat(t.mayRelay(t.operatorOutbox(), t.workerOutbox(), ps)).isTrue();
        assertThat(t.mayRelay(t.operatorOutbox(), t.toolsReplyStream("w1"), ps)).isFalse();
        assertThat(t.mayRelay(t.operatorOutbox(), t.deadLetterStream(t.inboundStream()), ps)).isFalse();
        assertThat(t.mayRelay(t.gatewayOutbox("matrix"), t.inboundStream(), ps)).as("not an outbox of these platforms").isFalse();
        assertThat(t.mayRelay("elsewhere", t.inboundStream(), ps)).isFalse();

        Topology p = Topology.fromEnvironment(Map.of("SG_INBOUND_PARTITIONS", "3", "SG_OUTBOX_PREFIX", "ob", "SG_RELAY_GROUP", "rg"));
        assertThat(p.relayGroup()).isEqualTo("rg");
        for (String in : p.inboundStreams()) {
            assertThat(p.outboxFor(in, "webchat")).isEqualTo("ob:gateway:webchat");
            assertThat(p.outboxFor(p.deadLetterStream(in), null)).isEqualTo("ob:worker");
        }
        assertThat(p).isNotEqualTo(Topology.fromEnvironment(Map.of("SG_INBOUND_PARTITIONS", "3")));

        // While SG_INBOUND_PARTITIONS changes, the relay given the other count (SG_INBOUND_PARTITIONS_ALSO) moves both
        // counts' inbound writes: exactly the partition names of the inbound base under either, and nothing that only looks
        // like one. Without it, only its own count's; never a count no process uses (found by the second relay review).
        List<String> wc = List.of("webchat");
        Topology both = p.toBuilder().alsoInboundPartitions(2).build();
        assertThat(both).isEqualTo(Topology.fromEnvironment(Map.of("SG_INBOUND_PARTITIONS", "3", "SG_INBOUND_PARTITIONS_ALSO", "2",
                "SG_OUTBOX_PREFIX", "ob", "SG_RELAY_GROUP", "rg"))).isNotEqualTo(p);
        assertThat(both.inboundStreams()).isEqualTo(p.inboundStreams());
        // The other count's names, whose dead letters DeadLetters.streams() and the node's gauges add; none without it.
        assertThat(both.alsoInboundStreams()).isEqualTo(Topology.partitionNames(p.inboundStream(), 2));
        assertThat(p.alsoInboundStreams()).isEmpty();
        assertThat(p.toBuilder().alsoInboundPartitions(3).build().alsoInboundStreams()).as("its own count").isEmpty();
        for (int n : new int[] {1, 2, 3, 6, 1024}) {
            for (String in : Topology.partitionNames(p.inboundStream(), n)) {
                boolean either = n == 3 || n == 2;
                assertThat(both.mayRelay(both.gatewayOutbox("webchat"), in, wc)).as(in).isEqualTo(either);
                assertThat(both.mayRelay(both.workerOutbox(), both.deadLetterStream(in), wc)).as(in).isEqualTo(either);
                assertThat(both.mayRelay(both.operatorOutbox(), in, wc)).as(in).isEqualTo(either);
                assertThat(p.mayRelay(p.gatewayOutbox("webchat"), in, wc)).as(in).isEqualTo(n == 3);
                assertThat(p.mayRelay(p.workerOutbox(), p.deadLetterStream(in), wc)).as(in).isEqualTo(n == 3);
                assertThat(p.mayRelay(p.operatorOutbox(), in, wc)).as(in).isEqualTo(n == 3);
                assertThat(both.mayRelay(both.workerOutbox(), in, wc)).as(in).isFalse();
                assertThat(both.mayRelay(both.toolsOutbox(), both.deadLetterStream(in), wc)).as(in).isFalse();
                assertThat(both.mayRelay(both.gatewayOutbox("webchat"), both.deadLetterStream(in), wc)).as(in).isFalse();
            }
        }
        Topology fromOne = Topology.builder().alsoInboundPartitions(3).build();
        assertThat(fromOne.mayRelay(fromOne.gatewayOutbox("webchat"), fromOne.inboundStream(), wc)).isTrue();
        assertThat(fromOne.isInboundOfEitherCount(Topology.partitionNames(fromOne.inboundStream(), 3).get(2))).isTrue();
        assertThat(fromOne.isInboundOfEitherCount(Topology.partitionNames(fromOne.inboundStream(), 2).get(1))).isFalse();
        String real = Topology.partitionNames(p.inboundStream(), 2).get(1);
        String base = p.inboundStream();
        for (String forged : List.of(real.replace("~", "~9"), base + ":{part-2-of-2~0}", base + ":{part-0-of-1~0}",
                base + ":{part-0-of-2000~0}", base + ":{part--of-2~0}", base + ":{part-0-of-~0}", base + ":{part-0-of-2}",
                "other:{" + real.substring(real.indexOf('{') + 1), real + ":x", base + ":0")) {
            assertThat(both.isInboundOfEitherCount(forged)).as(forged).isFalse();
            assertThat(both.mayRelay(both.gatewayOutbox("webchat"), forged, wc)).as(forged).isFalse();
        }
    }

    /** SG_INBOUND_PARTITIONS_ALSO is validated as SG_INBOUND_PARTITIONS is; unset, there is no other count. */
    @Test
    void theTransitionCountIsValidatedAndUnsetByDefault() {
        assertThat(Topology.defaults().alsoInboundPartitions()).isZero();
        assertThat(Topology.fromEnvironment(Map.of("SG_INBOUND_PARTITIONS_ALSO", " 4 ")).alsoInboundPartitions()).isEqualTo(4);
        assertThat(Topology.fromEnvironment(Map.of("SG_INBOUND_PARTITIONS_ALSO", "")).alsoInboundPartitions()).isZero();
        for (String bad : List.of("0", "1025", "-1", "two")) {
            assertThatThrownBy(() -> Topology.fromEnvironment(Map.of("SG_INBOUND_PARTITIONS_ALSO", bad)))
                    .as(bad).isInstanceOf(ConfigException.class).hasMessageStartingWith("SG_INBOUND_PARTITIONS_ALSO: ");
        }
        assertThatThrownBy(() -> Topology.builder().inboundStream("in{x}").alsoInboundPartitions(2).build())
                .isInstanceOf(ConfigException.class).hasMessageContaining("SG_INBOUND_PARTITIONS_ALSO");
        assertThat(Topology.builder().inboundStream("in{x}").alsoInboundPartitions(1).build().alsoInboundPartitions()).isEqualTo(1);
    }

    /**
     * SG_OUTBOX_PREFIX was free text: with a prefix the inbound name starts with (SG_OUTBOX_PREFIX=ns, inbound
     * ns:sg:stream:inbound) every answer's dedupe key reply:ns:sg:stream:inbound:<id> had the shape of the relay's own keys,
     * and the relay dead-lettered every answer, with no error at configuration; with inbound ns:worker the workers' outbox
     * would be the inbound stream. A prefix that a shared stream's name starts with is refused, naming both (found by the
     * review of relay mode).
     */
    @Test
    void anOutboxPrefixThatAStreamNameStartsWithIsRefusedNamingBoth() {
        String ns = "app";
        assertThatThrownBy(() -> Topology.builder().namespace(ns).outboxPrefix(ns).build()).isInstanceOf(ConfigException.class)
                .hasMessageStartingWith("SG_OUTBOX_PREFIX: 'app' begins SG_INBOUND_STREAM 'app:sg:stream:inbound'");
        assertThatThrownBy(() -> Topology.builder().outboxPrefix("sg:stream").build()).isInstanceOf(ConfigException.class)
                .hasMessageContaining("SG_INBOUND_STREAM");
        assertThatThrownBy(() -> Topology.builder().outboxPrefix("sg:stream:inbound").build()).isInstanceOf(ConfigException.class);
        assertThatThrownBy(() -> Topology.builder().inboundStream("in").outboxPrefix("sg").build()).isInstanceOf(ConfigException.class)
                .hasMessageContaining("SG_OUTBOUND_STREAM_PREFIX 'sg:stream:outbound'");
        assertThatThrownBy(() -> Topology.builder().inboundStream("in").outboundStreamPrefix("out").toolsStream("tools")
                .outboxPrefix("sg:tools").build()).hasMessageContaining("SG_TOOLS_REPLY_STREAM_PREFIX 'sg:tools:reply'");
        assertThatThrownBy(() -> Topology.fromEnvironment(Map.of("SG_OUTBOX_PREFIX", "x", "SG_TOOLS_STREAM", "x:tools")))
                .hasMessageContaining("SG_TOOLS_STREAM 'x:tools'");
        // A prefix that merely shares characters with a name, or the defaults, are fine.
        assertThat(Topology.builder().outboxPrefix("sg:stream:in").build().workerOutbox()).isEqualTo("sg:stream:in:worker");
        assertThat(Topology.builder().namespace(ns).build().outboxPrefix()).isEqualTo("app:sg:outbox");
    }

    /**
     * The reverse of the case above (found by the second review of relay mode): under SG_OUTBOX_PREFIX=sg:tools:reply:ob
     * every outbox is also a tools reply stream's name, so the tools outbox may have the relay write into the webchat
     * gateway's outbox, whose entries the relay then moves to the inbound stream as that gateway's. A prefix under the
     * tools reply prefix or the outbound prefix is refused, naming both.
     */
    @Test
    void anOutboxPrefixUnderTheToolsReplyOrOutboundPrefixIsRefusedNamingBoth() {
        assertThatThrownBy(() -> Topology.builder().outboxPrefix(Topology.DEFAULT_TOOLS_REPLY_STREAM_PREFIX + ":ob").build())
                .isInstanceOf(ConfigException.class)
                .hasMessageStartingWith("SG_OUTBOX_PREFIX: 'sg:tools:reply:ob' lies under SG_TOOLS_REPLY_STREAM_PREFIX 'sg:tools:reply'");
        assertThatThrownBy(() -> Topology.builder().outboxPrefix("sg:stream:outbound:ob").build()).isInstanceOf(ConfigException.class)
                .hasMessageContaining("SG_OUTBOUND_STREAM_PREFIX 'sg:stream:outbound'");
        assertThatThrownBy(() -> Topology.fromEnvironment(Map.of("SG_TOOLS_REPLY_STREAM_PREFIX", "r", "SG_OUTBOX_PREFIX", "r:x:y")))
                .hasMessageContaining("SG_TOOLS_REPLY_STREAM_PREFIX 'r'");
        // Only ':' makes a name of the prefix's streams: a prefix that merely starts with the same characters is fine.
        Topology t = Topology.builder().outboxPrefix("sg:tools:replyob").build();
        assertThat(t.mayRelay(t.toolsOutbox(), t.gatewayOutbox("webchat"), List.of("webchat"))).isFalse();
    }

    /**
     * Two variables that name one stream mix two roles' traffic with no error: SG_TOOLS_STREAM set to the inbound stream
     * gave tool requests to the workers and chat messages to the tools service; SG_TOOLS_STREAM equal to the inbound
     * stream's dead letters (inbound + SG_DEAD_LETTER_SUFFIX) put every dead letter before the tools service, and an
     * inbound stream under SG_OUTBOUND_STREAM_PREFIX is a platform's outbound stream, read by its gateways. Each is
     * refused at start, naming both variables and the value (found by the configuration review).
     */
    @Test
    void twoVariablesNamingOneStreamAreRefusedNamingBothAndTheValue() {
        assertThatThrownBy(() -> Topology.fromEnvironment(Map.of("SG_INBOUND_STREAM", "s", "SG_TOOLS_STREAM", "s")))
                .isInstanceOf(ConfigException.class).hasMessageContaining("SG_TOOLS_STREAM").hasMessageContaining("SG_INBOUND_STREAM")
                .hasMessageContaining("'s'");
        assertThatThrownBy(() -> Topology.fromEnvironment(Map.of("SG_TOOLS_STREAM", "sg:stream:inbound:dead")))
                .isInstanceOf(ConfigException.class).hasMessageContaining("SG_TOOLS_STREAM").hasMessageContaining("SG_INBOUND_STREAM")
                .hasMessageContaining("SG_DEAD_LETTER_SUFFIX").hasMessageContaining("'sg:stream:inbound:dead'");
        assertThatThrownBy(() -> Topology.fromEnvironment(Map.of("SG_INBOUND_STREAM", "sg:stream:tools-dead", "SG_DEAD_LETTER_SUFFIX", "-dead")))
                .isInstanceOf(ConfigException.class).hasMessageContaining("SG_INBOUND_STREAM").hasMessageContaining("SG_TOOLS_STREAM")
                .hasMessageContaining("'sg:stream:tools-dead'");
        assertThatThrownBy(() -> Topology.fromEnvironment(Map.of("SG_INBOUND_STREAM", "sg:stream:outbound:webchat")))
                .isInstanceOf(ConfigException.class).hasMessageContaining("SG_INBOUND_STREAM").hasMessageContaining("SG_OUTBOUND_STREAM_PREFIX")
                .hasMessageContaining("'sg:stream:outbound:webchat'");
        assertThatThrownBy(() -> Topology.fromEnvironment(Map.of("SG_OUTBOUND_STREAM_PREFIX", "sg:stream:inbound")))
                .isInstanceOf(ConfigException.class).hasMessageContaining("SG_INBOUND_STREAM").hasMessageContaining("SG_OUTBOUND_STREAM_PREFIX");
        assertThatThrownBy(() -> Topology.fromEnvironment(Map.of("SG_TOOLS_STREAM", "sg:tools:reply:w1")))
                .isInstanceOf(ConfigException.class).hasMessageContaining("SG_TOOLS_STREAM").hasMessageContaining("SG_TOOLS_REPLY_STREAM_PREFIX")
                .hasMessageContaining("'sg:tools:reply:w1'");
        assertThatThrownBy(() -> Topology.fromEnvironment(Map.of("SG_OUTBOUND_STREAM_PREFIX", "p", "SG_TOOLS_REPLY_STREAM_PREFIX", "p")))
                .isInstanceOf(ConfigException.class).hasMessageContaining("SG_OUTBOUND_STREAM_PREFIX").hasMessageContaining("SG_TOOLS_REPLY_STREAM_PREFIX")
                .hasMessageContaining("'p'");
        // A partition of the inbound stream, of this count or of the other one, is a stream too.
        String partition = Topology.partitionNames("in", 3).get(1);
        assertThatThrownBy(() -> Topology.builder().inboundStream("in").inboundPartitions(2).alsoInboundPartitions(3).toolsStream(partition).build())
                .isInstanceOf(ConfigException.class).hasMessageContaining("SG_TOOLS_STREAM").hasMessageContaining(partition);
        // Names that merely share characters are fine.
        assertThat(Topology.fromEnvironment(Map.of("SG_INBOUND_STREAM", "sg:stream:outboundx", "SG_TOOLS_STREAM", "sg:stream:inbound-tools"))
                .toolsStream()).isEqualTo("sg:stream:inbound-tools");
        assertThat(named(4).toolsStream()).isEqualTo("ts");
    }

    /** Every name set to a short one of its own. */
    private static Topology named(int partitions) {
        return Topology.builder().inboundStream("in").outboundStreamPrefix("out").workerGroup("wg").gatewayGroupPrefix("gw")
                .toolsStream("ts").toolsGroup("tg").toolsReplyStreamPrefix("tr").deadLetterSuffix(".dlq")
                .inboundPartitions(partitions).build();
    }
}
