package io.stargazer.bus;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.stargazer.bus.testing.RawRedis;
import io.stargazer.bus.testing.TestRedis;
import io.stargazer.embedded.RedisServerProcess;
import java.time.Duration;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * After a long outage ends with an empty restart, a bus is back as soon as Redis is: its connections are reconnected
 * within {@code Redis.MAX_RECONNECT_DELAY} of Redis answering (Lettuce's own delay doubles up to 30 s: 14 s after a
 * 20 s outage, every publish meanwhile refused "not connected"), and a reader that re-creates its lost group reads at
 * once rather than after its backoff, which the outage had grown to 5 s (tests from outside, helper-86).
 *
 * <p>The deadlines below separate the two behaviours by several seconds each way: they assert that the wait is gone,
 * not how fast the machine is.
 */
@Timeout(value = 2, unit = TimeUnit.MINUTES)
class ReaderRecoveryIT {
    private final Topology t = TestRedis.topology();
    private final BusConfig config = BusConfig.builder().topology(t).role(NodeRole.STANDALONE).nodeId("recovery").build();
    private RedisServerProcess server;
    private RedisUrl url;

    @BeforeEach
    void start() {
        server = RedisServerProcess.builder().appendOnly(false).start();
        url = RedisUrl.parse(server.url());
    }

    @AfterEach
    void stop() {
        server.stop();
    }

    @Test
    void afterALongOutageAndAnEmptyRestartPublishingAndReadingResumeWithoutTheGrownWaits() throws Exception {
        Set<String> handled = ConcurrentHashMap.newKeySet();
        try (EventBus bus = EventBus.connect(url, config); RawRedis raw = new RawRedis(url)) {
            String in = t.inboundStream();
            bus.subscribe(bus.consumer(in, t.workerGroup()).consumerName("w").build(), d -> handled.add(d.envelope().content()));
            bus.publish(in, Envelope.of("channel_id", "c", "content", "before"));
            await().atMost(Duration.ofSeconds(20)).until(() -> handled.contains("before"));

            server.kill();
            // Long enough for Lettuce's doubling delay to pass 8 s and the reader's backoff to reach its 5 s cap.
            await("Redis stays down").during(Duration.ofSeconds(9)).atMost(Duration.ofSeconds(10)).until(() -> !server.isAlive());
            server.restart(); // empty: no streams, no groups

            // Publishing: within a few seconds of Redis answering (before: the next attempt about 7 s after it).
            await("a publish stored").atMost(Duration.ofSeconds(4)).pollInterval(Duration.ofMillis(100)).ignoreExceptions()
                    .until(() -> bus.publishAsync(in, Envelope.of("channel_id", "c", "content", "after")).get(1, TimeUnit.SECONDS) != null);
            // Reading: the group is re-created by the reader's first turn after its backoff; the entry is read at once
            // after that (before: one more backoff, 5 s).
            await("the group re-created").atMost(Duration.ofSeconds(10)).pollInterval(Duration.ofMillis(20))
                    .until(() -> raw.sync().exists(RawRedis.b(in)) == 1 && !raw.sync().xinfoGroups(RawRedis.b(in)).isEmpty());
            await("the entry published after the restart handled").atMost(Duration.ofMillis(3_000))
                    .until(() -> handled.contains("after"));
        }
    }

    /**
     * A retrying publish made while the client has no connection (Redis restarting) is not refused once its attempts are
     * spent on the client's own "not connected": such tries reached nothing, and it goes on trying within the publish
     * timeout. Before, its three tries were used up within 0.3 s and a gateway told the tab "could not publish" for a
     * restart of a second (helper-86).
     */
    @Test
    void aRetryingPublishMadeWhileRedisRestartsIsStoredOnceItIsBack() throws Exception {
        try (EventBus bus = EventBus.connect(url, config); RawRedis raw = new RawRedis(url)) {
            String in = t.inboundStream();
            bus.publish(in, Envelope.of("channel_id", "c", "content", "before"));
            server.kill();
            await("the client knows it has no connection").atMost(Duration.ofSeconds(10)).pollInterval(Duration.ofMillis(50))
                    .until(() -> String.valueOf(bus.publishAsync(in, Envelope.of("channel_id", "c", "content", "probe"))
                            .handle((id, e) -> e == null ? null : e.getMessage()).get(5, TimeUnit.SECONDS)).contains("not connected"));
            java.util.concurrent.CompletableFuture<String> during = bus.publishAsync(in, Envelope.of("channel_id", "c", "content", "during"),
                    PublishOptions.builder().dedupeKey("during-1").maxAttempts(3).build());
            // Redis stays down this long: the retrying publish must outlast it.
            await("Redis stays down").during(Duration.ofMillis(1_500)).atMost(Duration.ofSeconds(3)).until(() -> !server.isAlive());
            server.restart();
            assertThat(during).as("stored once Redis is back").succeedsWithin(Duration.ofSeconds(8));
            assertThat(raw.xrange(in)).hasSize(1); // the empty restart left only it
        }
    }
}
