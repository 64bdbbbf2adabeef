package io.stargazer.bus.bench;

import io.stargazer.bus.BusConfig;
import io.stargazer.bus.Envelope;
import io.stargazer.bus.EventBus;
import io.stargazer.bus.NodeRole;
import io.stargazer.bus.RedisUrl;
import io.stargazer.bus.Subscription;
import io.stargazer.bus.Topology;
import io.stargazer.embedded.RedisClusterProcess;
import io.stargazer.embedded.RedisServerProcess;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.LongAdder;

/**
 * Inbound throughput benchmark (not a test), one server against a Redis Cluster in the same run: 16 publisher
 * threads publish asynchronously (up to 256 unanswered each) over 1000 channels while one worker consumes every
 * inbound partition; reports publishes acknowledged per second and the end-to-end rate (first publish to last
 * message handled). Targets: one redis-server with 1 inbound stream (the original topology) and with 6 partitions,
 * then a 3-primary + 3-replica cluster with 6 partitions. Every server runs {@code appendonly yes, appendfsync
 * everysec}. Arguments: {@code [messages per run, default 100000]}.
 *
 * <p>All servers share this machine's cores with the benchmark itself: the cluster figure shows what the cluster
 * path costs here, not what separate machines would carry (docs/cluster.md, capacity plan).
 */
public final class ClusterBench {
    private static final int PUBLISHERS = 16;
    private static final int WINDOW = 256;
    private static final int CHANNELS = 1000;

    private ClusterBench() {
    }

    public static void main(String[] args) throws Exception {
        int messages = args.length > 0 ? Integer.parseInt(args[0]) : 100_000;
        System.out.printf("%d messages per run, %d publishers x %d in flight, %d channels, %d cores%n", messages, PUBLISHERS, WINDOW,
                CHANNELS, Runtime.getRuntime().availableProcessors());
        try (RedisServerProcess single = RedisServerProcess.builder().arg("--appendonly", "yes", "--appendfsync", "everysec").start()) {
            RedisUrl url = RedisUrl.parse(single.url());
            System.out.printf("one server (redis %s):%n", single.version());
            run("single, 1 stream    ", url, 1, Math.min(messages, 20_000), false);
            run("single, 1 stream    ", url, 1, messages, true);
            run("single, 6 partitions", url, 6, messages, true);
        }
        try (RedisClusterProcess cluster = RedisClusterProcess.builder().start()) {
            RedisUrl url = RedisUrl.parse(cluster.url());
            System.out.printf("cluster of 3 primaries + 3 replicas (redis %s):%n", cluster.nodes().get(0).version());
            run("cluster, 6 partitions", url, 6, Math.min(messages, 20_000), false);
            run("cluster, 6 partitions", url, 6, messages, true);
        }
    }

    private static void run(String label, RedisUrl url, int partitions, int messages, boolean print) throws Exception {
        Topology t = Topology.builder().namespace("bench-" + System.nanoTime()).inboundPartitions(partitions).build();
        BusConfig workerConfig = BusConfig.builder().topology(t).role(NodeRole.WORKER).nodeId("bench-worker")
                .streamMaxlen(Math.max(1000, messages * 2L)).build();
        LongAdder handled = new LongAdder();
        CountDownLatch allHandled = new CountDownLatch(1);
        try (EventBus worker = EventBus.connect(url, workerConfig);
             EventBus publisher = EventBus.connect(url, workerConfig.toBuilder().role(NodeRole.GATEWAY).nodeId("bench-pub").build())) {
            worker.ensureStreams();
            Subscription sub = worker.subscribeInbound(b -> b.concurrency(4).batchSize(256), d -> {
                handled.increment();
                if (handled.sum() == messages) allHandled.countDown();
            });
            AtomicLong errors = new AtomicLong();
            CountDownLatch published = new CountDownLatch(PUBLISHERS);
            long t0 = System.nanoTime();
            for (int p = 0; p < PUBLISHERS; p++) {
                int me = p;
                new Thread(() -> {
                    Semaphore window = new Semaphore(WINDOW);
                    for (int i = me; i < messages; i += PUBLISHERS) {
                        window.acquireUninterruptibly();
                        publisher.publishInboundAsync(Envelope.of("platform", "webchat", "channel_id", "ch-" + (i % CHANNELS),
                                "content", "message number " + i + " with some text to make it a typical chat line", "seq", i))
                                .whenComplete((id, e) -> {
                                    if (e != null) errors.incrementAndGet();
                                    window.release();
                                });
                    }
                    window.acquireUninterruptibly(WINDOW);
                    published.countDown();
                }, "bench-publisher-" + p).start();
            }
            published.await();
            long publishNanos = System.nanoTime() - t0;
            boolean complete = allHandled.await(120, TimeUnit.SECONDS);
            long endToEndNanos = System.nanoTime() - t0;
            sub.close();
            if (print) {
                System.out.printf("  %s: publish %8.0f msg/s, publish+consume %8.0f msg/s%s, publish errors %d%n", label,
                        messages / (publishNanos / 1e9), handled.sum() / (endToEndNanos / 1e9),
                        complete ? "" : " (INCOMPLETE: " + handled.sum() + " handled)", errors.get());
            }
        }
    }
}
