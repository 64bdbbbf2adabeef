package io.stargazer.bus;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.stargazer.bus.testing.Closer;
import io.stargazer.bus.testing.TestRedis;
import java.time.Duration;
import java.time.temporal.ChronoUnit;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.UnaryOperator;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Every duration setting of {@link BusConfig} and {@link ConsumerConfig} takes the "forever" idiom
 * ({@code Duration.ofSeconds(Long.MAX_VALUE)}) as {@link BusConfig#MAX_DURATION} (100 years), and a bus and a
 * subscription so configured publish, consume, retry a failure, close and subscribe again. Found by testers from
 * outside: the builders took such a value, then subscribe threw ArithmeticException (claimIdle), the subscription
 * looped on "lost Redis; reconnecting: long overflow" (consumerIdleLimit), a failed entry stayed stuck pending
 * (maxRetryBackoff), close() threw and left the subscription RUNNING (closeTimeout, even 300 years), and publishes
 * overflowed their deadline (publishTimeout).
 */
@Timeout(value = 2, unit = TimeUnit.MINUTES)
class ForeverDurationsIT {
    private static final Duration FOREVER = Duration.ofSeconds(Long.MAX_VALUE);
    /** {@link BusConfig#MAX_DURATION}, {@link ConsumerConfig#MAX_DURATION} (a literal so that the test compiles on the code before them). */
    private static final Duration LONGEST = Duration.ofDays(36_500);
    private final Closer closer = new Closer();

    @AfterEach
    void closeAll() throws Exception {
        closer.close();
    }

    private static UnaryOperator<BusConfig.Builder> bus(String setting, Duration d) {
        return switch (setting) {
            case "backlogCheckInterval" -> b -> b.backlogCheckInterval(d);
            case "backpressureTimeout" -> b -> b.backpressureTimeout(d);
            case "publishTimeout" -> b -> b.publishTimeout(d);
            case "deadPeerTimeout" -> b -> b.deadPeerTimeout(d);
            default -> b -> b;
        };
    }

    private static UnaryOperator<ConsumerConfig.Builder> consumer(String setting, Duration d) {
        return switch (setting) {
            case "claimIdle" -> b -> b.claimIdle(d);
            case "retryBackoff" -> b -> b.maxRetryBackoff(d).retryBackoff(d);
            case "maxRetryBackoff" -> b -> b.maxRetryBackoff(d);
            case "closeTimeout" -> b -> b.closeTimeout(d);
            case "consumerIdleLimit" -> b -> b.consumerIdleLimit(d);
            default -> b -> b;
        };
    }

    @ParameterizedTest
    @ValueSource(strings = {"claimIdle", "retryBackoff", "maxRetryBackoff", "closeTimeout", "consumerIdleLimit",
            "backlogCheckInterval", "backpressureTimeout", "publishTimeout", "deadPeerTimeout"})
    void aForeverDurationIsTakenAsTheLongestAndWorks(String setting) throws Exception {
        EventBus bus = closer.add(TestRedis.bus(bus(setting, FOREVER).apply(TestRedis.config(NodeRole.STANDALONE)).build()));
        bus.ensureStreams();
        Topology t = bus.topology();
        ConsumerConfig cfg = consumer(setting, FOREVER).apply(bus.consumer(t.inboundStream(), t.workerGroup()).consumerName("c"))
                .build();

        // With retryBackoff forever a failure is retried in 100 years: the entries then all succeed at once.
        boolean failFirst = !setting.equals("retryBackoff");
        Set<String> done = ConcurrentHashMap.newKeySet();
        AtomicBoolean failed = new AtomicBoolean();
        MessageHandler handler = d -> {
            if (failFirst && d.envelope().content().equals("fail once") && failed.compareAndSet(false, true)) {
                throw new IllegalStateException("first delivery fails");
            }
            done.add(d.envelope().content());
        };
        Subscription sub = closer.add(bus.subscribe(cfg, handler));
        for (String c : new String[] {"ok", "fail once"}) {
            bus.publishInbound(Envelope.of("platform", "webchat", "channel_id", c, "content", c));
        }
        await().atMost(Duration.ofSeconds(20)).untilAsserted(() -> assertThat(done).containsExactlyInAnyOrder("ok", "fail once"));
        await().atMost(Duration.ofSeconds(10)).until(() -> bus.pendingCount(t.inboundStream(), t.workerGroup()) == 0);
        assertThat(sub.state()).isEqualTo(Subscription.State.RUNNING);

        sub.close();
        assertThat(sub.state()).isEqualTo(Subscription.State.STOPPED);
        Subscription again = closer.add(bus.subscribe(cfg, d -> { }));
        await().atMost(Duration.ofSeconds(10)).until(() -> again.state() == Subscription.State.RUNNING);
        again.close();
        assertThat(cfg.toString() + bus.config()).as("taken as the longest").contains(setting + "=" + LONGEST);
    }

    @Test
    void everyDurationSettingSaturatesFromBuildersAndVariables() {
        Duration centuries = ChronoUnit.CENTURIES.getDuration().multipliedBy(3);
        for (Duration d : new Duration[] {FOREVER, ChronoUnit.FOREVER.getDuration(), centuries}) {
            ConsumerConfig c = ConsumerConfig.builder("s", "g").claimIdle(d).maxRetryBackoff(d).retryBackoff(d).closeTimeout(d)
                    .consumerIdleLimit(d).build();
            assertThat(new Duration[] {c.claimIdle(), c.retryBackoff(), c.maxRetryBackoff(), c.closeTimeout(), c.consumerIdleLimit()})
                    .containsOnly(LONGEST);
            BusConfig b = BusConfig.builder().backlogCheckInterval(d).backpressureTimeout(d).publishTimeout(d).deadPeerTimeout(d).build();
            assertThat(new Duration[] {b.backlogCheckInterval(), b.backpressureTimeout(), b.publishTimeout(), b.deadPeerTimeout()})
                    .containsOnly(LONGEST);
        }
        String max = Long.toString(Long.MAX_VALUE);
        ConsumerConfig c = ConsumerConfig.builder("s", "g").fromEnvironment(Map.of(ConsumerConfig.ENV_CLAIM_IDLE_MS, max,
                ConsumerConfig.ENV_RETRY_BACKOFF_MS, max, ConsumerConfig.ENV_MAX_RETRY_BACKOFF_MS, max)).build();
        assertThat(new Duration[] {c.claimIdle(), c.retryBackoff(), c.maxRetryBackoff()}).containsOnly(LONGEST);
        BusConfig b = BusConfig.fromEnvironment(Map.of(BusConfig.ENV_BACKLOG_CHECK_MS, max, BusConfig.ENV_BACKPRESSURE_TIMEOUT_MS, max,
                BusConfig.ENV_PUBLISH_TIMEOUT_MS, max, BusConfig.ENV_DEAD_PEER_TIMEOUT_MS, max));
        assertThat(new Duration[] {b.backlogCheckInterval(), b.backpressureTimeout(), b.publishTimeout(), b.deadPeerTimeout()})
                .containsOnly(LONGEST);
        // A duration within the bound is kept as given.
        assertThat(ConsumerConfig.builder("s", "g").closeTimeout(Duration.ofDays(365)).build().closeTimeout()).isEqualTo(Duration.ofDays(365));
    }
}
