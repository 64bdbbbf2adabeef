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
    /** Publishes in flight per publishing thread; -Dbench.inboundWindow=N to see how the closed loop shapes the figures. */
    private static final int WINDOW = Integer.getInteger("bench.inboundWindow", 256);
    private static final int CHANNELS = 1000;
    /** Uncounted runs of each single-server setup before the rounds (ProfileMain's rows show the JIT settles after 3 or 4). */
    private static final int WARM_UP_RUNS = 3;

    private ClusterRows() {
    }

    /**
     * {publish, end to end} msg/s for the three setups, in that order: single 1 stream, single 6 partitions, cluster.
     * The two single-server setups run alternately ({@code rounds} rounds, 1 stream then 6 partitions) on one server,
     * each run on it emptied and its AOF rewritten ({@link FreshServer#freshStart}); the cluster once after them.
     */
    static Sample[][] measure(int messages, int rounds, java.util.function.Consumer<String> progress) throws Exception {
        double[][][] single = new double[2][2][rounds];
        try (FreshServer server = new FreshServer()) {
            // Warm-up, not counted: each setup's code compiled before the rounds (20 000 each left the first rounds
            // measuring compilation: the setup compiled later lost), alternated as the rounds are.
            for (int warm = 0; warm < WARM_UP_RUNS; warm++) {
                server.freshStart();
                run(server.url, 1, Math.min(messages, 100_000));
                server.freshStart();
                run(server.url, 6, Math.min(messages, 100_000));
            }
            for (int round = 0; round < rounds; round++) {
                for (int setup = 0; setup < 2; setup++) {
                    server.freshStart();
                    double[] r = run(server.url, setup == 0 ? 1 : 6, messages);
                    single[setup][0][round] = r[0];
                    single[setup][1][round] = r[1];
                }
                progress.accept(String.format(java.util.Locale.ROOT, "    inbound, round %d/%d: 1 stream %.0f / %.0f, 6 partitions %.0f / %.0f msg/s "
                        + "(publish / end to end)", round + 1, rounds, single[0][0][round], single[0][1][round], single[1][0][round],
                        single[1][1][round]));
            }
        }
        double[] cluster;
        try (RedisClusterProcess c = RedisClusterProcess.builder().start()) {
            RedisUrl url = RedisUrl.parse(c.url());
            run(url, 6, Math.min(messages, 20_000));
            cluster = run(url, 6, messages);
        }
        return new Sample[][] {{Sample.of(single[0][0]), Sample.of(single[0][1])}, {Sample.of(single[1][0]), Sample.of(single[1][1])},
                {Sample.of(cluster[0]), Sample.of(cluster[1])}};
    }

    /**
     * An appendonly server for the inbound rows ({@link #appendOnlyServer}) that each run starts fresh on
     * ({@link #freshStart}), through a connection of its own.
     */
    static final class FreshServer implements AutoCloseable {
        final RedisServerProcess server;
        final RedisUrl url;
        private final io.lettuce.core.RedisClient admin;
        private final io.lettuce.core.api.sync.RedisCommands<String, String> conn;

        FreshServer() {
            server = appendOnlyServer();
            try {
                url = RedisUrl.parse(server.url());
                admin = io.lettuce.core.RedisClient.create(server.url());
                conn = admin.connect().sync();
            } catch (RuntimeException e) {
                server.stop();
                throw e;
            }
        }

        /**
         * Empties the server and rewrites its append-only file, waiting for the rewrite to end, so that every run starts
         * from the same server: without it each run's 300 000 entries stayed, and the AOF, doubling past its last rewrite
         * every second run, was rewritten (a fork writing the whole, growing dataset) during the 6 partitions' run of each
         * round, never the single stream's (INFO persistence after each run; bench/profile-notes.md). A run still has the
         * rewrites its own writes bring, as a server in use has.
         */
        void freshStart() throws InterruptedException {
            conn.flushall();
            // A rewrite the last run's writes started forked before the flush: waited for, then one of the empty server.
            rewriteEnded();
            conn.bgrewriteaof();
            rewriteEnded(); // BGREWRITEAOF has forked (in progress) or scheduled it by the time it answers
        }

        private void rewriteEnded() throws InterruptedException {
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
            while (true) {
                String info = conn.info("persistence");
                if (info.contains("aof_rewrite_in_progress:0") && info.contains("aof_rewrite_scheduled:0")) return;
                if (System.nanoTime() > deadline) throw new IllegalStateException("the AOF rewrite did not end within 60 s: " + info);
                Thread.sleep(10);
            }
        }

        @Override
        public void close() {
            try {
                admin.shutdown();
            } finally {
                server.stop();
            }
        }
    }

    /** One server (appendonly, fsync every second) with {@code partitions} inbound partitions: {publish, end to end}, once. */
    static Sample[] single(int partitions, int messages) throws Exception {
        try (RedisServerProcess server = appendOnlyServer()) {
            RedisUrl url = RedisUrl.parse(server.url());
            run(url, partitions, warmUp(messages));
            double[] r = run(url, partitions, messages);
            return new Sample[] {Sample.of(r[0]), Sample.of(r[1])};
        }
    }

    /** The messages of {@link #single}'s uncounted warm-up run before its run of {@code messages}. */
    static int warmUp(int messages) {
        return Math.min(messages, 20_000);
    }

    /** A server for the inbound rows: appendonly, fsync every second. */
    static RedisServerProcess appendOnlyServer() {
        return RedisServerProcess.builder().arg("--appendonly", "yes", "--appendfsync", "everysec").start();
    }

    static double[] run(RedisUrl url, int partitions, int messages) throws Exception {
        return run(url, partitions, messages, true);
    }

    /** The worker's config for a run of {@code messages} over {@code partitions}, in a namespace of its own; the publisher's is its gateway twin. */
    private static BusConfig workerConfig(int partitions, int messages) {
        Topology t = Topology.builder().namespace("bench-" + System.nanoTime()).inboundPartitions(partitions).build();
        return BusConfig.builder().topology(t).role(NodeRole.WORKER).nodeId("bench-worker").streamMaxlen(Math.max(1000, messages * 2L)).build();
    }

    /** The rows' worker: every inbound partition, a no-op handler counted in {@code handled}, {@code allHandled} at {@code messages}. */
    private static Subscription subscribeCounting(EventBus worker, int messages, LongAdder handled, CountDownLatch allHandled) {
        return worker.subscribeInbound(b -> b.concurrency(4).batchSize(256), d -> {
            handled.increment();
            if (handled.sum() == messages) allHandled.countDown();
        });
    }

    /**
     * Publishes message {@code from}, {@code from + step}, ... below {@code messages} asynchronously, at most
     * {@code window} unanswered, and returns once all are answered; failures counted in {@code errors}.
     */
    private static void publish(EventBus publisher, int from, int step, int messages, int window, AtomicLong errors) {
        Semaphore unanswered = new Semaphore(window);
        for (int i = from; i < messages; i += step) {
            unanswered.acquireUninterruptibly();
            publisher.publishInboundAsync(Envelope.of("platform", "webchat", "channel_id", "ch-" + (i % CHANNELS),
                    "content", "message number " + i + " with some text to make it a typical chat line", "seq", i))
                    .whenComplete((id, e) -> {
                        if (e != null) errors.incrementAndGet();
                        unanswered.release();
                    });
        }
        unanswered.acquireUninterruptibly(window);
    }

    /**
     * {@code messages} published with no worker, then one worker (as {@link #run}'s) consumes them: {msg/s, this JVM's
     * CPU µs per message} while it consumes (ProfileMain's {@code inbound-worker-alone}).
     */
    static double[] consumeBacklog(RedisUrl url, int partitions, int messages) throws Exception {
        BusConfig workerConfig = workerConfig(partitions, messages);
        try (EventBus worker = EventBus.connect(url, workerConfig);
             EventBus publisher = EventBus.connect(url, workerConfig.toBuilder().role(NodeRole.GATEWAY).nodeId("bench-pub").build())) {
            worker.ensureStreams();
            AtomicLong errors = new AtomicLong();
            publish(publisher, 0, 1, messages, PUBLISHERS * WINDOW, errors);
            if (errors.get() > 0) throw new IllegalStateException(errors.get() + " publish errors");
            var cpu = (com.sun.management.OperatingSystemMXBean) java.lang.management.ManagementFactory.getOperatingSystemMXBean();
            LongAdder handled = new LongAdder();
            CountDownLatch allHandled = new CountDownLatch(1);
            long cpu0 = cpu.getProcessCpuTime();
            long t0 = System.nanoTime();
            Subscription sub = subscribeCounting(worker, messages, handled, allHandled);
            if (!allHandled.await(120, TimeUnit.SECONDS)) throw new IllegalStateException(handled.sum() + " of " + messages + " handled");
            long nanos = System.nanoTime() - t0;
            long cpuNanos = cpu.getProcessCpuTime() - cpu0;
            sub.close();
            return new double[] {messages / (nanos / 1e9), cpuNanos / 1e3 / messages};
        }
    }

    /**
     * {@code consume} false: the publishers alone, no worker (the end-to-end figure is then NaN), to tell what
     * partitioning costs publishing from what the worker's share of the cores takes from it.
     */
    static double[] run(RedisUrl url, int partitions, int messages, boolean consume) throws Exception {
        BusConfig workerConfig = workerConfig(partitions, messages);
        LongAdder handled = new LongAdder();
        CountDownLatch allHandled = new CountDownLatch(1);
        try (EventBus worker = EventBus.connect(url, workerConfig);
             EventBus publisher = EventBus.connect(url, workerConfig.toBuilder().role(NodeRole.GATEWAY).nodeId("bench-pub").build())) {
            worker.ensureStreams();
            Subscription sub = consume ? subscribeCounting(worker, messages, handled, allHandled) : null;
            AtomicLong errors = new AtomicLong();
            CountDownLatch published = new CountDownLatch(PUBLISHERS);
            long t0 = System.nanoTime();
            for (int p = 0; p < PUBLISHERS; p++) {
                int me = p;
                new Thread(() -> {
                    publish(publisher, me, PUBLISHERS, messages, WINDOW, errors);
                    published.countDown();
                }, "bench-publisher-" + p).start();
            }
            published.await();
            long publishNanos = System.nanoTime() - t0;
            if (sub == null) {
                if (errors.get() > 0) throw new IllegalStateException("inbound run: " + errors.get() + " publish errors");
                return new double[] {messages / (publishNanos / 1e9), Double.NaN};
            }
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
