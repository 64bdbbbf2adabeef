// stargazer dead list|show|replay|purge, pause and resume against a real Redis (issue 14).
package io.stargazer.node;

import static org.assertj.core.api.Assertions.assertThat;

import io.lettuce.core.RedisURI;
import io.lettuce.core.XAddArgs;
import io.stargazer.bus.Envelope;
import io.stargazer.bus.Topology;
import io.stargazer.bus.wire.WireFormat;
import io.stargazer.node.MainCliTest.Result;
import io.stargazer.testing.RawRedis;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

@Timeout(120)
class DeadCliIT {

    private static String seed(RawRedis raw, String dead, String source, String id, String channel, String content, String error) {
        byte[] payload = WireFormat.encode(Envelope.of("platform", "webchat", "channel_id", channel, "content", content,
                "blob", new byte[] {0, (byte) 0xff, 16}));
        Map<byte[], byte[]> body = new LinkedHashMap<>();
        Object[] fv = {"payload", payload, "trace_id", "tr-" + channel, "error", error, "source_stream", source, "source_id", "1-1",
                "group", "workers", "deliveries", "5", "dead_at_ms", id == null ? Long.toString(System.currentTimeMillis()) : id.substring(0, id.indexOf('-'))};
        for (int i = 0; i < fv.length; i += 2) body.put(RawRedis.utf8((String) fv[i]), fv[i + 1] instanceof byte[] b ? b : RawRedis.utf8((String) fv[i + 1]));
        return raw.sync().xadd(RawRedis.utf8(dead), id == null ? new XAddArgs() : new XAddArgs().id(id), body);
    }

    @Test
    void listShowReplayAndPurgeDeadLettersFromTheCommandLine() {
        Topology t = TestRedis.topology();
        Map<String, String> env = TestEnv.of(t);
        String inbound = t.inboundStream();
        String dead = t.deadLetterStream(inbound);
        String outDead = t.deadLetterStream(t.outboundStream("webchat"));
        try (RawRedis raw = new RawRedis(RedisURI.create(TestRedis.url().toString()))) {
            String old = seed(raw, dead, inbound, (System.currentTimeMillis() - Duration.ofDays(2).toMillis()) + "-0", "c-old", "ancient", "old failure");
            String a = seed(raw, dead, inbound, null, "c-1", "hello from the outage", "provider TIMEOUT after 5 tries");
            String b = seed(raw, dead, inbound, null, "c-2", "second", "malformed: nope");
            // An id of its own: stored in the same millisecond as a or b it would share theirs, and replaying a by its id
            // would be refused as naming two dead letters (anIdTwoDeadLetterStreamsHoldIsRefusedUntilNamedWithItsStream).
            String o = seed(raw, outDead, t.outboundStream("webchat"), (Long.parseLong(b.substring(0, b.indexOf('-'))) + 1) + "-0",
                    "c-3", "outbound one", "gateway down");

            Result list = MainCliTest.run(env, "dead", "list");
            assertThat(list.code()).as(list.err()).isZero();
            assertThat(list.out()).contains("ID", "AGE", "DELIVERIES", "ERROR", "CHANNEL", "CONTENT")
                    .contains(old, a, b, o).contains("provider TIMEOUT").contains("c-1").contains("hello from the outage").contains("2d");
            Result inboundOnly = MainCliTest.run(env, "dead", "list", "inbound", "--json");
            assertThat(inboundOnly.code()).as(inboundOnly.err()).isZero();
            List<String> lines = inboundOnly.out().strip().lines().toList();
            assertThat(lines).hasSize(3);
            @SuppressWarnings("unchecked")
            Map<String, Object> first = (Map<String, Object>) Json.parse(lines.get(1));
            assertThat(first).containsEntry("id", a).containsEntry("deliveries", 5L).containsEntry("channel_id", "c-1")
                    .containsEntry("source_stream", inbound).containsEntry("dead_letter_stream", dead);
            Result filtered = MainCliTest.run(env, "dead", "list", "--error", "timeout");
            assertThat(filtered.out()).contains(a).doesNotContain(b).doesNotContain("gateway down");

            Result show = MainCliTest.run(env, "dead", "show", a);
            assertThat(show.code()).as(show.err()).isZero();
            @SuppressWarnings("unchecked")
            Map<String, Object> shown = (Map<String, Object>) Json.parse(show.out().strip());
            assertThat(shown).containsEntry("group", "workers").containsEntry("source_id", "1-1");
            @SuppressWarnings("unchecked")
            Map<String, Object> envelope = (Map<String, Object>) shown.get("envelope");
            assertThat(envelope).containsEntry("content", "hello from the outage").containsEntry("blob", Map.of("$bytes", "AP8Q"));
            Result missing = MainCliTest.run(env, "dead", "show", "1-1");
            assertThat(missing.code()).isEqualTo(2);
            assertThat(missing.err()).contains("'1-1' is not in any dead-letter stream");

            Result dry = MainCliTest.run(env, "dead", "replay", "--all", "--stream", "inbound", "--dry-run");
            assertThat(dry.out()).contains("would replay 3");
            assertThat(raw.xlen(inbound)).isZero();
            Result one = MainCliTest.run(env, "dead", "replay", a);
            assertThat(one.code()).as(one.err()).isZero();
            assertThat(one.out()).contains("replayed 1, already replayed 0");
            assertThat(raw.xlen(inbound)).isEqualTo(1);
            assertThat(RawRedis.s(RawRedis.fields(raw.xrange(inbound).get(0)).get("replay_of"))).isEqualTo(a);
            Result neither = MainCliTest.run(env, "dead", "replay");
            assertThat(neither.code()).isEqualTo(2);

            Result byAge = MainCliTest.run(env, "dead", "purge", "--older-than", "1d");
            assertThat(byAge.code()).as(byAge.err()).isZero();
            assertThat(byAge.out().strip()).isEqualTo("purged 1");
            assertThat(raw.xlen(dead)).isEqualTo(1);
            Result rest = MainCliTest.run(env, "dead", "replay", "--all", "--rate", "100/s");
            assertThat(rest.out()).contains("replayed 2");
            assertThat(raw.xlen(t.outboundStream("webchat"))).isEqualTo(1);

            seed(raw, dead, inbound, null, "c-9", "x", "y");
            String id = seed(raw, dead, inbound, null, "c-10", "x", "y");
            assertThat(MainCliTest.run(env, "dead", "purge", id).out().strip()).isEqualTo("purged 1");
            assertThat(MainCliTest.run(env, "dead", "purge", "--all").out().strip()).isEqualTo("purged 1");
            assertThat(MainCliTest.run(env, "dead", "list", "--json").out()).isEmpty();
            assertThat(MainCliTest.run(env, "dead", "purge", "--older-than", "soon").code()).isEqualTo(2);
        }
    }

    /**
     * Two dead-letter streams can each hold an entry of one id (stored in the same millisecond). An operator copies one
     * row's id: show, replay and purge refuse an id alone that names two, naming each as ID@STREAM, and do nothing; the
     * id with its stream, or --stream, names one. Before, replay put both back and purge deleted both.
     */
    @Test
    void anIdTwoDeadLetterStreamsHoldIsRefusedUntilNamedWithItsStream() {
        Topology t = TestRedis.topology();
        Map<String, String> env = TestEnv.of(t);
        String inbound = t.inboundStream();
        String outbound = t.outboundStream("webchat");
        String dead = t.deadLetterStream(inbound);
        String outDead = t.deadLetterStream(outbound);
        try (RawRedis raw = new RawRedis(RedisURI.create(TestRedis.url().toString()))) {
            String id = seed(raw, dead, inbound, System.currentTimeMillis() + "-0", "c-1", "inbound one", "provider down");
            assertThat(seed(raw, outDead, outbound, id, "c-2", "outbound one", "gateway down")).isEqualTo(id);

            for (String[] args : List.of(new String[] {"dead", "show", id}, new String[] {"dead", "replay", id},
                    new String[] {"dead", "purge", id})) {
                Result r = MainCliTest.run(env, args);
                assertThat(r.code()).as(String.join(" ", args) + ": " + r.out() + r.err()).isEqualTo(2);
                assertThat(r.err()).startsWith("stargazer: ID: '" + id + "' is in 2 dead-letter streams, name one: ")
                        .contains(id + "@" + dead, id + "@" + outDead, "(nothing was done)");
                assertThat(r.out()).doesNotContain("replayed").doesNotContain("purged");
            }
            assertThat(raw.xlen(inbound)).isZero();
            assertThat(raw.xlen(outbound)).isZero();
            assertThat(raw.xlen(dead)).isEqualTo(1);
            assertThat(raw.xlen(outDead)).isEqualTo(1);

            // A ref to a stream --stream leaves out names nothing it could act on: refused, as an id two streams hold.
            Result elsewhere = MainCliTest.run(env, "dead", "purge", id + "@" + outDead, "--stream", "inbound");
            assertThat(elsewhere.code()).as(elsewhere.out() + elsewhere.err()).isEqualTo(2);
            assertThat(elsewhere.err()).contains("'" + id + "@" + outDead + "' names a stream that is not one of the dead-letter streams searched (" + dead + ")");
            // Ids that name nothing: nothing is done (a selection without ids would be every dead letter).
            Result none = MainCliTest.run(env, "dead", "purge", "1-1", "2-2@" + dead);
            assertThat(none.code()).isEqualTo(2);
            assertThat(none.out().strip()).isEqualTo("purged 0");
            assertThat(none.err()).contains("2 of 2 id(s) not found: 1-1, 2-2@" + dead);
            Result noneReplayed = MainCliTest.run(env, "dead", "replay", "1-1");
            assertThat(noneReplayed.code()).isEqualTo(2);
            assertThat(noneReplayed.out()).contains("replayed 0, already replayed 0");
            assertThat(raw.xlen(dead)).isEqualTo(1);
            assertThat(raw.xlen(outDead)).isEqualTo(1);

            Result shown = MainCliTest.run(env, "dead", "show", id + "@" + outDead);
            assertThat(shown.code()).as(shown.err()).isZero();
            assertThat(shown.out()).contains("outbound one").doesNotContain("inbound one");
            Result replayed = MainCliTest.run(env, "dead", "replay", id, "--stream", "inbound");
            assertThat(replayed.code()).as(replayed.err()).isZero();
            assertThat(replayed.out()).contains("replayed 1, already replayed 0");
            assertThat(raw.xlen(inbound)).isEqualTo(1);
            assertThat(raw.xlen(outbound)).isZero();
            // Both forms in one command: the ref and, now that one stream holds it, the id alone name the same dead letter.
            String other = seed(raw, dead, inbound, null, "c-3", "another", "boom");
            Result purged = MainCliTest.run(env, "dead", "purge", id + "@" + outDead, id, other);
            assertThat(purged.code()).as(purged.err()).isZero();
            assertThat(purged.out().strip()).isEqualTo("purged 2");
            assertThat(raw.xlen(outDead)).isZero();
            assertThat(raw.xlen(dead)).isZero();
        }
    }

    /** An age from before 1970 is a valid request that matches nothing: purged 0, as with --error. */
    @Test
    void purgeOlderThanAnAgeBeforeTheEpochPurgesNothing() {
        Topology t = TestRedis.topology();
        Map<String, String> env = TestEnv.of(t);
        String inbound = t.inboundStream();
        try (RawRedis raw = new RawRedis(RedisURI.create(TestRedis.url().toString()))) {
            seed(raw, t.deadLetterStream(inbound), inbound, null, "c-1", "keep me", "boom");
            for (String[] args : List.of(new String[] {"dead", "purge", "--older-than", "100000d"},
                    new String[] {"dead", "purge", "--older-than", "100000d", "--error", "boom"})) {
                Result r = MainCliTest.run(env, args);
                assertThat(r.code()).as(r.err()).isZero();
                assertThat(r.out().strip()).isEqualTo("purged 0");
            }
            assertThat(raw.xlen(t.deadLetterStream(inbound))).isEqualTo(1);
        }
    }

    /** docs/operating.md: list prints `more: --after <cursor>` when there are more, and only then. */
    @Test
    void listSaysMoreOnlyWhenThereAreMore() {
        Topology t = TestRedis.topology();
        Map<String, String> env = TestEnv.of(t);
        String inbound = t.inboundStream();
        try (RawRedis raw = new RawRedis(RedisURI.create(TestRedis.url().toString()))) {
            for (int i = 0; i < 3; i++) seed(raw, t.deadLetterStream(inbound), inbound, null, "c-" + i, "m" + i, "boom");
            Result three = MainCliTest.run(env, "dead", "list", "-n", "3");
            assertThat(three.code()).as(three.err()).isZero();
            assertThat(three.out()).contains("m2").doesNotContain("more:");
            Result two = MainCliTest.run(env, "dead", "list", "-n", "2");
            String more = two.out().lines().filter(l -> l.startsWith("more: --after ")).findFirst().orElseThrow();
            Result rest = MainCliTest.run(env, "dead", "list", "--after", more.substring("more: --after ".length()));
            assertThat(rest.out()).contains("m2").doesNotContain("m1").doesNotContain("more:");
        }
    }

    /** docs/security.md: what list prints from a message cannot drive the operator's terminal. */
    @Test
    void listPrintsControlCharactersOfAMessageAsVisibleEscapes() {
        Topology t = TestRedis.topology();
        Map<String, String> env = TestEnv.of(t);
        String inbound = t.inboundStream();
        try (RawRedis raw = new RawRedis(RedisURI.create(TestRedis.url().toString()))) {
            seed(raw, t.deadLetterStream(inbound), inbound, null, "c\u001b[2J", "hi\u001b]0;owned\u0007\u0000\u009b\u202e!",
                    "boom\u001b[31m red");
            Result r = MainCliTest.run(env, "dead", "list");
            assertThat(r.code()).as(r.err()).isZero();
            assertThat(r.out().chars().filter(c -> c != '\n' && (c < 0x20 || (c >= 0x7f && c <= 0x9f) || c == 0x202e)))
                    .as(r.out()).isEmpty();
            assertThat(r.out()).contains("c\\u001b[2J", "hi\\u001b]0;owned\\u0007\\u0000\\u009b\\u202e!", "boom\\u001b[31m red");
        }
    }

    /**
     * A script that replays or purges a mistyped id is told so: the ids found are acted on, and the exit code is 2, as
     * for show.
     */
    @Test
    void replayAndPurgeOfAnIdNotFoundDoTheOthersAndExitWithTwo() {
        Topology t = TestRedis.topology();
        Map<String, String> env = TestEnv.of(t);
        String inbound = t.inboundStream();
        String dead = t.deadLetterStream(inbound);
        try (RawRedis raw = new RawRedis(RedisURI.create(TestRedis.url().toString()))) {
            String a = seed(raw, dead, inbound, null, "c-1", "one", "boom");
            String b = seed(raw, dead, inbound, null, "c-2", "two", "boom");
            Result replay = MainCliTest.run(env, "dead", "replay", a, "1-1");
            assertThat(replay.code()).as(replay.out() + replay.err()).isEqualTo(2);
            assertThat(replay.out()).contains("replayed 1");
            assertThat(replay.err().strip()).isEqualTo("stargazer: ID: 1 of 2 id(s) not found: 1-1");
            assertThat(raw.xlen(inbound)).isEqualTo(1);
            Result purge = MainCliTest.run(env, "dead", "purge", "2-2", b);
            assertThat(purge.code()).as(purge.out() + purge.err()).isEqualTo(2);
            assertThat(purge.out().strip()).isEqualTo("purged 1");
            assertThat(purge.err().strip()).isEqualTo("stargazer: ID: 1 of 2 id(s) not found: 2-2");
            assertThat(raw.xlen(dead)).isZero();
        }
    }

    /** An id past what a stream id holds (two unsigned 64-bit numbers) is a usage error, not Redis's ERR. */
    @Test
    void anIdOutOfRangeIsAUsageErrorNamingIt() {
        Topology t = TestRedis.topology();
        Map<String, String> env = TestEnv.of(t);
        for (String id : List.of("99999999999999999999-0", "1-18446744073709551616")) {
            for (List<String> args : List.of(List.of("dead", "show", id), List.of("dead", "replay", id), List.of("dead", "purge", id),
                    List.of("dead", "list", "--after", id + "@" + t.deadLetterStream(t.inboundStream())))) {
                Result r = MainCliTest.run(env, args.toArray(String[]::new));
                assertThat(r.code()).as(args + ": " + r.err()).isEqualTo(2);
                assertThat(r.err().strip()).as(args.toString()).startsWith("stargazer: ").contains("'" + id).doesNotContain("ERR").doesNotContain("\n");
            }
        }
        // The largest id Redis takes is valid: not found, not refused.
        Result max = MainCliTest.run(env, "dead", "show", "18446744073709551615-18446744073709551615");
        assertThat(max.err()).contains("is not in any dead-letter stream");
    }

    /**
     * operating.md: list is oldest first across the dead-letter streams, not stream by stream, and its pages (a cursor
     * landing on an id that two streams share among them) hold every entry once.
     */
    @Test
    void listIsOldestFirstAcrossTheStreamsAndItsPagesHoldEveryEntryOnce() {
        Topology t = TestRedis.topology();
        Map<String, String> env = TestEnv.of(t);
        String inbound = t.inboundStream();
        String outbound = t.outboundStream("webchat");
        try (RawRedis raw = new RawRedis(RedisURI.create(TestRedis.url().toString()))) {
            for (String id : List.of("1000-0", "3000-0", "5000-0")) seed(raw, t.deadLetterStream(inbound), inbound, id, "c", "in " + id, "e");
            for (String id : List.of("2000-0", "3000-0", "4000-0")) seed(raw, t.deadLetterStream(outbound), outbound, id, "c", "out " + id, "e");
            seed(raw, t.deadLetterStream(t.toolsStream()), t.toolsStream(), "1500-0", "c", "tools 1500-0", "e");
            List<String> seen = new java.util.ArrayList<>();
            String after = null;
            for (int page = 0; page < 10; page++) {
                Result r = after == null ? MainCliTest.run(env, "dead", "list", "-n", "2") : MainCliTest.run(env, "dead", "list", "-n", "2", "--after", after);
                assertThat(r.code()).as(r.err()).isZero();
                List<String> lines = r.out().lines().toList();
                lines.stream().skip(1).filter(l -> !l.startsWith("more: ")).forEach(seen::add);
                after = lines.stream().filter(l -> l.startsWith("more: --after ")).map(l -> l.substring("more: --after ".length())).findFirst().orElse(null);
                if (after == null) break;
            }
            assertThat(seen.stream().map(l -> l.substring(l.lastIndexOf("  ") + 2)).toList())
                    .containsExactly("in 1000-0", "tools 1500-0", "out 2000-0", "in 3000-0", "out 3000-0", "out 4000-0", "in 5000-0");
        }
    }

    /**
     * A key of another type at a dead-letter stream's name (a stray SET) does not hide the other streams' dead letters:
     * list shows them and names the key on stderr, and streams flags it.
     */
    @Test
    void aKeyThatIsNotAStreamAtADeadLetterStreamsNameIsNamedAndTheOtherStreamsListed() {
        Topology t = TestRedis.topology();
        Map<String, String> env = TestEnv.of(t);
        String inbound = t.inboundStream();
        String outDead = t.deadLetterStream(t.outboundStream("webchat"));
        try (RawRedis raw = new RawRedis(RedisURI.create(TestRedis.url().toString()))) {
            String a = seed(raw, t.deadLetterStream(inbound), inbound, null, "c-1", "still listed", "boom");
            raw.sync().set(RawRedis.utf8(outDead), RawRedis.utf8("oops"));
            for (String[] args : List.of(new String[] {"dead", "list"}, new String[] {"dead", "list", "--json"})) {
                Result r = MainCliTest.run(env, args);
                assertThat(r.code()).as(r.err()).isZero();
                assertThat(r.out()).contains(a);
                assertThat(r.err().strip()).isEqualTo("stargazer: warning: '" + outDead + "' is not a stream (a key of another type): "
                        + "its dead letters, if any, are not listed");
            }
            Result streams = MainCliTest.run(env, "streams");
            assertThat(streams.code()).as(streams.err()).isZero();
            assertThat(streams.out()).contains("not a stream");
            assertThat(streams.err()).contains("'" + outDead + "' is not a stream");
        }
    }

    /** The ERROR column shows why, not a Java class name cut off before the reason. */
    @Test
    void listShowsTheReasonOfAnErrorNotItsClassName() {
        Topology t = TestRedis.topology();
        Map<String, String> env = TestEnv.of(t);
        String inbound = t.inboundStream();
        try (RawRedis raw = new RawRedis(RedisURI.create(TestRedis.url().toString()))) {
            seed(raw, t.deadLetterStream(inbound), inbound, null, "c-1", "x",
                    "not retryable, on delivery 1: NotRetryableException: prompt refused by the content policy");
            seed(raw, t.deadLetterStream(inbound), inbound, null, "c-2", "x",
                    "handler failed on delivery 5 of 5: java.net.SocketTimeoutException: provider timed out after 30 s");
            seed(raw, t.deadLetterStream(inbound), inbound, null, "c-3", "x", "handler failed on delivery 5 of 5: java.lang.NullPointerException");
            Result r = MainCliTest.run(env, "dead", "list");
            assertThat(r.code()).as(r.err()).isZero();
            assertThat(r.out()).contains("not retryable: prompt refused by the content policy", "  provider timed out after 30 s  ",
                    "  NullPointerException  ").doesNotContain("NotRetryableException").doesNotContain("java.");
            Result json = MainCliTest.run(env, "dead", "list", "--json");
            assertThat(json.out()).contains("java.net.SocketTimeoutException: provider timed out after 30 s");
        }
    }

    /** list --json pages as the table does: each line carries its cursor, and stderr says when there are more. */
    @Test
    @SuppressWarnings("unchecked")
    void listJsonCarriesTheCursorToPageOn() {
        Topology t = TestRedis.topology();
        Map<String, String> env = TestEnv.of(t);
        String inbound = t.inboundStream();
        try (RawRedis raw = new RawRedis(RedisURI.create(TestRedis.url().toString()))) {
            for (int i = 0; i < 3; i++) seed(raw, t.deadLetterStream(inbound), inbound, null, "c-" + i, "m" + i, "boom");
            Result two = MainCliTest.run(env, "dead", "list", "--json", "-n", "2");
            assertThat(two.code()).as(two.err()).isZero();
            List<Map<String, Object>> lines = two.out().lines().map(l -> (Map<String, Object>) Json.parse(l)).toList();
            assertThat(lines).hasSize(2);
            String cursor = (String) lines.get(1).get("cursor");
            assertThat(cursor).isEqualTo(lines.get(1).get("id") + "@" + t.deadLetterStream(inbound));
            assertThat(two.err().strip()).isEqualTo("more: --after " + cursor);
            Result rest = MainCliTest.run(env, "dead", "list", "--json", "--after", cursor);
            assertThat(rest.out().lines().toList()).hasSize(1).allMatch(l -> l.contains("\"m2\""));
            assertThat(rest.err()).isEmpty();
        }
    }

    /**
     * What replay leaves in place is counted by why: a dead letter without source_stream (another tool's) and one whose
     * source_stream is not the stream of its dead-letter stream (refused, as it could reach a stream of another role).
     * Before, both were counted as "no source stream": an operator looking for dead letters without the field found
     * every one with it, and was not told that some name a foreign stream.
     */
    @Test
    void replaySaysApartThoseWithoutASourceStreamAndThoseNamingAnotherStream() {
        Topology t = TestRedis.topology();
        Map<String, String> env = TestEnv.of(t);
        String inbound = t.inboundStream();
        String dead = t.deadLetterStream(inbound);
        try (RawRedis raw = new RawRedis(RedisURI.create(TestRedis.url().toString()))) {
            seed(raw, dead, t.outboundStream("webchat"), null, "c-1", "forged", "x");
            raw.xadd(dead, "payload", WireFormat.encode(Envelope.of("channel_id", "c-2", "content", "no source")), "error", "y");
            seed(raw, dead, inbound, null, "c-3", "fine", "z");

            Result dry = MainCliTest.run(env, "dead", "replay", "--all", "--stream", "inbound", "--dry-run");
            assertThat(dry.code()).as(dry.err()).isZero();
            assertThat(dry.out().strip()).isEqualTo("would replay 1 (1 without a source stream, 1 whose source stream is not "
                    + "that of its dead-letter stream)");
            Result r = MainCliTest.run(env, "dead", "replay", "--all", "--stream", "inbound");
            assertThat(r.code()).as(r.err()).isZero();
            assertThat(r.out().strip()).isEqualTo("replayed 1, already replayed 0, skipped 2 (1 without a source stream, 1 whose "
                    + "source stream is not that of its dead-letter stream)");
            assertThat(raw.xlen(dead)).isEqualTo(2);
            assertThat(raw.xlen(t.outboundStream("webchat"))).isZero();
        }
    }

    @Test
    void anIdGivenTwiceIsReplayedAndCountedOnce() {
        Topology t = TestRedis.topology();
        Map<String, String> env = TestEnv.of(t);
        String inbound = t.inboundStream();
        try (RawRedis raw = new RawRedis(RedisURI.create(TestRedis.url().toString()))) {
            String a = seed(raw, t.deadLetterStream(inbound), inbound, null, "c-1", "once", "provider down");
            Result r = MainCliTest.run(env, "dead", "replay", a, a, "1-1", "1-1");
            assertThat(r.code()).as(r.err()).isEqualTo(2);
            assertThat(r.out().lines()).containsExactly("replayed 1, already replayed 0, skipped 0 (no source stream)");
            assertThat(r.err().strip()).isEqualTo("stargazer: ID: 1 of 2 id(s) not found: 1-1");
            assertThat(raw.xlen(inbound)).isEqualTo(1);
        }
    }

    @Test
    void pauseAndResumeAGroupAndStreamsShowsIt() {
        Topology t = TestRedis.topology();
        Map<String, String> env = TestEnv.of(t);
        MainCliTest.run(env, "publish", "{\"channel_id\":\"c\"}");
        try (RawRedis raw = new RawRedis(RedisURI.create(TestRedis.url().toString()))) {
            raw.sync().xgroupCreate(io.lettuce.core.XReadArgs.StreamOffset.from(RawRedis.utf8(t.inboundStream()), "0"), RawRedis.utf8(t.workerGroup()));
        }
        Result pause = MainCliTest.run(env, "pause", "inbound", t.workerGroup());
        assertThat(pause.code()).as(pause.err()).isZero();
        assertThat(pause.out().strip()).isEqualTo("paused " + t.inboundStream() + " " + t.workerGroup());
        assertThat(MainCliTest.run(env, "pause", "inbound", t.workerGroup()).out()).startsWith("already paused");
        assertThat(MainCliTest.run(env, "streams").out()).contains(t.workerGroup() + " (PAUSED)");
        Result resume = MainCliTest.run(env, "resume", "inbound", t.workerGroup());
        assertThat(resume.out().strip()).isEqualTo("resumed " + t.inboundStream() + " " + t.workerGroup());
        assertThat(MainCliTest.run(env, "streams").out()).doesNotContain("PAUSED");
        Result again = MainCliTest.run(env, "resume", "inbound", t.workerGroup());
        assertThat(again.code()).as(again.err()).isZero();
        assertThat(again.out().strip()).isEqualTo("was not paused " + t.inboundStream() + " " + t.workerGroup());
    }

    /**
     * operating.md: `stargazer pause inbound sg:workers`. A mistyped group (`sg:worker`) or stream is a usage error naming
     * it, not "paused" with exit code 0 and a flag that stays for ever, nor "was not paused" with exit code 0.
     */
    @ParameterizedTest
    @ValueSource(strings = {"pause", "resume"})
    void pausingOrResumingAGroupOrStreamThatDoesNotExistIsAnErrorNamingIt(String command) {
        Topology t = TestRedis.topology();
        Map<String, String> env = TestEnv.of(t);
        try (io.stargazer.bus.EventBus bus = TestRedis.bus(io.stargazer.bus.BusConfig.builder().topology(t)
                .role(io.stargazer.bus.NodeRole.WORKER).build())) {
            bus.ensureStreams();
            String typo = t.workerGroup().substring(0, t.workerGroup().length() - 1); // sg:workers -> sg:worker
            Result r = MainCliTest.run(env, command, "inbound", typo);
            assertThat(r.code()).as("exit code; out=" + r.out().strip()).isEqualTo(2);
            assertThat(r.err().strip()).startsWith("stargazer: group: '" + typo + "' is not a consumer group of '" + t.inboundStream() + "'")
                    .doesNotContain("\n");
            assertThat(bus.paused(t.inboundStream(), typo)).isFalse();
            Result noStream = MainCliTest.run(env, command, t.inboundStream() + "x", t.workerGroup());
            assertThat(noStream.code()).as("exit code; out=" + noStream.out().strip()).isEqualTo(2);
            assertThat(noStream.err()).contains("the stream does not exist");
        }
    }

    /** Like streams, publish and tail: dead, pause, resume and provision print no library INFO lines on stderr. */
    @Test
    void operatorCommandsPrintOnlyTheirResultsNotTheLibrarysInfoLines() throws Exception {
        Topology t = TestRedis.topology();
        Map<String, String> env = TestEnv.of(t);
        try (io.stargazer.bus.EventBus bus = TestRedis.bus(io.stargazer.bus.BusConfig.builder().topology(t)
                .role(io.stargazer.bus.NodeRole.WORKER).build())) {
            bus.ensureStreams();
        }
        for (List<String> args : List.of(List.of("dead", "list"), List.of("pause", "inbound", t.workerGroup()),
                List.of("resume", "inbound", t.workerGroup()))) {
            try (NodeProcess p = NodeProcess.start("quiet-" + args.get(0), env, args.toArray(String[]::new))) {
                assertThat(p.awaitExit()).as(p.log()).isZero();
                assertThat(p.lines()).as(String.join(" ", args)).noneMatch(l -> l.contains(" INFO "));
            }
        }
    }
}
