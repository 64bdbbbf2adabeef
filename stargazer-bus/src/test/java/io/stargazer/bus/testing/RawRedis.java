package io.stargazer.bus.testing;

import io.lettuce.core.RedisClient;
import io.lettuce.core.RedisURI;
import io.lettuce.core.api.StatefulRedisConnection;
import io.lettuce.core.api.sync.RedisCommands;
import io.lettuce.core.codec.ByteArrayCodec;
import io.stargazer.bus.RedisUrl;
import java.nio.charset.StandardCharsets;
import java.time.Duration;

/**
 * A plain Lettuce connection with byte[] keys and values to the test Redis, for tests that write and read stream
 * entries by hand, as a service in another language would, without going through the bus.
 */
public final class RawRedis implements AutoCloseable {
    private final RedisClient client;
    private final StatefulRedisConnection<byte[], byte[]> conn;

    public RawRedis(RedisUrl url) {
        RedisURI.Builder b = RedisURI.builder().withHost(url.host()).withPort(url.port()).withDatabase(url.database())
                .withSsl(url.tls()).withTimeout(Duration.ofSeconds(10));
        char[] pw = url.password();
        if (pw != null) {
            if (url.user() != null) b.withAuthentication(url.user(), pw);
            else b.withPassword(pw);
        }
        client = RedisClient.create(b.build());
        conn = client.connect(ByteArrayCodec.INSTANCE);
    }

    public RedisCommands<byte[], byte[]> sync() {
        return conn.sync();
    }

    public static byte[] b(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }

    public static String s(byte[] b) {
        return new String(b, StandardCharsets.UTF_8);
    }

    @Override
    public void close() {
        conn.close();
        client.shutdown(Duration.ZERO, Duration.ofSeconds(2));
    }
}
