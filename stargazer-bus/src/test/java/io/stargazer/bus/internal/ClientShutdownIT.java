// Promise: closing the bus returns, whatever Lettuce does. Lettuce's shutdown waits without a limit for its
// connections and event loops (redis/lettuce#2278, open: "shutdown() never ends sometimes"). The bus's clients share
// resources of its own, so the last wait of a close is those resources' shutdown: here it never reports done (first
// the clients' release of their event loops never did, when each client owned its resources), and the close must
// still return.
package io.stargazer.bus.internal;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.lettuce.core.resource.ClientResources;
import io.netty.util.concurrent.DefaultPromise;
import io.netty.util.concurrent.GlobalEventExecutor;
import io.stargazer.bus.BusConfig;
import io.stargazer.bus.RedisUrl;
import io.stargazer.embedded.RedisServerProcess;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Proxy;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

class ClientShutdownIT {
    private RedisServerProcess server;
    private ClientResources real;

    @BeforeEach
    void start() {
        server = RedisServerProcess.builder().start();
        real = ClientResources.create();
    }

    @AfterEach
    void stop() {
        real.shutdown(0, 2, TimeUnit.SECONDS);
        server.close();
    }

    /** {@code real}, except that its shutdown starts and never reports done. */
    private ClientResources neverShutDown() {
        return (ClientResources) Proxy.newProxyInstance(getClass().getClassLoader(), new Class<?>[] {ClientResources.class}, (p, m, args) -> {
            if (m.getName().equals("shutdown")) {
                return new DefaultPromise<Boolean>(GlobalEventExecutor.INSTANCE);
            }
            try {
                return m.invoke(real, args);
            } catch (InvocationTargetException e) {
                throw e.getCause();
            }
        });
    }

    @Test
    void closeReturnsWhenLettucesShutdownNeverFinishes() {
        Redis redis = Redis.connect(RedisUrl.parse(server.url()), "stuck", BusConfig.DEFAULT_DEAD_PEER_TIMEOUT, neverShutDown(), true);
        assertThat(redis.sharedSync().ping()).isEqualTo("PONG");
        long start = System.nanoTime();
        CompletableFuture<Void> closed = CompletableFuture.runAsync(redis::close);
        // Two clients and the resources, each waited for at most Redis.SHUTDOWN_WAIT.
        await().atMost(Redis.SHUTDOWN_WAIT.multipliedBy(3).plus(Duration.ofSeconds(20))).until(closed::isDone);
        assertThat(closed).isCompleted();
        // It did wait for the stuck shutdown (the resources above were used), then gave up on it.
        assertThat(Duration.ofNanos(System.nanoTime() - start)).isGreaterThanOrEqualTo(Redis.SHUTDOWN_WAIT);
    }
}
