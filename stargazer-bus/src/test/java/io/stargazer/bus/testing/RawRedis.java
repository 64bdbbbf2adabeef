package io.stargazer.bus.testing;

import io.lettuce.core.RedisClient;
import io.lettuce.core.RedisURI;
import io.lettuce.core.StreamMessage;
import io.lettuce.core.api.StatefulRedisConnection;
import io.lettuce.core.api.sync.RedisCommands;
import io.lettuce.core.codec.ByteArrayCodec;
import io.stargazer.bus.RedisUrl;
import java.nio.charset.StandardCharsets;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Plain Lettuce access for tests that write or inspect stream entries byte for byte, the way a service in
 * another language (or an operator with redis-cli) would, without going through the bus.
 */
public final class RawRedis implements AutoCloseable {
    private final RedisClient client;
    private final StatefulRedisConnection<byte[], byte[]> conn;

    public RawRedis(RedisUrl url) {
        RedisURI.Builder b = RedisURI.builder().withHost(url.host()).withPort(url.port()).withDatabase(url.database());
        if (url.password() != null) {
            if (url.user() != null) b.withAuthentication(url.user(), url.password());
            else b.withPassword(url.password());
        }
        client = RedisClient.create(b.build());
        conn = client.connect(ByteArrayCodec.INSTANCE);
    }

    public RedisCommands<byte[], byte[]> sync() {
        return conn.sync();
    }

    /** XADD with the given fields (alternating names and values, each String or byte[]). */
    public String xadd(String stream, Object... fieldsAndValues) {
        Map<byte[], byte[]> body = new LinkedHashMap<>();
        for (int i = 0; i < fieldsAndValues.length; i += 2) {
            body.put(bytes(fieldsAndValues[i]), bytes(fieldsAndValues[i + 1]));
        }
        return conn.sync().xadd(utf8(stream), body);
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

    public long xlen(String stream) {
        return conn.sync().xlen(utf8(stream));
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
        client.shutdown();
    }
}
