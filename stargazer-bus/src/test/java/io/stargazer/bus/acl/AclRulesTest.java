package io.stargazer.bus.acl;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.stargazer.bus.ConfigException;
import io.stargazer.bus.Topology;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

// The text of the generated rules: names, key patterns per topology, hashed passwords, version refusal.
class AclRulesTest {

    @Test
    void defaultsGiveOneUserPerRoleAndGatewayPerPlatformWithoutPasswords() {
        AclRules r = AclRules.defaults(Topology.defaults(), List.of("discord", "matrix"));
        assertThat(r.users()).extracting(AclRules.User::name)
                .containsExactly("sg-gateway-discord", "sg-gateway-matrix", "sg-worker", "sg-tools", "sg-monitor", "sg-operator");
        assertThat(r.user("sg-gateway-discord").rules()).noneMatch(x -> x.startsWith("#") || x.startsWith(">") || x.equals("nopass"));
        assertThat(r.user("sg-gateway-discord").setUserCommand()).isEqualTo("ACL SETUSER sg-gateway-discord reset on resetkeys "
                + "resetchannels -@all +hello +auth +ping +info +command|docs +select +client|id +client|setname +fcall_ro|sg_version +client|unblock "
                + "'(+xreadgroup +xack +xautoclaim +xclaim +xpending +xinfo|stream +xinfo|groups +xinfo|consumers +xgroup|create "
                + "+xgroup|delconsumer +exists ~sg:stream:outbound:discord)' "
                + "'(+exists %R~{sg:stream:outbound:discord}:paused:*)' "
                + "'(+xgroup|destroy ~sg:stream:outbound:discord)' '(+set +exists ~sg:gateway:discord:*:alive)' "
                + "'(+xadd +xtrim +xlen +exists %W~sg:stream:inbound %W~sg:stream:outbound:discord:dead)' "
                + "'(+xinfo|groups +xpending %R~sg:stream:inbound %R~sg:stream:outbound:discord:dead)' "
                // The dedupe keys beside the streams it publishes to, in their slots (docs/once.md).
                + "'(+get +set +pexpire +del +hget +hmget +hset +pexpireat +unlink +time ~{sg:stream:inbound}:dedupe:* ~{sg:stream:outbound:discord:dead}:dedupe:*)' "
                // The library's functions it calls, each by name (docs/functions.md); no EVAL.
                + "'(+fcall|sg_refresh +fcall|sg_confirm +fcall|sg_delete_idle_consumer +fcall|sg_dead_letter +fcall|sg_publish_batch "
                + "+fcall|sg_publish_batch_traced +fcall|sg_publish +fcall|sg_trim "
                + "~sg:stream:outbound:discord ~sg:stream:inbound ~sg:stream:outbound:discord:dead "
                + "~{sg:stream:inbound}:dedupe:* ~{sg:stream:outbound:discord:dead}:dedupe:*)'");
        assertThat(r.user("sg-worker").rules()).noneMatch(x -> x.contains("+eval"));
        assertThat(AclRules.builder(Topology.defaults()).compatibility(true).worker("w", null).build().user("w").rules())
                .anyMatch(x -> x.startsWith("(+eval +evalsha ~"));
    }

    /**
     * Relay mode: no role but the relay may write a shared stream, and the relay may write for each outbox exactly what
     * that outbox's role may write in direct mode: the map the relay checks (Topology.mayRelay) is the one these rules grant.
     */
    @Test
    void inRelayModeRolesWriteOnlyTheirOutboxAndTheRelayChecksTheDirectModeMap() {
        Topology t = Topology.builder().namespace("n").build();
        List<String> ps = List.of("discord", "webchat");
        AclRules direct = AclRules.builder(t).platforms(ps).workerIds(List.of("w1")).gateway("g", null, "discord")
                .worker("w", null).tools("t", null).build();
        AclRules relay = AclRules.builder(t).platforms(ps).workerIds(List.of("w1")).publishVia(io.stargazer.bus.PublishVia.RELAY)
                .gateway("g", null, "discord").worker("w", null).tools("t", null).relay("r", null).build();
        List<String> shared = List.of(t.inboundStream(), t.deadLetterStream(t.inboundStream()), t.outboundStream("discord"),
                t.outboundStream("webchat"), t.deadLetterStream(t.outboundStream("discord")), t.deadLetterStream(t.outboundStream("webchat")),
                t.toolsStream(), t.deadLetterStream(t.toolsStream()), t.toolsReplyStream("w1"));
        Map<String, String> outboxOf = Map.of("g", t.gatewayOutbox("discord"), "w", t.workerOutbox(), "t", t.toolsOutbox());
        for (String user : outboxOf.keySet()) {
            String writes = xaddSelector(direct.user(user));
            String relayed = xaddSelector(relay.user(user));
            assertThat(relayed).isEqualTo("(+xadd +xtrim +xlen +exists %W~" + outboxOf.get(user) + ")");
            for (String s : shared) {
                assertThat(t.mayRelay(outboxOf.get(user), s, ps)).as(user + " -> " + s).isEqualTo(writes.contains("%W~" + s + " ")
                        || writes.endsWith("%W~" + s + ")"));
                // No write of any kind on it (a function runs with these rules, so FCALL adds none; the worker's own reply stream is its own: it reads and clears it).
                if (user.equals("w") && s.equals(t.toolsReplyStream("w1"))) continue;
                for (String rule : relay.user(user).rules()) {
                    if (rule.matches(".*\\+(xadd|xtrim|xdel|del|unlink) .*")) {
                        assertThat(rule + " ").as(user).doesNotContain("~" + s + " ").doesNotContain("~" + s + ") ");
                    }
                }
            }
        }
        String relayRules = String.join(" ", relay.user("r").rules());
        for (String s : shared) assertThat(relayRules).contains("%W~" + s);
        assertThat(relayRules).contains("+fcall|sg_reply").doesNotContain("+eval");
        assertThatThrownBy(() -> AclRules.builder(t).relay("r", null).build()).isInstanceOf(ConfigException.class)
                .hasMessageContaining("SG_PUBLISH_VIA");
    }

    private static String xaddSelector(AclRules.User u) {
        return u.rules().stream().filter(r -> r.startsWith("(+xadd ")).findFirst().orElseThrow();
    }

    @Test
    void passwordsAreWrittenOnlyAsTheirSha256() throws Exception {
        AclRules r = AclRules.builder(Topology.defaults()).worker("w", "s3cret").build();
        byte[] d = java.security.MessageDigest.getInstance("SHA-256").digest("s3cret".getBytes(java.nio.charset.StandardCharsets.UTF_8));
        String hex = java.util.HexFormat.of().formatHex(d);
        assertThat(r.setUserCommands() + r.aclFile()).doesNotContain("s3cret");
        assertThat(r.user("w").rules()).contains("#" + hex);
    }

    @Test
    void partitionsAreListedExactlyAndReplyStreamsFollowWorkerIds() {
        Topology t = Topology.builder().inboundPartitions(3).build();
        AclRules r = AclRules.builder(t).platforms(List.of("webchat")).workerIds(List.of("w1", "w2")).worker("w", "p").build();
        String line = r.user("w").aclFileLine();
        List<String> parts = t.inboundStreams();
        assertThat(parts).hasSize(3);
        assertThat(line).contains("~" + parts.get(0) + " ~" + parts.get(1) + " ~" + parts.get(2) + ")")
                .contains("%W~" + parts.get(0) + ":dead").contains("%W~sg:stream:outbound:webchat ")
                .contains("~sg:tools:reply:w1 ~sg:tools:reply:w2").doesNotContain("reply:*").doesNotContain("inbound*")
                // The pause flags keep a partition's hash tag: they live in its slot.
                .contains("%R~" + parts.get(0) + ":paused:*");
        assertThat(AclRules.builder(t).worker("w", "p").build().user("w").aclFileLine()).contains("~sg:tools:reply:*");
    }

    /** While SG_INBOUND_PARTITIONS changes, one set of users names the inbound streams of both counts, each exactly. */
    @Test
    void usersForAPartitionCountChangeNameTheInboundStreamsOfBothCounts() {
        Topology t = Topology.builder().inboundPartitions(2).build();
        AclRules r = AclRules.builder(t).platforms(List.of("webchat")).publishVia(io.stargazer.bus.PublishVia.RELAY)
                .alsoInboundPartitions(1).alsoInboundPartitions(3).gateway("g", null, "webchat").worker("w", null)
                .relay("r", null).monitor("m", null).operator("o", null).build();
        List<String> all = new java.util.ArrayList<>(t.inboundStreams());
        all.addAll(Topology.partitionNames(t.inboundStream(), 1));
        all.addAll(Topology.partitionNames(t.inboundStream(), 3));
        for (String in : all) {
            assertThat(names(r.user("r"))).contains("%W~" + in, "%W~" + in + ":dead");
            assertThat(names(r.user("w"))).contains("~" + in, "%R~" + Topology.slotKey(in, "paused:") + "*");
            assertThat(names(r.user("m"))).contains("%R~" + in);
            assertThat(names(r.user("o"))).contains("~" + in + ":dead");
            assertThat(names(r.user("g"))).noneMatch(k -> k.endsWith("~" + in));
        }
        assertThat(names(AclRules.builder(t).worker("w", null).build().user("w")))
                .doesNotContain("~" + t.inboundStream()).noneMatch(k -> k.contains("of-3"));
        assertThatThrownBy(() -> AclRules.builder(t).alsoInboundPartitions(0)).isInstanceOf(ConfigException.class)
                .hasMessageStartingWith("SG_INBOUND_PARTITIONS_ALSO: '0'");
        assertThatThrownBy(() -> AclRules.builder(Topology.builder().inboundStream("a{b}").build()).alsoInboundPartitions(2))
                .isInstanceOf(ConfigException.class).hasMessageContaining("SG_INBOUND_STREAM");
    }

    /** Every word of a user's rules, selectors' parentheses taken off: commands and key patterns. */
    private static List<String> names(AclRules.User u) {
        return u.rules().stream().flatMap(x -> java.util.Arrays.stream(x.replace("(", "").replace(")", "").split(" "))).toList();
    }

    @Test
    void globCharactersInNamesAreEscapedSoAPatternMatchesOnlyItsStream() {
        Topology t = Topology.builder().inboundStream("in*[x]?").build();
        String line = AclRules.builder(t).gateway("g", "p", "discord").build().user("g").aclFileLine();
        assertThat(line).contains("%W~in\\*\\[x\\]\\?").doesNotContain("~in*");
    }

    @Test
    void redisBefore7IsRefusedNamingTheReason() {
        assertThatThrownBy(() -> AclRules.builder(Topology.defaults()).serverVersion("6.2.6").worker("w", "p").build())
                .isInstanceOf(ConfigException.class).hasMessageContaining("7.0").hasMessageContaining("selectors");
        assertThat(AclRules.builder(Topology.defaults()).serverVersion("7.2.4").worker("w", "p").build().user("w").rules())
                .contains("+client|setinfo");
        assertThat(AclRules.builder(Topology.defaults()).serverVersion("7.0.15").worker("w", "p").build().user("w").rules())
                .doesNotContain("+client|setinfo");
    }

    @Test
    void badUserNamesAndDuplicatesAreRefused() {
        assertThatThrownBy(() -> AclRules.builder(Topology.defaults()).worker("a b", "p")).isInstanceOf(ConfigException.class);
        assertThatThrownBy(() -> AclRules.builder(Topology.defaults()).worker("(x)", "p")).isInstanceOf(ConfigException.class);
        assertThatThrownBy(() -> AclRules.builder(Topology.defaults()).worker("w", "p").tools("w", "q"))
                .isInstanceOf(ConfigException.class).hasMessageContaining("twice");
        assertThatThrownBy(() -> AclRules.builder(Topology.defaults()).gateway("g", "p")).isInstanceOf(ConfigException.class);
    }
}
