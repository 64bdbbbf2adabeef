// Inbound throughput on one server and on a local Redis Cluster (3 primaries + 3 replicas), in the same run.
package io.stargazer.bench;

import io.stargazer.bus.BusConfig;
import io.stargazer.bus.Envelope;
import io.stargazer.bus.EventBus;
import io.stargazer.bus.NodeRole;
import io.stargazer.bus.RedisUrl;
import io.stargazer.bus.Subscription;
import io.stargazer.bus.Topology;
import io.stargazer.embedded.RedisServerProcess;
import io.stargazer.testing.RedisClusterProcess;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.LongAdder;

/**
 * 16 publisher threads publish inbound envelopes asynchronously (up to 256 unanswered each) over 1000 channels while
 * one worker consumes every inbound partition with a no-op handler: publishes acknowledged per second, and the
 * end-to-end rate (first publish to last message handled). The same with one server and one stream (the original
 * topology), one server and 6 partitions, and a 3+3 cluster with 6 partitions. Every server runs with
 * {@code appendonly yes, appendfsync everysec}, and all of them share this machine's cores with the benchmark: the
 * cluster figure shows what the cluster path costs here, not what separate machines carry (docs/cluster.md).
 */
final class ClusterRows {
    private static final int PUBLISHERS = 16;
    private static final int WINDOW = 256;
    private static final int CHANNELS = 1000;

    private ClusterRows() {
    }

    /** {publish, end to end} msg/s for the three setups, in that order: single 1 stream, single 6 partitions, cluster. */
    static double[][] measure(int messages) throws Exception {
        double[][] out = new double[3][];
        try (RedisServerProcess single = RedisServerProcess.builder().arg("--appendonly", "yes", "--appendfsync", "everysec").start()) {
            RedisUrl url = RedisUrl.parse(single.url());
            run(url, 1, Math.min(messages, 20_000)); // warm-up
            out[0] = run(url, 1, messages);
            out[1] = run(url, 6, messages);
        }
        try (RedisClusterProcess cluster = RedisClusterProcess.builder().start()) {
            RedisUrl url = RedisUrl.parse(cluster.url());
            run(url, 6, Math.min(messages, 20_000));
            out[2] = run(url, 6, messages);
        }
        return out;
    }

    private static double[] run(RedisUrl url, int partitions, int messages) throws Exception {
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
            if (!complete || errors.get() > 0) {
                throw new IllegalStateException("inbound run incomplete: " + handled.sum() + " of " + messages + " handled, "
                        + errors.get() + " publish errors");
            }
            return new double[] {messages / (publishNanos / 1e9), messages / (endToEndNanos / 1e9)};
        }
    }
}
