// Promise (bad input): a tool command too large to send as a tool request is answered with an error naming its size.
package io.stargazer.node;

import static org.assertj.core.api.Assertions.assertThat;

import io.stargazer.bus.BusConfig;
import io.stargazer.bus.Envelope;
import io.stargazer.bus.EventBus;
import io.stargazer.bus.NodeRole;
import io.stargazer.bus.tools.ToolClient;
import io.stargazer.bus.wire.WireFormat;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import org.junit.jupiter.api.Test;

/**
 * The tools handler answers a command whose tool request is over {@code SG_MAX_ENVELOPE_BYTES} (the message fits, the
 * request made of it, with its request_id, reply_to and deadline, does not) with a {@code bad_arguments} error naming
 * the size and the limit. Before, the refused publish was thrown from the handler: the message was tried again, refused
 * the same way each time, and dead-lettered, and the user got no answer.
 */
class ToolCommandTooLargeIT {
    @Test
    void aToolCommandWhoseRequestIsOverTheEnvelopeLimitIsAnsweredWithItsSize() throws Exception {
        int limit = 4096;
        try (EventBus bus = TestRedis.bus(BusConfig.builder().topology(TestRedis.topology()).role(NodeRole.WORKER)
                .nodeId("tool-command-too-large").maxEnvelopeBytes(limit).build());
             ToolClient tools = ToolClient.create(bus)) {
            List<String> replies = new CopyOnWriteArrayList<>();
            List<Envelope> sent = new CopyOnWriteArrayList<>();
            WorkerHandler.Context context = new WorkerHandler.Context() {
                @Override public void reply(String content) { replies.add(content); }
                @Override public void send(Envelope outbound) { sent.add(outbound); }
                @Override public EventBus bus() { return bus; }
                @Override public ToolClient tools() { return tools; }
            };
            Envelope inbound = Envelope.of(Envelope.PLATFORM, "webchat", Envelope.CHANNEL_ID, "c-1",
                    Envelope.CONTENT, "/echo " + "x".repeat(limit - 100));
            assertThat(WireFormat.encode(inbound).length).as("the message fits the limit").isLessThanOrEqualTo(limit);

            new ToolsCommandHandler(new NodeMetrics(), Duration.ofSeconds(5)).handle(inbound, context);

            assertThat(replies).singleElement().asString().startsWith("/echo failed (bad_arguments): ")
                    .contains("over the limit of " + limit + " bytes");
            assertThat(sent).as("messages the tools handler sent besides its reply").isEmpty();
            assertThat(tools.stats().inFlight()).isZero();
        }
    }
}
