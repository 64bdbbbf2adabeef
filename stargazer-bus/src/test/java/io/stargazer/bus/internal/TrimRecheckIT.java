// Promise (SAFE trimming): a stream whose groups keep up is brought back under its cap after a burst of publishes,
// also when the burst ran while a trim check was in flight. Only one check runs at a time per stream, and a publish
// that finds one in flight starts none; before, nothing checked again when that check completed, so the stream stayed
// over its cap by the whole burst until some later publish (TrimPolicyIT failed once in CI that way).
package io.stargazer.bus.internal;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.stargazer.bus.Backpressure;
import io.stargazer.bus.BusConfig;
import io.stargazer.bus.ConsumerConfig;
import io.stargazer.bus.Envelope;
import io.stargazer.bus.EventBus;
import io.stargazer.bus.NodeRole;
import io.stargazer.bus.Subscription;
import io.stargazer.bus.Topology;
import io.stargazer.bus.TrimPolicy;
import io.stargazer.bus.testing.RawRedis;
import io.stargazer.bus.testing.TestRedis;
import java.time.Duration;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import org.junit.jupiter.api.Test;

class TrimRecheckIT {
    private static final Duration WAIT = Duration.ofSeconds(30);

    @Test
    void aBurstDuringATrimCheckIsTrimmedWhenTheCheckCompletes() {
        Topology t = TestRedis.topology();
        String stream = t.inboundStream();
        try (EventBus bus = TestRedis.bus(BusConfig.builder().topology(t).role(NodeRole.WORKER).nodeId("n").streamMaxlen(1000)
                .trimPolicy(TrimPolicy.SAFE).backpressure(Backpressure.REJECT).build());
             RawRedis raw = new RawRedis(TestRedis.url())) {
            bus.ensureGroup(stream, t.workerGroup());
            Set<Integer> got = ConcurrentHashMap.newKeySet();
            try (Subscription sub = bus.subscribe(ConsumerConfig.builder(stream, t.workerGroup()).consumerName("c")
                    .blockTimeout(Duration.ofMillis(100)).build(), d -> got.add((int) d.envelope().longValue("seq", -1)))) {
                StreamGuard guard = ((RedisEventBus) bus).guard();
                // Hold the completion of the next trim check: that check stays in flight.
                List<Runnable> held = new CopyOnWriteArrayList<>();
                guard.completeVia = held::add;
                int seq = 0;
                while (held.isEmpty() && seq < 5000) {
                    bus.publishInbound(Envelope.of("seq", seq++));
                }
                assertThat(held).as("a trim check was started").isNotEmpty();
                guard.completeVia = Runnable::run;
                // The burst: every publish finds that check in flight and starts none.
                for (int i = 0; i < 1300; i++) bus.publishInbound(Envelope.of("seq", seq++));
                int published = seq;
                await().atMost(WAIT).until(() -> got.size() == published && bus.pendingCount(stream, t.workerGroup()) == 0);
                assertThat(raw.xlen(stream)).as("over the cap after the burst").isGreaterThan(1200);
                // The check completes now; no publish follows.
                held.forEach(Runnable::run);
                await().atMost(WAIT).until(() -> raw.xlen(stream) <= 1000);
            }
        }
    }
}
