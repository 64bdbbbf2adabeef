// Promise (RedisUrlTest: "parses redis:// and rediss:// URLs as Lettuce and redis-py do"): a host name with '_' (a
// Docker Compose service such as redis_cache, legal in DNS) is a host like any other, not refused as "has no host".
package io.stargazer.bus;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.Test;

class RedisUrlUnderscoreHostTest {

    @Test
    void aHostNameWithAnUnderscoreIsAHost() {
        RedisUrl u = RedisUrl.parse("redis://app:p%40ss@redis_cache:6380/2");
        assertThat(u.host()).isEqualTo("redis_cache");
        assertThat(u.port()).isEqualTo(6380);
        assertThat(u.database()).isEqualTo(2);
        assertThat(u.user()).isEqualTo("app");
        assertThat(u.password()).containsExactly("p@ss".toCharArray());
        assertThat(u.toString()).isEqualTo("redis://app:***@redis_cache:6380/2");
        assertThat(RedisUrl.parse("rediss://redis_cache").port()).isEqualTo(6379);
        assertThat(RedisUrl.parse("redis://secret@redis_cache").password()).containsExactly("secret".toCharArray());
        assertThat(RedisUrl.parse("redis://node_1:7000,node_2:7001").seeds())
                .containsExactly(new RedisUrl.Endpoint("node_1", 7000), new RedisUrl.Endpoint("node_2", 7001));
    }
}
