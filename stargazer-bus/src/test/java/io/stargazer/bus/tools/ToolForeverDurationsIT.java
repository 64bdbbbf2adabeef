package io.stargazer.bus.tools;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;

import io.stargazer.bus.ConfigException;
import io.stargazer.bus.EventBus;
import io.stargazer.bus.NodeRole;
import io.stargazer.bus.Subscription;
import io.stargazer.bus.Topology;
import io.stargazer.bus.testing.TestRedis;
import java.time.Duration;
import java.time.temporal.ChronoUnit;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The tools' duration settings take the "forever" idiom ({@code Duration.ofSeconds(Long.MAX_VALUE)}) as 100 years, as
 * {@code ForeverDurationsIT} shows for the bus's and the consumer's, and a tool call so configured is answered and both
 * ends close. Found by review after the bus's were capped: the tool configs took such a value as given, then
 * {@code ToolClient.create} threw ArithmeticException (replyTtl), every answer failed with it and the call timed out
 * (lateReplyLimit), and {@code ToolService.close()} threw it and left the subscription running (closeTimeout).
 */
@Timeout(value = 2, unit = TimeUnit.MINUTES)
class ToolForeverDurationsIT {
    private static final Duration FOREVER = Duration.ofSeconds(Long.MAX_VALUE);
    /** BusConfig.MAX_DURATION, as a literal like ForeverDurationsIT's. */
    private static final Duration LONGEST = Duration.ofDays(36_500);

    @ParameterizedTest
    @ValueSource(strings = {"claimIdle", "closeTimeout", "lateReplyLimit", "replyTtl"})
    void aForeverDurationIsTakenAsTheLongestAndACallIsAnswered(String setting) {
        ToolServiceConfig.Builder service = ToolServiceConfig.builder();
        ToolClientConfig.Builder client = ToolClientConfig.builder();
        switch (setting) {
            case "claimIdle" -> service.claimIdle(FOREVER);
            case "closeTimeout" -> service.closeTimeout(FOREVER);
            case "lateReplyLimit" -> service.lateReplyLimit(FOREVER);
            case "replyTtl" -> client.replyTtl(FOREVER);
            default -> throw new IllegalArgumentException(setting);
        }
        Topology t = TestRedis.topology();
        try (EventBus worker = TestRedis.bus(TestRedis.config(NodeRole.WORKER).topology(t).build());
             EventBus toolsBus = TestRedis.bus(TestRedis.config(NodeRole.TOOLS).topology(t).build());
             ToolService tools = ToolService.start(toolsBus, TestTools.register(ToolRegistry.builder()).build(), service.build());
             ToolClient calls = ToolClient.create(worker, client.build())) {
            assertThat(calls.callBlocking("add", Map.of("a", 2, "b", 3), Duration.ofSeconds(10))).isEqualTo(5L);
            await().atMost(Duration.ofSeconds(10)).until(() -> tools.stats().succeeded() == 1
                    && toolsBus.pendingCount(t.toolsStream(), t.toolsGroup()) == 0);
            calls.close();
            tools.close();
            assertThat(tools.subscription().state()).isEqualTo(Subscription.State.STOPPED);
            assertThat(tools.config().toString() + calls.config()).as("taken as the longest").contains(setting + "=" + LONGEST);
        }
    }

    @Test
    void everyToolDurationSaturatesAndTheTimeoutsKeepTheirBounds() {
        for (Duration d : new Duration[] {FOREVER, ChronoUnit.FOREVER.getDuration(), ChronoUnit.CENTURIES.getDuration().multipliedBy(3)}) {
            ToolServiceConfig s = ToolServiceConfig.builder().claimIdle(d).closeTimeout(d).lateReplyLimit(d).build();
            assertThat(new Duration[] {s.claimIdle(), s.closeTimeout(), s.lateReplyLimit()}).containsOnly(LONGEST);
            assertThat(ToolClientConfig.builder().replyTtl(d).build().replyTtl()).isEqualTo(LONGEST);
            // A call or a read that long is a mistake, not "forever": refused as before.
            assertThatThrownBy(() -> ToolClientConfig.builder().defaultTimeout(d))
                    .isInstanceOf(ConfigException.class).hasMessageContaining("defaultTimeout");
            assertThatThrownBy(() -> ToolClientConfig.builder().blockTimeout(d))
                    .isInstanceOf(ConfigException.class).hasMessageContaining("blockTimeout");
        }
        // Within the bound a value is kept as given; zero stays a lateReplyLimit (answer nothing late).
        assertThat(ToolServiceConfig.builder().lateReplyLimit(Duration.ZERO).closeTimeout(Duration.ofDays(365)).build())
                .satisfies(c -> assertThat(c.lateReplyLimit()).isZero())
                .satisfies(c -> assertThat(c.closeTimeout()).isEqualTo(Duration.ofDays(365)));
        assertThat(ToolClientConfig.builder().replyTtl(Duration.ofDays(365)).build().replyTtl()).isEqualTo(Duration.ofDays(365));
    }
}
