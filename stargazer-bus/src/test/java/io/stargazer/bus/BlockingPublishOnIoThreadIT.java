package io.stargazer.bus;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

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
        CompletableFuture<Void> start = new CompletableFuture<>();
        // The stage is attached before the publish starts, so it cannot run on this thread however fast Redis answers.
        CompletableFuture<String> chained = start.thenCompose(v -> bus.publishAsync(stream, Envelope.of("content", "first")))
                .thenApply(blocking);
        start.complete(null);
        return chained;
    }

    @Test
    void aBlockingPublishFromACompletionStageIsRefusedAtOnceAndPublishesNothing() {
        try (EventBus bus = TestRedis.bus(NodeRole.STANDALONE)) {
            Topology t = bus.topology();
            String inbound = t.inboundStream();
            String outbound = t.outboundStream("webchat");
            Envelope second = Envelope.of("platform", "webchat", "channel_id", "c-1", "content", "second");
            List<CompletableFuture<String>> refused = List.of(
                    inStageOf(bus, inbound, id -> bus.publishInbound(second)),
                    inStageOf(bus, outbound, id -> bus.publishOutbound("webchat", second)),
                    inStageOf(bus, inbound, id -> bus.publish(inbound, second)));
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
