// Promise (RedisUrl, docs/cluster.md): the hosts after the first of a cluster URL are checked as the first is; a host
// that is not one (white space, an unbracketed IPv6 address, a broken bracket) is refused naming REDIS_URL and the host,
// never taken as a seed named ":" or "[:".
package io.stargazer.bus;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowable;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

class RedisUrlSeedHostTest {

    @ParameterizedTest
    @ValueSource(strings = {"redis://a:7000,::1", "redis://a:7000,[::1", "redis://a:7000,b c:7001", "redis://a:7000,b%:7001"})
    void aSeedThatIsNoHostIsRefused(String url) {
        Throwable t = catchThrowable(() -> RedisUrl.parse(url));
        assertThat(t).as(url + (t == null ? " accepted with seeds " + RedisUrl.parse(url).seeds() : ""))
                .isInstanceOf(ConfigException.class);
        assertThat(((ConfigException) t).setting()).isEqualTo("REDIS_URL");
    }

    @Test
    void goodSeedsStillParse() {
        assertThat(RedisUrl.parse("redis://a:7000,[::1]:7001,[fe80::2],c").seeds()).containsExactly(new RedisUrl.Endpoint("a", 7000),
                new RedisUrl.Endpoint("::1", 7001), new RedisUrl.Endpoint("fe80::2", 6379), new RedisUrl.Endpoint("c", 6379));
    }
}
