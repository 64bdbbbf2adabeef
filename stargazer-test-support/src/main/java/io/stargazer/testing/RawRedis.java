package io.stargazer.testing;

import io.lettuce.core.RedisClient;
import io.lettuce.core.RedisURI;
import io.lettuce.core.StreamMessage;
import io.lettuce.core.api.StatefulRedisConnection;
import io.lettuce.core.api.sync.RedisCommands;
import io.lettuce.core.codec.ByteArrayCodec;
import java.nio.charset.StandardCharsets;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * Plain Lettuce access for tests that write or inspect stream entries byte for byte, the way a service in
 * another language (or an operator with redis-cli) would, without going through the bus. Not final: a module's
 * tests may add a constructor taking their own URL type.
 */
public class RawRedis implements AutoCloseable {
    private final RedisClient client;
    private final StatefulRedisConnection<byte[], byte[]> conn;

    public RawRedis(RedisURI uri) {
        client = RedisClient.create(uri);
        conn = client.connect(ByteArrayCodec.INSTANCE);
    }

    public RedisCommands<byte[], byte[]> sync() {
        return conn.sync();
    }

    /** XADD with the given fields (alternating names and values, each String or byte[]). */
    public String xadd(String stream, Object... fieldsAndValues) {
        return conn.sync().xadd(utf8(stream), body(fieldsAndValues));
    }

    /** {@link #xadd} with the entry's id given ({@code <ms>-<seq>}), as when two streams get one in the same millisecond. */
    public String xaddWithId(String stream, String id, Object... fieldsAndValues) {
        return conn.sync().xadd(utf8(stream), new io.lettuce.core.XAddArgs().id(id), body(fieldsAndValues));
    }

    private static Map<byte[], byte[]> body(Object... fieldsAndValues) {
        Map<byte[], byte[]> body = new LinkedHashMap<>();
        for (int i = 0; i < fieldsAndValues.length; i += 2) {
            body.put(bytes(fieldsAndValues[i]), bytes(fieldsAndValues[i + 1]));
        }
        return body;
    }

    public List<StreamMessage<byte[], byte[]>> xrange(String stream) {
        return conn.sync().xrange(utf8(stream), io.lettuce.core.Range.create("-", "+"));
    }

    /** The fields of one entry by name (UTF-8), for assertions. */
    public static Map<String, byte[]> fields(StreamMessage<byte[], byte[]> m) {
        Map<String, byte[]> out = new LinkedHashMap<>();
        m.getBody().forEach((k, v) -> out.put(new String(k, StandardCharsets.UTF_8), v));
        return out;
    }

    /** The field names of {@code XINFO STREAM stream}: what this server reports (Redis 6.2 has no entries-added). */
    public Set<String> xinfoStreamFields(String stream) {
        return names(conn.sync().xinfoStream(utf8(stream)));
    }

    /** The field names of {@code XINFO GROUPS stream} for its first group (Redis 6.2 reports no lag, no entries-read). */
    public Set<String> xinfoGroupFields(String stream) {
        List<Object> groups = conn.sync().xinfoGroups(utf8(stream));
        if (groups.isEmpty()) {
            throw new IllegalStateException(stream + " has no group to report on");
        }
        return names((List<?>) groups.get(0));
    }

    private static Set<String> names(List<?> flatMap) {
        Set<String> out = new LinkedHashSet<>();
        for (int i = 0; i < flatMap.size(); i += 2) {
            out.add(s((byte[]) flatMap.get(i)));
        }
        return out;
    }

    public long xlen(String stream) {
        return conn.sync().xlen(utf8(stream));
    }

    /** Calls of one command so far, from INFO commandstats (Redis 7 names subcommands {@code xinfo|groups}); 0 for none. */
    public long commandCalls(String command) {
        for (String line : conn.sync().info("commandstats").split("\r?\n")) {
            if (line.startsWith("cmdstat_" + command + ":")) {
                String calls = line.substring(line.indexOf("calls=") + 6);
                return Long.parseLong(calls.substring(0, calls.indexOf(',')));
            }
        }
        return 0;
    }

    public long xdel(String stream, String... ids) {
        return conn.sync().xdel(utf8(stream), ids);
    }

    /** Short forms for tests that build raw commands: text to UTF-8 bytes and back. */
    public static byte[] b(String s) {
        return utf8(s);
    }

    public static String s(byte[] b) {
        return b == null ? null : new String(b, StandardCharsets.UTF_8);
    }

    public static byte[] utf8(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }

    private static byte[] bytes(Object o) {
        return o instanceof byte[] b ? b : utf8(o.toString());
    }

    @Override
    public void close() {
        conn.close();
        shutdown(client);
    }

    /**
     * Shuts a Lettuce client down, waiting at most 10 s: Lettuce's own {@code shutdown()} waits without a limit and can
     * wait forever (redis/lettuce#2278), which would hang the test that closes it instead of letting it go on.
     */
    public static void shutdown(io.lettuce.core.AbstractRedisClient client) {
        try {
            client.shutdownAsync(0, 2, TimeUnit.SECONDS).get(10, TimeUnit.SECONDS);
        } catch (TimeoutException e) {
            System.err.println("A Lettuce client did not shut down within 10 s; going on without it");
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } catch (ExecutionException e) {
            System.err.println("A Lettuce client's shutdown failed: " + e.getCause());
        }
    }
}
