// Promise: ClusterReplySuite also passes on a 3-primary Redis Cluster of Redis 6.2 (the oldest supported server).
package io.stargazer.bus;

import static org.assertj.core.api.Assertions.assertThat;

import io.stargazer.embedded.RedisServerProcess;
import io.stargazer.testing.RedisClusterProcess;
import io.stargazer.testing.TestServers;
import org.junit.jupiter.api.BeforeAll;

class ClusterReplyRedis62IT extends ClusterReplySuite {
    @BeforeAll
    static void start() {
        startCluster(RedisClusterProcess.builder().binary(TestServers.redis62Binary()));
        assertThat(RedisServerProcess.version(cluster.nodes().get(0).binary())).startsWith("6.2.");
    }
}
