package io.stargazer.bus;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.lettuce.core.codec.ByteArrayCodec;
import io.lettuce.core.output.StatusOutput;
import io.lettuce.core.protocol.CommandArgs;
import io.lettuce.core.protocol.CommandType;
import io.stargazer.bus.testing.RawRedis;
import io.stargazer.bus.testing.TestRedis;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.function.Function;
import org.junit.jupiter.api.Test;

// Issue 17: a blocking publish made from a completion stage of a bus future runs on the Redis I/O thread that has to
// read its own reply. It used to wait 10 s and fail with "Redis did not answer in time"; it is refused at once with
// an IllegalStateException that names the way out, and publishes nothing.
class BlockingPublishOnIoThreadIT {

    /** {@code blocking} run as a stage of a publish future, so on the thread that completes it (Redis's I/O thread). */
    private static CompletableFuture<String> inStageOf(EventBus bus, String stream, Function<String, String> blocking) {
        return bus.publishAsync(stream, Envelope.of("content", "first")).thenApply(blocking);
    }

    /** CLIENT PAUSE|UNPAUSE ...: writes wait until unpaused, so a stage is attached before its publish can complete. */
    private static void client(RawRedis admin, String... args) {
        CommandArgs<byte[], byte[]> a = new CommandArgs<>(ByteArrayCodec.INSTANCE);
        for (String x : args) a.add(x);
        admin.sync().dispatch(CommandType.CLIENT, new StatusOutput<>(ByteArrayCodec.INSTANCE), a);
    }

    @Test
    void aBlockingPublishFromACompletionStageIsRefusedAtOnceAndPublishesNothing() {
        try (EventBus bus = TestRedis.bus(NodeRole.STANDALONE); RawRedis admin = new RawRedis(TestRedis.url())) {
            Topology t = bus.topology();
            String inbound = t.inboundStream();
            String outbound = t.outboundStream("webchat");
            Envelope second = Envelope.of("platform", "webchat", "channel_id", "c-1", "content", "second");
            List<CompletableFuture<String>> refused;
            client(admin, "PAUSE", "30000", "WRITE");
            try {
                refused = List.of(
                        inStageOf(bus, inbound, id -> bus.publishInbound(second)),
                        inStageOf(bus, outbound, id -> bus.publishOutbound("webchat", second)),
                        inStageOf(bus, inbound, id -> bus.publish(inbound, second)));
            } finally {
                client(admin, "UNPAUSE");
            }
            for (CompletableFuture<String> f : refused) {
                assertThatThrownBy(f::join).isInstanceOf(CompletionException.class)
                        .cause().isInstanceOf(IllegalStateException.class)
                        .hasMessageContaining("Redis I/O thread").hasMessageContaining("Async");
            }
            // Only the asynchronous publishes that started each chain were stored.
            assertThat(bus.streamInfo(inbound).orElseThrow().length()).isEqualTo(2);
            assertThat(bus.streamInfo(outbound).orElseThrow().length()).isEqualTo(1);

            // The way out the message names: the same blocking publish on a thread of one's own works.
            ExecutorService own = Executors.newSingleThreadExecutor();
            try {
                String id = bus.publishAsync(inbound, Envelope.of("content", "third"))
                        .thenApplyAsync(x -> bus.publish(inbound, second), own).join();
                assertThat(id).matches("\\d+-\\d+");
            } finally {
                own.shutdownNow();
            }
            assertThat(bus.streamInfo(inbound).orElseThrow().length()).isEqualTo(4);
        }
    }
}
