// The bus's own rows: publishing (blocking, concurrent, asynchronous), consuming a backlog, and how cost grows.
package io.stargazer.bench;

import io.stargazer.bus.ConsumerConfig;
import io.stargazer.bus.EventBus;
import io.stargazer.bus.Subscription;
import java.time.Duration;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;

/** Measures the library through its public API only, as an application would use it. */
final class StargazerRows {
    /** Consumer settings for the backlog rows: large reads, enough in flight to keep the handler pool busy. */
    static final int CONSUME_BATCH = 512;
    static final int CONSUME_IN_FLIGHT = 4096;
    static final int CONSUME_CONCURRENCY = 4;

    private StargazerRows() {
    }

    static double publishBlocking(Ctx ctx, int threads) throws Exception {
        String stream = ctx.key("pub" + threads);
        try (EventBus bus = ctx.bus("pub")) {
            return Throughput.blocking(threads, ctx.warm, ctx.measure, i -> bus.publish(stream, Envelopes.envelope(i)));
        } finally {
            ctx.reset(stream);
        }
    }

    static double publishAsync(Ctx ctx, int window) throws Exception {
        String stream = ctx.key("pubasync");
        try (EventBus bus = ctx.bus("pubasync")) {
            return Throughput.async(window, ctx.warm, ctx.measure, i -> bus.publishAsync(stream, Envelopes.envelope(i)));
        } finally {
            ctx.reset(stream);
        }
    }

    /** Asynchronous publishing with a fresh dedupe key on every publish (the idempotent path: one script per batch). */
    static double publishAsyncDedupe(Ctx ctx, int window) throws Exception {
        String stream = ctx.key("pubdedupe");
        String run = Long.toHexString(System.nanoTime());
        try (EventBus bus = ctx.bus("pubdedupe")) {
            return Throughput.async(window, ctx.warm, ctx.measure,
                    i -> bus.publishAsync(stream, Envelopes.envelope(i), io.stargazer.bus.PublishOptions.dedupeKey("bench:" + run + ":" + i)));
        }
    }

    /** The cap of the trim-policy rows: small enough that trimming runs many times while they are measured. */
    static final long TRIM_ROW_MAXLEN = 100_000;

    /**
     * Asynchronous publishing to a stream whose group a subscription (no-op handler) keeps up with, under one trim
     * policy and a cap of {@value #TRIM_ROW_MAXLEN}: SAFE trims with its background MINID check, EVICT with MAXLEN on
     * every XADD. Both rows carry the same consumer, so they compare the trimming alone.
     */
    static double publishAsyncTrimmed(Ctx ctx, io.stargazer.bus.TrimPolicy policy, int window) throws Exception {
        try (EventBus bus = ctx.bus("trim-" + policy.name().toLowerCase(),
                io.stargazer.bus.BusConfig.builder().trimPolicy(policy), TRIM_ROW_MAXLEN)) {
            String stream = bus.topology().inboundStream();
            String group = bus.topology().workerGroup();
            bus.ensureGroup(stream, group);
            ConsumerConfig cfg = bus.consumer(stream, group).consumerName("trim-consumer").batchSize(CONSUME_BATCH)
                    .maxInFlight(CONSUME_IN_FLIGHT).concurrency(CONSUME_CONCURRENCY).build();
            try (Subscription sub = bus.subscribe(cfg, d -> { })) {
                return Throughput.async(window, ctx.warm, ctx.measure, i -> bus.publishAsync(stream, Envelopes.envelope(i)));
            }
        } finally {
            ctx.reset();
        }
    }

    /** Publishes {@code n} asynchronously (window {@code window}) and returns entries per second until the last is stored. */
    static double publishCount(EventBus bus, String stream, long n, int window) throws Exception {
        Semaphore permits = new Semaphore(window);
        AtomicReference<Throwable> failure = new AtomicReference<>();
        long t0 = System.nanoTime();
        for (int i = 0; i < n && failure.get() == null; i++) {
            permits.acquire();
            bus.publishAsync(stream, Envelopes.envelope(i)).whenComplete((id, e) -> {
                if (e != null) failure.compareAndSet(null, e);
                permits.release();
            });
        }
        if (!permits.tryAcquire(window, 120, TimeUnit.SECONDS)) throw new IllegalStateException("publishes did not finish");
        long t1 = System.nanoTime();
        if (failure.get() != null) throw new IllegalStateException("publish failed", failure.get());
        return n / ((t1 - t0) / 1e9);
    }

    /**
     * Consumes the {@code n} entries waiting for {@code group} with one subscription (no-op handler, automatic acks)
     * and returns entries per second from subscribing until every one is delivered and the group has none pending
     * of this consumer. {@code stalePending} entries of another consumer may sit in the group; they are left alone.
     */
    static double consume(Ctx ctx, EventBus bus, String stream, String group, long n, long stalePending) throws Exception {
        ConsumerConfig cfg = bus.consumer(stream, group).consumerName("bench-consumer").batchSize(CONSUME_BATCH)
                .maxInFlight(CONSUME_IN_FLIGHT).concurrency(CONSUME_CONCURRENCY).claimIdle(Duration.ofHours(1)).build();
        long t0 = System.nanoTime();
        try (Subscription sub = bus.subscribe(cfg, d -> { })) {
            long deadline = System.nanoTime() + TimeUnit.MINUTES.toNanos(5);
            while (sub.stats().acknowledged() < n) {
                if (System.nanoTime() > deadline) throw new IllegalStateException("consumer stalled at " + sub.stats());
                if (sub.state() == Subscription.State.FAILED) throw new IllegalStateException("consumer failed", sub.failure());
                Thread.sleep(2);
            }
            while (ctx.pending(stream, group) > stalePending) {
                if (System.nanoTime() > deadline) throw new IllegalStateException("acks did not land: " + sub.stats());
                Thread.sleep(1);
            }
            long t1 = System.nanoTime();
            if (sub.stats().delivered() < n) throw new IllegalStateException("delivered fewer than " + n + ": " + sub.stats());
            return n / ((t1 - t0) / 1e9);
        }
    }

    /** The backlog row: {@code n} entries waiting in the stream, then one consumer process reads them all. */
    static double consumeBacklog(Ctx ctx, long n) throws Exception {
        String stream = ctx.key("backlog");
        String group = "bench-group";
        try (EventBus bus = ctx.bus("consume")) {
            ctx.createGroup(stream, group);
            ctx.prefill(stream, n);
            return consume(ctx, bus, stream, group, n, 0);
        } finally {
            ctx.reset(stream);
        }
    }

    /** Publish then consume {@code n} new entries with the stream already holding {@code prefill} (and some pending). */
    static double[] growth(Ctx ctx, long prefill, long pendingInGroup, long n) throws Exception {
        String stream = ctx.key("growth");
        String group = "bench-group";
        try (EventBus bus = ctx.bus("growth")) {
            if (pendingInGroup > 0) {
                ctx.createGroup(stream, group);
                ctx.prefill(stream, pendingInGroup);
                long made = ctx.makePending(stream, group, "stale-consumer", pendingInGroup);
                if (made != pendingInGroup) throw new IllegalStateException("made " + made + " pending, wanted " + pendingInGroup);
            }
            if (prefill > 0) ctx.prefill(stream, prefill);
            if (pendingInGroup == 0) ctx.createGroup(stream, group);
            double publish = publishCount(bus, stream, n, 10_000);
            double consume = consume(ctx, bus, stream, group, n, pendingInGroup);
            return new double[] {publish, consume};
        } finally {
            ctx.reset(stream);
        }
    }
}
