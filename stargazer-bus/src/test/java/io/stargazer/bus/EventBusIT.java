package io.stargazer.bus;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;

import io.lettuce.core.StreamMessage;
import io.stargazer.bus.internal.BusInternals;
import io.stargazer.bus.testing.RawRedis;
import io.stargazer.bus.testing.RefusedPort;
import io.stargazer.bus.testing.TestRedis;
import io.stargazer.bus.wire.WireFormat;
import io.stargazer.embedded.RedisServerProcess;
import io.stargazer.testing.TestServers;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;

// The library's promises of issue 2 on a real Redis: provisioning per role, errors by their first word,
// publishing framed per wire format v1 with a cap, ordering under concurrency, size limits, and diagnostics.
class EventBusIT {

    private static EventBus bus(BusConfig.Builder b) {
        return TestRedis.bus(b.build());
    }

    private static Set<String> groupNames(EventBus bus, String stream) {
        Set<String> out = new HashSet<>();
        bus.groups(stream).forEach(g -> out.add(g.name()));
        return out;
    }

    /** Whether the shared server's own XINFO GROUPS reports a lag for the stream's group (Redis 6.2's does not). */
    private static boolean reportsLag(String stream) {
        try (RawRedis raw = new RawRedis(TestRedis.url())) {
            return raw.xinfoGroupFields(stream).contains("lag");
        }
    }

    @Test
    void eachRoleProvisionsExactlyTheGroupsTheOriginalCreates() {
        Topology t = TestRedis.topology();
        Map<NodeRole, Map<String, Set<String>>> seen = new HashMap<>();
        for (NodeRole role : NodeRole.values()) {
            Topology ns = TestRedis.topology();
            try (EventBus bus = bus(BusConfig.builder().topology(ns).role(role).nodeId("n"))) {
                bus.ensureStreams();
                bus.ensureStreams(); // a restart: "already exists" is success
                Map<String, Set<String>> groups = new HashMap<>();
                groups.put("inbound", groupNames(bus, ns.inboundStream()));
                for (String p : List.of("discord", "matrix", "webchat")) groups.put(p, groupNames(bus, ns.outboundStream(p)));
                groups.put("tools", groupNames(bus, ns.toolsStream()));
                seen.put(role, groups);
                String inbound = ns.workerGroup();
                boolean reads = role == NodeRole.WORKER || role == NodeRole.STANDALONE;
                assertThat(groups.get("inbound")).isEqualTo(reads ? Set.of(inbound) : Set.of());
                boolean gateway = role == NodeRole.GATEWAY || role == NodeRole.STANDALONE;
                for (String p : List.of("discord", "matrix")) {
                    assertThat(groups.get(p)).isEqualTo(gateway ? Set.of(ns.gatewayGroup(p)) : Set.of());
                }
                // Unlike the original: web chat gateways read with groups of their own, and a shared one nobody reads
                // would keep the stream from being trimmed under SAFE.
                assertThat(groups.get("webchat")).isEmpty();
                assertThat(groups.get("tools")).isEqualTo(role == NodeRole.TOOLS ? Set.of(ns.toolsGroup()) : Set.of());
                // The relay (no original counterpart) reads every outbox with its group; in direct mode no other role has one.
                for (String o : ns.outboxes(List.of("discord", "matrix", "webchat"))) {
                    assertThat(groupNames(bus, o)).isEqualTo(role == NodeRole.RELAY ? Set.of(ns.relayGroup()) : Set.of());
                }
            }
        }
        assertThat(seen).hasSize(NodeRole.values().length);
        assertThat(t).isNotNull();
    }

    @Test
    void aGatewayProvisionsOnlyTheGivenPlatformsAndGroupsStartAtTheEnd() {
        Topology t = TestRedis.topology();
        try (EventBus bus = bus(BusConfig.builder().topology(t).role(NodeRole.GATEWAY).nodeId("g"))) {
            bus.publishOutbound("matrix", Envelope.of("content", "before the group"));
            bus.ensureStreams(List.of("matrix"));
            assertThat(groupNames(bus, t.outboundStream("discord"))).isEmpty();
            GroupInfo g = bus.groups(t.outboundStream("matrix")).get(0);
            // Created at $: the earlier entry is not for this group. Lag where the server reports it (not Redis 6.2).
            assertThat(g.lag()).isEqualTo(reportsLag(t.outboundStream("matrix")) ? 0L : null);
            assertThat(bus.streamInfo(t.outboundStream("matrix")).orElseThrow().length()).isEqualTo(1);
        }
    }

    @Test
    void aWrongTypeKeyStopsProvisioningWithAnErrorNamingStreamAndGroup() {
        Topology t = TestRedis.topology();
        try (RawRedis raw = new RawRedis(TestRedis.url());
                EventBus bus = bus(BusConfig.builder().topology(t).role(NodeRole.WORKER).nodeId("w"))) {
            raw.sync().set(RawRedis.utf8(t.inboundStream()), RawRedis.utf8("not a stream"));
            assertThatThrownBy(bus::ensureStreams)
                    .isInstanceOf(ProvisioningException.class)
                    .hasMessageContaining(t.inboundStream()).hasMessageContaining(t.workerGroup())
                    .hasCauseInstanceOf(RedisServerException.WrongType.class)
                    .satisfies(e -> assertThat(((ProvisioningException) e).stream()).isEqualTo(t.inboundStream()));
        }
    }

    @Test
    void aRefusedLoginIsAccessDeniedAndNeverShowsThePassword() {
        try (RedisServerProcess server = RedisServerProcess.builder().arg("--requirepass", "right-secret").start()) {
            RedisUrl wrong = RedisUrl.parse("redis://:wrong-secret@127.0.0.1:" + server.port());
            assertThatThrownBy(() -> EventBus.connect(wrong, BusConfig.builder().nodeId("n").build()))
                    .isInstanceOf(RedisServerException.AccessDenied.class)
                    .satisfies(e -> assertThat(stackText(e)).doesNotContain("wrong-secret"));
            RedisUrl right = RedisUrl.parse("redis://:right-secret@127.0.0.1:" + server.port());
            try (EventBus bus = EventBus.connect(right, BusConfig.builder().nodeId("n").topology(TestRedis.topology()).build())) {
                assertThat(bus.publishInbound(Envelope.of("content", "x"))).matches("\\d+-\\d+");
            }
        }
    }

    @Test
    void anUnreachableServerIsAConnectionErrorNamingTheAddressWithoutPassword() throws Exception {
        try (RefusedPort refused = new RefusedPort()) {
            int port = refused.port();
            RedisUrl url = RedisUrl.parse("redis://user:hunter2@127.0.0.1:" + port);
            assertThatThrownBy(() -> EventBus.connect(url, BusConfig.builder().nodeId("n").build()))
                    .isInstanceOf(BusConnectionException.class)
                    .hasMessageContaining("127.0.0.1:" + port)
                    .hasMessageContaining("connection refused").hasMessageNotContaining("<unresolved>")
                    .satisfies(e -> assertThat(stackText(e)).doesNotContain("hunter2"));
        }
    }

    /**
     * A port where something other than Redis answers (an HTTP server): said so, not as the decoder's "Invalid first
     * byte: 72 (H) ... decoding using null" that Lettuce gives (found by trying the command line with a wrong port).
     */
    @Test
    void aPortWhereSomethingElseAnswersIsSaidToNotSpeakRedis() throws Exception {
        try (ServerSocket http = new ServerSocket(0, 50, java.net.InetAddress.getLoopbackAddress())) {
            Thread answering = new Thread(() -> {
                while (!http.isClosed()) {
                    try (java.net.Socket c = http.accept()) {
                        c.getOutputStream().write("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"
                                .getBytes(java.nio.charset.StandardCharsets.US_ASCII));
                        c.getOutputStream().flush();
                        c.getInputStream().read(new byte[1024]); // until the client gives up and closes
                    } catch (java.io.IOException closed) {
                        // the client went, or the test ends
                    }
                }
            }, "test-http-port");
            answering.setDaemon(true);
            answering.start();
            RedisUrl url = RedisUrl.parse("redis://127.0.0.1:" + http.getLocalPort());
            assertThatThrownBy(() -> EventBus.connect(url, BusConfig.builder().nodeId("n").build()))
                    .isInstanceOf(BusConnectionException.class)
                    .hasMessageContaining("connecting to " + url)
                    .hasMessageContaining("does not speak Redis's protocol").hasMessageNotContaining("decoding using null");
        }
    }

    @Test
    void anEntryCarriesPayloadAndTraceIdAsWireFormatV1Says() {
        Topology t = TestRedis.topology();
        try (EventBus bus = bus(BusConfig.builder().topology(t).nodeId("n")); RawRedis raw = new RawRedis(TestRedis.url())) {
            Envelope withTrace = Envelope.of("platform", "discord", "channel_id", "c-1", "content", "héllo ✓", "trace_id", "abc123",
                    "blob", new byte[] {0, (byte) 0xff});
            Envelope withoutTrace = Envelope.of("platform", "discord", "channel_id", "c-1", "content", "second");
            String id1 = bus.publishOutbound("discord", withTrace);
            String id2 = bus.publishOutbound("discord", withoutTrace);
            List<StreamMessage<byte[], byte[]>> entries = raw.xrange(t.outboundStream("discord"));
            assertThat(entries).extracting(StreamMessage::getId).containsExactly(id1, id2);
            Map<String, byte[]> f1 = RawRedis.fields(entries.get(0));
            Map<String, byte[]> f2 = RawRedis.fields(entries.get(1));
            assertThat(f1.keySet()).containsExactly("payload", "trace_id");
            assertThat(f1.get("payload")).isEqualTo(WireFormat.encode(withTrace));
            assertThat(new String(f1.get("trace_id"), StandardCharsets.UTF_8)).isEqualTo("abc123");
            assertThat(WireFormat.decode(f2.get("payload"))).isEqualTo(withoutTrace); // the payload is not rewritten
            String generated = new String(f2.get("trace_id"), StandardCharsets.UTF_8);
            assertThat(generated).matches(Pattern.compile("[0-9a-f]{32}"));
            assertThat(WireFormat.decodeEntry(f2).traceId()).isEqualTo(generated);
        }
    }

    @Test
    void streamsAreCappedApproximatelyAtMaxlenWhichIsFlooredAt1000() {
        BusConfig config = BusConfig.builder().topology(TestRedis.topology()).nodeId("n").streamMaxlen(10).build();
        assertThat(config.streamMaxlen()).isEqualTo(1000);
        try (EventBus bus = TestRedis.bus(config); RawRedis raw = new RawRedis(TestRedis.url())) {
            List<CompletableFuture<String>> all = new ArrayList<>();
            for (int i = 0; i < 5000; i++) all.add(bus.publishInboundAsync(Envelope.of("n", i)));
            all.forEach(CompletableFuture::join);
            // SAFE trims in the guard's background check, never in a publish (StreamGuard), and checks a stream with no
            // group after a tenth of its cap of publishes: when the whole burst went out before a check completed (a
            // loaded machine: CI saw 5000), the publishes that follow start the one that trims.
            await().atMost(Duration.ofSeconds(10)).untilAsserted(() -> {
                bus.publishInbound(Envelope.of("n", -1));
                assertThat(raw.xlen(config.topology().inboundStream())).isBetween(1000L, 1200L);
            });
        }
    }

    @Test
    void concurrentPublishersKeepEachThreadsOrderAndEveryIdIsTheEntrysOwn() throws Exception {
        Topology t = TestRedis.topology();
        try (EventBus bus = bus(BusConfig.builder().topology(t).nodeId("n")); RawRedis raw = new RawRedis(TestRedis.url())) {
            int threads = 16;
            int each = 300;
            Map<String, String> idToKey = new java.util.concurrent.ConcurrentHashMap<>();
            List<Thread> ts = new ArrayList<>();
            for (int p = 0; p < threads; p++) {
                int thread = p;
                Thread th = new Thread(() -> {
                    for (int i = 0; i < each; i++) {
                        String id = bus.publishInbound(Envelope.of("channel_id", "ch-" + thread, "thread", thread, "i", i));
                        idToKey.put(id, thread + ":" + i);
                    }
                });
                ts.add(th);
                th.start();
            }
            for (Thread th : ts) th.join();
            List<StreamMessage<byte[], byte[]>> entries = raw.xrange(t.inboundStream());
            assertThat(entries).hasSize(threads * each);
            Map<Long, Long> lastPerThread = new HashMap<>();
            for (StreamMessage<byte[], byte[]> m : entries) {
                Envelope e = WireFormat.decode(RawRedis.fields(m).get("payload"));
                long thread = e.longValue("thread", -1);
                long i = e.longValue("i", -1);
                assertThat(i).isGreaterThan(lastPerThread.getOrDefault(thread, -1L));
                lastPerThread.put(thread, i);
                assertThat(idToKey.get(m.getId())).isEqualTo(thread + ":" + i);
            }
        }
    }

    @Test
    void anOversizedEnvelopeIsRefusedBeforeItReachesRedis() {
        Topology t = TestRedis.topology();
        try (EventBus bus = bus(BusConfig.builder().topology(t).nodeId("n").maxEnvelopeBytes(1000))) {
            Envelope big = Envelope.of("content", "x".repeat(2000));
            assertThatThrownBy(() -> bus.publishInbound(big))
                    .isInstanceOf(EnvelopeTooLargeException.class)
                    .hasMessageContaining("2012").hasMessageContaining("1000") // fixmap 1 + "content" 8 + str16 header 3 + 2000
                    .satisfies(e -> assertThat(((EnvelopeTooLargeException) e).size()).isEqualTo(2012));
            assertThat(bus.streamInfo(t.inboundStream())).isEmpty();
            ExecutionException async = org.junit.jupiter.api.Assertions.assertThrows(ExecutionException.class,
                    () -> bus.publishInboundAsync(big).get());
            assertThat(async.getCause()).isInstanceOf(EnvelopeTooLargeException.class);
        }
    }

    @Test
    void diagnosticsReportGroupsConsumersAndLagAndNeverThrow() {
        Topology t = TestRedis.topology();
        try (EventBus bus = bus(BusConfig.builder().topology(t).role(NodeRole.WORKER).nodeId("n"));
                RawRedis raw = new RawRedis(TestRedis.url())) {
            assertThat(bus.streamInfo("no-such-stream")).isEmpty();
            assertThat(bus.pendingCount("no-such-stream", "g")).isZero();
            assertThat(bus.groups("no-such-stream")).isEmpty();
            raw.sync().set(RawRedis.utf8("a-string-key-" + t.inboundStream()), RawRedis.utf8("x"));
            assertThat(bus.groups("a-string-key-" + t.inboundStream())).isEmpty();

            bus.ensureStreams();
            for (int i = 0; i < 5; i++) bus.publishInbound(Envelope.of("i", i));
            raw.sync().xreadgroup(io.lettuce.core.Consumer.from(RawRedis.utf8(t.workerGroup()), RawRedis.utf8("reader")),
                    io.lettuce.core.XReadArgs.Builder.count(2), io.lettuce.core.XReadArgs.StreamOffset.lastConsumed(RawRedis.utf8(t.inboundStream())));
            StreamInfo info = bus.streamInfo(t.inboundStream()).orElseThrow();
            assertThat(info.length()).isEqualTo(5);
            assertThat(info.groups()).isEqualTo(1);
            GroupInfo g = bus.groups(t.inboundStream()).get(0);
            assertThat(g.name()).isEqualTo(t.workerGroup());
            assertThat(g.pending()).isEqualTo(2);
            assertThat(g.consumers()).isEqualTo(1);
            assertThat(g.lag()).isEqualTo(raw.xinfoGroupFields(t.inboundStream()).contains("lag") ? 3L : null);
            assertThat(bus.pendingCount(t.inboundStream(), t.workerGroup())).isEqualTo(2);
            assertThat(bus.consumers(t.inboundStream(), t.workerGroup())).singleElement()
                    .satisfies(c -> assertThat(c.name()).isEqualTo("reader"))
                    .satisfies(c -> assertThat(c.pending()).isEqualTo(2));
        }
    }

    @Test
    void consumersOfAGroupThatIsNotThereAreRefusedNamingTheGroupAndItsStream() {
        Topology t = TestRedis.topology();
        try (EventBus bus = bus(BusConfig.builder().topology(t).role(NodeRole.WORKER).nodeId("n"))) {
            assertThatThrownBy(() -> bus.consumers("no-such-stream-" + t.inboundStream(), "g"))
                    .isInstanceOf(ConfigException.class).hasMessageContaining("'g'").hasMessageContaining("does not exist");
            bus.ensureStreams();
            assertThatThrownBy(() -> bus.consumers(t.inboundStream(), "lost-" + t.workerGroup()))
                    .isInstanceOf(ConfigException.class).hasMessageContaining("'lost-" + t.workerGroup() + "'")
                    .hasMessageContaining(t.inboundStream()).hasMessageContaining(t.workerGroup());
            assertThat(bus.consumers(t.inboundStream(), t.workerGroup())).isEmpty(); // there, with no consumer
        }
    }

    @Test
    void onRedis62LagIsUnknownRatherThanWrong() {
        try (RedisServerProcess server = TestServers.redis62().start()) {
            Topology t = TestRedis.topology();
            try (EventBus bus = EventBus.connect(RedisUrl.parse(server.url()),
                    BusConfig.builder().topology(t).role(NodeRole.WORKER).nodeId("n").build())) {
                assertThat(bus.serverVersion()).startsWith("6.2");
                bus.ensureStreams();
                bus.publishInbound(Envelope.of("i", 1));
                GroupInfo g = bus.groups(t.inboundStream()).get(0);
                assertThat(g.lag()).isNull();
                assertThat(g.pending()).isZero();
            }
        }
    }

    @Test
    void diagnosticsOfALostServerReturnNothingInsteadOfThrowing() {
        RedisServerProcess server = RedisServerProcess.builder().start();
        Topology t = TestRedis.topology();
        try (EventBus bus = EventBus.connect(RedisUrl.parse(server.url()), BusConfig.builder().topology(t).nodeId("n").build())) {
            bus.publishInbound(Envelope.of("i", 1));
            server.kill();
            assertThat(bus.streamInfo(t.inboundStream())).isEmpty();
            assertThat(bus.pendingCount(t.inboundStream(), t.workerGroup())).isZero();
            assertThat(bus.groups(t.inboundStream())).isEmpty();
            assertThatThrownBy(() -> bus.publishInbound(Envelope.of("i", 2))).isInstanceOf(BusConnectionException.class);
        } finally {
            server.stop();
        }
    }

    @Test
    void theBacklogCheckRunsOffTheHotPathAndWarnsOncePerEpisode() {
        Topology t = TestRedis.topology();
        BusConfig config = BusConfig.builder().topology(t).role(NodeRole.WORKER).nodeId("n").streamMaxlen(1000)
                .backlogCheckInterval(Duration.ofHours(1)).build();
        // A server of its own: INFO commandstats counts every client's commands, and buses other tests left running
        // in this JVM (trim checks, backlog checks, refresh scripts) would be counted too.
        try (RedisServerProcess own = TestServers.server().start();
             EventBus bus = EventBus.connect(RedisUrl.parse(own.url()), config); RawRedis raw = new RawRedis(RedisUrl.parse(own.url()))) {
            bus.ensureStreams();
            long xlenBefore = raw.commandCalls("xlen");
            long xpendingBefore = raw.commandCalls("xpending");
            for (int i = 0; i < 900; i++) bus.publishInbound(Envelope.of("i", i));
            // The original ran XPENDING and XLEN before each of these 900 publishes. Here: one backlog check (the
            // interval is an hour) and the trim guard's first look at the stream (one XLEN inside its script).
            assertThat(raw.commandCalls("xlen") - xlenBefore).isLessThanOrEqualTo(2);
            assertThat(raw.commandCalls("xpending") - xpendingBefore).isLessThanOrEqualTo(2);
            long before = BusInternals.backlogWarnings(bus);
            assertThat(BusInternals.checkBacklog(bus, t.inboundStream())).isTrue(); // 900 > 80 % of 1000
            assertThat(BusInternals.checkBacklog(bus, t.inboundStream())).isTrue();
            assertThat(BusInternals.checkBacklog(bus, t.inboundStream())).isTrue();
            assertThat(BusInternals.backlogWarnings(bus) - before).isEqualTo(1);
            raw.sync().xtrim(RawRedis.utf8(t.inboundStream()), 10);
            assertThat(BusInternals.checkBacklog(bus, t.inboundStream())).isFalse();
            for (int i = 0; i < 900; i++) bus.publishInboundAsync(Envelope.of("i", i));
            await().until(() -> raw.xlen(t.inboundStream()) >= 850);
            assertThat(BusInternals.checkBacklog(bus, t.inboundStream())).isTrue();
            assertThat(BusInternals.backlogWarnings(bus) - before).isEqualTo(2); // a second episode, a second warning
        }
    }

    @Test
    void theFirstLookAtAStreamHappensOnceEvenWhenItFindsTheStreamEmpty() {
        // The guard learns a stream's length on its first publish from here. It used to tell "first publish" by a
        // length of 0, so each time its look found the stream empty (the look ran before the XADD, or the publish added
        // nothing because its dedupe key was already used) the next publish looked again: one extra XLEN per publish.
        Topology t = TestRedis.topology();
        BusConfig config = BusConfig.builder().topology(t).role(NodeRole.WORKER).nodeId("n").streamMaxlen(1000)
                .backlogCheckInterval(Duration.ofHours(1)).build();
        try (RedisServerProcess own = TestServers.server().start();
             RawRedis raw = new RawRedis(RedisUrl.parse(own.url()))) {
            String stream = t.inboundStream();
            try (EventBus first = EventBus.connect(RedisUrl.parse(own.url()), config)) {
                first.publish(stream, Envelope.of("channel_id", "c"), PublishOptions.dedupeKey("k"));
            }
            raw.sync().del(RawRedis.utf8(stream)); // the stream is gone; the dedupe record of "k" stays
            try (EventBus bus = EventBus.connect(RedisUrl.parse(own.url()), config)) {
                long before = raw.commandCalls("exists");
                for (int i = 0; i < 5; i++) {
                    bus.publish(stream, Envelope.of("channel_id", "c"), PublishOptions.dedupeKey("k")); // adds nothing
                    // A length read on the guard's connection: it answers after any look the publish started.
                    BusInternals.checkBacklog(bus, stream);
                }
                assertThat(raw.xlen(stream)).isZero();
                // The guard's look is a script whose first command is EXISTS; nothing else here runs EXISTS.
                assertThat(raw.commandCalls("exists") - before).isEqualTo(1);
            }
        }
    }

    @Test
    void aClosedBusRefusesToPublish() {
        EventBus bus = TestRedis.bus(NodeRole.GATEWAY);
        bus.close();
        assertThatThrownBy(() -> bus.publishInbound(Envelope.of("x", 1))).isInstanceOf(StargazerException.class)
                .hasMessageContaining("closed");
    }

    private static String stackText(Throwable e) {
        java.io.StringWriter w = new java.io.StringWriter();
        e.printStackTrace(new java.io.PrintWriter(w));
        return w.toString();
    }
}
