// Promise: closing the bus returns, whatever Lettuce does. Lettuce's shutdown waits without a limit for its
// connections and event loops (redis/lettuce#2278, open: "shutdown() never ends sometimes"); here the event loops are
// made never to report their release, which is where such a wait ends up, and the close must still return.
package io.stargazer.bus.internal;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.lettuce.core.resource.ClientResources;
import io.lettuce.core.resource.DefaultEventLoopGroupProvider;
import io.lettuce.core.resource.EventLoopGroupProvider;
import io.netty.channel.EventLoopGroup;
import io.netty.util.concurrent.DefaultPromise;
import io.netty.util.concurrent.EventExecutorGroup;
import io.netty.util.concurrent.Future;
import io.netty.util.concurrent.GlobalEventExecutor;
import io.stargazer.bus.BusConfig;
import io.stargazer.bus.RedisUrl;
import io.stargazer.embedded.RedisServerProcess;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

class ClientShutdownIT {
    private RedisServerProcess server;
    private DefaultEventLoopGroupProvider loops;
    private ClientResources resources;

    @BeforeEach
    void start() {
        server = RedisServerProcess.builder().start();
        loops = new DefaultEventLoopGroupProvider(2);
        resources = ClientResources.builder().eventLoopGroupProvider(new NeverReleased(loops)).build();
    }

    @AfterEach
    void stop() {
        resources.shutdown(0, 2, TimeUnit.SECONDS);
        loops.shutdown(0, 2, TimeUnit.SECONDS);
        server.close();
    }

    @Test
    void closeReturnsWhenLettucesShutdownNeverFinishes() {
        Redis redis = Redis.connect(RedisUrl.parse(server.url()), "stuck", BusConfig.DEFAULT_DEAD_PEER_TIMEOUT, resources);
        assertThat(redis.sharedSync().ping()).isEqualTo("PONG");
        long start = System.nanoTime();
        CompletableFuture<Void> closed = CompletableFuture.runAsync(redis::close);
        // Two clients (shared and reader connections), each waited for at most Redis.SHUTDOWN_WAIT.
        await().atMost(Redis.SHUTDOWN_WAIT.multipliedBy(2).plus(Duration.ofSeconds(20))).until(closed::isDone);
        assertThat(closed).isCompleted();
        // It did wait for the stuck shutdown (the provider above was used), then gave up on it.
        assertThat(Duration.ofNanos(System.nanoTime() - start)).isGreaterThanOrEqualTo(Redis.SHUTDOWN_WAIT);
    }

    /** Lettuce's event loops, whose release (what a client's shutdown waits for last) never reports done. */
    private record NeverReleased(EventLoopGroupProvider delegate) implements EventLoopGroupProvider {
        @Override
        public <T extends EventLoopGroup> T allocate(Class<T> type) {
            return delegate.allocate(type);
        }

        @Override
        public int threadPoolSize() {
            return delegate.threadPoolSize();
        }

        @Override
        public Future<Boolean> release(EventExecutorGroup group, long quietPeriod, long timeout, TimeUnit unit) {
            return new DefaultPromise<>(GlobalEventExecutor.INSTANCE);
        }

        @Override
        public Future<Boolean> shutdown(long quietPeriod, long timeout, TimeUnit unit) {
            return delegate.shutdown(quietPeriod, timeout, unit);
        }
    }
}
