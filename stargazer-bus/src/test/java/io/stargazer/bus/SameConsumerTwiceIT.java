// Promise (never answer twice): one consumer's pending entries are its own. A second subscription opened on the same
// bus under the same stream, group and consumer name (the default one, the node id, when nobody sets it: two
// Spring listeners of one group did) read the first one's pending entries from the pending list at its start and
// ran the entry the first was still handling again beside it. It is refused now, naming what to change.
package io.stargazer.bus;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowable;
import static org.awaitility.Awaitility.await;

import io.stargazer.bus.testing.TestRedis;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

@Timeout(value = 1, unit = TimeUnit.MINUTES)
class SameConsumerTwiceIT {
    private final List<AutoCloseable> closeables = new ArrayList<>();

    @AfterEach
    void closeAll() throws Exception {
        for (int i = closeables.size() - 1; i >= 0; i--) closeables.get(i).close();
    }

    @Test
    void aSecondSubscriptionOfTheSameConsumerIsRefusedAndRunsNothing() {
        EventBus bus = TestRedis.bus(NodeRole.WORKER);
        closeables.add(bus);
        String stream = bus.topology().inboundStream();
        String group = bus.topology().workerGroup();
        bus.ensureGroup(stream, group);
        String id = bus.publish(stream, Envelope.of("channel_id", "c", "content", "hi"));
        List<String> ran = new CopyOnWriteArrayList<>();
        // The first holds its entry (manual acknowledgement, not settled yet): still being handled.
        closeables.add(bus.subscribe(bus.consumer(stream, group).manualAck(true).blockTimeout(Duration.ofMillis(100)).build(),
                d -> { ran.add("first " + d.id()); }));
        await().atMost(10, TimeUnit.SECONDS).until(() -> ran.size() == 1);

        Throwable refused = catchThrowable(() -> closeables.add(bus.subscribe(bus.consumer(stream, group)
                .blockTimeout(Duration.ofMillis(100)).build(), d -> ran.add("second " + d.id()))));

        await().during(Duration.ofSeconds(1)).atMost(Duration.ofSeconds(3)).untilAsserted(() ->
                assertThat(ran).as("run once").containsExactly("first " + id));
        assertThat(refused).isInstanceOf(ConfigException.class)
                .hasMessageContaining("'" + bus.config().nodeId() + "'").hasMessageContaining("consumerName");
        // With a name of its own it is a second consumer of the group, and is not given the first one's entry.
        closeables.add(bus.subscribe(bus.consumer(stream, group).consumerName("other").blockTimeout(Duration.ofMillis(100)).build(),
                d -> ran.add("other " + d.id())));
        await().during(Duration.ofSeconds(1)).atMost(Duration.ofSeconds(3)).untilAsserted(() ->
                assertThat(ran).containsExactly("first " + id));
    }
}
