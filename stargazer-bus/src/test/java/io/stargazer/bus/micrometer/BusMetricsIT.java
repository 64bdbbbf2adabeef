package io.stargazer.bus.micrometer;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.Meter;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Timer;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import io.stargazer.bus.ConsumerConfig;
import io.stargazer.bus.Envelope;
import io.stargazer.bus.EventBus;
import io.stargazer.bus.NodeRole;
import io.stargazer.bus.Subscription;
import io.stargazer.bus.RedisUrl;
import io.stargazer.bus.Topology;
import io.stargazer.bus.testing.RedisFaults;
import io.stargazer.bus.testing.TestRedis;
import io.stargazer.bus.tools.ToolClient;
import io.stargazer.bus.tools.ToolException;
import io.stargazer.bus.tools.ToolRegistry;
import io.stargazer.bus.tools.ToolService;
import io.stargazer.bus.tools.TestTools;
import io.stargazer.embedded.RedisServerProcess;
import io.stargazer.testing.TestServers;
import java.lang.reflect.Field;
import java.lang.reflect.Method;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

// The binder's meters after a known workload hold exactly its counts: 10 publishes, of which 2 fail once and 1 fails
// on every delivery (dead-lettered after 2), 3 tools calls of which 1 is refused.
class BusMetricsIT {
    private static final Duration WAIT = Duration.ofSeconds(20);

    @Test
    @Timeout(120)
    void metersCountAKnownWorkloadExactly() {
        Topology t = TestRedis.topology();
        MeterRegistry registry = new SimpleMeterRegistry();
        try (EventBus bus = TestRedis.bus(TestRedis.config(NodeRole.STANDALONE).topology(t).build());
             EventBus toolsBus = TestRedis.bus(TestRedis.config(NodeRole.TOOLS).topology(t).build())) {
            new BusMetrics(bus).bindTo(registry);
            String stream = t.inboundStream();
            java.util.Set<Long> failedOnce = java.util.concurrent.ConcurrentHashMap.newKeySet();
            ConsumerConfig cfg = bus.consumer(stream, "g").maxDeliveries(2).retryBackoff(Duration.ofMillis(20))
                    .maxRetryBackoff(Duration.ofMillis(50)).build();
            Subscription sub = bus.subscribe(cfg, d -> {
                long n = d.envelope().longValue("n", -1);
                if (n == 9) throw new IllegalStateException("always fails");
                if ((n == 3 || n == 5) && failedOnce.add(n)) throw new IllegalStateException("fails once");
            });
            for (int i = 0; i < 10; i++) {
                bus.publish(stream, Envelope.of("channel_id", "c-" + i, "n", i));
            }
            // 10 first deliveries + 2 retries of 3 and 5 + 1 retry of 9 = 13; acknowledged 9; 9 dead-lettered.
            await().atMost(WAIT).until(() -> sub.stats().acknowledged() == 9 && sub.stats().deadLettered() == 1);

            String dest = BusMetrics.TAG_DESTINATION;
            String group = BusMetrics.TAG_GROUP;
            assertThat(registry.get("messaging.client.sent.messages").tag(dest, stream).tag(BusMetrics.TAG_ERROR, "none")
                    .tag(BusMetrics.TAG_SYSTEM, "redis_streams").counter().count()).isEqualTo(10);
            assertThat(registry.get("messaging.client.operation.duration").tag(dest, stream).tag("messaging.operation.name", "send")
                    .timer().count()).isEqualTo(10);
            assertThat(registry.get("messaging.client.consumed.messages").tag(dest, stream).tag(group, "g").functionCounter().count())
                    .isEqualTo(13);
            assertThat(registry.get("stargazer.messaging.acknowledged").tag(group, "g").functionCounter().count()).isEqualTo(9);
            assertThat(registry.get("stargazer.messaging.redelivered").tag(group, "g").functionCounter().count()).isEqualTo(3);
            assertThat(registry.get("stargazer.messaging.dead.lettered").tag(group, "g").functionCounter().count()).isEqualTo(1);
            assertThat(registry.get("stargazer.messaging.failed").tag(group, "g").functionCounter().count()).isEqualTo(4);
            assertThat(registry.get("stargazer.messaging.in.flight").tag(group, "g").gauge().value()).isZero();
            await().atMost(WAIT).untilAsserted(() -> {
                assertThat(registry.get("stargazer.messaging.pending").tag(group, "g").gauge().value()).isZero();
                assertThat(registry.get("stargazer.messaging.lag").tag(group, "g").gauge().value()).isZero();
            });
            Timer ok = registry.get("messaging.process.duration").tag(group, "g").tag(BusMetrics.TAG_ERROR, "none").timer();
            Timer failed = registry.get("messaging.process.duration").tag(group, "g").tag(BusMetrics.TAG_ERROR, "IllegalStateException").timer();
            assertThat(ok.count()).isEqualTo(9);
            assertThat(failed.count()).isEqualTo(4);

            // Tools calls through a ToolClient: 2 answered, 1 refused (division by zero: bad_arguments).
            ToolRegistry tools = TestTools.register(ToolRegistry.builder()).build();
            try (ToolService service = ToolService.start(toolsBus, tools); ToolClient client = ToolClient.create(bus)) {
                assertThat(client.callBlocking("add", Map.of("a", 1, "b", 2), WAIT)).isEqualTo(3L);
                assertThat(client.callBlocking("mul", Map.of("a", 2, "b", 2), WAIT)).isEqualTo(4L);
                org.assertj.core.api.Assertions.assertThatThrownBy(() -> client.callBlocking("div", Map.of("a", 1, "b", 0), WAIT))
                        .isInstanceOf(ToolException.class);
            }
            assertThat(registry.get("stargazer.tools.client.duration").tag("tool", "add").tag("outcome", "ok").timer().count()).isEqualTo(1);
            assertThat(registry.get("stargazer.tools.client.duration").tag("tool", "mul").tag("outcome", "ok").timer().count()).isEqualTo(1);
            assertThat(registry.get("stargazer.tools.client.duration").tag("tool", "div").tag("outcome", ToolException.BAD_ARGUMENTS)
                    .timer().count()).isEqualTo(1);

            // A closed subscription's meters leave the registry.
            sub.close();
            assertThat(registry.find("messaging.client.consumed.messages").tag(group, "g").functionCounter()).isNull();
        }
    }

    /**
     * Two subscriptions of one group on one stream (two listeners of a group in one process) are one series that counts
     * both, and closing one keeps what it counted; the series leaves the registry with the last one. Before, the second
     * subscription's counts were never read (Micrometer kept the first meter of that name and tags), and closing either
     * removed the series (found by trying the Spring starter with two listeners on one group).
     */
    @Test
    @Timeout(120)
    void twoSubscriptionsOfOneGroupAreCountedTogetherAndClosingOneKeepsItsCounts() {
        MeterRegistry registry = new SimpleMeterRegistry();
        try (EventBus bus = TestRedis.bus(NodeRole.GATEWAY)) {
            new BusMetrics(bus).bindTo(registry);
            String stream = bus.topology().inboundStream();
            String group = BusMetrics.TAG_GROUP;
            // Each holds one entry at a time, and the first entry is held until the other consumer has handled the
            // rest: so each of the two handles some.
            java.util.concurrent.CountDownLatch first = new java.util.concurrent.CountDownLatch(1);
            java.util.concurrent.CountDownLatch release = new java.util.concurrent.CountDownLatch(1);
            io.stargazer.bus.MessageHandler handler = d -> {
                if (d.envelope().longValue("n", -1) == 0) {
                    first.countDown();
                    release.await(60, TimeUnit.SECONDS);
                }
            };
            Subscription a = bus.subscribe(bus.consumer(stream, "g").consumerName("a").maxInFlight(1).build(), handler);
            Subscription b = bus.subscribe(bus.consumer(stream, "g").consumerName("b").maxInFlight(1).build(), handler);
            int n = 200;
            bus.publish(stream, Envelope.of("channel_id", "c0", "n", 0));
            await().atMost(WAIT).until(() -> first.getCount() == 0);
            for (int i = 1; i < n; i++) bus.publishAsync(stream, Envelope.of("channel_id", "c" + i, "n", i));
            await().atMost(WAIT).until(() -> a.stats().acknowledged() + b.stats().acknowledged() == n - 1);
            release.countDown();
            await().atMost(WAIT).until(() -> a.stats().acknowledged() + b.stats().acknowledged() == n);
            assertThat(a.stats().acknowledged()).as("both consumers took some").isPositive();
            assertThat(b.stats().acknowledged()).as("both consumers took some").isPositive();
            assertThat(registry.get("stargazer.messaging.acknowledged").tag(group, "g").functionCounter().count()).isEqualTo(n);
            assertThat(registry.get("messaging.client.consumed.messages").tag(group, "g").functionCounter().count()).isEqualTo(n);

            a.close();
            for (int i = 0; i < 10; i++) bus.publish(stream, Envelope.of("channel_id", "d" + i, "n", i));
            await().atMost(WAIT).until(() -> a.stats().acknowledged() + b.stats().acknowledged() == n + 10);
            assertThat(registry.get("stargazer.messaging.acknowledged").tag(group, "g").functionCounter().count())
                    .as("what the closed one counted is kept").isEqualTo(n + 10);
            assertThat(registry.get("messaging.process.duration").tag(group, "g").tag(BusMetrics.TAG_ERROR, "none").timer().count())
                    .isEqualTo(n + 10);

            b.close();
            assertThat(registry.find("stargazer.messaging.acknowledged").tag(group, "g").functionCounter()).isNull();
            assertThat(registry.find("messaging.process.duration").tag(group, "g").timer()).isNull();
        }
    }

    /**
     * A subscription has a fixed set of meters: 8, and one process timer per outcome. Each failed handling used to
     * append the same error timer again to the subscription's copy-on-write list (copied whole each time).
     */
    @Test
    @Timeout(120)
    void failuresDoNotGrowWhatTheBinderKeepsPerSubscription() throws Exception {
        MeterRegistry registry = new SimpleMeterRegistry();
        try (EventBus bus = TestRedis.bus(NodeRole.GATEWAY)) {
            new BusMetrics(bus).bindTo(registry);
            String stream = bus.topology().inboundStream();
            ConsumerConfig cfg = bus.consumer(stream, "g").maxDeliveries(1).build();
            try (Subscription sub = bus.subscribe(cfg, d -> {
                throw new IllegalStateException("always fails");
            })) {
                int n = 300;
                for (int i = 0; i < n; i++) bus.publishAsync(stream, Envelope.of("channel_id", "c" + i, "n", i));
                await().atMost(WAIT).until(() -> sub.stats().deadLettered() == n);
                List<Meter> kept = keptFor(bus, sub);
                assertThat(kept).as("meters kept for one subscription after %d failures", n).doesNotHaveDuplicates().hasSize(9);
                assertThat(registry.get("messaging.process.duration").tag(BusMetrics.TAG_ERROR, "IllegalStateException").timer().count())
                        .isEqualTo(n);
            }
        }
    }

    /**
     * What the binder bound to {@code bus} keeps to remove when the last subscription on {@code s}'s stream and group
     * closes (one binder bound: the hooks are its).
     */
    @SuppressWarnings("unchecked")
    private static List<Meter> keptFor(EventBus bus, Subscription s) throws Exception {
        Method hooks = bus.getClass().getDeclaredMethod("hooks");
        hooks.setAccessible(true);
        Object bound = hooks.invoke(bus);
        Field f = bound.getClass().getDeclaredField("series");
        f.setAccessible(true);
        Object series = ((Map<List<String>, ?>) f.get(bound)).get(List.of(s.stream(), s.group()));
        Field meters = series.getClass().getDeclaredField("meters");
        meters.setAccessible(true);
        return List.copyOf((List<Meter>) meters.get(series));
    }

    /**
     * The meters of a tools service on {@code t} that answered one call from each of {@code workers} worker processes,
     * each a bus of its own on {@code workerTopology} named {@code namePrefix + i}.
     */
    private static MeterRegistry toolsServiceAnswering(Topology t, Topology workerTopology, String namePrefix, int workers) {
        MeterRegistry registry = new SimpleMeterRegistry();
        try (EventBus toolsBus = TestRedis.bus(TestRedis.config(NodeRole.TOOLS).topology(t).build())) {
            new BusMetrics(toolsBus).bindTo(registry);
            toolsBus.ensureStreams();
            callFromWorkerProcesses(toolsBus, workerTopology, namePrefix, workers);
        }
        return registry;
    }

    /**
     * The tools service answers on one reply stream per worker process ({prefix}:{worker node id}, by default host and
     * pid): its publish meters are tagged with the reply streams' template, not each name, so worker restarts add no
     * series.
     */
    @Test
    @Timeout(120)
    void theToolsServicesPublishMetersDoNotGrowWithEveryWorkerProcess() {
        Topology t = TestRedis.topology();
        int workers = 4;
        assertOnlyDestination(toolsServiceAnswering(t, t, "worker-pid-", workers), t.toolsReplyStreamPrefix() + ":{worker_id}", workers);
    }

    /** The publish meters have one destination, {@code destination}, with {@code publishes} publishes. */
    private static void assertOnlyDestination(MeterRegistry registry, String destination, int publishes) {
        List<String> destinations = registry.find("messaging.client.sent.messages").counters().stream()
                .map(c -> c.getId().getTag(BusMetrics.TAG_DESTINATION)).toList();
        assertThat(destinations).containsExactly(destination);
        assertThat(registry.get("messaging.client.sent.messages").tag(BusMetrics.TAG_DESTINATION, destination).counter().count())
                .isEqualTo(publishes);
        assertThat(registry.find("messaging.client.operation.duration").timers()).singleElement().satisfies(timer -> {
            assertThat(timer.getId().getTag(BusMetrics.TAG_DESTINATION)).isEqualTo(destination);
            assertThat(timer.count()).isEqualTo(publishes);
        });
    }

    /**
     * reply_to is the request's to choose: workers whose reply streams lie outside the tools service's reply prefix (each
     * a name of its own) are all metered as one destination, {reply_to}. Before, each name added a series.
     */
    @Test
    @Timeout(120)
    void replyStreamsOutsideTheReplyPrefixAreMeteredAsOneDestination() {
        Topology t = TestRedis.topology();
        Topology elsewhere = t.toBuilder().toolsReplyStreamPrefix(t.toolsReplyStreamPrefix() + "-elsewhere").build();
        int workers = 3;
        assertOnlyDestination(toolsServiceAnswering(t, elsewhere, "other-", workers), "{reply_to}", workers);
    }

    /**
     * A tools service on {@code toolsBus} answers one call from each of {@code workers} worker processes on
     * {@code workerTopology}, named {@code namePrefix} and a number.
     */
    private static void callFromWorkerProcesses(EventBus toolsBus, Topology workerTopology, String namePrefix, int workers) {
        ToolRegistry tools = TestTools.register(ToolRegistry.builder()).build();
        try (ToolService service = ToolService.start(toolsBus, tools)) {
            for (int i = 0; i < workers; i++) {
                try (EventBus worker = TestRedis.bus(TestRedis.config(NodeRole.WORKER).topology(workerTopology).nodeId(namePrefix + i).build());
                     ToolClient client = ToolClient.create(worker)) {
                    assertThat(client.callBlocking("add", Map.of("a", 1, "b", i), WAIT)).isEqualTo(1L + i);
                }
            }
        }
    }

    /**
     * The same for the observations' timers (Spring Boot times every observation): the low-cardinality
     * {@code messaging.destination.name} of a reply's send is the reply streams' template; each stream's own name is
     * the high-cardinality {@link BusObservations#STREAM}.
     */
    @Test
    @Timeout(120)
    void theToolsServicesObservationTimersDoNotGrowWithEveryWorkerProcess() {
        Topology t = TestRedis.topology();
        assertOneSendTimer(t, t, "worker-pid-", t.toolsReplyStreamPrefix() + ":{worker_id}");
    }

    /** The same for reply streams outside the reply prefix, named by the requests: one send timer, {reply_to}. */
    @Test
    @Timeout(120)
    void theToolsServicesObservationTimersForReplyStreamsOutsideThePrefixAreOne() {
        Topology t = TestRedis.topology();
        Topology elsewhere = t.toBuilder().toolsReplyStreamPrefix(t.toolsReplyStreamPrefix() + "-elsewhere").build();
        assertOneSendTimer(t, elsewhere, "other-", "{reply_to}");
    }

    /**
     * A tools service on {@code t}, observed, answers three workers on {@code workerTopology}: its send timers are one,
     * tagged {@code destination}, and each reply's own stream is the high-cardinality {@link BusObservations#STREAM}.
     */
    private static void assertOneSendTimer(Topology t, Topology workerTopology, String namePrefix, String destination) {
        MeterRegistry registry = new SimpleMeterRegistry();
        io.micrometer.observation.ObservationRegistry observations = io.micrometer.observation.ObservationRegistry.create();
        observations.observationConfig().observationHandler(new io.micrometer.core.instrument.observation.DefaultMeterObservationHandler(registry));
        java.util.concurrent.ConcurrentLinkedQueue<String> streams = new java.util.concurrent.ConcurrentLinkedQueue<>();
        observations.observationConfig().observationHandler(new io.micrometer.observation.ObservationHandler<>() {
            @Override
            public void onStop(io.micrometer.observation.Observation.Context context) {
                io.micrometer.common.KeyValue stream = context.getHighCardinalityKeyValue(BusObservations.STREAM);
                if (context.getName().equals(BusObservations.SEND) && stream != null) streams.add(stream.getValue());
            }

            @Override
            public boolean supportsContext(io.micrometer.observation.Observation.Context context) {
                return true;
            }
        });
        try (EventBus toolsBus = TestRedis.bus(TestRedis.config(NodeRole.TOOLS).topology(t).build())) {
            BusObservations.install(toolsBus, observations);
            toolsBus.ensureStreams();
            int workers = 3;
            callFromWorkerProcesses(toolsBus, workerTopology, namePrefix, workers);
            assertThat(registry.find(BusObservations.SEND).timers()).as("the tools service's send timers")
                    .singleElement().satisfies(timer -> {
                        assertThat(timer.getId().getTag(BusMetrics.TAG_DESTINATION)).isEqualTo(destination);
                        assertThat(timer.count()).isEqualTo(workers);
                    });
            assertThat(streams).as("each reply's stream, high cardinality").hasSize(workers).doesNotHaveDuplicates()
                    .allMatch(s -> s.startsWith(workerTopology.toolsReplyStreamPrefix() + ":" + namePrefix));
        }
    }

    /**
     * A worker whose tool names come from a model's output or a user asks for names no tool has: the tools client's
     * timer tags those calls {@code tool=unknown}, so each such name adds no series; a name the tools service
     * recognised keeps its own.
     */
    @Test
    @Timeout(120)
    void toolNamesThatNoToolHasDoNotEachAddASeries() {
        Topology t = TestRedis.topology();
        MeterRegistry registry = new SimpleMeterRegistry();
        ToolRegistry tools = TestTools.register(ToolRegistry.builder()).build();
        try (EventBus toolsBus = TestRedis.bus(TestRedis.config(NodeRole.TOOLS).topology(t).build());
             EventBus worker = TestRedis.bus(TestRedis.config(NodeRole.WORKER).topology(t).build())) {
            toolsBus.ensureStreams();
            new BusMetrics(worker).bindTo(registry);
            int unknown = 20;
            try (ToolService service = ToolService.start(toolsBus, tools); ToolClient client = ToolClient.create(worker)) {
                for (int i = 0; i < unknown; i++) {
                    String name = "hallucinated_tool_" + i;
                    org.assertj.core.api.Assertions.assertThatThrownBy(() -> client.callBlocking(name, Map.of(), WAIT))
                            .isInstanceOfSatisfying(ToolException.class, e -> assertThat(e.type()).isEqualTo(ToolException.UNKNOWN_TOOL));
                }
                assertThat(client.callBlocking("add", Map.of("a", 1, "b", 2), WAIT)).isEqualTo(3L);
            }
            List<String> series = registry.find("stargazer.tools.client.duration").timers().stream()
                    .map(x -> x.getId().getTag("tool") + "/" + x.getId().getTag("outcome")).toList();
            assertThat(series).containsExactlyInAnyOrder("unknown/" + ToolException.UNKNOWN_TOOL, "add/ok");
            assertThat(registry.get("stargazer.tools.client.duration").tag("tool", "unknown").timer().count()).isEqualTo(unknown);
        }
    }

    /**
     * The lag and pending gauges never wait for Redis on the scraping thread: with Redis paused (SIGSTOP, its socket
     * open and silent) a scrape returns the last values at once, then NaN once the refresh behind it has failed, and
     * the values again when Redis answers. Before, each stale gauge read waited for XINFO GROUPS to fail (5 s each).
     */
    @Test
    @Timeout(180)
    void aScrapeWithRedisPausedServesTheLastValuesWithoutWaiting() throws Exception {
        MeterRegistry registry = new SimpleMeterRegistry();
        ExecutorService scraper = Executors.newSingleThreadExecutor();
        try (RedisServerProcess own = TestServers.server().start();
             EventBus bus = EventBus.connect(RedisUrl.parse(own.url()), TestRedis.config(NodeRole.GATEWAY).build())) {
            new BusMetrics(bus).bindTo(registry);
            List<Subscription> subs = new ArrayList<>();
            try {
                for (int i = 0; i < 3; i++) subs.add(bus.subscribe(bus.consumer("s" + i, "g").build(), d -> { }));
                List<Gauge> gauges = new ArrayList<>(registry.find("stargazer.messaging.lag").gauges());
                gauges.addAll(registry.find("stargazer.messaging.pending").gauges());
                assertThat(gauges).hasSize(6);
                await().atMost(WAIT).until(() -> values(gauges).stream().allMatch(v -> v == 0.0));
                try (RedisFaults.Fault paused = RedisFaults.pause(own)) {
                    // Longer than GROUP_INFO_MAX_AGE_MS, so that the reads in it find their values stale and refresh them.
                    // A scrape that waits for Redis fails here: waiting for XINFO GROUPS alone takes 5 s.
                    await().during(Duration.ofMillis(2 * BusMetrics.GROUP_INFO_MAX_AGE_MS)).atMost(WAIT)
                            .until(() -> scraper.submit(() -> values(gauges)).get(2, TimeUnit.SECONDS).stream().allMatch(v -> v == 0.0));
                    await().atMost(WAIT).until(() -> scraper.submit(() -> values(gauges)).get(2, TimeUnit.SECONDS).stream()
                            .allMatch(v -> Double.isNaN(v)));
                }
                await().atMost(WAIT).until(() -> values(gauges).stream().allMatch(v -> v == 0.0));
            } finally {
                subs.forEach(Subscription::close);
            }
        } finally {
            scraper.shutdownNow();
        }
    }

    private static List<Double> values(List<Gauge> gauges) {
        return gauges.stream().map(Gauge::value).toList();
    }
}
