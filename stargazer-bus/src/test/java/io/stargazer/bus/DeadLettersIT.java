package io.stargazer.bus;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.lettuce.core.StreamMessage;
import io.stargazer.bus.testing.RawRedis;
import io.stargazer.bus.testing.TestRedis;
import io.stargazer.bus.wire.WireFormat;
import io.stargazer.testing.ChildJvm;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import org.awaitility.Awaitility;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** Dead letters read, replayed and purged through {@link DeadLetters} (issue 14), on a real Redis. */
@Timeout(180)
class DeadLettersIT {

    /** A dead letter as the bus writes it: the original fields, then what the dead-letter writer adds. */
    private static String seed(RawRedis raw, String dead, String source, int n, String error) {
        byte[] payload = WireFormat.encode(Envelope.of("platform", "webchat", "channel_id", "c-" + (n % 7), "content", "hello " + n, "n", n));
        return raw.xadd(dead, "payload", payload, "trace_id", "t" + n, "error", error, "source_stream", source, "source_id", "1-" + n,
                "group", "workers", "deliveries", "5", "dead_at_ms", Long.toString(System.currentTimeMillis()));
    }

    private static List<StreamMessage<byte[], byte[]>> entries(RawRedis raw, String stream) {
        return raw.xrange(stream);
    }

    @Test
    void listShowsWhyHowOftenAndTheEnvelopeWithFiltersAndPaging() {
        try (EventBus bus = TestRedis.bus(NodeRole.GATEWAY); RawRedis raw = new RawRedis(TestRedis.url())) {
            String inbound = bus.topology().inboundStream();
            String dead = bus.topology().deadLetterStream(inbound);
            List<String> ids = new ArrayList<>();
            for (int i = 0; i < 25; i++) ids.add(seed(raw, dead, inbound, i, i % 5 == 0 ? "handler failed: Provider TIMEOUT" : "bad input"));
            DeadLetters dl = bus.deadLetters();
            assertThat(dl.streams()).contains(dead, bus.topology().deadLetterStream(bus.topology().toolsStream()));

            DeadLetterPage first = dl.list(DeadLetterFilter.builder().limit(10).build());
            assertThat(first.entries()).hasSize(10);
            DeadLetter d0 = first.entries().get(0);
            assertThat(d0.id()).isEqualTo(ids.get(0));
            assertThat(d0.deadStream()).isEqualTo(dead);
            assertThat(d0.sourceStream()).isEqualTo(inbound);
            assertThat(d0.sourceId()).isEqualTo("1-0");
            assertThat(d0.group()).isEqualTo("workers");
            assertThat(d0.deliveries()).isEqualTo(5);
            assertThat(d0.error()).contains("TIMEOUT");
            assertThat(d0.envelope().content()).isEqualTo("hello 0");
            assertThat(d0.envelope().traceId()).isEqualTo("t0");
            List<String> paged = new ArrayList<>();
            DeadLetterPage page = first;
            while (true) {
                page.entries().forEach(d -> paged.add(d.id()));
                if (page.next() == null) break;
                page = dl.list(DeadLetterFilter.builder().limit(10).after(page.next()).build());
            }
            assertThat(paged).containsExactlyElementsOf(ids);

            List<DeadLetter> timeouts = dl.list(DeadLetterFilter.builder().errorContains("timeout").build()).entries();
            assertThat(timeouts).extracting(DeadLetter::id).containsExactly(ids.get(0), ids.get(5), ids.get(10), ids.get(15), ids.get(20));
            assertThat(dl.get(ids.get(7))).map(d -> d.envelope().content()).contains("hello 7");
            assertThat(dl.get("1-1")).isEmpty();
        }
    }

    /** docs/operating.md: a list says there are more ("more: --after <cursor>") only when there are. */
    @Test
    void aNotRetryableFailureIsDeadLetteredOnItsFirstDeliveryAndItsChannelGoesOn() {
        try (EventBus bus = TestRedis.bus(NodeRole.STANDALONE); RawRedis raw = new RawRedis(TestRedis.url())) {
            String inbound = bus.topology().inboundStream();
            List<String> runs = new CopyOnWriteArrayList<>();
            ConsumerConfig cfg = bus.consumer(inbound, bus.topology().workerGroup()).maxDeliveries(5)
                    .retryBackoff(Duration.ofMillis(50)).build();
            try (Subscription s = bus.subscribe(cfg, d -> {
                runs.add(d.envelope().content() + "#" + d.deliveryCount());
                if (d.envelope().content().equals("poison")) {
                    throw new NotRetryableException("cannot read it", new IllegalArgumentException("n is not a number"));
                }
            })) {
                bus.publishInbound(Envelope.of("platform", "webchat", "channel_id", "c", "content", "poison"));
                bus.publishInbound(Envelope.of("platform", "webchat", "channel_id", "c", "content", "next"));
                Awaitility.await().atMost(Duration.ofSeconds(20)).until(() -> raw.xlen(cfg.deadLetterStream()) == 1 && runs.contains("next#1"));
                assertThat(runs).as("tried once, not maxDeliveries times").containsExactly("poison#1", "next#1");
                Map<String, byte[]> dead = RawRedis.fields(entries(raw, cfg.deadLetterStream()).get(0));
                assertThat(RawRedis.s(dead.get("error"))).contains("not retryable").contains("cannot read it");
                assertThat(RawRedis.s(dead.get("deliveries"))).isEqualTo("1");
            }
        }
    }

    @Test
    void aPageThatEndsAtTheLastMatchHasNoNextCursor() {
        try (EventBus bus = TestRedis.bus(NodeRole.GATEWAY); RawRedis raw = new RawRedis(TestRedis.url())) {
            String inbound = bus.topology().inboundStream();
            String dead = bus.topology().deadLetterStream(inbound);
            String tools = bus.topology().deadLetterStream(bus.topology().toolsStream());
            String tenth = null;
            for (int i = 0; i < 10; i++) tenth = seed(raw, dead, inbound, i, "provider down");
            DeadLetters dl = bus.deadLetters();
            DeadLetterPage page = dl.list(DeadLetterFilter.builder().limit(10).build());
            assertThat(page.entries()).hasSize(10);
            assertThat(page.next()).isNull();

            // One more in a later stream, and one after the ten that the error text does not match: oldest first across
            // the streams, the tools stream's comes before the last one of the inbound stream.
            // After the ten's last millisecond: sharing it, the tools entry's id could equal one of the ten's (each stream
            // numbers its own), and ids equal across streams go by the streams' order, putting it among the ten.
            long tenthMs = Long.parseLong(tenth.substring(0, tenth.indexOf('-')));
            org.awaitility.Awaitility.await().atMost(java.time.Duration.ofSeconds(5)).until(() -> System.currentTimeMillis() > tenthMs);
            String toolsId = seed(raw, tools, bus.topology().toolsStream(), 10, "tool failed");
            // A later millisecond: ids equal across streams go by the streams' order, not by when they were added.
            long toolsMs = Long.parseLong(toolsId.substring(0, toolsId.indexOf('-')));
            org.awaitility.Awaitility.await().atMost(java.time.Duration.ofSeconds(5)).until(() -> System.currentTimeMillis() > toolsMs);
            String lastId = seed(raw, dead, inbound, 11, "bad input");
            assertThat(dl.list(DeadLetterFilter.builder().limit(10).errorContains("provider").build()).next()).isNull();
            DeadLetterPage first = dl.list(DeadLetterFilter.builder().limit(11).build());
            assertThat(first.entries()).extracting(DeadLetter::id).endsWith(toolsId);
            assertThat(first.next()).isNotNull();
            DeadLetterPage second = dl.list(DeadLetterFilter.builder().limit(11).after(first.next()).build());
            assertThat(second.entries()).extracting(DeadLetter::id).containsExactly(lastId);
            assertThat(second.next()).isNull();
        }
    }

    /**
     * A key of another type at one dead-letter stream's name (a stray SET) is skipped by replay and purge as by list;
     * the other streams' dead letters are replayed and purged (found by the review of the list's skip: replay and purge
     * failed with WRONGTYPE, a purge after trimming the streams before it).
     */
    @Test
    void replayAndPurgeSkipAKeyOfAnotherTypeAndDoTheOtherStreams() {
        try (EventBus bus = TestRedis.bus(NodeRole.GATEWAY); RawRedis raw = new RawRedis(TestRedis.url())) {
            String inbound = bus.topology().inboundStream();
            String dead = bus.topology().deadLetterStream(inbound);
            String stray = bus.topology().deadLetterStream(bus.topology().toolsStream());
            raw.sync().set(RawRedis.b(stray), RawRedis.b("not a stream"));
            DeadLetters dl = bus.deadLetters();
            // Replay (which removes what it put back), purge reading first (an error text), purge by trimming (all).
            for (int i = 0; i < 3; i++) seed(raw, dead, inbound, i, "provider down");
            assertThat(dl.replay(DeadLetterFilter.ALL, ReplayOptions.builder().build()).replayed()).isEqualTo(3);
            for (int i = 0; i < 2; i++) seed(raw, dead, inbound, i, "provider down");
            assertThat(dl.purge(DeadLetterFilter.builder().errorContains("provider").build())).isEqualTo(2);
            for (int i = 0; i < 2; i++) seed(raw, dead, inbound, i, "again");
            assertThat(dl.purge(DeadLetterFilter.ALL)).isEqualTo(2);
            assertThat(RawRedis.s(raw.sync().get(RawRedis.b(stray)))).as("the stray key left as it was").isEqualTo("not a stream");
        }
    }

    /**
     * A cursor naming a stream that is not listed is refused naming it (it cannot say where equal ids resume), and one
     * at the largest id gives an empty page (Redis refuses it as an exclusive start: the list failed with its error).
     */
    @Test
    void aCursorOfAStreamNotListedIsRefusedAndOneAtTheLargestIdGivesAnEmptyPage() {
        try (EventBus bus = TestRedis.bus(NodeRole.GATEWAY); RawRedis raw = new RawRedis(TestRedis.url())) {
            String inbound = bus.topology().inboundStream();
            String dead = bus.topology().deadLetterStream(inbound);
            seed(raw, dead, inbound, 0, "provider down");
            DeadLetters dl = bus.deadLetters();
            org.assertj.core.api.Assertions.assertThatThrownBy(() -> dl.list(DeadLetterFilter.builder().after("1-0@not:a:dead:stream").build()))
                    .isInstanceOf(ConfigException.class).hasMessageContaining("not:a:dead:stream");
            DeadLetterPage last = dl.list(DeadLetterFilter.builder().after("18446744073709551615-18446744073709551615@" + dead).build());
            assertThat(last.entries()).isEmpty();
            assertThat(last.next()).isNull();
        }
    }

    @Test
    void aDeadLetterWhoseSourceIsNotItsOwnStreamsSourceIsNotReplayed() {
        // source_stream is text whoever wrote the dead letter chose: one among the web chat's dead letters that names the
        // discord stream must not be put there (in relay mode a gateway could so reach a stream its role may not write).
        try (EventBus bus = TestRedis.bus(NodeRole.GATEWAY); RawRedis raw = new RawRedis(TestRedis.url())) {
            Topology t = bus.topology();
            String webchatDead = t.deadLetterStream(t.outboundStream("webchat"));
            String discord = t.outboundStream("discord");
            String forged = raw.xadd(webchatDead, "payload", WireFormat.encode(Envelope.of("channel_id", "c", "content", "x")),
                    "trace_id", "t", "error", "x", "source_stream", discord, "source_id", "1-0", "group", "g", "deliveries", "1",
                    "dead_at_ms", "1");
            ReplayResult r = bus.deadLetters().replay(DeadLetterFilter.builder().streams(List.of(webchatDead)).build(), ReplayOptions.DEFAULTS);
            assertThat(r).isEqualTo(new ReplayResult(1, 0, 0, 1, 1, false));
            assertThat(raw.xlen(discord)).isZero();
            assertThat(raw.xrange(webchatDead)).extracting(m -> m.getId()).containsExactly(forged); // kept for a person to look at
        }
    }

    @Test
    void replayPutsTheOriginalFieldsBackByteForBytePlusReplayOfAndRemovesTheDeadLetter() {
        try (EventBus bus = TestRedis.bus(NodeRole.GATEWAY); RawRedis raw = new RawRedis(TestRedis.url())) {
            String inbound = bus.topology().inboundStream();
            String dead = bus.topology().deadLetterStream(inbound);
            byte[] payload = WireFormat.encode(Envelope.of("channel_id", "c", "blob", new byte[] {0, (byte) 0xff}));
            byte[] oddName = {'x', (byte) 0xff};
            byte[] oddValue = {0, 1, (byte) 0xfe};
            // An entry replayed once before (replay_of) that failed again: its old replay_of is replaced, not repeated.
            String id = raw.xadd(dead, "payload", payload, "trace_id", "abc", oddName, oddValue, "dedupe_key", "k-1", "replay_of", "5-5",
                    "error", "boom", "source_stream", inbound, "source_id", "9-9", "group", "g", "deliveries", "3", "dead_at_ms", "1");
            assertThat(bus.deadLetters().get(id).orElseThrow().replayOf()).isEqualTo("5-5");

            ReplayResult dry = bus.deadLetters().replay(DeadLetterFilter.ALL, ReplayOptions.builder().dryRun(true).build());
            assertThat(dry).isEqualTo(new ReplayResult(1, 0, 0, 0, true));
            assertThat(raw.xlen(dead)).isEqualTo(1);
            assertThat(raw.xlen(inbound)).isZero();

            ReplayResult r = bus.deadLetters().replay(DeadLetterFilter.builder().ids(List.of(id)).build(), ReplayOptions.DEFAULTS);
            assertThat(r).isEqualTo(new ReplayResult(1, 1, 0, 0, false));
            assertThat(raw.xlen(dead)).isZero();
            List<StreamMessage<byte[], byte[]>> back = entries(raw, inbound);
            assertThat(back).hasSize(1);
            List<byte[]> flat = new ArrayList<>();
            back.get(0).getBody().forEach((k, v) -> {
                flat.add(k);
                flat.add(v);
            });
            assertThat(flat).containsExactly(RawRedis.b("payload"), payload, RawRedis.b("trace_id"), RawRedis.b("abc"), oddName, oddValue,
                    RawRedis.b("dedupe_key"), RawRedis.b("k-1"), RawRedis.b("replay_of"), RawRedis.b(id));
            // The replay key the docs describe, in the source stream's slot.
            assertThat(raw.sync().exists(RawRedis.b("{" + inbound + "}:replay:" + dead + ":" + id))).isEqualTo(1);
        }
    }

    /**
     * Two dead-letter streams can each hold an entry of one id (stored in the same millisecond): the id alone selects
     * both, the id with its stream ({@link DeadLetter#ref()}) that one only, and the other stream's is left as it was.
     */
    @Test
    void anIdTwoStreamsShareSelectsBothAloneAndOneWithItsStream() {
        try (EventBus bus = TestRedis.bus(NodeRole.GATEWAY); RawRedis raw = new RawRedis(TestRedis.url())) {
            String inbound = bus.topology().inboundStream();
            String tools = bus.topology().toolsStream();
            String dead = bus.topology().deadLetterStream(inbound);
            String toolsDead = bus.topology().deadLetterStream(tools);
            String id = System.currentTimeMillis() + "-0";
            for (String[] at : List.of(new String[] {dead, inbound, "inbound one"}, new String[] {toolsDead, tools, "tools one"})) {
                raw.xaddWithId(at[0], id, "payload", WireFormat.encode(Envelope.of("channel_id", "c-1", "content", at[2])), "error", "boom",
                        "source_stream", at[1], "source_id", "1-1", "group", "workers", "deliveries", "5");
            }
            DeadLetters dl = bus.deadLetters();
            List<DeadLetter> both = dl.list(DeadLetterFilter.builder().ids(List.of(id)).build()).entries();
            assertThat(both).extracting(DeadLetter::deadStream).containsExactlyInAnyOrder(dead, toolsDead);
            DeadLetter toolsOne = both.stream().filter(d -> d.deadStream().equals(toolsDead)).findFirst().orElseThrow();
            assertThat(toolsOne.ref()).isEqualTo(id + "@" + toolsDead);
            assertThat(dl.list(DeadLetterFilter.builder().ids(List.of(toolsOne.ref())).build()).entries()).containsExactly(toolsOne);
            assertThat(dl.get(id + "@" + dead)).hasValueSatisfying(d -> assertThat(d.envelope().get("content")).isEqualTo("inbound one"));
            // Within a stream the ref does not name, it selects nothing.
            assertThat(dl.get(id + "@" + dead, DeadLetterFilter.builder().stream(toolsDead).build())).isEmpty();

            ReplayResult replayed = dl.replay(DeadLetterFilter.builder().ids(List.of(id + "@" + dead)).build(), ReplayOptions.DEFAULTS);
            assertThat(replayed).isEqualTo(new ReplayResult(1, 1, 0, 0, false));
            assertThat(raw.xlen(inbound)).isEqualTo(1);
            assertThat(raw.xlen(tools)).isZero();
            assertThat(raw.xlen(dead)).isZero();
            assertThat(raw.xlen(toolsDead)).as("the tools dead letter of the same id, left").isEqualTo(1);
            assertThat(dl.purge(DeadLetterFilter.builder().ids(List.of(id + "@" + dead)).build())).isZero();
            assertThat(raw.xlen(toolsDead)).isEqualTo(1);
            assertThat(dl.purge(DeadLetterFilter.builder().ids(List.of(toolsOne.ref(), id)).build())).as("one dead letter, named twice").isEqualTo(1);
            assertThat(raw.xlen(toolsDead)).isZero();

            for (String bad : List.of(id + "@", "@" + dead, "x@" + dead, id + "@a stream")) {
                assertThatThrownBy(() -> DeadLetterFilter.builder().ids(List.of(bad))).isInstanceOf(ConfigException.class)
                        .hasMessageContaining("'" + bad + "'");
            }
        }
    }

    /** An id given twice (`stargazer dead replay ID ID`) is one dead letter: listed once, put back once, counted once. */
    @Test
    void theSameIdGivenTwiceIsOneDeadLetter() {
        try (EventBus bus = TestRedis.bus(NodeRole.GATEWAY); RawRedis raw = new RawRedis(TestRedis.url())) {
            String inbound = bus.topology().inboundStream();
            String dead = bus.topology().deadLetterStream(inbound);
            String id = seed(raw, dead, inbound, 1, "provider down");
            DeadLetterFilter twice = DeadLetterFilter.builder().stream(dead).ids(List.of(id, id)).build();
            assertThat(bus.deadLetters().list(twice).entries()).extracting(DeadLetter::id).containsExactly(id);
            assertThat(bus.deadLetters().replay(twice, ReplayOptions.builder().dryRun(true).build())).isEqualTo(new ReplayResult(1, 0, 0, 0, true));
            assertThat(bus.deadLetters().replay(twice, ReplayOptions.DEFAULTS)).isEqualTo(new ReplayResult(1, 1, 0, 0, false));
            assertThat(raw.xlen(inbound)).isEqualTo(1);
        }
    }

    @Test
    void aReplayedEntryThatFailsAgainIsDeadLetteredAgainWithItsCountStartingOver() {
        try (EventBus bus = TestRedis.bus(NodeRole.WORKER)) {
            String inbound = bus.topology().inboundStream();
            AtomicBoolean fail = new AtomicBoolean(true);
            List<Long> counts = new CopyOnWriteArrayList<>();
            try (Subscription s = bus.subscribe(bus.consumer(inbound, bus.topology().workerGroup()).maxDeliveries(2)
                    .retryBackoff(Duration.ofMillis(20)).build(), d -> {
                        counts.add(d.deliveryCount());
                        if (fail.get()) throw new IllegalStateException("provider down");
                    })) {
                bus.publishInbound(Envelope.of("channel_id", "c", "content", "hi"));
                DeadLetter first = Awaitility.await().atMost(20, TimeUnit.SECONDS)
                        .until(() -> bus.deadLetters().list(DeadLetterFilter.ALL).entries(), l -> l.size() == 1).get(0);
                assertThat(first.deliveries()).isEqualTo(2);
                assertThat(first.error()).contains("provider down");
                assertThat(first.group()).isEqualTo(bus.topology().workerGroup());

                bus.deadLetters().replay(DeadLetterFilter.ALL, ReplayOptions.DEFAULTS);
                DeadLetter second = Awaitility.await().atMost(20, TimeUnit.SECONDS)
                        .until(() -> bus.deadLetters().list(DeadLetterFilter.ALL).entries(), l -> l.size() == 1).get(0);
                assertThat(second.id()).isNotEqualTo(first.id());
                assertThat(second.deliveries()).isEqualTo(2);
                assertThat(second.replayOf()).isEqualTo(first.id());
                assertThat(counts).containsExactly(1L, 2L, 1L, 2L);

                fail.set(false);
                bus.deadLetters().replay(DeadLetterFilter.ALL, ReplayOptions.DEFAULTS);
                Awaitility.await().atMost(20, TimeUnit.SECONDS).until(() -> counts.size() == 5);
                assertThat(counts.get(4)).isEqualTo(1L);
                assertThat(bus.deadLetters().list(DeadLetterFilter.ALL).entries()).isEmpty();
            }
        }
    }

    @Test
    void aReplayRunAgainAfterItsEntriesWerePutBackButNotRemovedAddsNothing() {
        try (EventBus bus = TestRedis.bus(NodeRole.GATEWAY); RawRedis raw = new RawRedis(TestRedis.url())) {
            String inbound = bus.topology().inboundStream();
            String dead = bus.topology().deadLetterStream(inbound);
            for (int i = 0; i < 50; i++) seed(raw, dead, inbound, i, "e");
            List<StreamMessage<byte[], byte[]>> before = entries(raw, dead);
            assertThat(bus.deadLetters().replay(DeadLetterFilter.ALL, ReplayOptions.DEFAULTS).replayed()).isEqualTo(50);
            // The state a replay killed between its XADDs and its XDEL leaves: entries back, dead letters still there.
            raw.sync().del(RawRedis.b(dead));
            for (StreamMessage<byte[], byte[]> m : before) {
                raw.sync().xadd(RawRedis.b(dead), new io.lettuce.core.XAddArgs().id(m.getId()), m.getBody());
            }
            ReplayResult again = bus.deadLetters().replay(DeadLetterFilter.ALL, ReplayOptions.DEFAULTS);
            assertThat(again).isEqualTo(new ReplayResult(50, 0, 50, 0, false));
            assertThat(raw.xlen(inbound)).isEqualTo(50);
            assertThat(raw.xlen(dead)).isZero();
        }
    }

    @Test
    void replayOfTenThousandKilledHalfwayAndRunAgainGivesEachEntryBackExactlyOnce() throws Exception {
        String namespace = TestRedis.namespace();
        Topology topology = Topology.builder().namespace(namespace).build();
        String inbound = topology.inboundStream();
        String dead = topology.deadLetterStream(inbound);
        int total = 10_000;
        try (RawRedis raw = new RawRedis(TestRedis.url());
                EventBus bus = TestRedis.bus(TestRedis.config(NodeRole.GATEWAY).topology(topology).build())) {
            String script = "for i = 1, tonumber(ARGV[2]) do redis.call('XADD', KEYS[1], '*', 'payload', ARGV[1], 'trace_id', 't' .. i, "
                    + "'error', 'provider down', 'source_stream', ARGV[3], 'source_id', '1-' .. i, 'group', 'workers', 'deliveries', '5', "
                    + "'dead_at_ms', '1') end return 1";
            raw.sync().eval(script, io.lettuce.core.ScriptOutputType.INTEGER, new byte[][] {RawRedis.b(dead)},
                    WireFormat.encode(Envelope.of("channel_id", "c", "content", "x")), RawRedis.b(Integer.toString(total)), RawRedis.b(inbound));
            assertThat(raw.xlen(dead)).isEqualTo(total);

            try (ChildJvm child = ChildJvm.start(ReplayChild.class, TestRedis.url().toString(), namespace, "2000")) {
                Awaitility.await().atMost(60, TimeUnit.SECONDS).until(() -> raw.xlen(inbound) >= total / 2);
                child.kill();
                assertThat(child.lines()).noneMatch(l -> l.startsWith("DONE"));
            }
            long putBack = raw.xlen(inbound);
            long left = raw.xlen(dead);
            assertThat(putBack).isLessThan(total);
            assertThat(left).isGreaterThan(0);
            assertThat(putBack + left).isGreaterThanOrEqualTo(total); // nothing lost (an entry may be in both: put back, not yet removed)

            ReplayResult rest = bus.deadLetters().replay(DeadLetterFilter.ALL, ReplayOptions.DEFAULTS);
            assertThat(rest.replayed() + rest.alreadyReplayed()).isEqualTo(left);
            assertThat(raw.xlen(inbound)).isEqualTo(total);
            assertThat(raw.xlen(dead)).isZero();
            Set<String> replayOf = new HashSet<>();
            Set<String> traceIds = new HashSet<>();
            for (StreamMessage<byte[], byte[]> m : entries(raw, inbound)) {
                Map<String, byte[]> f = RawRedis.fields(m);
                replayOf.add(RawRedis.s(f.get("replay_of")));
                traceIds.add(RawRedis.s(f.get("trace_id")));
            }
            assertThat(replayOf).hasSize(total);
            assertThat(traceIds).hasSize(total);
        }
    }

    /** An age from before 1970 (or past what milliseconds can count) matches nothing: nothing is purged, nothing fails. */
    @Test
    void aPurgeOlderThanAnAgeBeforeTheEpochPurgesNothing() {
        try (EventBus bus = TestRedis.bus(NodeRole.GATEWAY); RawRedis raw = new RawRedis(TestRedis.url())) {
            String inbound = bus.topology().inboundStream();
            String dead = bus.topology().deadLetterStream(inbound);
            seed(raw, dead, inbound, 1, "provider down");
            for (Duration age : List.of(Duration.ofDays(100_000), Duration.ofSeconds(Long.MAX_VALUE))) {
                assertThat(bus.deadLetters().purge(DeadLetterFilter.builder().olderThan(age).build())).as("by age %s", age).isZero();
                assertThat(bus.deadLetters().purge(DeadLetterFilter.builder().olderThan(age).errorContains("provider").build()))
                        .as("by age %s and error text", age).isZero();
                assertThat(bus.deadLetters().list(DeadLetterFilter.builder().olderThan(age).build()).entries()).isEmpty();
            }
            assertThat(raw.xlen(dead)).isEqualTo(1);
        }
    }

    /**
     * Replaying everything while the consumer still fails: each entry put back is dead-lettered again at once, after
     * the replay's read position (and more than one read of the dead-letter stream away from its start). One replay
     * puts back the dead letters there when it started, each once, and ends; the new ones wait for the next replay.
     */
    @Test
    void aReplayWhileTheConsumerStillFailsPutsEachDeadLetterBackOnceAndEnds() throws Exception {
        int n = 600;
        try (EventBus bus = TestRedis.bus(NodeRole.WORKER); RawRedis raw = new RawRedis(TestRedis.url())) {
            String inbound = bus.topology().inboundStream();
            String dead = bus.topology().deadLetterStream(inbound);
            for (int i = 0; i < n; i++) seed(raw, dead, inbound, i, "provider down");
            Map<String, AtomicInteger> handled = new ConcurrentHashMap<>();
            ExecutorService ex = Executors.newSingleThreadExecutor();
            try (Subscription s = bus.subscribe(bus.consumer(inbound, bus.topology().workerGroup()).maxDeliveries(1).build(), d -> {
                handled.computeIfAbsent(d.envelope().content(), k -> new AtomicInteger()).incrementAndGet();
                throw new IllegalStateException("provider still down");
            })) {
                // Paced (3 s for all), so that the consumer's new dead letters are written while the replay still reads.
                Future<ReplayResult> replay = ex.submit(() -> bus.deadLetters().replay(DeadLetterFilter.ALL,
                        ReplayOptions.builder().ratePerSecond(200).build()));
                ReplayResult r;
                try {
                    r = replay.get(60, TimeUnit.SECONDS);
                } catch (TimeoutException e) {
                    throw new AssertionError("replay of " + n + " dead letters at 200/s still running after 60 s; messages put back "
                            + "so far: " + handled.size() + ", the most often one " + most(handled) + " times", e);
                }
                assertThat(r).isEqualTo(new ReplayResult(n, n, 0, 0, false));
                Awaitility.await().atMost(60, TimeUnit.SECONDS).until(() -> raw.xlen(dead) == n);
                assertThat(handled).hasSize(n);
                assertThat(most(handled)).as("deliveries of the most often delivered message").isEqualTo(1);
                assertThat(raw.xrange(dead)).allMatch(m -> RawRedis.fields(m).containsKey("replay_of"));
            } finally {
                ex.shutdownNow();
            }
        }
    }

    private static int most(Map<String, AtomicInteger> counts) {
        return counts.values().stream().mapToInt(AtomicInteger::get).max().orElse(0);
    }

    /** A purge by error text removes the matches there when it started; dead letters written meanwhile stay. */
    @Test
    void aPurgeLeavesTheDeadLettersWrittenWhileItRuns() throws Exception {
        int total = 20_000; // many reads of 500, so that the purge is still reading when the late ones arrive
        try (EventBus bus = TestRedis.bus(NodeRole.GATEWAY); RawRedis raw = new RawRedis(TestRedis.url())) {
            String inbound = bus.topology().inboundStream();
            String dead = bus.topology().deadLetterStream(inbound);
            String script = "for i = 1, tonumber(ARGV[2]) do redis.call('XADD', KEYS[1], '*', 'payload', ARGV[1], "
                    + "'error', 'provider down', 'source_stream', ARGV[3]) end return 1";
            raw.sync().eval(script, io.lettuce.core.ScriptOutputType.INTEGER, new byte[][] {RawRedis.b(dead)},
                    WireFormat.encode(Envelope.of("channel_id", "c", "content", "x")), RawRedis.b(Integer.toString(total)), RawRedis.b(inbound));
            ExecutorService ex = Executors.newSingleThreadExecutor();
            try {
                Future<Long> purge = ex.submit(() -> bus.deadLetters().purge(DeadLetterFilter.builder().errorContains("provider").build()));
                // Its first XDEL: the purge has begun.
                Awaitility.await().pollInterval(Duration.ofMillis(1)).atMost(60, TimeUnit.SECONDS).until(() -> raw.xlen(dead) < total);
                List<String> late = new ArrayList<>();
                for (int i = 0; i < 5; i++) late.add(seed(raw, dead, inbound, i, "provider down again"));
                boolean stillRunning = !purge.isDone();
                assertThat(purge.get(60, TimeUnit.SECONDS)).as("purged (late ones written while it ran: %s)", stillRunning).isEqualTo(total);
                assertThat(raw.xrange(dead)).extracting(StreamMessage::getId).containsExactlyElementsOf(late);
            } finally {
                ex.shutdownNow();
            }
        }
    }

    @Test
    void purgeByIdsByErrorTextByAgeAndAll() {
        try (EventBus bus = TestRedis.bus(NodeRole.GATEWAY); RawRedis raw = new RawRedis(TestRedis.url())) {
            String inbound = bus.topology().inboundStream();
            String dead = bus.topology().deadLetterStream(inbound);
            String tools = bus.topology().deadLetterStream(bus.topology().toolsStream());
            // Two dead letters from long ago (explicit old ids), then fresh ones.
            long hourAgo = System.currentTimeMillis() - Duration.ofHours(2).toMillis();
            String old1 = raw.sync().xadd(RawRedis.b(dead), new io.lettuce.core.XAddArgs().id(hourAgo + "-0"),
                    Map.of(RawRedis.b("error"), RawRedis.b("old"))) ;
            String old2 = raw.sync().xadd(RawRedis.b(dead), new io.lettuce.core.XAddArgs().id(hourAgo + "-1"),
                    Map.of(RawRedis.b("error"), RawRedis.b("old"))) ;
            List<String> fresh = new ArrayList<>();
            for (int i = 0; i < 6; i++) fresh.add(seed(raw, dead, inbound, i, i < 2 ? "quota exceeded" : "other"));
            seed(raw, tools, bus.topology().toolsStream(), 99, "tool");

            DeadLetters dl = bus.deadLetters();
            assertThat(dl.purge(DeadLetterFilter.builder().olderThan(Duration.ofHours(1)).build())).isEqualTo(2);
            assertThat(dl.get(old1)).isEmpty();
            assertThat(dl.get(old2)).isEmpty();
            assertThat(raw.xlen(dead)).isEqualTo(6);

            // An entry id is unique within its stream only: the tools dead letter seeded in the same millisecond
            // has the same id, and an id filter without a stream matches it too (as DeadLetterFilter documents).
            assertThat(dl.purge(DeadLetterFilter.builder().stream(dead).ids(List.of(fresh.get(5))).build())).isEqualTo(1);
            assertThat(dl.purge(DeadLetterFilter.builder().errorContains("QUOTA").build())).isEqualTo(2);
            // Oldest first across the streams; on an id both streams hold (seeded in one millisecond), the inbound one first.
            String toolsId = dl.list(DeadLetterFilter.builder().stream(tools).build()).entries().get(0).id();
            List<String> expected = new ArrayList<>(List.of(fresh.get(2), fresh.get(3), fresh.get(4)));
            int at = 0;
            while (at < expected.size() && StreamEntry.compareIds(expected.get(at), toolsId) <= 0) at++;
            expected.add(at, toolsId);
            assertThat(dl.list(DeadLetterFilter.ALL).entries()).extracting(DeadLetter::id).containsExactlyElementsOf(expected);

            assertThat(dl.purge(DeadLetterFilter.builder().stream(dead).build())).isEqualTo(3);
            assertThat(raw.xlen(tools)).isEqualTo(1);
            assertThat(dl.purge(DeadLetterFilter.ALL)).isEqualTo(1);
            assertThat(dl.list(DeadLetterFilter.ALL).entries()).isEmpty();
        }
    }
}
