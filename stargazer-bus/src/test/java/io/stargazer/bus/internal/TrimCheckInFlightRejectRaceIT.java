// Promise (SAFE trimming, SG_BACKPRESSURE=reject): a publish to a stream this process knows is full is refused at
// once, never held. A publish that passed the unlocked test while a check was in flight (not full yet, its answer
// overdue) and reached the held publishes' lock only after that check had found the stream full and refused the ones
// waiting, was held instead: answered by a later check, or only at SG_BACKPRESSURE_TIMEOUT_MS when those were slow.
package io.stargazer.bus.internal;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.stargazer.bus.Backpressure;
import io.stargazer.bus.BackpressureException;
import io.stargazer.bus.BusConfig;
import io.stargazer.bus.Envelope;
import io.stargazer.bus.EventBus;
import io.stargazer.bus.NodeRole;
import io.stargazer.bus.Topology;
import io.stargazer.bus.TrimPolicy;
import io.stargazer.bus.testing.RawRedis;
import io.stargazer.bus.testing.TestRedis;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;

class TrimCheckInFlightRejectRaceIT {
    private static final Duration WAIT = Duration.ofSeconds(30);
    private static final int CAP = 1000;

    @Test
    void aRejectPublishThatReachesTheLockAfterTheCheckFoundTheStreamFullIsRefusedNotHeld() throws Exception {
        Topology t = TestRedis.topology();
        String stream = t.inboundStream();
        BusConfig config = BusConfig.builder().topology(t).role(NodeRole.GATEWAY).nodeId("g").streamMaxlen(CAP).trimPolicy(TrimPolicy.SAFE)
                .backpressure(Backpressure.REJECT).publishTimeout(Duration.ofSeconds(20)).backpressureTimeout(Duration.ofSeconds(20)).build();
        try (RawRedis raw = new RawRedis(TestRedis.url()); EventBus bus = TestRedis.bus(config)) {
            bus.ensureGroup(stream, "laggard"); // reads nothing: the stream at its cap is full
            StreamGuard guard = ((RedisEventBus) bus).guard();
            for (int i = 0; i < CAP - 50; i++) raw.xadd(stream, "payload", "x");
            bus.publishInbound(Envelope.of("seq", -1));
            await().atMost(WAIT).until(() -> guard.state(stream).checksDone == 1 && !guard.state(stream).checking.get());
            for (int i = 0; i < 60; i++) raw.xadd(stream, "payload", "x");
            List<Runnable> held = new CopyOnWriteArrayList<>();
            guard.completeVia = held::add;
            for (int seq = 0; held.isEmpty() && seq < CAP; seq++) bus.publishInbound(Envelope.of("seq", -2 - seq));
            assertThat(held).hasSize(1);
            // Past the slack: publishes wait for the held check's answer.
            List<CompletableFuture<String>> burst = new ArrayList<>();
            for (int i = 0; i < 300; i++) burst.add(bus.publishInboundAsync(Envelope.of("seq", i)));
            await().atMost(WAIT).until(() -> guard.state(stream).anyParked);

            StreamGuard.State s = guard.state(stream);
            AtomicReference<CompletableFuture<String>> late = new AtomicReference<>();
            Thread publisher = new Thread(() -> late.set(bus.publishInboundAsync(Envelope.of("seq", "late"))), "late-publisher");
            List<Runnable> later = new CopyOnWriteArrayList<>();
            synchronized (s.parked) {
                publisher.start();
                // It passed the unlocked test (not full yet, a check in flight) and waits for the held publishes' lock.
                await().atMost(WAIT).until(() -> publisher.getState() == Thread.State.BLOCKED);
                // The check answers now, on this thread (the lock is re-entrant): full, the waiting ones refused. The
                // checks after it stay unanswered, as a slow connection's would.
                guard.completeVia = later::add;
                held.forEach(Runnable::run);
                assertThat(s.full).isTrue();
            }
            publisher.join(WAIT.toMillis());
            assertThat(burst).allMatch(CompletableFuture::isDone);
            CompletableFuture<String> f = late.get();
            assertThat(f).isNotNull();
            // Refused at once, as any publish to a stream known full under REJECT; not held for the next check's answer.
            Throwable cause = null;
            try {
                f.get(2, TimeUnit.SECONDS);
            } catch (ExecutionException e) {
                cause = e.getCause();
            } catch (java.util.concurrent.TimeoutException e) {
                cause = e;
            }
            assertThat(cause).as("the late publish's answer (state: %s)", guard.describe(stream)).isInstanceOf(BackpressureException.class);
            assertThat(s.anyParked).as("nothing held under REJECT").isFalse();
        }
    }
}
