package io.stargazer.bus;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.lettuce.core.XGroupCreateArgs;
import io.lettuce.core.XReadArgs;
import io.lettuce.core.codec.ByteArrayCodec;
import io.lettuce.core.output.NestedMultiOutput;
import io.lettuce.core.protocol.CommandArgs;
import io.lettuce.core.protocol.ProtocolKeyword;
import io.stargazer.bus.acl.AclRules;
import io.stargazer.bus.testing.OwnServer;
import io.stargazer.bus.testing.RawRedis;
import io.stargazer.bus.testing.TestRedis;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.LinkedHashMap;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * Dead letters stored once (docs/operating.md, "Dead letters"), on a server of its own with the library loaded and the
 * strict ACL users: per group, keys that cannot collide, entries around the script's argument limit, the relay's own
 * dead letters, and at least once where the server setup refuses the function (users not made again after the upgrade
 * to library version 5, a library rolled back under a running bus: every poison entry stayed pending for ever).
 */
@org.junit.jupiter.api.Timeout(180)
class DeadLetterOnceIT {
    private static final Duration WAIT = Duration.ofSeconds(30);
    @RegisterExtension
    static final OwnServer server = new OwnServer(true);
    private static RawRedis admin;

    @BeforeAll
    static void admin() {
        admin = new RawRedis(server.url());
    }

    @AfterAll
    static void closeAdmin() {
        admin.close();
    }

    private static RedisUrl url() {
        return server.url();
    }

    private static ConsumerConfig.Builder fast(String stream, String group, String consumer) {
        return ConsumerConfig.builder(stream, group).consumerName(consumer).claimIdle(Duration.ofMillis(500))
                .retryBackoff(Duration.ofMillis(20)).maxRetryBackoff(Duration.ofMillis(200)).blockTimeout(Duration.ofMillis(200))
                .closeTimeout(Duration.ofSeconds(2)).maxDeliveries(1);
    }

    private static void groupAt0(String stream, String group) {
        admin.sync().xgroupCreate(XReadArgs.StreamOffset.from(b(stream), "0"), b(group), XGroupCreateArgs.Builder.mkstream());
    }

    private static byte[] b(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }

    private static final byte[] BAD = {(byte) 0xc1};

    /** Two groups on one stream, both dead-lettering the same (malformed) entry: each stores its own dead letter. */
    @Test
    void twoGroupsOnOneStreamEachStoreTheirDeadLetter() {
        Topology t = TestRedis.topology();
        String s = t.inboundStream();
        String dead = t.deadLetterStream(s);
        groupAt0(s, "ga");
        groupAt0(s, "gb");
        String id = admin.xadd(s, "payload", BAD, "trace_id", "x");
        try (EventBus bus = EventBus.connect(url(), BusConfig.builder().topology(t).role(NodeRole.WORKER).nodeId("n1").build())) {
            assertThat(bus.serverCode()).isEqualTo(ServerCodeMode.FUNCTIONS);
            try (Subscription a = bus.subscribe(fast(s, "ga", "c").build(), d -> { });
                 Subscription c = bus.subscribe(fast(s, "gb", "c").build(), d -> { })) {
                await().atMost(WAIT).until(() -> bus.pendingCount(s, "ga") == 0 && bus.pendingCount(s, "gb") == 0 && admin.xlen(dead) >= 2);
            }
        }
        assertThat(admin.xrange(dead)).extracting(m -> RawRedis.s(RawRedis.fields(m).get("group"))).containsExactlyInAnyOrder("ga", "gb");
        assertThat(admin.xrange(dead)).extracting(m -> RawRedis.s(RawRedis.fields(m).get("source_id"))).containsOnly(id);
    }

    /**
     * The key dead:<stream>:<id>:<group> is ambiguous when names hold ':' (every default name does) and two consumers
     * share a dead-letter stream (ConsumerConfig.deadLetterStream): stream "X" entry 1-1 by group "g:2-2:h" and stream
     * "X:1-1:g" entry 2-2 by group "h" make the same key, and the second entry is acknowledged with its dead letter never
     * stored.
     */
    @Test
    void deadLetterKeysOfDifferentEntriesMustNotCollide() {
        String ns = TestRedis.namespace();
        String s1 = ns + ":x";
        String s2 = ns + ":x:1-1:g";
        String shared = ns + ":all-dead";
        groupAt0(s1, "g:2-2:h");
        groupAt0(s2, "h");
        admin.sync().xadd(b(s1), new io.lettuce.core.XAddArgs().id("1-1"), Map.of(b("payload"), BAD));
        admin.sync().xadd(b(s2), new io.lettuce.core.XAddArgs().id("2-2"), Map.of(b("payload"), BAD));
        try (EventBus bus = EventBus.connect(url(), BusConfig.builder().topology(TestRedis.topology()).role(NodeRole.WORKER).nodeId("n2").build())) {
            try (Subscription a = bus.subscribe(fast(s1, "g:2-2:h", "c").deadLetterStream(shared).build(), d -> { })) {
                await().atMost(WAIT).until(() -> bus.pendingCount(s1, "g:2-2:h") == 0 && admin.xlen(shared) == 1);
            }
            try (Subscription c = bus.subscribe(fast(s2, "h", "c").deadLetterStream(shared).build(), d -> { })) {
                // Until the entry was read (the group's position at it) and settled: "nothing pending" alone held before the
                // subscription's first read, and on a busy machine (CI) it was closed without reading the entry at all.
                await().atMost(WAIT).until(() -> bus.pendingCount(s2, "h") == 0 && bus.groups(s2).get(0).lastDeliveredId().equals("2-2"));
            }
        }
        assertThat(admin.xrange(shared)).extracting(m -> RawRedis.s(RawRedis.fields(m).get("source_stream")))
                .as("each malformed entry's dead letter").containsExactlyInAnyOrder(s1, s2);
    }

    /** Entries around MAX_SCRIPT_FIELDS: through the function (deduped) up to it, by plain XADD past it; both stored. */
    @Test
    void hostileEntriesAroundTheScriptLimitAreStored() {
        Topology t = TestRedis.topology();
        String s = t.inboundStream();
        String dead = t.deadLetterStream(s);
        groupAt0(s, "g");
        // 3494 pairs: 6988 + error, source_stream, source_id, group, deliveries, dead_at_ms (12) = 7000 (the script's limit).
        for (int pairs : new int[] {3494, 3495, 3980}) {
            Map<byte[], byte[]> body = new LinkedHashMap<>();
            for (int i = 0; i < pairs; i++) body.put(b("f" + i), b("v"));
            admin.sync().xadd(b(s), body);
        }
        try (EventBus bus = EventBus.connect(url(), BusConfig.builder().topology(t).role(NodeRole.WORKER).nodeId("n3").build());
             Subscription a = bus.subscribe(fast(s, "g", "c").build(), d -> { })) {
            await().atMost(WAIT).until(() -> bus.pendingCount(s, "g") == 0 && admin.xlen(dead) == 3);
        }
    }

    // ---- strict users ---------------------------------------------------------------------------------------------

    private static void loadUsers(AclRules rules, java.util.function.UnaryOperator<String> edit) {
        for (AclRules.User u : rules.users()) {
            List<String> args = new ArrayList<>();
            args.add("SETUSER");
            args.add(u.name());
            for (String r : u.rules()) args.add(edit.apply(r));
            CommandArgs<byte[], byte[]> ca = new CommandArgs<>(ByteArrayCodec.INSTANCE);
            for (String a : args) ca.add(a);
            admin.sync().dispatch(kw("ACL"), new NestedMultiOutput<>(ByteArrayCodec.INSTANCE), ca);
        }
    }

    private static ProtocolKeyword kw(String name) {
        byte[] bytes = name.getBytes(StandardCharsets.US_ASCII);
        return new ProtocolKeyword() {
            @Override
            public byte[] getBytes() {
                return bytes;
            }

            @Override
            public String toString() {
                return name;
            }
        };
    }

    private static RedisUrl as(String user, String password) {
        return url().withCredentials(user, password);
    }

    /**
     * Upgrade from 4 to 5 with the users left as they were (docs/functions.md says to make them again): before, a dead letter
     * was a plain XADD the worker's rules allowed; now it is FCALL sg_dead_letter, which its old rules do not name, and a
     * poison entry stays pending for ever instead of reaching the dead letters (at least once, as before).
     */
    @Test
    void aWorkerWhoseUsersWereNotRemadeStillStoresItsDeadLetters() {
        Topology t = TestRedis.topology();
        AclRules rules = AclRules.builder(t).platforms(List.of("webchat")).serverVersion(server.process().version()).worker("w-old", "pw").build();
        loadUsers(rules, r -> r.replace(" +fcall|sg_dead_letter", ""));
        String in = t.inboundStream();
        String dead = t.deadLetterStream(in);
        try (EventBus worker = EventBus.connect(as("w-old", "pw"), BusConfig.builder().topology(t).role(NodeRole.WORKER).nodeId("w1")
                .platforms(List.of("webchat")).build())) {
            assertThat(worker.serverCode()).isEqualTo(ServerCodeMode.FUNCTIONS);
            worker.ensureStreams();
            admin.xadd(in, "payload", BAD, "trace_id", "x");
            try (Subscription s = worker.subscribe(fast(in, t.workerGroup(), "w1").build(), d -> { })) {
                await().atMost(Duration.ofSeconds(15)).until(() -> admin.xlen(dead) == 1 && worker.pendingCount(in, t.workerGroup()) == 0);
            }
        }
    }

    /** Relay mode, the relay's own dead letters (a refused outbox entry) as the relay user: through sg_dead_letter. */
    @Test
    void theRelayUserStoresItsOwnDeadLetters() throws Exception {
        Topology t = TestRedis.topology();
        List<String> platforms = List.of("webchat");
        AclRules rules = AclRules.builder(t).platforms(platforms).serverVersion(server.process().version()).publishVia(PublishVia.RELAY)
                .relay("relay-u", "pw").build();
        loadUsers(rules, r -> r);
        Provisioning.provision(url(), BusConfig.builder().topology(t).platforms(platforms).publishVia(PublishVia.RELAY).build());
        String outbox = t.gatewayOutbox("webchat");
        // The gateway may not write the tools stream: the relay refuses the entry and dead-letters it.
        admin.xadd(outbox, "target", t.toolsStream(), "dedupe", "", "payload", BAD, "trace_id", "x");
        try (EventBus relayBus = EventBus.connect(as("relay-u", "pw"), BusConfig.builder().topology(t).role(NodeRole.RELAY).nodeId("r1")
                .platforms(platforms).publishVia(PublishVia.RELAY).build());
             Relay relay = Relay.start(relayBus, c -> c.blockTimeout(Duration.ofMillis(200)))) {
            assertThat(relayBus.serverCode()).isEqualTo(ServerCodeMode.FUNCTIONS);
            await().atMost(WAIT).until(() -> admin.xlen(t.deadLetterStream(outbox)) == 1 && relayBus.pendingCount(outbox, t.relayGroup()) == 0);
        }
    }

    /** The library without sg_dead_letter, as version 4 was (the rest of it as this version has it). */
    private static String libraryWithoutDeadLetter() {
        String text = io.stargazer.bus.internal.ServerCode.librarySource();
        int from = text.indexOf("redis.register_function('sg_dead_letter'");
        int to = text.indexOf("\nend)\n", from) + "\nend)\n".length();
        assertThat(from).isPositive();
        return text.substring(0, from) + text.substring(to);
    }

    /**
     * A bus that chose functions at connect (library 5), then the library is replaced by one without sg_dead_letter (a
     * rollback's provision): a dead letter is refused ("Function not found") and is stored by a plain XADD instead.
     */
    @Test
    void aLibraryRolledBackUnderARunningBusStillLetsItStoreDeadLetters() throws Exception {
        Topology t = TestRedis.topology();
        String s = t.inboundStream();
        String dead = t.deadLetterStream(s);
        groupAt0(s, "g");
        try (EventBus bus = EventBus.connect(url(), BusConfig.builder().topology(t).role(NodeRole.WORKER).nodeId("n5").build())) {
            assertThat(bus.serverCode()).isEqualTo(ServerCodeMode.FUNCTIONS);
            admin.sync().functionLoad(libraryWithoutDeadLetter(), true);
            try (Subscription a = bus.subscribe(fast(s, "g", "c").build(), d -> { })) {
                admin.xadd(s, "payload", BAD, "trace_id", "x");
                await().atMost(Duration.ofSeconds(10)).until(() -> admin.xlen(dead) == 1 && bus.pendingCount(s, "g") == 0);
            }
        } finally {
            Provisioning.provision(url(), BusConfig.builder().topology(TestRedis.topology()).build());
        }
    }
}
