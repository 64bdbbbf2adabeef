package io.stargazer.bus;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.stargazer.testing.ChildJvm;
import io.stargazer.bus.testing.RawRedis;
import io.stargazer.bus.testing.TcpProxy;
import io.stargazer.bus.testing.TestRedis;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import org.awaitility.Awaitility;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** Answers sent once: Delivery.reply stores the answer and acknowledges the entry as one step. */
@Timeout(120)
class ReplyIT {

    @Test
    void aReplyStoresTheAnswerWithADerivedDedupeKeyAndAcknowledgesTheEntry() throws Exception {
        try (EventBus bus = TestRedis.bus(NodeRole.STANDALONE); RawRedis raw = new RawRedis(TestRedis.url())) {
            Topology t = bus.topology();
            String in = t.inboundStream();
            String out = t.outboundStream("webchat");
            bus.ensureGroup(in, t.workerGroup());
            String source = bus.publishInbound(Envelope.of("channel_id", "c", "content", "hi"));
            List<String> answers = new CopyOnWriteArrayList<>();
            List<Throwable> problems = new CopyOnWriteArrayList<>();
            try (Subscription s = bus.subscribe(bus.consumer(in, t.workerGroup()).build(), d -> {
                answers.add(d.reply(out, Envelope.of("channel_id", "c", "content", "echo")).join());
                try {
                    d.reply(out, Envelope.of("content", "twice"));
                    problems.add(new AssertionError("a second reply was accepted"));
                } catch (IllegalStateException expected) {
                    // settled by the first
                }
            })) {
                Awaitility.await().atMost(10, TimeUnit.SECONDS).until(() -> answers.size() == 1 && bus.pendingCount(in, t.workerGroup()) == 0);
                assertThat(problems).isEmpty();
                assertThat(s.stats().acknowledged()).isEqualTo(1);
            }
            List<StreamEntry> stored = TestRedis.readAll(bus, out);
            assertThat(stored).extracting(StreamEntry::id).containsExactly(answers.get(0));
            Map<String, byte[]> fields = RawRedis.fields(raw.xrange(out).get(0));
            assertThat(RawRedis.s(fields.get("dedupe_key"))).isEqualTo("reply:" + in + ":" + source);
        }
    }

    @Test
    void aWorkerKilledRightAfterAnsweringGivesNoSecondAnswerAfterTheTakeover() throws Exception {
        try (EventBus bus = TestRedis.bus(NodeRole.STANDALONE)) {
            Topology t = bus.topology();
            String in = t.inboundStream();
            String out = t.outboundStream("webchat");
            String group = t.workerGroup();
            bus.ensureGroup(in, group);
            for (int i = 0; i < 20; i++) bus.publishInbound(Envelope.of("channel_id", "c" + (i % 4), "n", i));
            try (ChildJvm child = ChildJvm.start(ReplyWorkerChild.class, TestRedis.url().toString(), in, group, out, "7", "reply")) {
                Awaitility.await().atMost(60, TimeUnit.SECONDS).until(() -> child.printed("ANSWERED 7"));
                child.kill(); // SIGKILL: whatever it held stays pending
            }
            List<Long> answeredByB = new CopyOnWriteArrayList<>();
            try (Subscription b = bus.subscribe(bus.consumer(in, group).consumerName("b").claimIdle(Duration.ofMillis(500)).build(),
                    d -> {
                        long n = d.envelope().longValue("n", -1);
                        d.reply(out, Envelope.of("channel_id", d.envelope().channelId(), "answer_to", n)).join();
                        answeredByB.add(n);
                    })) {
                Awaitility.await().atMost(30, TimeUnit.SECONDS).until(() -> bus.pendingCount(in, group) == 0
                        && countAnswers(bus, out).size() == 20);
            }
            Map<Long, Integer> counts = countAnswers(bus, out);
            assertThat(counts).hasSize(20);
            assertThat(counts.values()).as("answers per entry: %s", counts).containsOnly(1);
        }
    }

    @Test
    @Timeout(300)
    void twentyThousandMessagesThroughTwoWorkersOneKilledMidStreamComeBackOnceEach() throws Exception {
        int n = 20_000;
        try (EventBus gateway = TestRedis.bus(NodeRole.GATEWAY)) {
            Topology t = gateway.topology();
            String in = t.inboundStream();
            String out = t.outboundStream("webchat");
            String group = t.workerGroup();
            gateway.ensureGroup(in, group);
            String url = TestRedis.url().toString();
            try (ChildJvm doomed = ChildJvm.start(ReplyWorkerChild.class, url, in, group, out, "-1", "reply", "w-doomed", "2000");
                    ChildJvm survivor = ChildJvm.start(ReplyWorkerChild.class, url, in, group, out, "-1", "reply", "w-survivor", "2000")) {
                Awaitility.await().atMost(60, TimeUnit.SECONDS).until(() -> doomed.printed("READY") && survivor.printed("READY"));
                // The gateway publishes each message with the platform's id as dedupe key, retrying unknown outcomes.
                List<CompletableFuture<String>> published = new ArrayList<>();
                for (int i = 0; i < n; i++) {
                    published.add(gateway.publishInboundAsync(Envelope.of("channel_id", "c" + (i % 50), "n", i),
                            PublishOptions.builder().dedupeKey("webchat:" + i).maxAttempts(5).build()));
                    if (i == n / 2) {
                        Awaitility.await().atMost(60, TimeUnit.SECONDS).until(() -> countAnswers(gateway, out).size() > n / 10);
                        doomed.kill(); // SIGKILL mid-stream: its held entries are taken over by the survivor
                    }
                    if (i % 500 == 0) published.get(i).join();
                }
                CompletableFuture.allOf(published.toArray(CompletableFuture[]::new)).join();
                Awaitility.await().atMost(240, TimeUnit.SECONDS).pollInterval(Duration.ofSeconds(1))
                        .until(() -> gateway.pendingCount(in, group) == 0 && countAnswers(gateway, out).size() == n);
                Map<Long, Integer> counts = countAnswers(gateway, out);
                long duplicated = counts.values().stream().filter(c -> c > 1).count();
                System.out.printf("20k through two workers, one killed: %d answered, %d answered more than once, %d inbound entries%n",
                        counts.size(), duplicated, gateway.streamInfo(in).orElseThrow().length());
                assertThat(counts).hasSize(n);
                assertThat(duplicated).isZero();
                assertThat(gateway.streamInfo(in).orElseThrow().length()).isEqualTo(n);
            }
        }
    }

    /** How many answers each entry got (its {@code answer_to}) in stream {@code out}. */
    /**
     * An answer whose reply was lost with its connection is not written again by the client on the next one: there it
     * ran a second time and, past a short dedupe window, stored the answer again (its entry acknowledged by the first
     * run). As for the relay's moves (RelayOnceInOrderIT).
     */
    @Test
    void anAnswerWhoseReplyWasLostIsStoredOnceEvenPastAShortDedupeWindow() throws Exception {
        Topology t = TestRedis.topology();
        String in = t.inboundStream();
        String out = t.outboundStream("webchat");
        String group = t.workerGroup();
        int n = 2000;
        BusConfig workerConfig = BusConfig.builder().topology(t).role(NodeRole.WORKER).nodeId("w").platforms(List.of("webchat"))
                .deadPeerTimeout(Duration.ofSeconds(1)).publishTimeout(Duration.ofSeconds(2)).dedupeWindow(Duration.ofMillis(300)).build();
        try (TcpProxy proxy = TcpProxy.to(TestRedis.url());
             EventBus gateway = EventBus.connect(TestRedis.url(),
                     BusConfig.builder().topology(t).role(NodeRole.GATEWAY).nodeId("g").platforms(List.of("webchat")).build());
             EventBus worker = EventBus.connect(proxy.url(), workerConfig)) {
            gateway.ensureStreams();
            gateway.ensureGroup(in, group);
            RelayIT.publishNumbered(gateway, n);
            try (Subscription s = worker.subscribe(worker.consumer(in, group).consumerName("w").claimIdle(Duration.ofSeconds(2)).build(),
                    d -> d.reply(out, Envelope.of("channel_id", d.envelope().channelId(), "answer_to", d.envelope().longValue("n", -1))).join())) {
                Awaitility.await().atMost(60, TimeUnit.SECONDS).pollInterval(Duration.ofMillis(2)).until(() -> countAnswers(gateway, out).size() >= 300);
                int before = proxy.acceptedCount();
                proxy.dropRepliesOnExisting();
                Awaitility.await().atMost(60, TimeUnit.SECONDS).until(() -> proxy.acceptedCount() > before);
                Awaitility.await().atMost(90, TimeUnit.SECONDS).until(() -> countAnswers(gateway, out).size() == n
                        && gateway.pendingCount(in, group) == 0);
                // Answers whose outcome the worker does not know yet are settled by then too.
                Awaitility.await().atMost(30, TimeUnit.SECONDS).until(() -> s.stats().inFlight() == 0);
            }
            Map<Long, Integer> counts = countAnswers(gateway, out);
            assertThat(counts).hasSize(n);
            assertThat(counts.entrySet().stream().filter(e -> e.getValue() > 1).map(Map.Entry::getKey).toList())
                    .as("entries answered twice").isEmpty();
        }
    }

    static Map<Long, Integer> countAnswers(EventBus bus, String out) {
        Map<Long, Integer> counts = new HashMap<>();
        for (StreamEntry e : TestRedis.readAll(bus, out)) counts.merge(e.envelope().longValue("answer_to", -1), 1, Integer::sum);
        return counts;
    }
}
