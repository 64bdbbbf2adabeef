package io.stargazer.bus.spring;

import io.stargazer.bus.ConsumerConfig;
import io.stargazer.bus.Delivery;
import io.stargazer.bus.Envelope;
import io.stargazer.bus.EventBus;
import io.stargazer.bus.Subscription;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.lang.reflect.ParameterizedType;
import java.lang.reflect.Type;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.function.BiFunction;
import java.util.function.Supplier;
import java.util.function.UnaryOperator;
import org.springframework.aop.support.AopUtils;
import org.springframework.beans.factory.config.BeanPostProcessor;
import org.springframework.boot.convert.DurationStyle;
import org.springframework.context.SmartLifecycle;
import org.springframework.core.MethodIntrospector;
import org.springframework.core.annotation.AnnotatedElementUtils;
import org.springframework.core.env.Environment;

/**
 * Finds {@link StargazerListener} methods on beans and runs one subscription for each while the context runs
 * (SmartLifecycle): started after every bean is ready, stopped before the bus closes. Stopping is graceful: each
 * subscription stops reading, waits for its in-flight handlers up to its close timeout, and leaves what did not
 * finish pending for another consumer (Subscription.close).
 *
 * <p>Threads: each subscription's own reader and handler threads run the methods; batch listeners have one timer
 * thread more that hands over a partial batch when its wait is over.
 */
public class StargazerListeners implements BeanPostProcessor, SmartLifecycle {
    /** Stops before the web server and other late phases, after the beans the handlers use are ready. */
    public static final int PHASE = Integer.MAX_VALUE - 2048;

    private final java.util.function.Supplier<EventBus> bus;
    private final Environment env;
    private final UnaryOperator<ConsumerConfig.Builder> defaults;
    private final Supplier<BiFunction<Map<String, Object>, Type, Object>> payloadMapper;
    private final List<Endpoint> endpoints = new CopyOnWriteArrayList<>();
    private final List<Subscription> running = new CopyOnWriteArrayList<>();
    private final List<Batcher> batchers = new CopyOnWriteArrayList<>();
    private volatile ScheduledExecutorService batchTimer;
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
    record Endpoint(Object bean, Method method, String name, boolean inbound, String stream, String group,
            Integer concurrency, Integer maxDeliveries, boolean batch, int batchSize, Duration batchWait, Type param,
            boolean autoStartup) {
        boolean needsMapper() {
            return param != Delivery.class && param != Envelope.class;
        }
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
            endpoints.add(endpoint);
            if (started && endpoint.autoStartup) {
                checkMapper(endpoint);
                start(endpoint);
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
        return new Endpoint(bean, m, name, spec.inbound(), stream, group, concurrency, maxDeliveries,
                spec.batch(), batchSize, batchWait, param, spec.autoStartup());
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
        return List.copyOf(running);
    }

    @Override
    public synchronized void start() {
        if (started) return;
        // Every listener that cannot work fails the start before any of them reads an entry.
        for (Endpoint e : endpoints) checkMapper(e);
        started = true;
        for (Endpoint e : endpoints) {
            if (e.autoStartup) start(e);
        }
    }

    /** A payload-type listener without a mapper would fail on every entry and dead-letter them all: refuse it now. */
    private void checkMapper(Endpoint e) {
        if (e.needsMapper() && payloadMapper.get() == null) {
            throw new IllegalStateException("@StargazerListener method " + e.name + " takes " + e.param.getTypeName()
                    + ": mapping payloads needs Jackson (spring-boot-jackson) and its JsonMapper bean; or take an Envelope or a Delivery");
        }
    }


    private void start(Endpoint e) {
        UnaryOperator<ConsumerConfig.Builder> customize = b -> {
            defaults.apply(b);
            if (e.concurrency != null) b.concurrency(e.concurrency);
            if (e.maxDeliveries != null) b.maxDeliveries(e.maxDeliveries);
            if (e.batch) {
                b.manualAck(true).maxInFlight(Math.max(e.batchSize * 2, b.build().maxInFlight()));
            }
            return b;
        };
        BiFunction<Map<String, Object>, Type, Object> mapper = e.needsMapper() ? payloadMapper.get() : null;
        io.stargazer.bus.MessageHandler handler = e.batch ? batchHandler(e, mapper) : singleHandler(e, mapper);
        EventBus b = bus.get();
        Subscription s = e.inbound ? b.subscribeInbound(customize, handler)
                : b.subscribe(customize.apply(b.consumer(e.stream, e.group)).build(), handler);
        running.add(s);
    }

    private io.stargazer.bus.MessageHandler singleHandler(Endpoint e, BiFunction<Map<String, Object>, Type, Object> mapper) {
        return d -> invoke(e, argument(e, mapper, d));
    }

    private io.stargazer.bus.MessageHandler batchHandler(Endpoint e, BiFunction<Map<String, Object>, Type, Object> mapper) {
        Batcher b = new Batcher(e.batchSize, deliveries -> {
            List<Object> args = new ArrayList<>(deliveries.size());
            for (Delivery d : deliveries) args.add(argument(e, mapper, d));
            try {
                invoke(e, args);
                deliveries.forEach(Delivery::ack);
            } catch (Exception ex) {
                deliveries.forEach(d -> d.nack(ex));
            }
        });
        batchers.add(b);
        ScheduledExecutorService timer = timer();
        long ms = Math.max(1, e.batchWait.toMillis());
        timer.scheduleWithFixedDelay(b::flushIfWaited, ms, ms, TimeUnit.MILLISECONDS);
        return b::add;
    }

    private synchronized ScheduledExecutorService timer() {
        if (batchTimer == null) {
            batchTimer = Executors.newSingleThreadScheduledExecutor(r -> {
                Thread t = new Thread(r, "stargazer-batch-timer");
                t.setDaemon(true);
                return t;
            });
        }
        return batchTimer;
    }

    private static Object argument(Endpoint e, BiFunction<Map<String, Object>, Type, Object> mapper, Delivery d) {
        if (e.param == Delivery.class) return d;
        if (e.param == Envelope.class) return d.envelope();
        return mapper.apply(d.envelope().asMap(), e.param);
    }

    private static void invoke(Endpoint e, Object arg) throws Exception {
        try {
            e.method.invoke(e.bean, arg);
        } catch (InvocationTargetException ite) {
            Throwable t = ite.getTargetException();
            if (t instanceof Exception ex) throw ex;
            throw (Error) t;
        }
    }

    @Override
    public synchronized void stop() {
        started = false;
        for (Batcher b : batchers) b.flushAll();
        for (Subscription s : running) {
            s.close();
        }
        running.clear();
        batchers.clear();
        if (batchTimer != null) {
            batchTimer.shutdownNow();
            batchTimer = null;
        }
    }

    @Override
    public boolean isRunning() {
        return started;
    }

    @Override
    public int getPhase() {
        return PHASE;
    }

    /** Gathers deliveries of a batch listener; hands them over when full, or at the next tick of its wait (batchWait). */
    private static final class Batcher {
        private final int size;
        private final java.util.function.Consumer<List<Delivery>> sink;
        private List<Delivery> buffer = new ArrayList<>();

        Batcher(int size, java.util.function.Consumer<List<Delivery>> sink) {
            this.size = size;
            this.sink = sink;
        }

        void add(Delivery d) {
            List<Delivery> full = null;
            synchronized (this) {
                buffer.add(d);
                if (buffer.size() >= size) full = take();
            }
            if (full != null) sink.accept(full);
        }

        void flushIfWaited() {
            List<Delivery> due = null;
            synchronized (this) {
                if (!buffer.isEmpty()) due = take();
            }
            if (due != null) sink.accept(due);
        }

        void flushAll() {
            flushIfWaited();
        }

        private List<Delivery> take() {
            List<Delivery> out = buffer;
            buffer = new ArrayList<>();
            return out;
        }
    }
}
