package io.stargazer.bus.internal;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;

import io.lettuce.core.ClientOptions;
import io.lettuce.core.Consumer;
import io.lettuce.core.RedisClient;
import io.lettuce.core.StreamMessage;
import io.lettuce.core.XReadArgs;
import io.lettuce.core.api.StatefulRedisConnection;
import io.stargazer.embedded.RedisServerProcess;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Acknowledgements that fail for want of Redis are kept and sent again at the consumer's next refresh beat or read.
 * While the client has no connection it refuses a command at once, inside the call that sends it; sending the kept ones
 * again must then be one try each, not a loop: before, each refused XACK put its ids back into the set being walked, and
 * the walk met them again, so the bus's one timer thread (dead-peer check, publish deadlines, retries, refreshes) spun
 * there until Redis was back, logging tens of thousands of WARNs a second (helper-93: 822 319 lines in 13 s).
 */
@Timeout(value = 1, unit = TimeUnit.MINUTES)
class AckBatcherIT {
    @Test
    void keptAcknowledgementsAreSentAgainOncePerCallWhileTheClientRefusesCommands() throws Exception {
        RedisServerProcess server = RedisServerProcess.builder().appendOnly(false).start();
        RedisClient client = RedisClient.create(server.url());
        client.setOptions(ClientOptions.builder().disconnectedBehavior(ClientOptions.DisconnectedBehavior.REJECT_COMMANDS).build());
        try (StatefulRedisConnection<String, byte[]> conn = client.connect(Redis.CODEC)) {
            String stream = "acks:t";
            conn.sync().xgroupCreate(XReadArgs.StreamOffset.from(stream, "0"), "g", io.lettuce.core.XGroupCreateArgs.Builder.mkstream());
            for (int i = 0; i < 200; i++) conn.sync().xadd(stream, "f", new byte[] {(byte) i});
            List<String> ids = conn.sync().xreadgroup(Consumer.from("g", "c"), XReadArgs.Builder.count(200),
                    XReadArgs.StreamOffset.lastConsumed(stream)).stream().map(StreamMessage::getId).toList();
            assertThat(ids).hasSize(200);
            AckBatcher acks = new AckBatcher(conn.async(), stream, "g");

            server.kill();
            await().atMost(Duration.ofSeconds(10)).until(() -> !conn.isOpen());
            ids.forEach(acks::ack);
            await().atMost(Duration.ofSeconds(10)).until(() -> acks.failedCount() == 200);

            assertTimeoutPreemptively(Duration.ofSeconds(5), acks::resendFailed, "sending the kept acknowledgements again while refused");
            assertThat(acks.failedCount()).as("kept again, each once").isEqualTo(200);
            assertThat(acks.acknowledging(ids.get(0))).isTrue();

            server.restart(); // empty: the XACKs find no such stream and answer 0, which settles them
            await().atMost(Duration.ofSeconds(20)).until(conn::isOpen);
            await().atMost(Duration.ofSeconds(10)).until(() -> {
                acks.resendFailed();
                return acks.idle();
            });
            assertThat(acks.acknowledging(ids.get(0))).isFalse();
        } finally {
            client.shutdown();
            server.stop();
        }
    }
}
