package io.stargazer.bus.testing;

import io.lettuce.core.RedisURI;
import io.stargazer.bus.RedisUrl;

/** {@link io.stargazer.testing.RawRedis} opened from a bus {@link RedisUrl}, logged in as its user. */
public final class RawRedis extends io.stargazer.testing.RawRedis {
    public RawRedis(RedisUrl url) {
        super(uri(url));
    }

    private static RedisURI uri(RedisUrl url) {
        RedisURI.Builder b = RedisURI.builder().withHost(url.host()).withPort(url.port()).withDatabase(url.database());
        if (url.password() != null) {
            if (url.user() != null) b.withAuthentication(url.user(), url.password());
            else b.withPassword(url.password());
        }
        return b.build();
    }
}
