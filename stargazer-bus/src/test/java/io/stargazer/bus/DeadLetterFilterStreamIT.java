// Promise (never lose; bad input changes nothing): a dead-letter filter naming a live stream is refused, never purged.
package io.stargazer.bus;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowable;

import io.stargazer.bus.testing.RawRedis;
import io.stargazer.bus.testing.TestRedis;
import io.stargazer.bus.wire.WireFormat;
import java.time.Duration;
import java.util.List;
import java.util.function.Consumer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Never lose a message; bad input gets a clear error naming it and changes nothing: a {@link DeadLetterFilter} naming one
 * of the topology's live streams (the inbound stream where its dead-letter stream was meant) is refused by list, replay
 * and purge, never taken for a dead-letter stream whose entries a purge deletes.
 */
@Timeout(60)
class DeadLetterFilterStreamIT {

    @Test
    void aLiveStreamOfTheTopologyIsRefusedAsADeadLetterStreamAndKeepsItsMessages() {
        try (EventBus bus = TestRedis.bus(NodeRole.GATEWAY); RawRedis raw = new RawRedis(TestRedis.url())) {
            Topology t = bus.topology();
            String inbound = t.inboundStream();
            String dead = t.deadLetterStream(inbound);
            byte[] payload = WireFormat.encode(Envelope.of("channel_id", "c-1", "content", "live"));
            List<String> live = List.of(inbound, t.outboundStream("webchat"), t.toolsStream(), t.toolsReplyStream("w-1"), t.operatorOutbox());
            for (String s : live) {
                for (int i = 0; i < 3; i++) raw.xadd(s, "payload", payload, "trace_id", "t" + i);
            }
            raw.xadd(dead, "payload", payload, "error", "boom", "source_stream", inbound, "source_id", "1-1", "group", "g", "deliveries", "5");

            DeadLetters dl = bus.deadLetters();
            for (String s : live) {
                DeadLetterFilter.Builder only = DeadLetterFilter.builder().stream(s);
                List<Consumer<DeadLetterFilter>> ops = List.of(dl::purge, f -> dl.replay(f, ReplayOptions.DEFAULTS), dl::list);
                for (DeadLetterFilter f : List.of(only.build(), only.build().toBuilder().errorContains("x").build(),
                        only.build().toBuilder().olderThan(Duration.ZERO).build())) {
                    for (Consumer<DeadLetterFilter> op : ops) {
                        Throwable thrown = catchThrowable(() -> op.accept(f));
                        assertThat(thrown).as("%s (messages of %s left: %s)", f, s, raw.xlen(s)).isInstanceOf(ConfigException.class)
                                .hasMessageContaining(s).hasMessageContaining(t.deadLetterStream(s));
                    }
                }
                assertThat(raw.xlen(s)).as("messages of %s", s).isEqualTo(3);
            }
            // Its dead-letter stream is taken as ever.
            assertThat(dl.purge(DeadLetterFilter.builder().stream(dead).build())).isEqualTo(1);
            assertThat(raw.xlen(inbound)).isEqualTo(3);
        }
    }
}
