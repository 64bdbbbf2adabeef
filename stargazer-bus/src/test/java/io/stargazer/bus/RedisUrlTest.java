// Promise: RedisUrl parses redis:// and rediss:// URLs as Lettuce and redis-py do, refuses bad ones naming REDIS_URL, and never shows the password.
package io.stargazer.bus;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowableOfType;

import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

class RedisUrlTest {

    private static ConfigException refusal(String url) {
        ConfigException e = catchThrowableOfType(() -> RedisUrl.parse(url), ConfigException.class);
        assertThat(e).as("refusal of " + url).isNotNull();
        assertThat(e.setting()).isEqualTo("REDIS_URL");
        assertThat(e.getMessage()).startsWith("REDIS_URL:");
        return e;
    }

    @Test
    void plainHost() {
        RedisUrl u = RedisUrl.parse("redis://host");
        assertThat(u.host()).isEqualTo("host");
        assertThat(u.port()).isEqualTo(6379);
        assertThat(u.database()).isZero();
        assertThat(u.user()).isNull();
        assertThat(u.password()).isNull();
        assertThat(u.tls()).isFalse();
        assertThat(u.verifyPeer()).isTrue();
        assertThat(u.caFile()).isNull();
        assertThat(u.toString()).isEqualTo("redis://host:6379");
    }

    @Test
    void portAndDatabase() {
        RedisUrl u = RedisUrl.parse("redis://host:6380/2");
        assertThat(u.host()).isEqualTo("host");
        assertThat(u.port()).isEqualTo(6380);
        assertThat(u.database()).isEqualTo(2);
        assertThat(u.toString()).isEqualTo("redis://host:6380/2");
        assertThat(RedisUrl.parse("redis://host/").database()).isZero();
        assertThat(RedisUrl.parse("  redis://host:1/15  ").database()).isEqualTo(15);
    }

    @Test
    void userAndPercentEncodedPassword() {
        RedisUrl u = RedisUrl.parse("redis://user:p%40ss@host");
        assertThat(u.user()).isEqualTo("user");
        assertThat(u.password()).containsExactly('p', '@', 's', 's');
        assertThat(u.host()).isEqualTo("host");
    }

    @Test
    void plusInPasswordIsAPlusNotASpace() {
        // URIs percent-encode; '+' means '+' (redis-py's unquote agrees). Generated passwords often contain '+'.
        assertThat(RedisUrl.parse("redis://user:pa+ss@host").password()).containsExactly("pa+ss".toCharArray());
        assertThat(RedisUrl.parse("redis://user:a%2Bb@host").password()).containsExactly("a+b".toCharArray());
        assertThat(RedisUrl.parse("redis://us+er:x@host").user()).isEqualTo("us+er");
        assertThat(RedisUrl.parse("redis://:a%20b@host").password()).containsExactly("a b".toCharArray());
    }

    @Test
    void unicodePasswordIsDecodedAsUtf8() {
        assertThat(RedisUrl.parse("redis://u:%C3%A9t%C3%A9@host").password()).containsExactly("\u00e9t\u00e9".toCharArray());
    }

    @Test
    void redissSetsTls() {
        RedisUrl u = RedisUrl.parse("rediss://host:6390");
        assertThat(u.tls()).isTrue();
        assertThat(u.verifyPeer()).isTrue();
        assertThat(u.port()).isEqualTo(6390);
        assertThat(u.toString()).isEqualTo("rediss://host:6390");
        assertThat(RedisUrl.parse("rediss://host").port()).isEqualTo(6379);
    }

    @Test
    void passwordOnly() {
        RedisUrl u = RedisUrl.parse("redis://:secret@host");
        assertThat(u.user()).isNull();
        assertThat(u.password()).containsExactly("secret".toCharArray());
    }

    @Test
    void legacyPasswordOnly() {
        RedisUrl u = RedisUrl.parse("redis://secret@host");
        assertThat(u.user()).isNull();
        assertThat(u.password()).containsExactly("secret".toCharArray());
        assertThat(u.toString()).doesNotContain("secret");
    }

    @Test
    void ipv6Host() {
        RedisUrl u = RedisUrl.parse("redis://[::1]:6380");
        assertThat(u.host()).isEqualTo("::1");
        assertThat(u.port()).isEqualTo(6380);
        assertThat(u.toString()).isEqualTo("redis://[::1]:6380");
        assertThat(RedisUrl.parse(u.toString())).isEqualTo(u);
    }

    @Test
    void badSchemeIsRefusedNamingRedisUrl() {
        assertThat(refusal("http://host").getMessage()).contains("redis://");
        refusal("host:6379");
        refusal("redis:/host");
    }

    @ParameterizedTest
    @ValueSource(strings = {"", "   ", "redis://", "redis:///2", "redis://host/notanumber", "redis://host/-1",
            "redis://ho st", "redis://host:99999", "redis://host:0"})
    void badUrlsAreRefused(String url) {
        refusal(url);
    }

    @Test
    void aPortThatIsNotANumberIsNamedAsThePort() {
        assertThat(refusal("redis://127.0.0.1:abc").getMessage())
                .isEqualTo("REDIS_URL: 'redis://127.0.0.1:abc' names port 'abc', not a number");
        assertThat(refusal("redis://u:hunter2@host:port").getMessage()).contains("names port 'port'").doesNotContain("hunter2");
    }

    @Test
    void anUnknownQueryParameterIsRefusedNamingIt() {
        assertThat(refusal("redis://host:7000?custer=true").getMessage()).contains("unknown parameter 'custer'").contains("cluster");
        refusal("redis://host:7000?cluster=true&password=x");
        assertThat(RedisUrl.parse("redis://host:7000?cluster=true").cluster()).isTrue();
    }

    @Test
    void withEnvironmentAppliesTheTlsAndClusterVariablesToAUrlFromElsewhere() {
        RedisUrl plain = RedisUrl.parse("--redis-url", "redis://h:7000");
        assertThat(plain.withEnvironment(java.util.Map.of("SG_REDIS_CLUSTER", "true")).cluster()).isTrue();
        assertThat(plain.withEnvironment(java.util.Map.of("SG_REDIS_CLUSTER", " ", "SG_REDIS_CA_FILE", ""))).isEqualTo(plain);
        ConfigException e = catchThrowableOfType(() -> plain.withEnvironment(java.util.Map.of("SG_REDIS_TLS_VERIFY", "none")), ConfigException.class);
        assertThat(e.setting()).isEqualTo("SG_REDIS_TLS_VERIFY");
        assertThat(RedisUrl.parse("rediss://h:7000").withEnvironment(java.util.Map.of("SG_REDIS_TLS_VERIFY", "none")).verifyPeer()).isFalse();
    }

    @Test
    void nullIsRefused() {
        refusal(null);
    }

    @Test
    void customSettingName() {
        ConfigException e = catchThrowableOfType(() -> RedisUrl.parse("SG_REDIS_URL", "ftp://x"), ConfigException.class);
        assertThat(e.setting()).isEqualTo("SG_REDIS_URL");
    }

    @Test
    void toStringNeverContainsThePassword() {
        for (String url : new String[] {"redis://user:hunter2@host", "redis://:hunter2@host:7000/3", "rediss://hunter2@host",
                "redis://user:hunter2%21@host"}) {
            RedisUrl u = RedisUrl.parse(url);
            assertThat(u.toString()).as(url).doesNotContain("hunter2").contains("***");
        }
        assertThat(RedisUrl.parse("redis://user:hunter2@host").toString()).isEqualTo("redis://user:***@host:6379");
        assertThat(RedisUrl.parse("redis://user@host:1").withCredentials("admin", "hunter2").toString())
                .isEqualTo("redis://admin:***@host:1");
    }

    @ParameterizedTest
    @ValueSource(strings = {"redis://u:hunter2@host/notanumber", "http://u:hunter2@host", "redis://u:hunter2@ho st/1",
            "redis://u:hunter2@/x", "redis://u:hunter2@host:port", "redis://u:hunter2@host/-3", "redis://hunter2@host/x",
            "redis://u:hun@ter2@host/x", "redis://u:hunter2@host:99999", "redis://u:hunter2%zz@host"})
    void refusalsNeverContainThePassword(String url) {
        ConfigException e = refusal(url);
        assertThat(e.getMessage()).doesNotContain("hunter2").doesNotContain("hunter").doesNotContain("ter2");
        assertThat(String.valueOf(e.getCause())).doesNotContain("hunter");
    }

    @Test
    void withInsecureTlsTurnsVerificationOff() {
        RedisUrl secure = RedisUrl.parse("rediss://user:pw@host:6390/1");
        RedisUrl insecure = secure.withInsecureTls();
        assertThat(insecure.verifyPeer()).isFalse();
        assertThat(secure.verifyPeer()).isTrue();
        assertThat(insecure.tls()).isTrue();
        assertThat(insecure.host()).isEqualTo("host");
        assertThat(insecure.port()).isEqualTo(6390);
        assertThat(insecure.database()).isEqualTo(1);
        assertThat(insecure.user()).isEqualTo("user");
        assertThat(insecure.password()).containsExactly('p', 'w');
        assertThat(insecure).isNotEqualTo(secure);
    }

    @Test
    void withCaFileKeepsTheRest() {
        RedisUrl u = RedisUrl.parse("rediss://host").withCaFile(Path.of("/etc/ca.pem"));
        assertThat(u.caFile()).isEqualTo(Path.of("/etc/ca.pem"));
        assertThat(u.verifyPeer()).isTrue();
        assertThat(u.tls()).isTrue();
    }

    @Test
    void passwordReturnsACopy() {
        RedisUrl u = RedisUrl.parse("redis://:secret@host");
        char[] first = u.password();
        first[0] = 'X';
        assertThat(u.password()).containsExactly("secret".toCharArray());
        assertThat(u.password()).isNotSameAs(u.password());
    }

    @Test
    void equalityIncludesThePassword() {
        assertThat(RedisUrl.parse("redis://:a@host")).isEqualTo(RedisUrl.parse("redis://:a@host"));
        assertThat(RedisUrl.parse("redis://:a@host").hashCode()).isEqualTo(RedisUrl.parse("redis://:a@host").hashCode());
        assertThat(RedisUrl.parse("redis://:a@host")).isNotEqualTo(RedisUrl.parse("redis://:b@host"));
        assertThat(RedisUrl.of("host", 6379)).isEqualTo(RedisUrl.parse("redis://host"));
    }

    // ---- cluster ------------------------------------------------------------------------------------------

    @Test
    void hostListSelectsClusterAndKeepsEverySeed() {
        RedisUrl u = RedisUrl.parse("redis://alice:s3cret@a:7001,b:7002,[::1]:7003");
        assertThat(u.cluster()).isTrue();
        assertThat(u.host()).isEqualTo("a");
        assertThat(u.port()).isEqualTo(7001);
        assertThat(u.user()).isEqualTo("alice");
        assertThat(u.password()).containsExactly('s', '3', 'c', 'r', 'e', 't');
        assertThat(u.seeds()).containsExactly(new RedisUrl.Endpoint("a", 7001), new RedisUrl.Endpoint("b", 7002),
                new RedisUrl.Endpoint("::1", 7003));
        assertThat(u.toString()).isEqualTo("redis://alice:***@a:7001,b:7002,[::1]:7003?cluster=true").doesNotContain("s3cret");
        assertThat(RedisUrl.parse(u.toString().replace("***", "s3cret"))).isEqualTo(u);
    }

    @Test
    void clusterQueryParameterSelectsClusterWithOneSeed() {
        RedisUrl u = RedisUrl.parse("rediss://:pw@h:7000?cluster=true");
        assertThat(u.cluster()).isTrue();
        assertThat(u.tls()).isTrue();
        assertThat(u.seeds()).containsExactly(new RedisUrl.Endpoint("h", 7000));
        assertThat(RedisUrl.parse("redis://h:7000?cluster=false").cluster()).isFalse();
        assertThat(RedisUrl.parse("redis://h:7000").cluster()).isFalse();
        assertThat(u.withInsecureTls().cluster()).isTrue();
        assertThat(u.withCredentials("u", "p").seeds()).isEqualTo(u.seeds());
    }

    @Test
    void environmentFlagSelectsCluster() {
        RedisUrl u = RedisUrl.fromEnvironment(java.util.Map.of("REDIS_URL", "redis://h:7000", "SG_REDIS_CLUSTER", "true"));
        assertThat(u.cluster()).isTrue();
        assertThat(RedisUrl.fromEnvironment(java.util.Map.of("REDIS_URL", "redis://h:7000")).cluster()).isFalse();
        ConfigException e = catchThrowableOfType(() -> RedisUrl.fromEnvironment(
                java.util.Map.of("REDIS_URL", "redis://h:7000", "SG_REDIS_CLUSTER", "maybe")), ConfigException.class);
        assertThat(e.setting()).isEqualTo("SG_REDIS_CLUSTER");
        e = catchThrowableOfType(() -> RedisUrl.fromEnvironment(
                java.util.Map.of("REDIS_URL", "redis://:pw@a:1,b:2", "SG_REDIS_CLUSTER", "false")), ConfigException.class);
        assertThat(e.setting()).isEqualTo("SG_REDIS_CLUSTER");
        assertThat(e.getMessage()).doesNotContain("pw");
    }

    @ParameterizedTest
    @ValueSource(strings = {"redis://:hunter2@a:1,b:2/3", "redis://:hunter2@a:1,b:x", "redis://:hunter2@a:1,", "redis://:hunter2@a:1,b:2?cluster=false",
            "redis://:hunter2@a:1?cluster=perhaps"})
    void badClusterUrlsAreRefusedWithoutThePassword(String url) {
        assertThat(refusal(url).getMessage()).doesNotContain("hunter2");
    }

    /**
     * A password holding an unencoded '/', '?' or '#' ends the URL's authority early: the rest of it (with the '@' and
     * the real host) lands in the path, query or fragment. Such a URL is refused without quoting any part of the
     * password (docs/security.md), never taken with a piece of the password as the host.
     */
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
        assertThat(refusal(url).getMessage()).as(url).doesNotContain("hunter2");
    }

    /** A fragment means nothing to a Redis URL: taken and ignored, it hides what was meant (see above). */
    @ParameterizedTest
    @ValueSource(strings = {"redis://host:6379#x", "redis://app:1234#5@redis.internal"})
    void aFragmentIsRefused(String url) {
        assertThat(refusal(url).getMessage()).doesNotContain("1234");
    }

    /**
     * The hosts after the first of a cluster URL are checked as the first is: one that is not a host (white space, an
     * unbracketed IPv6 address, a broken bracket) is refused, never taken as a seed named ":" or "[:".
     */
    @ParameterizedTest
    @ValueSource(strings = {"redis://a:7000,::1", "redis://a:7000,[::1", "redis://a:7000,b c:7001", "redis://a:7000,b%:7001"})
    void aSeedThatIsNoHostIsRefused(String url) {
        refusal(url);
    }

    @Test
    void goodSeedsStillParse() {
        assertThat(RedisUrl.parse("redis://a:7000,[::1]:7001,[fe80::2],c").seeds()).containsExactly(new RedisUrl.Endpoint("a", 7000),
                new RedisUrl.Endpoint("::1", 7001), new RedisUrl.Endpoint("fe80::2", 6379), new RedisUrl.Endpoint("c", 6379));
    }

    /** A host name with '_' (a Docker Compose service such as redis_cache, legal in DNS) is a host like any other. */
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
