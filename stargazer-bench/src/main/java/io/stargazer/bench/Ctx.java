// What every benchmark section shares: the Redis server, a raw connection for setting up data, and the durations.
package io.stargazer.bench;

import io.lettuce.core.RedisClient;
import io.lettuce.core.RedisURI;
import io.lettuce.core.ScriptOutputType;
import io.lettuce.core.api.StatefulRedisConnection;
import io.lettuce.core.api.sync.RedisCommands;
import io.lettuce.core.codec.ByteArrayCodec;
import io.stargazer.bus.BusConfig;
import io.stargazer.bus.EventBus;
import io.stargazer.bus.NodeRole;
import io.stargazer.bus.RedisUrl;
import io.stargazer.bus.Topology;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * The benchmark's Redis (its own server, or REDIS_URL) and the helpers that set data up outside the timed part:
 * server-side prefill, making entries pending, group creation, pending counts. Every row uses its own keys; on
 * its own server the harness also FLUSHALLs between rows so one row's data never slows the next.
 */
final class Ctx implements AutoCloseable {
    /** Approximate cap passed by every publisher (bus, peers, seed, redis-benchmark) so all pay the same trimming. */
    static final long MAXLEN = 1_000_000;

    private static final String PREFILL = """
            local n = tonumber(ARGV[1])
            local k = #ARGV - 3
            for i = 0, n - 1 do
              redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], '*', 'payload', ARGV[4 + (i % k)], 'trace_id', ARGV[3])
            end
            return n
            """;
    private static final String MAKE_PENDING = """
            local r = redis.call('XREADGROUP', 'GROUP', ARGV[1], ARGV[2], 'COUNT', ARGV[3], 'STREAMS', KEYS[1], '>')
            if not r then return 0 end
            return #r[1][2]
            """;

    final String url;
    final RedisUrl redisUrl;
    final boolean ownServer;
    final boolean quick;
    final Duration warm;
    final Duration measure;
    private final RedisClient client;
    private final StatefulRedisConnection<byte[], byte[]> conn;
    private final AtomicInteger keys = new AtomicInteger();

    Ctx(String url, boolean ownServer, boolean quick) {
        this(url, ownServer, quick, null, null);
    }

    private Ctx(String url, boolean ownServer, boolean quick, Duration warm, Duration measure) {
        this.url = url;
        this.redisUrl = RedisUrl.parse(url);
        this.ownServer = ownServer;
        this.quick = quick;
        this.warm = warm != null ? warm : quick ? Duration.ofMillis(700) : Duration.ofSeconds(2);
        this.measure = measure != null ? measure : quick ? Duration.ofMillis(1500) : Duration.ofSeconds(5);
        this.client = RedisClient.create(RedisURI.create(url));
        this.client.setDefaultTimeout(Duration.ofMinutes(2));
        this.conn = client.connect(ByteArrayCodec.INSTANCE);
    }

    /** The same server with other warm-up and measuring periods (for ProfileMain); a connection of its own. */
    Ctx withMeasure(Duration warm, Duration measure) {
        return new Ctx(url, ownServer, quick, warm, measure);
    }

    RedisCommands<byte[], byte[]> sync() {
        return conn.sync();
    }

    /** A key no other row uses. */
    String key(String what) {
        return "bench:" + what + ":" + keys.incrementAndGet();
    }

    /** A bus for one row, under a fresh namespace, with the shared cap. */
    EventBus bus(String who) {
        return bus(who, BusConfig.builder());
    }

    EventBus bus(String who, BusConfig.Builder b) {
        return bus(who, b, MAXLEN);
    }

    /**
     * {@code -Dbench.blockingPublishConnections=N} sets that setting on every row's bus, whatever the row's builder (to
     * compare settings with {@link ProfileMain}).
     */
    EventBus bus(String who, BusConfig.Builder b, long maxlen) {
        Integer connections = Integer.getInteger("bench.blockingPublishConnections");
        if (connections != null) b.blockingPublishConnections(connections);
        int n = keys.incrementAndGet();
        return EventBus.connect(redisUrl, b.topology(Topology.builder().namespace("bench" + n).build())
                .role(NodeRole.STANDALONE).nodeId(who + "-" + n).streamMaxlen(maxlen).build());
    }

    /** Drops every key between rows on the harness's own server; on a shared one, only the row's keys are removed. */
    void reset(String... usedKeys) {
        if (ownServer) {
            conn.sync().flushall();
        } else if (usedKeys.length > 0) {
            byte[][] k = new byte[usedKeys.length][];
            for (int i = 0; i < k.length; i++) k[i] = bytes(usedKeys[i]);
            conn.sync().del(k);
        }
    }

    /** Adds {@code n} benchmark entries server-side (a script of plain XADDs), outside any timing. */
    void prefill(String stream, long n) {
        byte[][] argv = new byte[3 + Envelopes.CHANNELS][];
        argv[1] = bytes(Long.toString(MAXLEN));
        argv[2] = Envelopes.TRACE_ID_BYTES;
        for (int i = 0; i < Envelopes.CHANNELS; i++) argv[3 + i] = Envelopes.bytes(i);
        long left = n;
        while (left > 0) {
            long chunk = Math.min(left, 20_000);
            argv[0] = bytes(Long.toString(chunk));
            conn.sync().eval(PREFILL, ScriptOutputType.INTEGER, new byte[][] {bytes(stream)}, argv);
            left -= chunk;
        }
    }

    /** Creates {@code group} at the stream's end ({@code $}), making the stream if missing. */
    void createGroup(String stream, String group) {
        conn.sync().xgroupCreate(io.lettuce.core.XReadArgs.StreamOffset.from(bytes(stream), "$"), bytes(group),
                io.lettuce.core.XGroupCreateArgs.Builder.mkstream());
    }

    /** Reads up to {@code n} new entries as {@code consumer} without acknowledging them: they stay pending. */
    long makePending(String stream, String group, String consumer, long n) {
        long done = 0;
        while (done < n) {
            long chunk = Math.min(n - done, 20_000);
            Long got = conn.sync().eval(MAKE_PENDING, ScriptOutputType.INTEGER, new byte[][] {bytes(stream)},
                    bytes(group), bytes(consumer), bytes(Long.toString(chunk)));
            if (got == null || got == 0) break;
            done += got;
        }
        return done;
    }

    long pending(String stream, String group) {
        return conn.sync().xpending(bytes(stream), bytes(group)).getCount();
    }

    long length(String stream) {
        return conn.sync().xlen(bytes(stream));
    }

    /** The server's CPU time so far (INFO cpu: used_cpu_user + used_cpu_sys), in nanoseconds. */
    long serverCpuNanos() {
        String info = new String(conn.sync().dispatch(io.lettuce.core.protocol.CommandType.INFO,
                new io.lettuce.core.output.ByteArrayOutput<>(ByteArrayCodec.INSTANCE),
                new io.lettuce.core.protocol.CommandArgs<>(ByteArrayCodec.INSTANCE).add("cpu")), StandardCharsets.UTF_8);
        double seconds = 0;
        for (String line : info.split("\r?\n")) {
            if (line.startsWith("used_cpu_user:") || line.startsWith("used_cpu_sys:")) {
                seconds += Double.parseDouble(line.substring(line.indexOf(':') + 1).trim());
            }
        }
        return (long) (seconds * 1e9);
    }

    String serverVersion() {
        String info = new String(conn.sync().dispatch(io.lettuce.core.protocol.CommandType.INFO,
                new io.lettuce.core.output.ByteArrayOutput<>(ByteArrayCodec.INSTANCE),
                new io.lettuce.core.protocol.CommandArgs<>(ByteArrayCodec.INSTANCE).add("server")), StandardCharsets.UTF_8);
        for (String line : info.split("\r?\n")) {
            if (line.startsWith("redis_version:")) return line.substring("redis_version:".length()).trim();
        }
        return "unknown";
    }

    static byte[] bytes(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }

    @Override
    public void close() {
        conn.close();
        client.shutdown(Duration.ZERO, Duration.ofSeconds(2));
    }
}
