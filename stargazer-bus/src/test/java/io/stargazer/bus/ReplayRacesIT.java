// Promise (once, never lost): a replay puts each dead letter back once beside a second replay, a purge or a cut connection.
package io.stargazer.bus;

import static org.assertj.core.api.Assertions.assertThat;

import io.lettuce.core.StreamMessage;
import io.stargazer.bus.testing.RawRedis;
import io.stargazer.bus.testing.TcpProxy;
import io.stargazer.bus.testing.TestRedis;
import io.stargazer.bus.wire.WireFormat;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.awaitility.Awaitility;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * A replay puts each dead letter back once, whatever runs beside it: a second replay at the same time, a purge, or a
 * connection cut after the put-back was written; and what a purge leaves is never lost.
 */
@Timeout(180)
class ReplayRacesIT {

    private static List<String> seed(RawRedis raw, String dead, String source, int n) {
        String script = "local ids = {} for i = 1, tonumber(ARGV[2]) do ids[i] = redis.call('XADD', KEYS[1], '*', 'payload', ARGV[1],"
                + " 'trace_id', 't' .. i, 'channel_id', 'c' .. (i % 7), 'error', 'provider down', 'source_stream', ARGV[3], 'source_id',"
                + " '1-' .. i, 'group', 'workers', 'deliveries', '5', 'dead_at_ms', '1') end return ids";
        List<Object> ids = raw.sync().eval(script, io.lettuce.core.ScriptOutputType.MULTI, new byte[][] {RawRedis.b(dead)},
                WireFormat.encode(Envelope.of("channel_id", "c", "content", "x")), RawRedis.b(Integer.toString(n)), RawRedis.b(source));
        List<String> out = new ArrayList<>();
        for (Object o : ids) out.add(o instanceof byte[] b ? RawRedis.s(b) : String.valueOf(o));
        return out;
    }

    /** replay_of of every entry put back, by how often each was put back; and each carries its trace. */
    private static Map<String, Integer> putBack(RawRedis raw, String source) {
        Map<String, Integer> out = new HashMap<>();
        for (StreamMessage<byte[], byte[]> m : raw.xrange(source)) {
            Map<String, byte[]> f = RawRedis.fields(m);
            assertThat(f.get("trace_id")).as("trace of %s", m.getId()).isNotNull();
            out.merge(RawRedis.s(f.get("replay_of")), 1, Integer::sum);
        }
        return out;
    }

    private static Map<String, Integer> twice(Map<String, Integer> counts) {
        Map<String, Integer> out = new HashMap<>();
        counts.forEach((k, v) -> { if (v > 1) out.put(k, v); });
        return out;
    }

    private static EventBus bus(Topology t) {
        return TestRedis.bus(TestRedis.config(NodeRole.GATEWAY).topology(t).build());
    }

    /** Every seeded dead letter put back exactly once, none left. */
    private static void assertEachBackOnce(RawRedis raw, Topology t, List<String> ids, Object why) {
        Map<String, Integer> back = putBack(raw, t.inboundStream());
        assertThat(twice(back)).as("put back more than once (%s)", why).isEmpty();
        assertThat(back.keySet()).containsExactlyInAnyOrderElementsOf(ids);
        assertThat(raw.xlen(t.deadLetterStream(t.inboundStream()))).isZero();
    }

    @Test
    void twoReplaysAtOnceGiveEachDeadLetterBackOnce() throws Exception {
        int total = 3000;
        Topology t = Topology.builder().namespace(TestRedis.namespace()).build();
        ExecutorService ex = Executors.newFixedThreadPool(2);
        try (RawRedis raw = new RawRedis(TestRedis.url());
                EventBus a = bus(t); EventBus b = bus(t)) {
            String inbound = t.inboundStream();
            String dead = t.deadLetterStream(inbound);
            List<String> ids = seed(raw, dead, inbound, total);
            Future<ReplayResult> ra = ex.submit(() -> a.deadLetters().replay(DeadLetterFilter.ALL, ReplayOptions.DEFAULTS));
            Future<ReplayResult> rb = ex.submit(() -> b.deadLetters().replay(DeadLetterFilter.ALL, ReplayOptions.DEFAULTS));
            ReplayResult x = ra.get(120, TimeUnit.SECONDS);
            ReplayResult y = rb.get(120, TimeUnit.SECONDS);
            assertEachBackOnce(raw, t, ids, x + " / " + y);
            assertThat(x.replayed() + y.replayed()).as("%s / %s", x, y).isEqualTo(total);
        } finally {
            ex.shutdownNow();
        }
    }

    @Test
    void aPurgeRacingAReplayLosesNothingItDidNotPurgeAndNothingIsPutBackTwice() throws Exception {
        int total = 3000;
        Topology t = Topology.builder().namespace(TestRedis.namespace()).build();
        ExecutorService ex = Executors.newSingleThreadExecutor();
        try (RawRedis raw = new RawRedis(TestRedis.url());
                EventBus a = bus(t); EventBus b = bus(t)) {
            String inbound = t.inboundStream();
            String dead = t.deadLetterStream(inbound);
            List<String> ids = seed(raw, dead, inbound, total);
            Future<ReplayResult> replay = ex.submit(() -> a.deadLetters().replay(DeadLetterFilter.ALL, ReplayOptions.builder().ratePerSecond(5000).build()));
            Awaitility.await().pollInterval(Duration.ofMillis(1)).atMost(60, TimeUnit.SECONDS).until(() -> raw.xlen(inbound) > 0);
            long purged = b.deadLetters().purge(DeadLetterFilter.builder().errorContains("provider").build());
            ReplayResult r = replay.get(120, TimeUnit.SECONDS);
            Map<String, Integer> back = putBack(raw, inbound);
            assertThat(twice(back)).as("put back more than once").isEmpty();
            Set<String> left = new HashSet<>();
            for (StreamMessage<byte[], byte[]> m : raw.xrange(dead)) left.add(m.getId());
            Set<String> gone = new HashSet<>(ids);
            gone.removeAll(back.keySet());
            gone.removeAll(left);
            // What is neither put back nor a dead letter still was purged: as many as the purge says, at most.
            assertThat((long) gone.size()).as("replay %s, purged %d", r, purged).isLessThanOrEqualTo(purged);
            assertThat(back.size() + left.size() + purged).isGreaterThanOrEqualTo(total);
        } finally {
            ex.shutdownNow();
        }
    }

    /**
     * The connection the replay writes on goes silent just after one put-back went out (the script ran, its answer
     * lost): the bus replaces it, the replay fails or goes on, and run again it puts nothing back twice.
     */
    @Test
    void aReplayWhoseConnectionIsLostAfterWritingAndRunAgainGivesEachBackOnce() throws Exception {
        int total = 500;
        Topology t = Topology.builder().namespace(TestRedis.namespace()).build();
        try (RawRedis raw = new RawRedis(TestRedis.url()); TcpProxy proxy = TcpProxy.to(TestRedis.url());
                EventBus viaProxy = EventBus.connect(proxy.url(), TestRedis.config(NodeRole.GATEWAY).topology(t)
                        .deadPeerTimeout(Duration.ofSeconds(1)).build());
                EventBus direct = bus(t)) {
            String inbound = t.inboundStream();
            String dead = t.deadLetterStream(inbound);
            List<String> ids = seed(raw, dead, inbound, total);
            proxy.silenceAfterSending(ids.get(total / 2));
            Throwable first = null;
            try {
                viaProxy.deadLetters().replay(DeadLetterFilter.ALL, ReplayOptions.DEFAULTS);
            } catch (StargazerException e) {
                first = e;
            }
            assertThat(proxy.repliesDropped()).as("a reply was lost (first run: %s)", String.valueOf(first)).isPositive();
            ReplayResult again = direct.deadLetters().replay(DeadLetterFilter.ALL, ReplayOptions.DEFAULTS);
            assertEachBackOnce(raw, t, ids, "first run: " + first + ", again: " + again);
        }
    }
}
