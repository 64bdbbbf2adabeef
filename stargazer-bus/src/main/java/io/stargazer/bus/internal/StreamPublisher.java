package io.stargazer.bus.internal;

import io.lettuce.core.RedisFuture;
import io.lettuce.core.ScriptOutputType;
import io.lettuce.core.cluster.api.async.RedisClusterAsyncCommands;
import io.lettuce.core.output.ValueOutput;
import io.lettuce.core.protocol.CommandArgs;
import io.lettuce.core.protocol.CommandType;
import io.netty.util.concurrent.EventExecutor;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * Publishes to one stream, coalescing concurrent publishes into server-side batches.
 *
 * <p>The cost of a publish is per command, on the client: so whatever has queued up while earlier batches are
 * on the wire goes out as one command. A lone publish is a plain {@code XADD}; two or more go as one {@code EVAL}
 * of a script that runs the same {@code XADD}s on the server, in order, and returns their ids. At most
 * {@link #MAX_IN_FLIGHT} batches are outstanding per stream; batches are formed from one FIFO queue and written to
 * one connection by one drain loop at a time, so entries reach the stream in submission order.
 *
 * <p>Every batch is formed and handed to Lettuce on one thread, an event loop of the connection ({@link #drain()}):
 * Netty writes at once on its event loop, while a write from any other thread waits in the loop's task queue, so
 * batches sent from both kinds of thread could overtake each other and break the order of one channel.
 *
 * <p>On a Redis Cluster one batch at a time: Lettuce's cluster connection does not keep two commands to one node in
 * order while that node's connection is being opened (queued commands then run last-in first-out, redis/lettuce
 * #1957), nor across a MOVED redirect; with one batch outstanding there is nothing to reorder.
 *
 * <p>Every future completes: with its entry's id, or exceptionally with the batch's error. A script that fails
 * part way (only WRONGTYPE or out-of-memory can do that) may have stored the first entries of its batch; their
 * publishers see the error, and a retry makes a duplicate, never a loss.
 */
final class StreamPublisher {
    /** Two batches in flight keep the connection busy while one is being answered, without shrinking batches. */
    static final int MAX_IN_FLIGHT = 2;
    /** Bytes one batch may carry, so one command never grows unbounded. */
    static final int MAX_BATCH_BYTES = 4 << 20;

    static final String BATCH_SCRIPT = """
            local n = tonumber(ARGV[1])
            local args = {'XADD', KEYS[1]}
            for i = 1, n do args[#args + 1] = ARGV[1 + i] end
            local base = #args
            args[base + 1] = '*'
            args[base + 2] = 'payload'
            args[base + 4] = 'trace_id'
            local ids = {}
            for i = n + 2, #ARGV, 2 do
              args[base + 3] = ARGV[i]
              args[base + 5] = ARGV[i + 1]
              ids[#ids + 1] = redis.call(unpack(args))
            end
            return ids
            """;
    private static final byte[] PAYLOAD = "payload".getBytes(StandardCharsets.US_ASCII);
    private static final byte[] TRACE_ID = "trace_id".getBytes(StandardCharsets.US_ASCII);

    private final String stream;
    private final RedisClusterAsyncCommands<String, byte[]> redis;
    private final int maxBatch;
    private final int maxInFlight;
    /** The one thread every batch of this publisher is formed and sent on (see {@link #drain()}). */
    private final EventExecutor loop;

    private final ConcurrentLinkedQueue<Pending> queue = new ConcurrentLinkedQueue<>();
    private final AtomicInteger wip = new AtomicInteger();
    private final AtomicInteger inFlight = new AtomicInteger();

    /** {@code trimArgs}: XADD options between the key and the id, e.g. {@code MAXLEN ~ 100000}; a batch uses its first's. */
    record Pending(byte[] payload, byte[] traceId, List<String> trimArgs, CompletableFuture<String> future) {
    }

    /** {@code maxInFlight} batches outstanding at most: 1 on a cluster (see the class comment). */
    StreamPublisher(String stream, RedisClusterAsyncCommands<String, byte[]> redis, int maxBatch, int maxInFlight,
            EventExecutor loop) {
        this.stream = stream;
        this.redis = redis;
        this.maxBatch = maxBatch;
        this.maxInFlight = maxInFlight;
        this.loop = loop;
    }

    String stream() {
        return stream;
    }

    /** When this publisher was last handed a publish (System.nanoTime); read by the idle sweep, exactness not needed. */
    private volatile long lastUsed = System.nanoTime();

    /**
     * Nothing queued, nothing in flight, no drain running, and no publish for {@code idleNanos}: safe to forget.
     * A publish racing with the sweep still goes out: the forgotten object keeps working, and since every publisher
     * drains on the same event loop, a thread's next publish (through a new publisher) is written after it.
     */
    boolean idleFor(long idleNanos) {
        return queue.isEmpty() && inFlight.get() == 0 && wip.get() == 0 && System.nanoTime() - lastUsed >= idleNanos;
    }

    CompletableFuture<String> submit(byte[] payload, byte[] traceId, List<String> trimArgs) {
        lastUsed = System.nanoTime();
        CompletableFuture<String> f = new CompletableFuture<>();
        queue.offer(new Pending(payload, traceId, trimArgs, f));
        drain();
        return f;
    }

    /**
     * Sends what is queued. Every batch is formed and handed to Lettuce on one thread, the connection's Netty event
     * loop: a write made on the event loop goes out at once, while a write from any other thread waits in the loop's
     * task queue, so batches sent from two kinds of thread could overtake each other and break submission order.
     * On the loop, batches are written in the order they are formed. A caller thread hands the drain over (one task per
     * activation, which costs what Lettuce's own hand-over of a write would); a completion, already on the loop,
     * sends the next batch at once.
     */
    private void drain() {
        if (wip.getAndIncrement() != 0) {
            return; // a drain is scheduled or running: it will see this work
        }
        if (loop.inEventLoop()) {
            drainLoop();
        } else {
            loop.execute(this::drainLoop);
        }
    }

    /** The queue-drain loop; runs only on {@link #loop}. */
    private void drainLoop() {
        int missed = 1;
        for (;;) {
            while (inFlight.get() < maxInFlight) {
                List<Pending> batch = take();
                if (batch.isEmpty()) {
                    break;
                }
                inFlight.incrementAndGet();
                send(batch);
            }
            missed = wip.addAndGet(-missed);
            if (missed == 0) {
                return;
            }
        }
    }

    private List<Pending> take() {
        Pending first = queue.poll();
        if (first == null) {
            return List.of();
        }
        List<Pending> batch = new ArrayList<>(Math.min(maxBatch, 64));
        batch.add(first);
        long bytes = first.payload.length;
        Pending next;
        while (batch.size() < maxBatch && (next = queue.peek()) != null && bytes + next.payload.length <= MAX_BATCH_BYTES
                && next.trimArgs == first.trimArgs) {
            batch.add(queue.poll());
            bytes += next.payload.length;
        }
        return batch;
    }

    private void send(List<Pending> batch) {
        List<String> opts = batch.get(0).trimArgs;
        RedisFuture<?> reply;
        try {
            reply = batch.size() == 1 ? xadd(batch.get(0), opts) : eval(batch, opts);
        } catch (RuntimeException e) {
            finish(batch, null, e);
            return;
        }
        reply.whenComplete((result, error) -> finish(batch, result, error));
    }

    private RedisFuture<byte[]> xadd(Pending p, List<String> opts) {
        CommandArgs<String, byte[]> args = new CommandArgs<>(Redis.CODEC).addKey(stream);
        for (String o : opts) {
            args.add(o);
        }
        args.add("*").add(PAYLOAD).addValue(p.payload).add(TRACE_ID).addValue(p.traceId);
        return redis.dispatch(CommandType.XADD, new ValueOutput<>(Redis.CODEC), args);
    }

    private RedisFuture<List<Object>> eval(List<Pending> batch, List<String> opts) {
        byte[][] argv = new byte[1 + opts.size() + 2 * batch.size()][];
        int i = 0;
        argv[i++] = Integer.toString(opts.size()).getBytes(StandardCharsets.US_ASCII);
        for (String o : opts) {
            argv[i++] = o.getBytes(StandardCharsets.US_ASCII);
        }
        for (Pending p : batch) {
            argv[i++] = p.payload;
            argv[i++] = p.traceId;
        }
        return redis.eval(BATCH_SCRIPT, ScriptOutputType.MULTI, new String[] {stream}, argv);
    }

    private void finish(List<Pending> batch, Object result, Throwable error) {
        // Free the slot and send what queued meanwhile before running callers' completion stages.
        inFlight.decrementAndGet();
        if (!queue.isEmpty()) {
            drain(); // a publish submitted after this check drains by itself, and finds the slot free
        }
        if (error != null) {
            RuntimeException e = Redis.translate(error, "publishing to stream '" + stream + "'");
            for (Pending p : batch) {
                p.future.completeExceptionally(e);
            }
            return;
        }
        if (result instanceof byte[] id) {
            batch.get(0).future.complete(new String(id, StandardCharsets.US_ASCII));
            return;
        }
        List<?> ids = (List<?>) result;
        for (int i = 0; i < batch.size(); i++) {
            Object id = i < ids.size() ? ids.get(i) : null;
            if (id instanceof byte[] b) {
                batch.get(i).future.complete(new String(b, StandardCharsets.US_ASCII));
            } else {
                batch.get(i).future.completeExceptionally(new IllegalStateException(
                        "publish batch to '" + stream + "' returned no id for entry " + i + " of " + batch.size()));
            }
        }
    }
}
