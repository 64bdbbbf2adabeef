// Promise: the cluster suite also passes on a 3+3 cluster of the Redis 6.2 shipped in the embedded-redis jar.
package io.stargazer.bus;

import static org.assertj.core.api.Assertions.assertThat;

import io.stargazer.embedded.RedisClusterProcess;
import io.stargazer.embedded.RedisServerProcess;
import org.junit.jupiter.api.BeforeAll;

class ClusterRedis62IT extends ClusterSuite {
    @BeforeAll
    static void start() {
        startCluster(RedisClusterProcess.builder().embeddedBinaryOnly());
        assertThat(RedisServerProcess.version(cluster.nodes().get(0).binary())).startsWith("6.2.");
    }
}
