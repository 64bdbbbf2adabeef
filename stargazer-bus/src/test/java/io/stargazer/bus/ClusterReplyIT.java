// Promise: ClusterReplySuite passes on a 3-primary Redis Cluster of the default redis-server (PATH, else embedded).
package io.stargazer.bus;

import io.stargazer.testing.RedisClusterProcess;
import org.junit.jupiter.api.BeforeAll;

class ClusterReplyIT extends ClusterReplySuite {
    @BeforeAll
    static void start() {
        startCluster(RedisClusterProcess.builder());
    }
}
