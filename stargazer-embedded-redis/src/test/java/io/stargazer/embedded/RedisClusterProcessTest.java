// Promise: RedisClusterProcess forms a working 3+3 Redis Cluster without redis-cli, splits slots as redis-cli does,
// tells which node serves a key, and a killed primary's replica takes over.
package io.stargazer.embedded;

import static org.assertj.core.api.Assertions.assertThat;

import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.Test;

class RedisClusterProcessTest {

    @Test
    void formsAClusterAndFailsOverWhenAPrimaryDies() throws Exception {
        try (RedisClusterProcess cluster = RedisClusterProcess.builder().start()) {
            assertThat(cluster.primaries()).hasSize(3);
            assertThat(cluster.replicas()).hasSize(3);
            assertThat(cluster.url()).startsWith("redis://127.0.0.1:").endsWith("?cluster=true");
            assertThat(cluster.keySlot("foo")).isEqualTo(12182);
            // Keys in each third of the slots are served by the primaries in order (redis-cli's split).
            assertThat(cluster.keySlot("bar")).isEqualTo(5061);
            assertThat(cluster.primaryFor("bar")).isSameAs(cluster.primaries().get(0));
            assertThat(cluster.keySlot("{user1000}.following")).isEqualTo(3443);
            assertThat(cluster.keySlot("hello")).isEqualTo(866);
            assertThat(cluster.keySlot("a")).isEqualTo(15495);
            assertThat(cluster.primaryFor("a")).isSameAs(cluster.primaries().get(2));
            assertThat(cluster.keySlot("foo{6}")).isEqualTo(cluster.keySlot("6"));

            RedisServerProcess victim = cluster.primaryFor("a");
            assertThat(RedisServerProcess.call("127.0.0.1", victim.port(), List.of("SET", "a", "1")).get(0)).isEqualTo("+OK");
            victim.kill();
            cluster.awaitHealthy(Duration.ofSeconds(30));
            RedisServerProcess promoted = cluster.primaryFor("a");
            assertThat(promoted).isNotSameAs(victim).isSameAs(cluster.replicas().get(2));
            assertThat(RedisServerProcess.call("127.0.0.1", promoted.port(), List.of("EXISTS", "a")).get(0)).isIn(":0", ":1");
        }
    }
}
