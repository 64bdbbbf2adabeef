// Promise (docs/security.md "Credentials are never shown", docs/cluster.md): a URL that does not parse is refused naming
// REDIS_URL, redacted before it is quoted; the password never appears in an error message, toString() or a log line.
// A password holding an unencoded '/', '?' or '#' ends the URL's authority early: the rest of it (with the '@' and the
// real host) lands in the path, query or fragment. Such a URL must be refused without quoting any part of the password,
// never taken with a piece of the password as the host.
package io.stargazer.bus;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowable;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

class RedisUrlUnencodedPasswordTest {

    @ParameterizedTest
    @ValueSource(strings = {
            "redis://app:hunter2/x@redis.internal:6380",   // '/' in user:password
            "redis://app:hunter2?x@redis.internal:6380",   // '?'
            "redis://app:hunter2#x@redis.internal:6380",   // '#'
            "redis://hunter2#x@redis.internal:6380",       // the single-password form with '#'
            "redis://x#hunter2@redis.internal:6380",
            "redis://x/hunter2@redis.internal:6380",
            "redis://x?hunter2@redis.internal:6380",
            "rediss://app:hunter2/x@a:7000,b:7001",          // a cluster URL
    })
    void aPasswordWithAnUnencodedDelimiterIsRefusedWithoutQuotingIt(String url) {
        Throwable t = catchThrowable(() -> RedisUrl.parse(url));
        String shown = t == null ? "accepted as " + RedisUrl.parse(url) : t.toString();
        assertThat(t).as(url + " -> " + shown).isInstanceOf(ConfigException.class);
        assertThat(((ConfigException) t).setting()).isEqualTo("REDIS_URL");
        assertThat(t.getMessage()).as(url).doesNotContain("hunter2");
    }

    /** A fragment means nothing to a Redis URL: taken and ignored, it hides what was meant (see above). */
    @ParameterizedTest
    @ValueSource(strings = {"redis://host:6379#x", "redis://app:1234#5@redis.internal"})
    void aFragmentIsRefused(String url) {
        Throwable t = catchThrowable(() -> RedisUrl.parse(url));
        assertThat(t).as(url + (t == null ? " accepted as " + RedisUrl.parse(url) : "")).isInstanceOf(ConfigException.class);
        assertThat(t.getMessage()).doesNotContain("1234");
    }
}
