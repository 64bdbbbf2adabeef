package io.stargazer.bus;

import static io.stargazer.bus.testing.RawRedis.b;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.lettuce.core.Consumer;
import io.lettuce.core.RedisCommandExecutionException;
import io.lettuce.core.ScriptOutputType;
import io.lettuce.core.XReadArgs;
import io.stargazer.bus.testing.RawRedis;
import io.stargazer.bus.testing.TestRedis;
import io.stargazer.embedded.RedisServerProcess;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

// The stargazer functions library (issue 18) on a Redis 7 of its own: provisioning loads it once and creates the
// topology's groups, the bus picks it up (SG_SERVER_CODE=auto), and each function keeps its promise whatever its
// arguments: nothing a group has not acknowledged is trimmed, keys of the wrong shape are refused.
class FunctionsIT {
    private static RedisServerProcess server;
    private static RawRedis admin;

    @BeforeAll
    static void start() {
        server = RedisServerProcess.builder().start();
        admin = new RawRedis(url());
    }

    @AfterAll
    static void stop() {
        admin.close();
        server.stop();
    }

    private static RedisUrl url() {
        return RedisUrl.parse(server.url());
    }

    private static BusConfig config(Topology t) {
        return BusConfig.builder().topology(t).role(NodeRole.STANDALONE).nodeId("f1").platforms(List.of("webchat")).build();
    }

    @Test
    void provisioningLoadsTheLibraryAndCreatesTheGroupsOnceAndTheBusThenUsesFunctions() {
        admin.sync().functionFlush(io.lettuce.core.FlushMode.SYNC);
        Topology t = TestRedis.topology();
        try (EventBus before = EventBus.connect(url(), config(t))) {
            assertThat(before.serverCode()).isEqualTo(ServerCodeMode.SCRIPTS);
        }
        assertThatThrownBy(() -> EventBus.connect(url(), config(t).toBuilder().serverCode(ServerCodeMode.FUNCTIONS).build()))
                .isInstanceOf(StargazerException.class).hasMessageContaining("SG_SERVER_CODE=functions")
                .hasMessageContaining("not loaded");

        Provisioning.Result first = Provisioning.provision(url(), config(t));
        assertThat(first.changed()).isTrue();
        assertThat(first.actions()).containsExactly(
                "loaded library stargazer 10",
                "created group " + t.workerGroup() + " on " + t.inboundStream(),
                "created group " + t.toolsGroup() + " on " + t.toolsStream());
        Provisioning.Result again = Provisioning.provision(url(), config(t));
        assertThat(again.changed()).isFalse();
        assertThat(again.actions()).hasSize(3).allSatisfy(a -> assertThat(a).containsAnyOf("already loaded", "already there"));

        try (EventBus bus = EventBus.connect(url(), config(t))) {
            assertThat(bus.serverCode()).isEqualTo(ServerCodeMode.FUNCTIONS);
        }
        // A library of another version is not used, and provisioning replaces it.
        admin.sync().functionLoad(io.stargazer.bus.internal.ServerCode.librarySource().replace("local VERSION = 10", "local VERSION = 11"), true);
        try (EventBus old = EventBus.connect(url(), config(t))) {
            assertThat(old.serverCode()).isEqualTo(ServerCodeMode.SCRIPTS);
        }
        assertThat(Provisioning.provision(url(), config(t)).actions()).first().isEqualTo("replaced library stargazer 11 with 10");
    }

    @Test
    void evictWithFunctionsIsRefusedAndAutoKeepsScriptsUnderEvict() {
        assertThatThrownBy(() -> BusConfig.builder().trimPolicy(TrimPolicy.EVICT).serverCode(ServerCodeMode.FUNCTIONS).build())
                .isInstanceOf(ConfigException.class).hasMessageContaining("SG_SERVER_CODE");
        Topology t = TestRedis.topology();
        Provisioning.provision(url(), config(t));
        try (EventBus bus = EventBus.connect(url(), config(t).toBuilder().trimPolicy(TrimPolicy.EVICT).build())) {
            assertThat(bus.serverCode()).isEqualTo(ServerCodeMode.SCRIPTS);
        }
    }

    @Test
    void noArgumentsMakeAFunctionTrimWhatAGroupHasNotAcknowledged() {
        Topology t = TestRedis.topology();
        Provisioning.provision(url(), config(t));
        String s = t.inboundStream();
        List<String> ids = new ArrayList<>();
        for (int i = 0; i < 1500; i++) ids.add(admin.xadd(s, "payload", b("x" + i), "trace_id", "t"));
        // The worker group has read nothing: 1500 entries are unread, above the smallest cap a caller may ask for.
        assertThat(fcallError("sg_publish_batch", new String[] {s}, "3", "MAXLEN", "=", "0", "p", "t")).contains("XADD options");
        assertThat(fcallError("sg_publish_batch", new String[] {s}, "3", "MAXLEN", "~", "0", "p", "t")).contains("cap '0'");
        assertThat(fcallError("sg_publish_batch", new String[] {s}, "3", "MINID", "~", "9999999999999-0", "p", "t")).contains("XADD options");
        assertThat(fcallError("sg_publish_batch", new String[] {s}, "5", "MAXLEN", "~", "1000", "LIMIT", "0", "p", "t")).contains("XADD options");
        assertThat(fcallError("sg_trim", new String[] {s}, "0")).contains("cap '0'");
        assertThat(fcallError("sg_replay", new String[] {s, "{" + s + "}:replay:d:1-1"}, "1000", "3", "MAXLEN", "=", "0",
                "payload", "x", "replay_of", "1-1")).contains("XADD options");
        // Allowed options, at the smallest cap: still nothing unread goes.
        fcall("sg_publish_batch", new String[] {s}, "3", "MAXLEN", "~", "1000", "p", "t", "p2", "t2");
        fcall("sg_trim", new String[] {s}, "1000");
        fcall("sg_publish", withHashes(s), "60000", "2", "3", "MAXLEN", "~", "1000", "1", "", "p", "t");
        assertThat(admin.xlen(s)).isEqualTo(1503);
        assertThat(admin.xrange(s).get(0).getId()).isEqualTo(ids.get(0));

        // Once the group has read and acknowledged 1200, a publish at the cap trims below the first unacknowledged only.
        var read = admin.sync().xreadgroup(Consumer.from(b(t.workerGroup()), b("c")), XReadArgs.Builder.count(1200),
                XReadArgs.StreamOffset.lastConsumed(b(s)));
        admin.sync().xack(b(s), b(t.workerGroup()), read.get(0).getBody() == null ? new String[0]
                : read.stream().map(m -> m.getId()).toArray(String[]::new));
        fcall("sg_publish_batch", new String[] {s}, "3", "MAXLEN", "~", "1000", "p", "t");
        List<String> left = admin.xrange(s).stream().map(m -> m.getId()).toList();
        assertThat(left).hasSizeLessThan(1504).contains(ids.get(1200), ids.get(1499));
        fcall("sg_trim", new String[] {s}, "1000");
        assertThat(admin.xrange(s).get(0).getId()).isEqualTo(ids.get(1200));
    }

    /** Version 10: told the caller saw groups on it (a second argument '1'), sg_trim trims a stream without any not at all. */
    @Test
    void sgTrimHoldsAStreamWithoutGroupsWhenTheCallerSawSome() {
        Topology t = TestRedis.topology();
        Provisioning.provision(url(), config(t));
        String s = t.inboundStream() + ":lost";
        for (int i = 0; i < 1500; i++) admin.xadd(s, "payload", b("x" + i), "trace_id", "t");
        List<?> held = (List<?>) fcall("sg_trim", new String[] {s}, "1000", "1");
        assertThat(held.get(0)).as("length after").isEqualTo(1500L);
        assertThat(held.get(2)).as("has groups").isEqualTo(0L);
        assertThat(admin.xlen(s)).isEqualTo(1500);
        fcall("sg_trim", new String[] {s}, "1000", "0");
        assertThat(admin.xlen(s)).as("not held: trimmed to the cap, whole nodes of 100").isBetween(1000L, 1099L);
    }

    @Test
    void functionsRefuseKeysOfTheWrongShape() {
        Topology t = TestRedis.topology();
        Provisioning.provision(url(), config(t));
        String s = t.outboundStream("webchat");
        String other = t.inboundStream();
        String[] othersHashes = withHashes(other);
        assertThat(fcallError("sg_publish", new String[] {s, othersHashes[1], othersHashes[2]}, "1000", "2", "0", "1", "k", "p", "t"))
                .contains("dedupe hash key");
        assertThat(fcallError("sg_publish", new String[] {s, "{" + s + "}:dedupe:1", "{" + s + "}:dedupe:0"}, "1000", "2", "0", "1", "k", "p", "t"))
                .contains("dedupe hash key");
        assertThat(fcallError("sg_publish", new String[] {s}, "1000", "2", "0", "1", "k", "p", "t")).contains("expected 3 keys, got 1");
        assertThat(fcallError("sg_publish", withHashes(s), "1000", "3", "0", "1", "k", "p", "t", "x")).contains("width '3'");
        assertThat(fcallError("sg_pause", new String[] {s, "{" + other + "}:paused:g"}, "g")).contains("pause key");
        String[] replyKeys = {s, "{" + s + "}:dedupe:0", "{" + s + "}:dedupe:1", other};
        assertThat(fcallError("sg_reply", replyKeys, "1000", "g", "1-1", "0", "p", "t", "reply:x:1-1"))
                .contains("is not reply:<source>:<id>");
        assertThat(fcallError("sg_replay", new String[] {s, "{" + other + "}:replay:d:1-1"}, "1000", "0", "payload", "x",
                "replay_of", "1-1")).contains("replay key");
        assertThat(fcallError("sg_tool_begin", new String[] {"{t}:result:r1", "{t}:run:r2"}, "o", "1000")).contains("run key");
        assertThat(admin.sync().exists(b("{" + other + "}:paused:g"))).isZero();
    }

    /**
     * sg_tool_renew (docs/functions.md, docs/tools.md): renews its owner's lease; takes back a lease that lapsed while
     * no reply is stored (an outage longer than the lease while the tool still ran: before version 6 it was lost for
     * good, and every later copy of the request ran the tool again); leaves another owner's lease and a finished
     * request alone.
     */
    @Test
    void toolRenewTakesBackALapsedLeaseButNeverAnotherOwnersOrAFinishedOne() {
        Provisioning.provision(url(), config(TestRedis.topology()));
        String[] keys = {"{sg:t}:result:r1", "{sg:t}:run:r1"};
        assertThat(toolRenew(keys, "me")).as("lapsed, nothing stored: taken back").isEqualTo(2);
        assertThat(RawRedis.s(admin.sync().get(b(keys[1])))).isEqualTo("me");
        assertThat(admin.sync().pttl(b(keys[1]))).isBetween(1L, 30_000L);
        assertThat(toolRenew(keys, "me")).as("held: renewed").isEqualTo(1);
        assertThat(toolRenew(keys, "other")).as("another owner's").isEqualTo(0);
        assertThat(RawRedis.s(admin.sync().get(b(keys[1])))).isEqualTo("me");
        admin.sync().del(b(keys[1]));
        admin.sync().set(b(keys[0]), b("reply"));
        assertThat(toolRenew(keys, "me")).as("lapsed, a reply stored").isEqualTo(-1);
        assertThat(admin.sync().exists(b(keys[1]))).isZero();
        assertThat(fcallError("sg_tool_renew", new String[] {"{sg:t}:run:r1"}, "me", "30000")).contains("expected 2 keys");
    }

    /**
     * sg_tool_finish stores a run's reply only when none is stored, and answers the one stored before: a second run
     * of a request (after a lapsed lease) must not replace the answer a copy of it may have been given. It drops the
     * lease only for its owner.
     */
    @Test
    void toolFinishKeepsTheFirstStoredReply() {
        Provisioning.provision(url(), config(TestRedis.topology()));
        String[] keys = {"{sg:t}:result:f1", "{sg:t}:run:f1"};
        admin.sync().set(b(keys[1]), b("me"));
        assertThat(toolFinish(keys, "first", "other")).containsExactly("stored", "");
        assertThat(RawRedis.s(admin.sync().get(b(keys[1])))).as("another owner's lease stays").isEqualTo("me");
        assertThat(toolFinish(keys, "second", "me")).containsExactly("done", "first");
        assertThat(RawRedis.s(admin.sync().get(b(keys[0])))).isEqualTo("first");
        assertThat(admin.sync().exists(b(keys[1]))).as("its owner's lease dropped").isZero();
        assertThat(admin.sync().pttl(b(keys[0]))).isBetween(1L, 600_000L);
    }

    private static List<String> toolFinish(String[] keys, String reply, String owner) {
        List<?> r = (List<?>) fcall("sg_tool_finish", keys, reply, "600000", owner);
        return r.stream().map(v -> RawRedis.s((byte[]) v)).toList();
    }

    private static long toolRenew(String[] keys, String owner) {
        return admin.sync().<Long>fcall("sg_tool_renew", ScriptOutputType.INTEGER, new byte[][] {b(keys[0]), b(keys[1])}, b(owner), b("30000"));
    }

    /**
     * docs/functions.md shows a service in another language publishing with dedupe keys through {@code sg_publish}
     * (redis-py). That call is made here as the page prints it, argument for argument (its variables standing for
     * their own names), so the page cannot drift from the library: it showed version 1's layout (each key after its
     * entry, width 3), which the library it ships refuses ({@code width '3' is not 2 or 4}).
     */
    @Test
    void theDocumentedRedisPyCallOfSgPublishRunsAsPrinted() throws Exception {
        Provisioning.provision(url(), config(TestRedis.topology()));
        String page = java.nio.file.Files.readString(java.nio.file.Path.of("..", "docs", "functions.md"));
        java.util.regex.Matcher call = java.util.regex.Pattern.compile("r\\.fcall\\(([^)]*)\\)").matcher(page);
        assertThat(call.find()).as("an r.fcall(...) example in docs/functions.md").isTrue();
        List<String> tokens = new ArrayList<>();
        java.util.regex.Matcher token = java.util.regex.Pattern.compile("\"([^\"]*)\"|([A-Za-z_][A-Za-z0-9_]*|-?[0-9]+)")
                .matcher(call.group(1));
        while (token.find()) tokens.add(token.group(1) != null ? token.group(1) : token.group(2));
        assertThat(tokens.get(0)).isEqualTo("sg_publish");
        int keyCount = Integer.parseInt(tokens.get(1));
        String[] keys = tokens.subList(2, 2 + keyCount).toArray(String[]::new);
        String[] args = tokens.subList(2 + keyCount, tokens.size()).toArray(String[]::new);
        String stream = keys[0];

        List<String> ids = ((List<?>) fcall("sg_publish", keys, args)).stream().map(id -> RawRedis.s((byte[]) id)).toList();
        assertThat(ids).hasSize(2);
        List<java.util.Map<String, byte[]>> entries = admin.xrange(stream).stream().map(RawRedis::fields).toList();
        assertThat(entries).hasSize(2);
        for (int i = 0; i < 2; i++) {
            String n = Integer.toString(i + 1);
            assertThat(RawRedis.s(entries.get(i).get("payload"))).isEqualTo("payload" + n);
            assertThat(RawRedis.s(entries.get(i).get("trace_id"))).isEqualTo("trace_id" + n);
            assertThat(RawRedis.s(entries.get(i).get("dedupe_key"))).isEqualTo("discord:" + n);
        }
        // The keys are recorded where every other publisher looks: the same call again adds nothing.
        assertThat(((List<?>) fcall("sg_publish", keys, args)).stream().map(id -> RawRedis.s((byte[]) id)).toList()).isEqualTo(ids);
        assertThat(admin.xlen(stream)).isEqualTo(2);
    }

    /** A stream and its two dedupe hashes (docs/once.md), the keys of sg_publish. */
    private static String[] withHashes(String stream) {
        return new String[] {stream, Topology.slotKey(stream, "dedupe:0"), Topology.slotKey(stream, "dedupe:1")};
    }

    /**
     * Redis refuses an FCALL as a whole while out of memory unless the function carries 'allow-oom' (scripts mode's EVAL
     * refuses only the commands inside that may use memory). The functions that keep a consumer's entries, trim, delete
     * idle consumers and resume run; those that add data are refused. Before library version 7 every one of them was
     * refused: a live consumer's entries were taken over and a full stream never trimmed while Redis was full. Version 8
     * adds sg_tool_keep, a run lease's renewal by its owner, which runs too; version 9 lets sg_reply_stream_maintain run.
     */
    @Test
    void underOomTheFunctionsThatAddNothingRunAndThoseThatAddAreRefused() {
        Topology t = TestRedis.topology();
        Provisioning.provision(url(), config(t));
        String s = t.inboundStream();
        String g = t.workerGroup();
        admin.xadd(s, "f", "v");
        String id = admin.sync().xreadgroup(Consumer.from(b(g), b("c")), XReadArgs.StreamOffset.lastConsumed(b(s))).get(0).getId();
        String pause = "{" + s + "}:paused:" + g;
        String[] tool = {"{sg:t}:result:oom", "{sg:t}:run:oom"};
        admin.sync().set(b(tool[1]), b("me"));
        try (io.stargazer.bus.testing.RedisFaults.Fault oom = io.stargazer.bus.testing.RedisFaults.refuseWrites(url())) {
            // A run lease: sg_tool_renew (which may SET a lapsed one back) is refused; its owner's sg_tool_keep renews it.
            assertThatThrownBy(() -> fcall("sg_tool_renew", tool, "me", "30000")).hasMessageContaining("OOM");
            assertThat(fcall("sg_tool_keep", tool, "me", "30000")).isEqualTo(List.of(1L));
            assertThat(admin.sync().pttl(b(tool[1]))).isBetween(1L, 30_000L);
            assertThat(fcall("sg_tool_keep", tool, "other", "30000")).isEqualTo(List.of(0L));
            assertThat(fcall("sg_tool_keep", new String[] {"{sg:t}:result:x", "{sg:t}:run:x"}, "me", "30000")).as("lapsed: not taken back")
                    .isEqualTo(List.of(-2L));
            assertThat(admin.sync().exists(b("{sg:t}:run:x"))).isZero();
            assertThat((List<?>) fcall("sg_refresh", new String[] {s}, g, "c", id)).isEmpty();
            assertThat(fcall("sg_confirm", new String[] {s}, g, "c", id, "1")).isEqualTo(List.of(2L));
            assertThat(fcall("sg_delete_idle_consumer", new String[] {s}, g, "gone")).isEqualTo(List.of(0L));
            assertThat((List<?>) fcall("sg_trim", new String[] {s}, "1000")).hasSize(4);
            assertThat(fcall("sg_resume", new String[] {s, pause}, g)).isEqualTo(List.of(0L));
            // A tools client's reply stream upkeep (before each of its reads): lengthens the expiry, trims what was read.
            assertThat(fcall("sg_reply_stream_maintain", new String[] {s}, "60000", id, "1000")).isEqualTo(List.of(1L));
            assertThat(admin.sync().pttl(b(s))).isBetween(1L, 60_000L);
            assertThat(admin.sync().xlen(b(s))).as("the entry read is kept (MINID), nothing older").isEqualTo(1L);
            assertThatThrownBy(() -> fcall("sg_reply_stream_init", new String[] {s + ":r"}, "60000")).hasMessageContaining("OOM");
            assertThatThrownBy(() -> fcall("sg_pause", new String[] {s, pause}, g)).hasMessageContaining("OOM");
            assertThatThrownBy(() -> fcall("sg_publish_batch", new String[] {s}, "0", "p", "t")).hasMessageContaining("OOM");
        }
    }

    private static Object fcall(String function, String[] keys, String... args) {
        byte[][] k = new byte[keys.length][];
        for (int i = 0; i < keys.length; i++) k[i] = b(keys[i]);
        byte[][] a = new byte[args.length][];
        for (int i = 0; i < args.length; i++) a[i] = b(args[i]);
        return admin.sync().fcall(function, ScriptOutputType.MULTI, k, a);
    }

    private static String fcallError(String function, String[] keys, String... args) {
        try {
            fcall(function, keys, args);
            throw new AssertionError(function + " was not refused");
        } catch (RedisCommandExecutionException e) {
            assertThat(e.getMessage()).startsWith("ERR stargazer:");
            return e.getMessage();
        }
    }
}
