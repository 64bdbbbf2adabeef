package io.stargazer.bus.acl;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;

import io.lettuce.core.RedisCommandExecutionException;
import io.lettuce.core.StreamMessage;
import io.lettuce.core.codec.ByteArrayCodec;
import io.lettuce.core.output.NestedMultiOutput;
import io.lettuce.core.protocol.CommandArgs;
import io.lettuce.core.protocol.ProtocolKeyword;
import io.stargazer.bus.BusConfig;
import io.stargazer.bus.Envelope;
import io.stargazer.bus.EventBus;
import io.stargazer.bus.GroupInfo;
import io.stargazer.bus.NodeRole;
import io.stargazer.bus.ProvisioningException;
import io.stargazer.bus.PublishVia;
import io.stargazer.bus.RedisServerException;
import io.stargazer.bus.RedisUrl;
import io.stargazer.bus.Topology;
import io.stargazer.bus.testing.RawRedis;
import io.stargazer.bus.testing.TestRedis;
import io.stargazer.bus.tools.TestTools;
import io.stargazer.bus.tools.ToolClient;
import io.stargazer.bus.tools.ToolRegistry;
import io.stargazer.bus.tools.ToolService;
import io.stargazer.embedded.RedisServerProcess;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

// Per-role ACL users (AclRules) on a real Redis 7 provisioned with the stargazer functions library: each role does its
// whole job as its own user with no command refused (the server's ACL LOG stays empty), calling the library's functions
// instead of EVAL, and each action outside the role is refused with NOPERM or by the function (issue 18).
class AclIT {
    private static final Duration WAIT = Duration.ofSeconds(30);
    private static RedisServerProcess server;
    private static RawRedis admin;

    @BeforeAll
    static void start() {
        server = RedisServerProcess.builder().start();
        admin = new RawRedis(RedisUrl.parse(server.url()));
        io.stargazer.bus.Provisioning.provision(RedisUrl.parse(server.url()), BusConfig.builder().topology(TestRedis.topology()).build());
    }

    @AfterAll
    static void stop() {
        admin.close();
        server.stop();
    }

    private static AclRules rules(Topology t) {
        return rules(t, PublishVia.DIRECT);
    }

    private static AclRules rules(Topology t, PublishVia via) {
        AclRules.Builder b = AclRules.builder(t).platforms(List.of("discord", "webchat")).workerIds(List.of("w1"))
                .serverVersion(server.version()).publishVia(via);
        if (via == PublishVia.RELAY) b.relay("relay", "pw-relay");
        return b
                .gateway("gw-discord", "pw-gd", "discord")
                .gateway("gw-webchat", "pw-gw", "webchat")
                .worker("worker", "pw-worker")
                .tools("tools", "pw-tools")
                .monitor("monitor", "pw-monitor")
                .operator("operator", "pw-operator")
                .build();
    }

    private static void load(AclRules rules) {
        for (AclRules.User u : rules.users()) {
            List<String> args = new ArrayList<>();
            args.add("SETUSER");
            args.addAll(u.setUserArgs());
            assertThat(admin.sync().dispatch(kw("ACL"), new NestedMultiOutput<>(ByteArrayCodec.INSTANCE), args(args)).toString())
                    .isNotEmpty();
        }
    }

    private static RedisUrl as(String user, String password) {
        return RedisUrl.parse(server.url()).withCredentials(user, password);
    }

    private static BusConfig config(Topology t, NodeRole role, String nodeId, List<String> platforms) {
        return config(t, role, nodeId, platforms, PublishVia.DIRECT);
    }

    private static BusConfig config(Topology t, NodeRole role, String nodeId, List<String> platforms, PublishVia via) {
        return BusConfig.builder().topology(t).role(role).nodeId(nodeId).platforms(platforms).streamMaxlen(1000).publishVia(via).build();
    }

    @Test
    void everyRoleDoesItsWholeJobAsItsOwnUserWithNoCommandRefused() throws Exception {
        wholeJob(PublishVia.DIRECT);
    }

    /**
     * Relay mode: the same whole job, each role writing only its outbox and the relay, as its own user, adding every
     * entry to its target: messages, answers (sg_reply into the worker's outbox), a tool call and its reply, dead letters,
     * a replay by the operator, a paused and resumed group; nothing refused.
     */
    @Test
    void inRelayModeEveryRoleDoesItsWholeJobThroughTheRelayWithNoCommandRefused() throws Exception {
        wholeJob(PublishVia.RELAY);
    }

    private void wholeJob(PublishVia via) throws Exception {
        Topology t = TestRedis.topology();
        load(rules(t, via));
        boolean relayMode = via == PublishVia.RELAY;
        if (relayMode) {
            // Provisioned as an administrator would: the relay group on every outbox.
            io.stargazer.bus.Provisioning.provision(RedisUrl.parse(server.url()), BusConfig.builder().topology(t)
                    .platforms(List.of("discord", "webchat")).publishVia(via).build());
        }
        aclLog("RESET");
        List<AutoCloseable> open = new ArrayList<>();
        Set<String> discord = ConcurrentHashMap.newKeySet();
        Set<String> webchat = ConcurrentHashMap.newKeySet();
        List<String> webchatAll = new java.util.concurrent.CopyOnWriteArrayList<>();
        try {
            if (relayMode) {
                EventBus relayBus = EventBus.connect(as("relay", "pw-relay"), config(t, NodeRole.RELAY, "r1", List.of("discord", "webchat"), via));
                open.add(relayBus);
                relayBus.ensureStreams();
                open.add(io.stargazer.bus.Relay.start(relayBus, c -> c.blockTimeout(Duration.ofMillis(200))));
            }
            EventBus toolsBus = EventBus.connect(as("tools", "pw-tools"), config(t, NodeRole.TOOLS, "t1", List.of(), via));
            open.add(toolsBus);
            toolsBus.ensureStreams();
            open.add(ToolService.start(toolsBus, TestTools.register(ToolRegistry.builder()).build()));

            EventBus worker = EventBus.connect(as("worker", "pw-worker"), config(t, NodeRole.WORKER, "w1", List.of("discord", "webchat"), via));
            open.add(worker);
            worker.ensureStreams();
            ToolClient tools = ToolClient.create(worker);
            open.add(tools);
            io.stargazer.bus.Subscription workerSub = worker.subscribe(worker.consumer(t.inboundStream(), t.workerGroup()).blockTimeout(Duration.ofMillis(200)).build(), d -> {
                Envelope in = d.envelope();
                Object result = in.get("tool") != null
                        ? tools.callBlocking("add", Map.of("a", 1, "b", 2), Duration.ofSeconds(10)) : null;
                Envelope answer = Envelope.of("channel_id", in.channelId(), "content", "re:" + in.content(), "result", result);
                // Answer-and-acknowledge in one step (sg_reply) for some, a plain publish for the others.
                if (in.content().endsWith("0")) d.reply(t.outboundStream(in.platform()), answer).join();
                else worker.publishOutbound(in.platform(), answer);
            });
            open.add(workerSub);

            EventBus gwDiscord = EventBus.connect(as("gw-discord", "pw-gd"), config(t, NodeRole.GATEWAY, "g1", List.of("discord"), via));
            open.add(gwDiscord);
            gwDiscord.ensureStreams();
            open.add(gwDiscord.subscribe(gwDiscord.consumer(t.outboundStream("discord"), t.gatewayGroup("discord"))
                    .blockTimeout(Duration.ofMillis(200)).build(), d -> discord.add(d.envelope().content())));
            EventBus gwWebchat = EventBus.connect(as("gw-webchat", "pw-gw"), config(t, NodeRole.GATEWAY, "g2", List.of("webchat"), via));
            open.add(gwWebchat);
            gwWebchat.ensureStreams();
            open.add(gwWebchat.subscribe(gwWebchat.consumer(t.outboundStream("webchat"), t.gatewayGroup("webchat"))
                    .blockTimeout(Duration.ofMillis(200)).build(), d -> {
                        webchat.add(d.envelope().content());
                        webchatAll.add(d.envelope().content());
                    }));

            // More than the cap of 1000, published concurrently: batched EVAL publishes and the SAFE trim guard run
            // as the gateway user, on an inbound stream that user may not read.
            List<CompletableFuture<String>> sent = new ArrayList<>();
            for (int i = 0; i < 1200; i++) {
                sent.add(gwDiscord.publishInboundAsync(Envelope.of("platform", "discord", "channel_id", "c" + (i % 7),
                        "content", "d" + i, "tool", i % 100 == 0 ? true : null)));
            }
            for (CompletableFuture<String> f : sent) f.get();
            gwWebchat.publishInbound(Envelope.of("platform", "webchat", "channel_id", "w", "content", "hello", "tool", true));
            // Published twice with one dedupe key (sg_publish; in relay mode deduped as the relay adds it): stored once.
            String once = gwWebchat.publishInbound(Envelope.of("platform", "webchat", "channel_id", "w", "content", "once"),
                    io.stargazer.bus.PublishOptions.dedupeKey("k1"));
            String again = gwWebchat.publishInbound(Envelope.of("platform", "webchat", "channel_id", "w", "content", "once"),
                    io.stargazer.bus.PublishOptions.dedupeKey("k1"));
            if (!relayMode) assertThat(again).isEqualTo(once);
            // A malformed entry from outside: the worker dead-letters it.
            String bad = admin.xadd(t.inboundStream(), "payload", new byte[] {(byte) 0xc1}, "trace_id", "x");

            await().atMost(WAIT).until(() -> discord.size() == 1200 && webchat.size() == 2);
            assertThat(webchat).containsExactlyInAnyOrder("re:hello", "re:once");
            if (relayMode) {
                // Nothing reached a shared stream but through the relay: every role's outbox was written, and moved.
                for (String o : t.outboxes(List.of("discord", "webchat"))) {
                    if (o.endsWith(":matrix") || o.equals(t.operatorOutbox())) continue; // the operator replays below
                    assertThat(admin.xlen(o)).as(o).isPositive();
                }
            }
            for (AutoCloseable c : open) if (c instanceof EventBus b) assertThat(b.serverCode()).isEqualTo(io.stargazer.bus.ServerCodeMode.FUNCTIONS);
            await().atMost(WAIT).until(() -> admin.xlen(t.deadLetterStream(t.inboundStream())) == 1);
            List<StreamMessage<byte[], byte[]>> dead = admin.xrange(t.deadLetterStream(t.inboundStream()));
            assertThat(RawRedis.s(RawRedis.fields(dead.get(0)).get("source_id"))).isEqualTo(bad);
            // The gateway's guard trimmed what the worker had acknowledged.
            await().atMost(WAIT).untilAsserted(() -> {
                gwDiscord.publishInbound(Envelope.of("platform", "discord", "channel_id", "c", "content", "last"));
                assertThat(admin.xlen(t.inboundStream())).isLessThan(1200);
            });
            await().atMost(WAIT).until(() -> discord.contains("re:last"));
            assertThat(webchatAll).containsOnlyOnce("re:once");

            try (EventBus monitor = EventBus.connect(as("monitor", "pw-monitor"), config(t, NodeRole.WORKER, "m1", List.of()))) {
                assertThat(monitor.streamInfo(t.inboundStream())).isPresent();
                assertThat(monitor.groups(t.outboundStream("discord"))).extracting(GroupInfo::name)
                        .containsExactly(t.gatewayGroup("discord"));
                assertThat(monitor.consumers(t.inboundStream(), t.workerGroup())).isNotEmpty();
                // Whether a group is paused, as `stargazer streams` shows (refused before: NOPERM on the flag's key).
                assertThat(monitor.paused(t.inboundStream(), t.workerGroup())).isFalse();
                assertThat(monitor.paused(t.outboundStream("discord"), t.gatewayGroup("discord"))).isFalse();
            }
            // The operator replays the dead letter (sg_replay, then XDEL; in relay mode into its outbox, which the relay
            // moves) and pauses and resumes the worker group.
            try (EventBus operator = EventBus.connect(as("operator", "pw-operator"),
                    config(t, NodeRole.WORKER, "o1", List.of("discord", "webchat"), via))) {
                assertThat(operator.serverCode()).isEqualTo(io.stargazer.bus.ServerCodeMode.FUNCTIONS);
                assertThat(operator.deadLetters().list(io.stargazer.bus.DeadLetterFilter.builder().build()).entries()).hasSize(1);
                assertThat(operator.deadLetters().replay(io.stargazer.bus.DeadLetterFilter.builder().build(),
                        io.stargazer.bus.ReplayOptions.builder().build()).replayed()).isEqualTo(1);
                if (relayMode) assertThat(admin.xlen(t.operatorOutbox())).isEqualTo(1); // not the inbound stream: the relay adds it
                // Malformed still: the worker dead-letters the replayed entry again, which names the first one.
                await().atMost(WAIT).until(() -> admin.xrange(t.deadLetterStream(t.inboundStream())).stream()
                        .anyMatch(m -> RawRedis.fields(m).containsKey("replay_of")));
                assertThat(operator.pause(t.inboundStream(), t.workerGroup())).isTrue();
                assertThat(worker.paused(t.inboundStream(), t.workerGroup())).isTrue();
                await().atMost(WAIT).until(() -> workerSub.state() == io.stargazer.bus.Subscription.State.PAUSED);
                gwDiscord.publishInbound(Envelope.of("platform", "discord", "channel_id", "p", "content", "paused"));
                await().during(Duration.ofSeconds(2)).atMost(Duration.ofSeconds(3)).until(() -> !discord.contains("re:paused"));
                assertThat(operator.resume(t.inboundStream(), t.workerGroup())).isTrue();
                await().atMost(WAIT).until(() -> discord.contains("re:paused"));
            }
        } finally {
            for (int i = open.size() - 1; i >= 0; i--) open.get(i).close();
        }
        // Nothing any role sent, from connecting to closing, was refused.
        assertThat(aclLog()).isEmpty();
    }

    /**
     * docs/cluster.md, "Changing N safely", in relay mode under the strict users: the rules name the inbound streams of one
     * SG_INBOUND_PARTITIONS exactly, so the relay, the workers and the monitor made for one count were refused (NOPERM) on
     * the other's streams while both ran. Users made with {@code alsoInboundPartitions} (the old count beside the new)
     * let a relay still on the old count move a new-count gateway's message and a new-count worker's dead letter, and an
     * old-count gateway's message, with no command refused (found by the review of relay mode).
     */
    @Test
    void inRelayModeAPartitionCountChangeRunsUnderUsersMadeForBothCounts() throws Exception {
        Topology oldN = TestRedis.topology();
        Topology newN = oldN.toBuilder().inboundPartitions(2).build();
        List<String> ps = List.of("discord", "webchat");
        load(AclRules.builder(newN).platforms(ps).workerIds(List.of("w1")).serverVersion(server.version())
                .publishVia(PublishVia.RELAY).alsoInboundPartitions(1).relay("relay", "pw-relay")
                .gateway("gw-webchat", "pw-gw", "webchat").worker("worker", "pw-worker").monitor("monitor", "pw-monitor").build());
        RedisUrl adminUrl = RedisUrl.parse(server.url());
        io.stargazer.bus.Provisioning.provision(adminUrl, config(oldN, NodeRole.RELAY, "p", ps, PublishVia.RELAY));
        io.stargazer.bus.Provisioning.provision(adminUrl, config(newN, NodeRole.RELAY, "p", ps, PublishVia.RELAY));
        aclLog("RESET");
        Set<String> handledOld = ConcurrentHashMap.newKeySet();
        // The relay is given the other count (SG_INBOUND_PARTITIONS_ALSO), the number its ACL user was made with.
        Topology relayN = oldN.toBuilder().alsoInboundPartitions(2).build();
        try (EventBus relayBus = EventBus.connect(as("relay", "pw-relay"), config(relayN, NodeRole.RELAY, "r1", ps, PublishVia.RELAY));
             io.stargazer.bus.Relay relay = io.stargazer.bus.Relay.start(relayBus, c -> c.blockTimeout(Duration.ofMillis(200)));
             EventBus oldWorker = EventBus.connect(as("worker", "pw-worker"), config(oldN, NodeRole.WORKER, "w1", ps, PublishVia.RELAY));
             EventBus newWorker = EventBus.connect(as("worker", "pw-worker"), config(newN, NodeRole.WORKER, "w1", ps, PublishVia.RELAY));
             EventBus oldGateway = EventBus.connect(as("gw-webchat", "pw-gw"), config(oldN, NodeRole.GATEWAY, "g1", List.of("webchat"), PublishVia.RELAY));
             EventBus newGateway = EventBus.connect(as("gw-webchat", "pw-gw"), config(newN, NodeRole.GATEWAY, "g2", List.of("webchat"), PublishVia.RELAY));
             EventBus monitor = EventBus.connect(as("monitor", "pw-monitor"), config(newN, NodeRole.RELAY, "m", ps, PublishVia.RELAY))) {
            io.stargazer.bus.Subscription drain = oldWorker.subscribeInbound(c -> c.blockTimeout(Duration.ofMillis(200)),
                    d -> handledOld.add(d.envelope().content()));
            io.stargazer.bus.Subscription failing = newWorker.subscribeInbound(c -> c.blockTimeout(Duration.ofMillis(200)).maxDeliveries(1), d -> {
                throw new IllegalStateException("fails once, dead-lettered through the workers' outbox");
            });
            oldGateway.publishInbound(Envelope.of("platform", "webchat", "channel_id", "c1", "content", "old"));
            newGateway.publishInbound(Envelope.of("platform", "webchat", "channel_id", "c1", "content", "new"));
            String newPartition = newN.inboundStreamFor("c1");
            await().atMost(WAIT).until(() -> handledOld.contains("old") && admin.xlen(newN.deadLetterStream(newPartition)) == 1);
            assertThat(admin.xlen(newPartition)).isEqualTo(1);
            for (String in : List.of(oldN.inboundStream(), newPartition)) {
                assertThat(monitor.groups(in)).extracting(GroupInfo::name).contains(oldN.workerGroup());
            }
            drain.close();
            failing.close();
        }
        for (String o : oldN.outboxes(ps)) assertThat(admin.xlen(oldN.deadLetterStream(o))).as(o).isZero();
        assertThat(aclLog()).isEmpty();
    }

    @Test
    void eachRoleIsRefusedWhatIsNotItsJob() {
        Topology t = TestRedis.topology();
        load(rules(t));
        String in = t.inboundStream();
        String discord = t.outboundStream("discord");
        String webchat = t.outboundStream("webchat");
        String tools = t.toolsStream();
        String reply = t.toolsReplyStream("w1");
        for (String s : List.of(in, discord, webchat, tools)) admin.xadd(s, "payload", new byte[] {(byte) 0x80});
        admin.xadd(reply, "payload", new byte[] {(byte) 0x80});

        RedisUrl gw = as("gw-discord", "pw-gd");
        assertThat(run(gw, "XADD", in, "*", "payload", "x")).isEqualTo("OK");
        assertDenied(gw, "XRANGE", in, "-", "+");
        assertDenied(gw, "XREAD", "STREAMS", in, "0");
        assertDenied(gw, "XREADGROUP", "GROUP", "g", "c", "STREAMS", in, ">");
        assertDenied(gw, "XINFO", "STREAM", in);
        assertDenied(gw, "XGROUP", "CREATE", in, "mine", "0");
        assertDenied(gw, "XREADGROUP", "GROUP", t.gatewayGroup("webchat"), "c", "STREAMS", webchat, ">");
        assertDenied(gw, "XRANGE", webchat, "-", "+");
        assertDenied(gw, "XADD", webchat, "*", "payload", "x");
        assertDenied(gw, "XADD", discord, "*", "payload", "x");
        assertDenied(gw, "XADD", tools, "*", "payload", "x");
        assertDenied(gw, "DEL", in);
        assertDenied(gw, "DEL", discord);
        assertDenied(gw, "UNLINK", discord);
        assertDenied(gw, "FLUSHALL");
        assertDenied(gw, "CONFIG", "GET", "*");
        assertDenied(gw, "KEYS", "*");
        assertDenied(gw, "SCAN", "0");
        assertDenied(gw, "SUBSCRIBE", "x");
        // No code of its own on the server: no EVAL, EVALSHA, SCRIPT or FUNCTION LOAD; only its role's functions.
        assertDenied(gw, "EVAL", "return 1", "0");
        assertDenied(gw, "FCALL", "sg_replay", "2", in, "{" + in + "}:replay:d:1-1", "1000", "0", "payload", "x", "replay_of", "1-1");
        assertDenied(gw, "FCALL", "sg_pause", "2", discord, "{" + discord + "}:paused:g", "g");
        assertDenied(gw, "FCALL", "sg_reply", "3", in, "{" + in + "}:dedupe:reply:x:1-1", discord, "1000", "g", "1-1", "0", "p", "t", "reply:x:1-1");
        // Only its own keys, through a function too.
        assertDenied(gw, "FCALL", "sg_publish_batch", "1", webchat, "0", "p", "t");
        // Through the bus: the same refusals arrive as typed exceptions.
        try (EventBus bus = EventBus.connect(gw, config(t, NodeRole.GATEWAY, "g9", List.of("discord")))) {
            assertThatThrownBy(() -> bus.publishOutbound("webchat", Envelope.of("content", "x")))
                    .isInstanceOf(RedisServerException.AccessDenied.class).hasMessageContaining("NOPERM");
            assertThatThrownBy(() -> bus.subscribe(bus.consumer(in, t.workerGroup()).build(), d -> { }))
                    .isInstanceOf(ProvisioningException.class).hasCauseInstanceOf(RedisServerException.AccessDenied.class);
            assertThat(bus.streamInfo(in)).isEmpty();
        }

        RedisUrl worker = as("worker", "pw-worker");
        assertThat(run(worker, "XADD", discord, "*", "payload", "x")).isEqualTo("OK");
        assertDenied(worker, "XADD", in, "*", "payload", "x");
        assertDenied(worker, "XRANGE", discord, "-", "+");
        assertDenied(worker, "XREADGROUP", "GROUP", t.gatewayGroup("discord"), "c", "STREAMS", discord, ">");
        assertDenied(worker, "XRANGE", tools, "-", "+");
        assertDenied(worker, "XADD", t.outboundStream("matrix"), "*", "payload", "x");
        assertDenied(worker, "XADD", t.toolsReplyStream("w2"), "*", "payload", "x");
        assertDenied(worker, "XRANGE", t.toolsReplyStream("w2"), "-", "+");
        assertDenied(worker, "DEL", in);
        // Its own reply stream it may not delete either: a tool client never does (an answer may still come: it leaves
        // the stream to expire), it only lengthens its expiry (PTTL, PEXPIRE).
        assertDenied(worker, "DEL", reply);
        assertThat(run(worker, "PTTL", reply)).isEqualTo("OK");
        assertDenied(worker, "PTTL", t.toolsReplyStream("w2"));
        assertDenied(worker, "DEL", t.toolsReplyStream("w2"));
        assertDenied(worker, "FLUSHDB");
        assertDenied(worker, "CONFIG", "SET", "maxmemory", "1");
        assertDenied(worker, "SHUTDOWN");

        RedisUrl toolsUser = as("tools", "pw-tools");
        assertThat(run(toolsUser, "XADD", reply, "*", "payload", "x")).isEqualTo("OK");
        assertDenied(toolsUser, "XRANGE", reply, "-", "+");
        assertDenied(toolsUser, "XREAD", "STREAMS", reply, "0");
        assertDenied(toolsUser, "XADD", tools, "*", "payload", "x");
        assertDenied(toolsUser, "XADD", in, "*", "payload", "x");
        assertDenied(toolsUser, "XADD", discord, "*", "payload", "x");
        assertDenied(toolsUser, "XRANGE", in, "-", "+");
        assertDenied(toolsUser, "DEL", tools);
        assertDenied(toolsUser, "FLUSHALL");
        assertDenied(toolsUser, "CONFIG", "GET", "requirepass");

        RedisUrl monitor = as("monitor", "pw-monitor");
        assertThat(run(monitor, "XLEN", in)).isEqualTo("OK");
        assertDenied(monitor, "XADD", in, "*", "payload", "x");
        assertDenied(monitor, "XRANGE", in, "-", "+");
        assertDenied(monitor, "XREADGROUP", "GROUP", t.workerGroup(), "c", "STREAMS", in, ">");
        assertDenied(monitor, "XACK", in, t.workerGroup(), "0-1");
        assertDenied(monitor, "XGROUP", "CREATE", in, "g", "0");
        assertDenied(monitor, "DEL", in);
        assertDenied(monitor, "FLUSHALL");
        assertDenied(monitor, "CLIENT", "KILL", "ID", "1");
    }

    /**
     * Issue 18's attacks, for each role that publishes, as its own user: code of its own (an endless loop), deleting
     * streams or entries others depend on, and the library's functions called with arguments that would trim unread
     * entries. Each is refused (NOPERM, or the function's "ERR stargazer:"), and every unread entry is still there.
     */
    @Test
    void strictRulesRefuseTheDestructiveActionsOfEachRole() {
        Topology t = TestRedis.topology();
        load(rules(t));
        String in = t.inboundStream();
        String discord = t.outboundStream("discord");
        String tools = t.toolsStream();
        for (String s : List.of(in, discord, tools)) {
            admin.sync().xgroupCreate(io.lettuce.core.XReadArgs.StreamOffset.from(RawRedis.b(s), "$"), RawRedis.b("readers"),
                    io.lettuce.core.XGroupCreateArgs.Builder.mkstream());
            for (int i = 0; i < 1500; i++) admin.xadd(s, "payload", new byte[] {(byte) 0x80}, "trace_id", "t");
        }
        Map<RedisUrl, String> publishesTo = Map.of(as("gw-discord", "pw-gd"), in, as("worker", "pw-worker"), discord,
                as("tools", "pw-tools"), t.toolsReplyStream("w1"));
        // Streams it does not publish to (it may consume some: consuming gives no trimming).
        Map<RedisUrl, List<String>> others = Map.of(as("gw-discord", "pw-gd"), List.of(discord, tools, t.outboundStream("webchat")),
                as("worker", "pw-worker"), List.of(in, t.toolsReplyStream("w2")), as("tools", "pw-tools"), List.of(in, discord, tools));
        for (Map.Entry<RedisUrl, String> e : publishesTo.entrySet()) {
            RedisUrl u = e.getKey();
            String own = e.getValue();
            assertDenied(u, "EVAL", "while true do end", "0");
            assertDenied(u, "EVALSHA", "e0e1f9fabfc9d4800c877a703b823ac0578ff8db", "0");
            assertDenied(u, "SCRIPT", "LOAD", "return 1");
            assertDenied(u, "FUNCTION", "LOAD", "REPLACE", "#!lua name=stargazer\nredis.register_function('sg_trim', function() end)");
            assertDenied(u, "FUNCTION", "DELETE", "stargazer");
            assertDenied(u, "FUNCTION", "FLUSH");
            assertDenied(u, "DEL", own);
            assertDenied(u, "UNLINK", own);
            assertDenied(u, "XDEL", own, "0-1");
            for (String other : others.get(u)) {
                assertDenied(u, "XTRIM", other, "MAXLEN", "0");
                assertDenied(u, "XADD", other, "MAXLEN", "0", "*", "payload", "x");
                assertDenied(u, "XDEL", other, "0-1");
                assertDenied(u, "DEL", other);
                // It may call sg_trim (for its own streams; ACLs cannot tie a function to keys), and FCALL may name a
                // stream it reads, but the XTRIM inside runs with its own rules: refused.
                assertRefused(u, "FCALL", "sg_trim", "1", other, "1000");
            }
            // The functions it may call refuse arguments that would trim: an exact or zero cap, MINID, LIMIT.
            assertRefusedByFunction(u, "FCALL", "sg_publish_batch", "1", own, "3", "MAXLEN", "=", "0", "p", "t");
            assertRefusedByFunction(u, "FCALL", "sg_publish_batch", "1", own, "3", "MAXLEN", "~", "0", "p", "t");
            assertRefusedByFunction(u, "FCALL", "sg_publish_batch", "1", own, "3", "MINID", "~", "9999999999999", "p", "t");
            assertRefusedByFunction(u, "FCALL", "sg_publish", "3", own, Topology.slotKey(own, "dedupe:0"), Topology.slotKey(own, "dedupe:1"),
                    "1000", "2", "3", "MAXLEN", "=", "1", "1", "", "p", "t");
            assertRefusedByFunction(u, "FCALL", "sg_trim", "1", own, "0");
        }
        // The gateway's allowed calls at the smallest cap trim nothing unread either.
        RedisUrl gw = as("gw-discord", "pw-gd");
        assertThat(run(gw, "FCALL", "sg_publish_batch", "1", in, "3", "MAXLEN", "~", "1000", "p", "t")).isEqualTo("OK");
        assertThat(run(gw, "FCALL", "sg_trim", "1", in, "1000")).isEqualTo("OK");
        assertThat(admin.xlen(in)).isEqualTo(1501);
        assertThat(admin.xlen(discord)).isEqualTo(1500);
        assertThat(admin.xlen(tools)).isEqualTo(1500);
    }

    /**
     * Issue 18's remaining attack, closed by relay mode: under the relay-mode rules no gateway, worker or tools user may
     * add to, trim, delete entries of, or delete any stream it wrote in direct mode (every stream another role reads),
     * directly or through a function; each may write only its own outbox. What stays possible is pinned too: a role can
     * still trim its own outbox (entries the relay has not moved yet; it could as well not have sent them).
     */
    @Test
    void inRelayModeNoRoleMayWriteTrimOrDeleteAStreamAnotherRoleReads() {
        Topology t = TestRedis.topology();
        load(rules(t, PublishVia.RELAY));
        String in = t.inboundStream();
        String discord = t.outboundStream("discord");
        String webchat = t.outboundStream("webchat");
        String tools = t.toolsStream();
        String reply = t.toolsReplyStream("w1");
        Map<RedisUrl, List<String>> wroteInDirectMode = Map.of(
                as("gw-discord", "pw-gd"), List.of(in, t.deadLetterStream(discord)),
                as("worker", "pw-worker"), List.of(discord, webchat, tools, t.deadLetterStream(in)),
                as("tools", "pw-tools"), List.of(reply, t.deadLetterStream(tools)),
                as("operator", "pw-operator"), List.of(in, discord, tools));
        Map<RedisUrl, String> outbox = Map.of(as("gw-discord", "pw-gd"), t.gatewayOutbox("discord"),
                as("worker", "pw-worker"), t.workerOutbox(), as("tools", "pw-tools"), t.toolsOutbox(),
                as("operator", "pw-operator"), t.operatorOutbox());
        List<String> shared = wroteInDirectMode.values().stream().flatMap(List::stream).distinct().toList();
        for (String s : shared) {
            admin.sync().xgroupCreate(io.lettuce.core.XReadArgs.StreamOffset.from(RawRedis.b(s), "$"), RawRedis.b("readers"),
                    io.lettuce.core.XGroupCreateArgs.Builder.mkstream());
            for (int i = 0; i < 5; i++) admin.xadd(s, "payload", new byte[] {(byte) 0x80}, "trace_id", "t");
        }
        for (Map.Entry<RedisUrl, List<String>> e : wroteInDirectMode.entrySet()) {
            RedisUrl u = e.getKey();
            for (String s : e.getValue()) {
                String id = admin.xrange(s).get(0).getId();
                assertDenied(u, "XADD", s, "MAXLEN", "0", "*", "payload", "x");
                assertDenied(u, "XADD", s, "*", "payload", "x");
                assertDenied(u, "XTRIM", s, "MAXLEN", "0");
                assertDenied(u, "XDEL", s, id);
                assertDenied(u, "DEL", s);
                assertDenied(u, "UNLINK", s);
                assertDenied(u, "FCALL", "sg_publish_batch", "1", s, "0", "p", "t");
                assertDenied(u, "FCALL", "sg_trim", "1", s, "1000");
                assertDenied(u, "FCALL", "sg_outbox", "1", s, "0", in, "", "p", "t", "", "");
            }
            assertThat(run(u, "XADD", outbox.get(u), "*", "target", e.getValue().get(0), "dedupe", "", "payload", "x")).isEqualTo("OK");
            // Another role's outbox is not its own either.
            for (String o : outbox.values()) {
                if (!o.equals(outbox.get(u))) assertDenied(u, "XADD", o, "*", "target", in, "dedupe", "", "payload", "x");
            }
            // What remains, by design: its own outbox it may trim (the relay had not moved these; it could as well not have sent them).
            assertThat(run(u, "XTRIM", outbox.get(u), "MAXLEN", "0")).isEqualTo("OK");
        }
        for (String s : shared) assertThat(admin.xlen(s)).as(s).isEqualTo(5);
        // The relay is the one writer of the shared streams.
        assertThat(run(as("relay", "pw-relay"), "XADD", in, "*", "payload", "x")).isEqualTo("OK");
        assertDenied(as("relay", "pw-relay"), "EVAL", "return 1", "0");
        assertDenied(as("relay", "pw-relay"), "XRANGE", in, "-", "+");
    }

    /**
     * What per-role ACLs cannot stop, by Redis's design (docs/security.md): a function runs every command with its
     * caller's permissions, so a role that publishes through sg_publish must itself hold XADD on that stream, and XADD
     * takes MAXLEN; the SAFE trim (sg_trim) needs XTRIM the same way. This test pins that limit: if a server ever
     * refuses it, the documentation must change.
     */
    @Test
    void aPublisherCanStillTrimItsOwnStreamWithRawXaddBecauseFunctionsRunWithTheCallersPermissions() {
        Topology t = TestRedis.topology();
        load(rules(t));
        String in = t.inboundStream();
        for (int i = 0; i < 5; i++) admin.xadd(in, "payload", new byte[] {(byte) 0x80});
        RedisUrl gw = as("gw-discord", "pw-gd");
        assertThat(run(gw, "XADD", in, "MAXLEN", "0", "*", "payload", "x")).isEqualTo("OK");
        assertThat(admin.xlen(in)).isZero();
        // A user that may call sg_publish_batch but has no XADD of its own: the function's XADD is refused (an ERR, worded
        // by each server its own way, logged as a refused command in context lua): a function lends no permission.
        List<String> setUser = new ArrayList<>(List.of("SETUSER", "fn-only", "reset", "on", ">pw-fn", "-@all",
                "+fcall|sg_publish_batch", "~" + AclRules.escape(in)));
        admin.sync().dispatch(kw("ACL"), new NestedMultiOutput<>(ByteArrayCodec.INSTANCE), args(setUser));
        aclLog("RESET");
        String viaFunction = run(as("fn-only", "pw-fn"), "FCALL", "sg_publish_batch", "1", in, "0", "p", "t");
        assertThat(RedisServerException.codeOf(viaFunction)).as(viaFunction).isEqualTo("ERR");
        // (On a 7.2+ server this user's login also logs its refused CLIENT SETINFO, at the top level.)
        assertThat(aclLogEntries()).filteredOn(e -> "lua".equals(e.get("context"))).singleElement().satisfies(e -> assertThat(e)
                .containsEntry("username", "fn-only").containsEntry("object", "xadd"));
        assertThat(admin.xlen(in)).isZero();
    }

    /**
     * With {@link AclRules.Builder#compatibility} a role may also run scripts on its keys (for unmodified services
     * that run their own Lua); a script still runs with the caller's rules: it cannot read what the user cannot.
     * Servers word the refusal each their own way (Redis: "... can't run this command ...", Valkey: "ACL failure in
     * script ..."), so it is told by its code, as the library classifies errors, and by the server's ACL LOG entry.
     */
    @Test
    void compatibilityRulesAllowScriptsWhichStillRunWithTheCallersRules() {
        Topology t = TestRedis.topology();
        load(AclRules.builder(t).platforms(List.of("discord")).serverVersion(server.version()).compatibility(true)
                .gateway("gw-compat", "pw-compat", "discord").build());
        String in = t.inboundStream();
        RedisUrl gw = as("gw-compat", "pw-compat");
        aclLog("RESET");
        String scripted = run(gw, "EVAL", "return redis.call('XRANGE', KEYS[1], '-', '+')", "1", in);
        assertThat(RedisServerException.codeOf(scripted)).as(scripted).isEqualTo("ERR");
        assertThat(aclLogEntries()).singleElement().satisfies(e -> assertThat(e)
                .containsEntry("username", "gw-compat").containsEntry("context", "lua")
                .containsEntry("reason", "command").containsEntry("object", "xrange"));
        assertThat(run(gw, "EVAL", "return redis.call('XADD', KEYS[1], '*', 'payload', 'x')", "1", in)).isEqualTo("OK");
        assertDenied(gw, "EVAL", "return 1", "1", t.outboundStream("webchat"));
    }

    @Test
    void theAclFileFormLoadsAtStartUpAndHoldsTheSameRules(@TempDir Path dir) throws Exception {
        Topology t = TestRedis.topology();
        Path file = dir.resolve("users.acl");
        Files.writeString(file, "user default on nopass ~* &* +@all\n" + rules(t).aclFile());
        assertThat(Files.readString(file)).doesNotContain("pw-gd");
        try (RedisServerProcess s = RedisServerProcess.builder().arg("--aclfile", file.toString()).start()) {
            RedisUrl gw = RedisUrl.parse(s.url()).withCredentials("gw-discord", "pw-gd");
            assertThat(run(gw, "XADD", t.inboundStream(), "*", "payload", "x")).isEqualTo("OK");
            assertDenied(gw, "XRANGE", t.inboundStream(), "-", "+");
            assertThat(run(RedisUrl.parse(s.url()).withCredentials("gw-discord", "wrong"), "PING")).startsWith("WRONGPASS");
        }
    }

    // ---- helpers -------------------------------------------------------------------------------------------

    private static void assertDenied(RedisUrl url, String... command) {
        assertThat(run(url, command)).as(url.user() + ": " + String.join(" ", command)).startsWith("NOPERM");
    }

    /** NOPERM, or the server's ACL refusal of a command inside a function (an ERR, worded by each server its own way). */
    private static void assertRefused(RedisUrl url, String... command) {
        String r = run(url, command);
        assertThat(r).as(url.user() + ": " + String.join(" ", command)).satisfiesAnyOf(
                x -> assertThat(x).startsWith("NOPERM"), x -> assertThat(RedisServerException.codeOf(x)).isEqualTo("ERR"));
    }

    private static void assertRefusedByFunction(RedisUrl url, String... command) {
        assertThat(run(url, command)).as(url.user() + ": " + String.join(" ", command)).startsWith("ERR stargazer:");
    }

    /** Runs one command as that user: "OK" when it succeeds, else the server's error reply. */
    private static String run(RedisUrl url, String... command) {
        try (RawRedis r = new RawRedis(url)) {
            List<String> rest = List.of(command).subList(1, command.length);
            r.sync().dispatch(kw(command[0]), new NestedMultiOutput<>(ByteArrayCodec.INSTANCE), args(rest));
            return "OK";
        } catch (RedisCommandExecutionException e) {
            return e.getMessage();
        } catch (io.lettuce.core.RedisConnectionException e) {
            Throwable c = e;
            while (c.getCause() != null) c = c.getCause();
            return c.getMessage();
        }
    }

    /** ACL LOG as text: each refused command with user, reason and object. */
    private static List<String> aclLog(String... sub) {
        List<String> a = new ArrayList<>(List.of("LOG"));
        a.addAll(List.of(sub));
        List<Object> entries = admin.sync().dispatch(kw("ACL"), new NestedMultiOutput<>(ByteArrayCodec.INSTANCE), args(a));
        List<String> out = new ArrayList<>();
        for (Object e : entries) out.add(text(e));
        return out;
    }

    /** ACL LOG's entries as field maps (count, reason, context, object, username, ...). */
    private static List<Map<String, String>> aclLogEntries() {
        List<Object> entries = admin.sync().dispatch(kw("ACL"), new NestedMultiOutput<>(ByteArrayCodec.INSTANCE), args(List.of("LOG")));
        List<Map<String, String>> out = new ArrayList<>();
        for (Object e : entries) {
            List<?> fields = (List<?>) e;
            Map<String, String> m = new java.util.LinkedHashMap<>();
            for (int i = 0; i + 1 < fields.size(); i += 2) m.put(text(fields.get(i)), text(fields.get(i + 1)));
            out.add(m);
        }
        return out;
    }

    private static String text(Object o) {
        if (o instanceof byte[] b) return new String(b, StandardCharsets.UTF_8);
        if (o instanceof List<?> l) return l.stream().map(AclIT::text).toList().toString();
        return String.valueOf(o);
    }

    /**
     * A worker's group is lost (XGROUP DESTROY) after it handled and acknowledged five entries: re-created after the
     * last entry it read, so only the entry published after that is delivered. Before, the consumer asked XINFO STREAM,
     * which the worker user could not run, and took the refusal for "the stream is new": the group restarted at "0" and
     * the five acknowledged entries were handled again.
     */
    @Test
    void aLostGroupIsRecreatedAfterTheLastEntryReadForAWorkerUser() throws Exception {
        Topology t = TestRedis.topology();
        load(rules(t));
        lostGroupRedeliversNothingOld(t, as("worker", "pw-worker"));
    }

    /**
     * The same for a worker user made by rules without XINFO STREAM (an earlier version's): the refusal is not taken
     * for a new stream; the group is re-created after the last entry the consumer read.
     */
    @Test
    void aLostGroupIsRecreatedAfterTheLastEntryReadForAUserThatMayNotRunXinfoStream() throws Exception {
        Topology t = TestRedis.topology();
        AclRules.User worker = AclRules.builder(t).platforms(List.of("discord", "webchat")).workerIds(List.of("w1"))
                .serverVersion(server.version()).worker("worker-older", "pw-older").build().user("worker-older");
        List<String> args = new ArrayList<>();
        args.add("SETUSER");
        for (String a : worker.setUserArgs()) args.add(a.replace("+xinfo|stream ", ""));
        assertThat(String.join(" ", args)).doesNotContain("xinfo|stream");
        admin.sync().dispatch(kw("ACL"), new NestedMultiOutput<>(ByteArrayCodec.INSTANCE), args(args));
        lostGroupRedeliversNothingOld(t, as("worker-older", "pw-older"));
    }

    private static void lostGroupRedeliversNothingOld(Topology t, RedisUrl workerUrl) throws Exception {
        String stream = t.inboundStream();
        String group = t.workerGroup();
        try (EventBus publisher = EventBus.connect(RedisUrl.parse(server.url()), config(t, NodeRole.STANDALONE, "pub", List.of("webchat")));
                EventBus worker = EventBus.connect(workerUrl, config(t, NodeRole.WORKER, "w1", List.of("webchat")))) {
            List<String> handled = new java.util.concurrent.CopyOnWriteArrayList<>();
            try (io.stargazer.bus.Subscription sub = worker.subscribe(io.stargazer.bus.ConsumerConfig.builder(stream, group)
                    .consumerName("w1").blockTimeout(Duration.ofMillis(200)).closeTimeout(Duration.ofSeconds(1)).build(),
                    d -> handled.add(d.envelope().content()))) {
                for (int i = 0; i < 5; i++) {
                    publisher.publish(stream, Envelope.of("platform", "webchat", "channel_id", "c", "content", "old-" + i));
                }
                // Handled, and the acknowledgements applied in Redis: nothing of the group is pending.
                await().atMost(WAIT).until(() -> handled.size() == 5
                        && admin.sync().xpending(RawRedis.utf8(stream), RawRedis.utf8(group)).getCount() == 0);

                assertThat(admin.sync().xgroupDestroy(RawRedis.utf8(stream), RawRedis.utf8(group))).isTrue();
                publisher.publish(stream, Envelope.of("platform", "webchat", "channel_id", "c", "content", "new"));

                // One channel: a group re-created at "0" would hand out old-0 .. old-4 again before "new".
                await().atMost(WAIT).until(() -> handled.contains("new"));
                assertThat(handled).as("entries handled; old-0 .. old-4 were acknowledged before the group was lost")
                        .containsExactly("old-0", "old-1", "old-2", "old-3", "old-4", "new");
            }
        }
    }

    private static CommandArgs<byte[], byte[]> args(List<String> a) {
        CommandArgs<byte[], byte[]> out = new CommandArgs<>(ByteArrayCodec.INSTANCE);
        for (String s : a) out.add(s.getBytes(StandardCharsets.UTF_8));
        return out;
    }

    private static ProtocolKeyword kw(String name) {
        byte[] b = name.getBytes(StandardCharsets.US_ASCII);
        return new ProtocolKeyword() {
            @Override public byte[] getBytes() { return b; }
            @Override public String toString() { return name; }
        };
    }
}
