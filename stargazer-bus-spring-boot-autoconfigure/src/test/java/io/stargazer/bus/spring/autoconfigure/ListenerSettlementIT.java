package io.stargazer.bus.spring.autoconfigure;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.lettuce.core.RedisURI;
import io.stargazer.bus.Delivery;
import io.stargazer.bus.Envelope;
import io.stargazer.bus.EventBus;
import io.stargazer.bus.StreamEntry;
import io.stargazer.bus.spring.StargazerListener;
import io.stargazer.testing.RawRedis;
import io.stargazer.testing.TestServers;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.Executor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;
import org.springframework.boot.autoconfigure.AutoConfigurations;
import org.springframework.boot.jackson.autoconfigure.JacksonAutoConfiguration;
import org.springframework.boot.test.context.runner.ApplicationContextRunner;
import org.springframework.boot.test.system.CapturedOutput;
import org.springframework.boot.test.system.OutputCaptureExtension;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;

// When a single @StargazerListener's entry is settled, against a real Redis: a returned CompletableFuture, an Error
// thrown by the method, a payload that cannot be mapped, a Delivery settled later on another thread (manualAck).
@Timeout(120)
class ListenerSettlementIT {
    private static final Duration WAIT = Duration.ofSeconds(30);

    private final String ns = TestServers.namespace();
    private final ApplicationContextRunner runner = new ApplicationContextRunner()
            .withConfiguration(AutoConfigurations.of(JacksonAutoConfiguration.class, StargazerBusAutoConfiguration.class))
            .withPropertyValues("stargazer.bus.url=" + TestServers.url(), "stargazer.bus.topology.namespace=" + ns,
                    "stargazer.bus.consumer.block-timeout=200ms");

    public record Order(String channel_id, int n) {
    }

    private static List<StreamEntry> deadLetters(EventBus bus, String stream) {
        return bus.read(stream + ":dead", "0", 10);
    }

    /** The {@code error} field of each dead letter of {@code stream} (wire format), in order. */
    private static List<String> deadReasons(String stream) {
        try (RawRedis raw = new RawRedis(RedisURI.create(TestServers.url()))) {
            return raw.xrange(stream + ":dead").stream().map(m -> RawRedis.s(RawRedis.fields(m).get("error"))).toList();
        }
    }

    @Configuration(proxyBeanMethods = false)
    static class FailingFuture {
        final AtomicInteger calls = new AtomicInteger();

        // The remote call it stands for fails 200 ms after the method returned.
        @StargazerListener(stream = "${stargazer.bus.topology.namespace}:async", group = "g")
        CompletableFuture<Void> one(Envelope e) {
            calls.incrementAndGet();
            return CompletableFuture.runAsync(() -> {
                throw new IllegalStateException("the remote call failed");
            }, CompletableFuture.delayedExecutor(200, TimeUnit.MILLISECONDS));
        }
    }

    @Test
    void aListenerWhoseReturnedFutureFailsHasItsEntryNackedNotAcknowledged() {
        runner.withUserConfiguration(FailingFuture.class).withPropertyValues("stargazer.bus.consumer.max-deliveries=1").run(ctx -> {
            assertThat(ctx).hasNotFailed();
            EventBus bus = ctx.getBean(EventBus.class);
            String stream = ns + ":async";
            bus.publish(stream, Envelope.of("channel_id", "a", "n", 1));
            await().atMost(WAIT).until(() -> ctx.getBean(FailingFuture.class).calls.get() == 1);
            await().atMost(WAIT).untilAsserted(() -> assertThat(deadReasons(stream))
                    .as("the failed entry dead-lettered (max-deliveries=1); pending now: " + bus.pendingCount(stream, "g"))
                    .singleElement().asString().contains("the remote call failed"));
        });
    }

    @Configuration(proxyBeanMethods = false)
    static class OrderedFutures {
        final ConcurrentLinkedQueue<Long> done = new ConcurrentLinkedQueue<>();

        // Each future completes later, the first one slowest: the channel's next entry waits for it.
        @StargazerListener(stream = "${stargazer.bus.topology.namespace}:async-order", group = "g", concurrency = "4")
        CompletableFuture<Void> one(Envelope e) {
            long n = e.longValue("n", -1);
            Executor later = CompletableFuture.delayedExecutor(n == 1 ? 500 : 10, TimeUnit.MILLISECONDS);
            return CompletableFuture.runAsync(() -> done.add(n), later);
        }
    }

    @Test
    void aListenerReturningAFutureIsAcknowledgedWhenItCompletesAndItsChannelWaitsForIt() {
        runner.withUserConfiguration(OrderedFutures.class).run(ctx -> {
            assertThat(ctx).hasNotFailed();
            EventBus bus = ctx.getBean(EventBus.class);
            OrderedFutures l = ctx.getBean(OrderedFutures.class);
            String stream = ns + ":async-order";
            for (int n = 1; n <= 3; n++) bus.publish(stream, Envelope.of("channel_id", "a", "n", n));
            await().atMost(WAIT).until(() -> l.done.size() == 3);
            assertThat(l.done).containsExactly(1L, 2L, 3L);
            await().atMost(WAIT).until(() -> bus.pendingCount(stream, "g") == 0);
        });
    }

    @Configuration(proxyBeanMethods = false)
    static class ReturnsAString {
        @StargazerListener(stream = "${stargazer.bus.topology.namespace}:string", group = "g")
        String one(Envelope e) {
            return "ignored";
        }
    }

    @Test
    void aListenerReturningAnythingButVoidOrAFutureFailsTheStartUpNamingTheMethod() {
        runner.withUserConfiguration(ReturnsAString.class).run(ctx -> {
            assertThat(ctx).hasFailed();
            assertThat(ctx.getStartupFailure()).hasStackTraceContaining(".one returns java.lang.String; a listener returns void");
        });
    }

    @Configuration(proxyBeanMethods = false)
    static class ErrorOnce {
        final AtomicInteger calls = new AtomicInteger();
        final ConcurrentLinkedQueue<Long> done = new ConcurrentLinkedQueue<>();

        @StargazerListener(stream = "${stargazer.bus.topology.namespace}:error", group = "g", concurrency = "1")
        void one(Envelope e) {
            if (calls.incrementAndGet() == 1) throw new AssertionError("an assert in the handler");
            done.add(e.longValue("n", -1));
        }
    }

    @Test
    void aListenerThatThrowsAnErrorKeepsItsChannelInOrder() {
        runner.withUserConfiguration(ErrorOnce.class).withPropertyValues("stargazer.bus.consumer.retry-backoff=20ms",
                "stargazer.bus.consumer.claim-idle=3s").run(ctx -> {
            assertThat(ctx).hasNotFailed();
            EventBus bus = ctx.getBean(EventBus.class);
            ErrorOnce l = ctx.getBean(ErrorOnce.class);
            String stream = ns + ":error";
            bus.publish(stream, Envelope.of("channel_id", "a", "n", 1));
            bus.publish(stream, Envelope.of("channel_id", "a", "n", 2));
            // Before the fix the Error was uncaught on the handler thread; Awaitility would rethrow it here.
            await().dontCatchUncaughtExceptions().atMost(WAIT).until(() -> l.done.size() == 2);
            assertThat(l.done).as("channel a in stream order: the Error nacked the entry, retried with backoff").containsExactly(1L, 2L);
        });
    }

    @Configuration(proxyBeanMethods = false)
    static class Typed {
        final AtomicInteger mappingsOfThePoison = new AtomicInteger();
        final AtomicInteger triesOfThePoisonBefore = new AtomicInteger(-1);
        final ConcurrentLinkedQueue<Integer> done = new ConcurrentLinkedQueue<>();

        @Bean
        StargazerBusAutoConfiguration.PayloadMapper countingMapper(tools.jackson.databind.json.JsonMapper mapper) {
            return (members, type) -> {
                if ("bad".equals(members.get("kind"))) mappingsOfThePoison.incrementAndGet();
                return mapper.convertValue(members, mapper.constructType(type));
            };
        }

        @StargazerListener(stream = "${stargazer.bus.topology.namespace}:typed", group = "g")
        void one(Order o) {
            if (o.n() == 2) triesOfThePoisonBefore.set(mappingsOfThePoison.get());
            done.add(o.n());
        }
    }

    @Test
    void aPayloadThatCannotBeMappedIsDeadLetteredAtOnceNotRetried() {
        runner.withUserConfiguration(Typed.class).withPropertyValues("stargazer.bus.consumer.retry-backoff=100ms").run(ctx -> {
            assertThat(ctx).hasNotFailed();
            EventBus bus = ctx.getBean(EventBus.class);
            Typed l = ctx.getBean(Typed.class);
            String stream = ns + ":typed";
            bus.publish(stream, Envelope.of("channel_id", "a", "kind", "bad", "n", "not-a-number"));
            bus.publish(stream, Envelope.of("channel_id", "a", "n", 2));
            await().atMost(WAIT).until(() -> l.done.contains(2));
            await().atMost(WAIT).until(() -> !deadLetters(bus, stream).isEmpty());
            assertThat(l.triesOfThePoisonBefore.get()).as("tries of the unmappable entry before the next entry of its channel ran").isEqualTo(1);
            assertThat(l.mappingsOfThePoison.get()).as("a deterministic mapping failure tried once").isEqualTo(1);
            assertThat(deadReasons(stream)).singleElement().asString()
                    .contains("not retryable").contains("cannot be mapped to " + Order.class.getTypeName());
        });
    }

    @Configuration(proxyBeanMethods = false)
    static class HandOff {
        final ConcurrentLinkedQueue<Boolean> nackTookEffect = new ConcurrentLinkedQueue<>();
        // The work takes a moment (a remote call): the nack comes 300 ms after the method returned.
        final Executor pool = CompletableFuture.delayedExecutor(300, TimeUnit.MILLISECONDS);

        @StargazerListener(stream = "${stargazer.bus.topology.namespace}:handoff", group = "g", manualAck = true)
        void one(Delivery d) {
            pool.execute(() -> nackTookEffect.add(d.nack(new IllegalStateException("the work failed"))));
        }
    }

    @Test
    void aDeliverySettledLaterOnAnotherThreadIsNotAcknowledgedBeforeIt() {
        runner.withUserConfiguration(HandOff.class).withPropertyValues("stargazer.bus.consumer.max-deliveries=1").run(ctx -> {
            assertThat(ctx).hasNotFailed();
            EventBus bus = ctx.getBean(EventBus.class);
            HandOff l = ctx.getBean(HandOff.class);
            String stream = ns + ":handoff";
            bus.publish(stream, Envelope.of("channel_id", "a", "n", 1));
            await().atMost(WAIT).until(() -> !l.nackTookEffect.isEmpty());
            assertThat(l.nackTookEffect).as("the application's nack took effect (false: acknowledged when the method returned)").containsExactly(true);
            await().atMost(WAIT).untilAsserted(() -> assertThat(deadReasons(stream)).singleElement().asString().contains("the work failed"));
        });
    }

    @Configuration(proxyBeanMethods = false)
    static class LateSettle {
        final ConcurrentLinkedQueue<Boolean> nackTookEffect = new ConcurrentLinkedQueue<>();
        final Executor pool = CompletableFuture.delayedExecutor(300, TimeUnit.MILLISECONDS);

        // The same hand-off without manualAck: the entry is acknowledged when the method returns.
        @StargazerListener(stream = "${stargazer.bus.topology.namespace}:late", group = "g")
        void one(Delivery d) {
            pool.execute(() -> nackTookEffect.add(d.nack(new IllegalStateException("the work failed"))));
        }
    }

    @Test
    @ExtendWith(OutputCaptureExtension.class)
    void aSettleAfterTheAutomaticAckIsWarnedAboutOnce(CapturedOutput output) {
        runner.withUserConfiguration(LateSettle.class).run(ctx -> {
            assertThat(ctx).hasNotFailed();
            EventBus bus = ctx.getBean(EventBus.class);
            LateSettle l = ctx.getBean(LateSettle.class);
            String stream = ns + ":late";
            bus.publish(stream, Envelope.of("channel_id", "a", "n", 1));
            bus.publish(stream, Envelope.of("channel_id", "b", "n", 2));
            await().atMost(WAIT).until(() -> l.nackTookEffect.size() == 2);
            assertThat(l.nackTookEffect).as("acknowledged when the method returned: the late nacks do nothing").containsExactly(false, false);
            String warning = "Delivery.nack() called after the subscription acknowledged the entry when its handler returned";
            assertThat(output.getAll().split(java.util.regex.Pattern.quote(warning), -1)).as("the warning, once per listener").hasSize(2);
        });
    }

    @Configuration(proxyBeanMethods = false)
    static class ManualAckOnAnEnvelope {
        @StargazerListener(stream = "${stargazer.bus.topology.namespace}:manual", group = "g", manualAck = true)
        void one(Envelope e) {
        }
    }

    @Test
    void manualAckWithoutADeliveryToSettleFailsTheStartUpNamingTheMethod() {
        runner.withUserConfiguration(ManualAckOnAnEnvelope.class).run(ctx -> {
            assertThat(ctx).hasFailed();
            assertThat(ctx.getStartupFailure()).hasStackTraceContaining(".one: manualAck = true needs a Delivery parameter");
        });
    }
}
