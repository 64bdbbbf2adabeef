package io.stargazer.bus.spring;

import io.stargazer.bus.AsyncMessageHandler;
import io.stargazer.bus.ConsumerConfig;
import io.stargazer.bus.Delivery;
import io.stargazer.bus.Envelope;
import io.stargazer.bus.EventBus;
import io.stargazer.bus.MessageHandler;
import io.stargazer.bus.NotRetryableException;
import io.stargazer.bus.Subscription;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.lang.reflect.ParameterizedType;
import java.lang.reflect.Type;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executors;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;
import java.util.function.BiFunction;
import java.util.function.Supplier;
import java.util.function.UnaryOperator;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.springframework.aop.support.AopUtils;
import org.springframework.beans.factory.config.BeanPostProcessor;
import org.springframework.boot.convert.DurationStyle;
import org.springframework.context.SmartLifecycle;
import org.springframework.core.MethodIntrospector;
import org.springframework.core.annotation.AnnotatedElementUtils;
import org.springframework.core.env.Environment;

/**
 * Finds {@link StargazerListener} methods on beans and runs one subscription for each while the context runs
 * (SmartLifecycle): started after every bean is ready, stopped before the bus closes. Stopping is graceful: every
 * listener stops reading at once, then each waits for its in-flight handlers (a batch listener: its running batch
 * call) up to its close timeout, and leaves what did not finish pending for another consumer (Subscription.close).
 * A listener can also be started and stopped on its own by its {@link StargazerListener#id() id}.
 *
 * <p>Threads: each subscription's own reader and handler threads run the methods; a full batch runs on the handler
 * thread that filled it, and each batch listener has one thread more that hands over a partial batch when its wait is
 * over and runs it.
 */
public class StargazerListeners implements BeanPostProcessor, SmartLifecycle {
    /**
     * Spring Boot's web server start and stop phase: started after the beans the handlers use are ready, stopped after
     * the web server's graceful shutdown (a higher phase, stopped first) and beside the web server's stop, in no set order
     * with it.
     */
    public static final int PHASE = Integer.MAX_VALUE - 2048;

    private static final Logger log = LoggerFactory.getLogger(StargazerListeners.class);
    /** How long stopping waits for a batch call it interrupted after the close timeout. */
    private static final Duration INTERRUPT_GRACE = Duration.ofSeconds(2);

    private final Supplier<EventBus> bus;
    private final Environment env;
    private final UnaryOperator<ConsumerConfig.Builder> defaults;
    private final Supplier<BiFunction<Map<String, Object>, Type, Object>> payloadMapper;
    private final Map<String, Endpoint> endpoints = new LinkedHashMap<>();
    private final Map<String, Running> running = new ConcurrentHashMap<>();
    private volatile boolean started;

    /**
     * {@code bus}: looked up at start (a post-processor is made before the beans it needs); {@code defaults}: the
     * consumer properties; {@code payloadMapper}: envelope members to a parameter type (null when the application has
     * no Jackson: then a listener taking anything but an Envelope or a Delivery fails the start).
     */
    public StargazerListeners(Supplier<EventBus> bus, Environment env, UnaryOperator<ConsumerConfig.Builder> defaults,
            BiFunction<Map<String, Object>, Type, Object> payloadMapper) {
        this(env, bus, defaults, () -> payloadMapper);
    }

    /** As the other constructor, with the payload mapper looked up at start (null: none). */
    protected StargazerListeners(Environment env, Supplier<EventBus> bus, UnaryOperator<ConsumerConfig.Builder> defaults,
            Supplier<BiFunction<Map<String, Object>, Type, Object>> payloadMapper) {
        this.bus = bus;
        this.env = env;
        this.defaults = defaults;
        this.payloadMapper = payloadMapper;
    }

    /**
     * One annotated method of one bean, its attributes resolved and checked when the bean was made. {@code concurrency}
     * and {@code maxDeliveries} are null when the annotation leaves them to the consumer properties; {@code param} is
     * the List's element type for a batch listener.
     */
    record Endpoint(Object bean, Method method, String name, String id, boolean inbound, String stream, String group,
            Integer concurrency, Integer maxDeliveries, boolean batch, int batchSize, Duration batchWait, Type param,
            boolean autoStartup, boolean async, boolean manualAck) {
        boolean needsMapper() {
            return param != Delivery.class && param != Envelope.class;
        }
    }

    /**
     * Runs each call of a batch listener's method, for example inside a Micrometer Observation: the bus measures and
     * traces its handler, which for a batch listener only hands an entry over, so the batch call is measured here.
     */
    @FunctionalInterface
    public interface BatchObserver {
        /** Runs {@code call} (the method, given {@code size} entries) and throws what it throws. */
        void observe(String listenerId, int size, BatchCall call) throws Throwable;
    }

    /** One call of a batch listener's method. */
    @FunctionalInterface
    public interface BatchCall {
        void run() throws Throwable;
    }

    /** What wraps each batch call; none by default. Looked up when a listener starts. */
    protected BatchObserver batchObserver() {
        return null;
    }

    /** A started listener: its subscription and, for a batch listener, what gathers its batches. */
    private record Running(Endpoint endpoint, Subscription subscription, Batcher batcher, Duration closeTimeout) {
    }

    @Override
    public Object postProcessAfterInitialization(Object bean, String beanName) {
        Class<?> type = AopUtils.getTargetClass(bean);
        Map<Method, StargazerListener> found = MethodIntrospector.selectMethods(type,
                (MethodIntrospector.MetadataLookup<StargazerListener>) m -> AnnotatedElementUtils.findMergedAnnotation(m, StargazerListener.class));
        for (Map.Entry<Method, StargazerListener> e : found.entrySet()) {
            Method m = e.getKey();
            m.setAccessible(true);
            Method invocable = AopUtils.selectInvocableMethod(m, bean.getClass());
            Endpoint endpoint = endpoint(bean, invocable, beanName + "." + m.getName(), e.getValue());
            synchronized (this) {
                if (endpoints.containsKey(endpoint.id)) {
                    throw new IllegalStateException("@StargazerListener method " + endpoint.name + ": id '" + endpoint.id
                            + "' is already taken by " + endpoints.get(endpoint.id).name);
                }
                endpoints.put(endpoint.id, endpoint);
                if (started && endpoint.autoStartup) {
                    checkMapper(endpoint);
                    start(endpoint);
                }
            }
        }
        return bean;
    }

    /** The annotation's attributes, resolved and checked now, so that a bad one fails the start-up naming the method. */
    private Endpoint endpoint(Object bean, Method m, String name, StargazerListener spec) {
        String what = "@StargazerListener method " + name;
        if (m.getParameterCount() != 1) {
            throw new IllegalStateException(what + " must take exactly one parameter (Envelope, Delivery, a payload type, or a List of one)");
        }
        String stream = resolve(name, "stream", spec.stream());
        String group = resolve(name, "group", spec.group());
        if (!spec.inbound() && (stream.isEmpty() || group.isEmpty())) {
            throw new IllegalStateException(what + " needs stream and group (or inbound = true)");
        }
        Type param = m.getGenericParameterTypes()[0];
        if (spec.batch()) {
            if (!(param instanceof ParameterizedType pt) || pt.getRawType() != List.class) {
                throw new IllegalStateException("batch " + what + " must take a List");
            }
            param = pt.getActualTypeArguments()[0];
        }
        Integer concurrency = number(name, "concurrency", spec.concurrency(), ConsumerConfig.Builder::concurrency);
        Integer maxDeliveries = number(name, "maxDeliveries", spec.maxDeliveries(), ConsumerConfig.Builder::maxDeliveries);
        int batchSize = 0;
        Duration batchWait = null;
        if (spec.batch()) {
            batchSize = number(name, "batchSize", spec.batchSize(), ConsumerConfig.Builder::batchSize);
            String wait = resolve(name, "batchWait", spec.batchWait());
            try {
                batchWait = DurationStyle.detectAndParse(wait);
            } catch (RuntimeException e) {
                throw new IllegalStateException(what + ": batchWait = '" + spec.batchWait() + "' is '" + wait
                        + "', not a duration (such as 200ms or 1s)", e);
            }
            if (batchWait.isNegative() || batchWait.isZero()) {
                throw new IllegalStateException(what + ": batchWait = '" + spec.batchWait() + "' is '" + wait + "', which must be positive");
            }
        }
        // What the method returns decides when its entry is settled; anything else would be dropped unseen.
        Class<?> returns = m.getReturnType();
        boolean async = CompletionStage.class.isAssignableFrom(returns);
        if (returns != void.class && returns != Void.class && !(async && !spec.batch())) {
            throw new IllegalStateException(what + " returns " + m.getGenericReturnType().getTypeName() + "; a listener returns void"
                    + (spec.batch() ? "" : ", or a CompletionStage (CompletableFuture) that settles its entry when it completes"));
        }
        if (spec.manualAck() && (spec.batch() || param != Delivery.class)) {
            throw new IllegalStateException(what + ": manualAck = true needs a Delivery parameter to settle" + (spec.batch() ? ", not a batch" : ""));
        }
        if (spec.manualAck() && async) {
            throw new IllegalStateException(what + ": manualAck = true and a returned CompletionStage both settle the entry; choose one");
        }
        String id = resolve(name, "id", spec.id());
        return new Endpoint(bean, m, name, id.isEmpty() ? name : id, spec.inbound(), stream, group, concurrency, maxDeliveries,
                spec.batch(), batchSize, batchWait, param, spec.autoStartup(), async, spec.manualAck());
    }

    /** A whole-number attribute, null when empty; checked by the consumer setting it goes to. */
    private Integer number(String name, String attribute, String text, BiFunction<ConsumerConfig.Builder, Integer, ?> setting) {
        String value = resolve(name, attribute, text);
        if (value.isEmpty()) return null;
        int n;
        try {
            n = Integer.parseInt(value);
        } catch (NumberFormatException e) {
            throw new IllegalStateException("@StargazerListener method " + name + ": " + attribute + " = '" + text + "' is '"
                    + value + "', not a whole number", e);
        }
        try {
            setting.apply(ConsumerConfig.builder("check", "check"), n);
        } catch (RuntimeException e) {
            throw new IllegalStateException("@StargazerListener method " + name + ": " + attribute + " = '" + text + "' is '"
                    + value + "': " + e.getMessage(), e);
        }
        return n;
    }

    private String resolve(String name, String attribute, String text) {
        try {
            return env.resolveRequiredPlaceholders(text).trim();
        } catch (IllegalArgumentException e) {
            throw new IllegalStateException("@StargazerListener method " + name + ": " + attribute + " = '" + text + "': " + e.getMessage(), e);
        }
    }

    /** The subscriptions running now (for the health indicator). */
    public List<Subscription> subscriptions() {
        return running.values().stream().map(Running::subscription).toList();
    }

    /** The ids of every listener, running or not ({@link StargazerListener#id()}). */
    public synchronized List<String> listenerIds() {
        return List.copyOf(endpoints.keySet());
    }

    /** Whether the listener with this id runs now. */
    public boolean isRunning(String id) {
        endpoint(id);
        return running.containsKey(id);
    }

    /**
     * Starts the listener with this id ({@link StargazerListener#id()}), whether or not it has
     * {@link StargazerListener#autoStartup()}; nothing when it runs already.
     *
     * @throws IllegalArgumentException when no listener has this id
     */
    public synchronized void start(String id) {
        Endpoint e = endpoint(id);
        if (running.containsKey(id)) return;
        checkMapper(e);
        start(e);
    }

    /**
     * Stops the listener with this id as the context's stop does: it stops reading, waits for its in-flight handlers up
     * to its close timeout, and leaves what did not finish pending. Nothing when it does not run.
     *
     * @throws IllegalArgumentException when no listener has this id
     */
    public void stop(String id) {
        endpoint(id);
        Running r;
        synchronized (this) {
            r = running.remove(id);
        }
        if (r != null) close(r);
    }

    private synchronized Endpoint endpoint(String id) {
        Endpoint e = endpoints.get(id);
        if (e == null) {
            throw new IllegalArgumentException("No @StargazerListener with id '" + id + "'; the ids are " + endpoints.keySet());
        }
        return e;
    }

    @Override
    public synchronized void start() {
        if (started) return;
        // Every listener that cannot work fails the start before any of them reads an entry.
        for (Endpoint e : endpoints.values()) checkMapper(e);
        started = true;
        for (Endpoint e : endpoints.values()) {
            if (e.autoStartup && !running.containsKey(e.id)) start(e);
        }
    }

    /**
     * Whether another listener consumes {@code e}'s stream with {@code e}'s group: then each is a consumer of its own,
     * named after the consumer name and its id ({@code node-1:orders.onOrder}), which stays the same across restarts
     * so a restarted listener finds its own pending entries.
     */
    private synchronized boolean sharesItsGroup(Endpoint e) {
        for (Endpoint other : endpoints.values()) {
            if (other != e && other.inbound == e.inbound && (e.inbound || other.stream.equals(e.stream) && other.group.equals(e.group))) {
                return true;
            }
        }
        return false;
    }

    /** A payload-type listener without a mapper would fail on every entry and dead-letter them all: refuse it now. */
    private void checkMapper(Endpoint e) {
        if (e.needsMapper() && payloadMapper.get() == null) {
            throw new IllegalStateException("@StargazerListener method " + e.name + " takes " + e.param.getTypeName()
                    + ": mapping payloads needs Jackson (spring-boot-jackson) and its JsonMapper bean; or take an Envelope or a Delivery");
        }
    }

    private void start(Endpoint e) {
        boolean shared = sharesItsGroup(e);
        UnaryOperator<ConsumerConfig.Builder> customize = b -> {
            defaults.apply(b);
            // A consumer's pending entries are its own: two listeners under one name would run each other's again.
            if (shared) b.consumerName(b.build().consumerName() + ":" + e.id);
            if (e.concurrency != null) b.concurrency(e.concurrency);
            if (e.maxDeliveries != null) b.maxDeliveries(e.maxDeliveries);
            if (e.manualAck) b.manualAck(true);
            if (e.batch) {
                b.manualAck(true).maxInFlight(Math.max(e.batchSize * 2, b.build().maxInFlight()));
            }
            return b;
        };
        Duration closeTimeout = customize.apply(ConsumerConfig.builder("close-timeout", "close-timeout")).build().closeTimeout();
        BiFunction<Map<String, Object>, Type, Object> mapper = e.needsMapper() ? payloadMapper.get() : null;
        Batcher batcher = e.batch ? new Batcher(e, mapper, batchObserver()) : null;
        EventBus b = bus.get();
        Subscription s;
        try {
            if (e.async) {
                AsyncMessageHandler handler = d -> invokeAsync(e, mapper, d);
                s = e.inbound ? b.subscribeInboundAsync(customize, handler)
                        : b.subscribeAsync(customize.apply(b.consumer(e.stream, e.group)).build(), handler);
            } else {
                MessageHandler handler = batcher != null ? batcher::add : d -> invoke(e, argument(e, mapper, d));
                s = e.inbound ? b.subscribeInbound(customize, handler)
                        : b.subscribe(customize.apply(b.consumer(e.stream, e.group)).build(), handler);
            }
        } catch (RuntimeException ex) {
            if (batcher != null) batcher.discard();
            throw ex;
        }
        if (batcher != null) batcher.startTimer();
        running.put(e.id, new Running(e, s, batcher, closeTimeout));
    }

    /**
     * The method's argument for {@code d}. A payload that cannot be mapped to the parameter type is not retried (the
     * same members fail the same way every time, holding up their channel): it is dead-lettered at once, the mapping
     * failure as the reason.
     */
    private static Object argument(Endpoint e, BiFunction<Map<String, Object>, Type, Object> mapper, Delivery d) {
        if (e.param == Delivery.class) return d;
        if (e.param == Envelope.class) return d.envelope();
        try {
            return mapper.apply(d.envelope().asMap(), e.param);
        } catch (RuntimeException ex) {
            throw new NotRetryableException("@StargazerListener " + e.name + ": the payload cannot be mapped to "
                    + e.param.getTypeName() + ": " + ex.getMessage(), ex);
        }
    }

    /** Calls the method; what it throws, an Error included, is the entry's failure (nacked, as a batch's is). */
    private static Object invoke(Endpoint e, Object arg) throws Exception {
        try {
            return e.method.invoke(e.bean, arg);
        } catch (InvocationTargetException ite) {
            throw failure(e, ite.getTargetException());
        }
    }

    /**
     * An Error thrown by a listener (an assert, a StackOverflowError of one message) becomes an exception the bus nacks:
     * left an Error, the bus would leave the entry pending for the claim time while its channel's later entries went on.
     */
    private static Exception failure(Endpoint e, Throwable t) {
        return t instanceof Exception ex ? ex : new ListenerError(e, t);
    }

    /** A listener's Error, carried as its entry's failure. */
    static final class ListenerError extends Exception {
        ListenerError(Endpoint e, Throwable error) {
            super("@StargazerListener " + e.name + " threw " + error, error);
        }
    }

    /**
     * A method returning a CompletionStage: its entry is settled when the stage completes (ack when it completes normally,
     * nack with its failure otherwise), not when the method returns, as Spring Kafka and Spring AMQP do.
     */
    private static CompletionStage<?> invokeAsync(Endpoint e, BiFunction<Map<String, Object>, Type, Object> mapper, Delivery d) {
        CompletionStage<?> stage;
        try {
            stage = (CompletionStage<?>) invoke(e, argument(e, mapper, d));
        } catch (Exception ex) {
            return CompletableFuture.failedFuture(ex);
        }
        if (stage == null) {
            return CompletableFuture.failedFuture(new IllegalStateException("@StargazerListener " + e.name
                    + " returned null instead of a CompletionStage"));
        }
        return stage.handle((r, t) -> {
            if (t == null) return null;
            Throwable cause = t instanceof CompletionException && t.getCause() != null ? t.getCause() : t;
            throw new CompletionException(failure(e, cause));
        });
    }

    /**
     * Stops as {@link #stop()} does, on a thread of its own, and runs {@code callback} when every listener has closed:
     * what the context calls, so that {@code spring.lifecycle.timeout-per-shutdown-phase} bounds its wait for the
     * listeners as for its other beans (after it the context goes on, and closing the bus ends what is still running;
     * docs/spring-boot.md). Through the blocking {@code stop()} alone, the close waited each listener's whole close
     * timeout whatever the phase's bound.
     */
    @Override
    public void stop(Runnable callback) {
        Thread t = new Thread(() -> {
            try {
                stop();
            } finally {
                callback.run();
            }
        }, "stargazer-listeners-stop");
        t.setDaemon(true);
        t.start();
    }

    @Override
    public void stop() {
        List<Running> closing;
        synchronized (this) {
            started = false;
            closing = List.copyOf(running.values());
            running.clear();
        }
        // In parallel: one listener waiting for its handlers must not keep the others reading meanwhile, nor add its
        // close timeout to theirs.
        List<Thread> threads = new ArrayList<>();
        for (Running r : closing) {
            Thread t = new Thread(() -> close(r), "stargazer-listener-stop-" + r.endpoint.id);
            t.setDaemon(true);
            t.start();
            threads.add(t);
        }
        boolean interrupted = false;
        for (Thread t : threads) {
            while (true) {
                try {
                    t.join();
                    break;
                } catch (InterruptedException ie) {
                    interrupted = true; // the closes are bounded by their close timeouts: finish waiting for them
                }
            }
        }
        if (interrupted) Thread.currentThread().interrupt();
    }

    private static void close(Running r) {
        long deadline = System.nanoTime() + r.closeTimeout.toNanos();
        Batcher b = r.batcher;
        if (b != null) b.beginStop();
        try {
            r.subscription.close();
        } catch (RuntimeException e) {
            log.atWarn().setCause(e).log("Closing the subscription of @StargazerListener " + r.endpoint.name + " failed");
        }
        if (b != null) b.awaitStop(deadline);
    }

    @Override
    public boolean isRunning() {
        return started;
    }

    @Override
    public int getPhase() {
        return PHASE;
    }

    /**
     * Gathers the deliveries of one batch listener (manual acknowledgement): hands them over when full, on the handler
     * thread that filled the batch, or at the next tick of its wait (batchWait) on its own thread. Nothing it runs may
     * throw out of it: a throw out of a tick cancels the periodic task (no partial batch is handed over again), and one
     * out of {@link #add} nacks only the delivery added last while the rest of the batch stays held unsettled.
     */
    private static final class Batcher {
        private final Endpoint e;
        private final BiFunction<Map<String, Object>, Type, Object> mapper;
        private final BatchObserver observer;
        private final ScheduledExecutorService thread;
        private ScheduledFuture<?> tick;
        private List<Delivery> buffer = new ArrayList<>();
        /**
         * Set when the listener stops: a batch call that fails from then on (interrupted after the close timeout, or
         * failing as things close under it) releases its entries (Delivery.release: pending, uncounted) instead of
         * nacking them, which would dead-letter one on its last allowed delivery.
         */
        private volatile boolean stopping;

        Batcher(Endpoint e, BiFunction<Map<String, Object>, Type, Object> mapper, BatchObserver observer) {
            this.e = e;
            this.mapper = mapper;
            this.observer = observer;
            this.thread = Executors.newSingleThreadScheduledExecutor(r -> {
                Thread t = new Thread(r, "stargazer-batch-" + e.id);
                t.setDaemon(true);
                return t;
            });
        }

        void startTimer() {
            long ms = Math.max(1, e.batchWait.toMillis());
            tick = thread.scheduleWithFixedDelay(this::flush, ms, ms, TimeUnit.MILLISECONDS);
        }

        void add(Delivery d) {
            List<Delivery> full = null;
            synchronized (this) {
                buffer.add(d);
                if (buffer.size() >= e.batchSize) full = take();
            }
            if (full != null) run(full);
        }

        private void flush() {
            List<Delivery> due = null;
            synchronized (this) {
                if (!buffer.isEmpty()) due = take();
            }
            if (due != null) run(due);
        }

        private List<Delivery> take() {
            List<Delivery> out = buffer;
            buffer = new ArrayList<>();
            return out;
        }

        private void run(List<Delivery> batch) {
            try {
                runBatch(batch);
            } catch (Throwable t) {
                // Only the bus's own settling can get here; the entries stay held and are logged rather than lost.
                log.atError().setCause(t).log("@StargazerListener " + e.name + ": settling a batch of " + batch.size() + " failed");
            }
        }

        private void runBatch(List<Delivery> batch) {
            List<Object> args = new ArrayList<>(batch.size());
            List<Delivery> mapped = new ArrayList<>(batch.size());
            for (Delivery d : batch) {
                try {
                    args.add(argument(e, mapper, d));
                    mapped.add(d);
                } catch (Throwable t) {
                    // Its own failure, retried and dead-lettered as a single listener's would be; the rest still runs.
                    d.nack(t);
                }
            }
            if (mapped.isEmpty()) return;
            try {
                if (observer == null) {
                    invoke(e, args);
                } else {
                    observer.observe(e.id, mapped.size(), () -> invoke(e, args));
                }
            } catch (Throwable t) {
                if (stopping) {
                    log.atWarn().log("@StargazerListener " + e.name + ": a batch of " + mapped.size() + " failed while the listener stopped ("
                            + t + "); its entries are given back, uncounted, for another consumer");
                    for (Delivery d : mapped) d.release();
                    return;
                }
                for (Delivery d : mapped) d.nack(t);
                return;
            }
            for (Delivery d : mapped) d.ack();
        }

        /** No more ticks; what is gathered so far is handed over on the batch thread while the subscription closes. */
        void beginStop() {
            stopping = true;
            ScheduledFuture<?> t = tick;
            if (t != null) t.cancel(false);
            flushLater();
        }

        /**
         * After the subscription closed (no more adds): hands over what came in meanwhile, then waits for the batch
         * thread until {@code deadline} and interrupts it after.
         */
        void awaitStop(long deadline) {
            flushLater();
            thread.shutdown();
            try {
                if (!thread.awaitTermination(Math.max(0, deadline - System.nanoTime()), TimeUnit.NANOSECONDS)) {
                    log.atWarn().log("@StargazerListener " + e.name + ": a batch call did not finish within the close timeout;"
                            + " interrupting it, its entries are given back, uncounted, for another consumer");
                    thread.shutdownNow();
                    thread.awaitTermination(INTERRUPT_GRACE.toMillis(), TimeUnit.MILLISECONDS);
                }
            } catch (InterruptedException ie) {
                thread.shutdownNow();
                Thread.currentThread().interrupt();
            }
            releaseUnhanded();
        }

        /** Deliveries gathered but never handed over (their flush did not run before the stop): given back, uncounted. */
        private void releaseUnhanded() {
            List<Delivery> left;
            synchronized (this) {
                left = take();
            }
            for (Delivery d : left) d.release();
        }

        private void flushLater() {
            try {
                thread.execute(this::flush);
            } catch (RejectedExecutionException closed) {
                // stopped already
            }
        }

        void discard() {
            thread.shutdownNow();
        }
    }
}
