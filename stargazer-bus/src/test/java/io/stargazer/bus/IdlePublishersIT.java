package io.stargazer.bus;

import static org.assertj.core.api.Assertions.assertThat;

import io.stargazer.bus.internal.BusInternals;
import io.stargazer.bus.testing.RawRedis;
import io.stargazer.bus.testing.TestRedis;
import io.stargazer.bus.wire.WireFormat;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import org.junit.jupiter.api.Test;

// A bus that published once to many streams (a tools service answering workers that come and go) does not keep a
// publisher or backlog state for each forever, and a stream published to again after its publisher was dropped keeps
// its order.
class IdlePublishersIT {
    @Test
    void idlePublishersAreDroppedAndPublishingAfterwardsKeepsOrder() {
        Topology t = TestRedis.topology();
        try (EventBus bus = TestRedis.bus(BusConfig.builder().topology(t).nodeId("n").build()); RawRedis raw = new RawRedis(TestRedis.url())) {
            for (int i = 0; i < 50; i++) bus.publish(t.toolsReplyStream("w" + i), Envelope.of("i", i));
            assertThat(BusInternals.publisherCount(bus)).isGreaterThanOrEqualTo(50);
            assertThat(BusInternals.backlogStreamCount(bus)).isGreaterThanOrEqualTo(50);
            assertThat(BusInternals.forgetIdleStreams(bus, Duration.ofHours(1))).isZero(); // not idle long enough
            assertThat(BusInternals.backlogStreamCount(bus)).isGreaterThanOrEqualTo(50);
            assertThat(BusInternals.forgetIdleStreams(bus, Duration.ZERO)).isGreaterThanOrEqualTo(50);
            assertThat(BusInternals.publisherCount(bus)).isZero();
            assertThat(BusInternals.backlogStreamCount(bus)).isZero();

            // Publishing goes on, in order, across a drop that happens between two publishes of one thread.
            String stream = t.toolsReplyStream("again");
            List<CompletableFuture<String>> ids = new ArrayList<>();
            int dropped = 0;
            for (int i = 0; i < 2000; i++) {
                ids.add(bus.publishAsync(stream, Envelope.of("i", i)));
                if (i % 100 == 99) {
                    ids.get(i).join(); // everything before it is stored too: the publisher is idle now
                    dropped += BusInternals.forgetIdleStreams(bus, Duration.ZERO);
                }
            }
            ids.forEach(CompletableFuture::join);
            assertThat(dropped).isEqualTo(20);
            List<Long> seen = raw.xrange(stream).stream().map(m -> WireFormat.decode(RawRedis.fields(m).get("payload")).longValue("i", -1)).toList();
            assertThat(seen).hasSize(2000).isSorted();
        }
    }
}
