package io.stargazer.bus;

import static org.assertj.core.api.Assertions.assertThat;

import io.stargazer.bus.testing.TestRedis;
import java.util.List;
import org.junit.jupiter.api.Test;

// EventBus.read: a group-less read that pages through a stream and leaves every group's state alone.
class ReadIT {
    @Test
    void readsAfterAnIdInPagesWithoutTouchingGroups() {
        try (EventBus bus = TestRedis.bus(NodeRole.WORKER)) {
            bus.ensureStreams();
            String stream = bus.topology().inboundStream();
            for (int i = 0; i < 5; i++) {
                bus.publishInbound(Envelope.of("platform", "webchat", "channel_id", "c", "content", "m" + i));
            }
            List<StreamEntry> first = bus.read(stream, "0", 3);
            assertThat(first).extracting(e -> e.envelope().content()).containsExactly("m0", "m1", "m2");
            List<StreamEntry> rest = bus.read(stream, first.get(2).id(), 10);
            assertThat(rest).extracting(e -> e.envelope().content()).containsExactly("m3", "m4");
            assertThat(bus.read(stream, rest.get(1).id(), 10)).isEmpty();
            StreamInfo info = bus.streamInfo(stream).orElseThrow();
            assertThat(info.length()).isEqualTo(5);
            if (!bus.serverVersion().startsWith("6.")) {
                assertThat(info.entriesAdded()).isEqualTo(5L);
            }
            assertThat(bus.groups(stream)).singleElement().satisfies(g -> {
                assertThat(g.pending()).isZero();
                assertThat(g.lag()).isEqualTo(5L);
            });
            assertThat(bus.ensureGroup(stream, "extra")).isTrue();
            assertThat(bus.deleteGroup(stream, "extra")).isTrue();
            assertThat(bus.deleteGroup(stream, "extra")).isFalse();
            assertThat(bus.groups(stream)).extracting(GroupInfo::name).containsExactly(bus.topology().workerGroup());
        }
    }
}
