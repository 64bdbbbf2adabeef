// Promise (close): every publish accepted is answered, also one still queued when close() stops waiting for it.
package io.stargazer.bus;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;

import io.stargazer.bus.testing.Closer;
import io.stargazer.bus.testing.TcpProxy;
import io.stargazer.bus.testing.TestRedis;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * close() promises that what was accepted is answered: a publish still queued in its stream's publisher when close()
 * gives up waiting (its drain held, here by a blocking publish on a connection of its own left unanswered, whose hold
 * outlasts the publish timeout) must still complete, not be left waiting for a drain that nothing will ever run.
 */
@Timeout(value = 1, unit = TimeUnit.MINUTES)
class CloseWithQueuedPublishIT {
    private final Closer closer = new Closer();
    private static final String NS = TestRedis.namespace();

    @AfterEach
    void close() throws Exception {
        closer.close();
    }

    @Test
    void aPublishQueuedWhenCloseGivesUpIsStillAnswered() {
        Topology t = TestRedis.topology();
        TcpProxy link = closer.add(TcpProxy.to(TestRedis.url()));
        // A dead-peer timeout far above the publish timeout: the own connection's hold (until its answer, at most
        // twice the dead-peer timeout or the command timeout) outlasts close()'s wait of one publish timeout.
        EventBus bus = closer.add(EventBus.connect(link.url(), BusConfig.builder().topology(t).role(NodeRole.GATEWAY)
                .nodeId("close-queued-" + NS).publishTimeout(Duration.ofSeconds(1)).deadPeerTimeout(Duration.ofSeconds(10)).build()));
        String stream = t.outboundStream("test");
        bus.publish(stream, Envelope.of("platform", "test", "channel_id", "c", "n", 0)); // opens a connection of its own
        link.freezeAll();
        assertThatThrownBy(() -> bus.publish(stream, Envelope.of("platform", "test", "channel_id", "c", "n", 1)))
                .isInstanceOf(PublishOutcomeUnknownException.class);
        // Held behind that unanswered publish (its stream's drain writes nothing until it is settled).
        CompletableFuture<String> queued = bus.publishAsync(stream, Envelope.of("platform", "test", "channel_id", "c", "n", 2));
        assertThat(queued).isNotDone();
        bus.close();
        await("the queued publish's future, after close() returned").atMost(Duration.ofSeconds(10)).until(queued::isDone);
        assertThat(queued).isCompletedExceptionally();
    }
}
