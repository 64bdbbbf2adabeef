// Promise: the cluster suite passes on a 3+3 Redis Cluster of the default redis-server (PATH, else embedded).
package io.stargazer.bus;

import io.stargazer.testing.RedisClusterProcess;
import org.junit.jupiter.api.BeforeAll;

class ClusterIT extends ClusterSuite {
    @BeforeAll
    static void start() {
        startCluster(RedisClusterProcess.builder());
    }
}
