package io.stargazer.bus.internal;

import static org.assertj.core.api.Assertions.assertThat;

import io.stargazer.bus.RedisUrl;
import io.stargazer.embedded.RedisServerProcess;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

// Publish batches are formed and written on the shared connection's own event loop (StreamPublisher's class comment):
// a bus that took another loop of the group for it sent every batch to its channel's loop as a task of its own.
class PublishLoopIT {
    private static final int CONNECTIONS = 40;

    /**
     * The loop the bus publishes on is the one its shared connection's replies complete on, for every connection. Before,
     * the stage that named the loop was attached after the PING was written, ran on the connecting thread whenever the
     * answer came first, and the fallback's guess was another loop: 5 or 6 of 40 connections here.
     */
    @Test
    void theSharedConnectionsPublishLoopIsItsChannelsLoop() throws Exception {
        try (RedisServerProcess server = RedisServerProcess.builder().appendOnly(false).start()) {
            int wrong = 0;
            for (int i = 0; i < CONNECTIONS; i++) {
                Redis redis = Redis.connect(RedisUrl.parse(server.url()), "publish-loop-" + i);
                try {
                    Thread channelThread = replyThread(redis);
                    if (!redis.publishLoop().submit(() -> Thread.currentThread() == channelThread).get(10, TimeUnit.SECONDS)) wrong++;
                } finally {
                    redis.close();
                }
            }
            assertThat(wrong).as("connections whose publish loop is not their channel's, of " + CONNECTIONS).isZero();
        }
    }

    /** The thread a reply on the shared connection completes on: a completion run by this thread (answered first) is asked again. */
    private static Thread replyThread(Redis redis) throws Exception {
        for (int attempt = 0; attempt < 100; attempt++) {
            CompletableFuture<Thread> t = new CompletableFuture<>();
            redis.sharedAsync().ping().thenRun(() -> t.complete(Thread.currentThread()));
            Thread thread = t.get(10, TimeUnit.SECONDS);
            if (thread != Thread.currentThread()) return thread;
        }
        throw new AssertionError("every PING's completion ran on the calling thread");
    }
}
