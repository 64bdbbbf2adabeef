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
    private final BiFunction<Map<String, Object>, Type, Object> payloadMapper;
    private final List<Endpoint> endpoints = new CopyOnWriteArrayList<>();
    private final List<Subscription> running = new CopyOnWriteArrayList<>();
    private final List<Batcher> batchers = new CopyOnWriteArrayList<>();
    private volatile ScheduledExecutorService batchTimer;
    private volatile boolean started;

    /**
     * {@code bus}: looked up at start (a post-processor is made before the beans it needs); {@code defaults}: the consumer properties; {@code payloadMapper}: envelope members to a parameter type (null
     * when the application has no Jackson: then only Envelope and Delivery parameters are accepted).
     */
    public StargazerListeners(java.util.function.Supplier<EventBus> bus, Environment env, UnaryOperator<ConsumerConfig.Builder> defaults,
            BiFunction<Map<String, Object>, Type, Object> payloadMapper) {
        this.bus = bus;
        this.env = env;
        this.defaults = defaults;
        this.payloadMapper = payloadMapper;
    }

    /** One annotated method of one bean. */
    record Endpoint(Object bean, Method method, StargazerListener spec, String name) {
    }

    @Override
    public Object postProcessAfterInitialization(Object bean, String beanName) {
        Class<?> type = AopUtils.getTargetClass(bean);
        Map<Method, StargazerListener> found = MethodIntrospector.selectMethods(type,
                (MethodIntrospector.MetadataLookup<StargazerListener>) m -> AnnotatedElementUtils.findMergedAnnotation(m, StargazerListener.class));
        for (Map.Entry<Method, StargazerListener> e : found.entrySet()) {
            Method m = e.getKey();
            String name = beanName + "." + m.getName();
            if (m.getParameterCount() != 1) {
                throw new IllegalStateException("@StargazerListener method " + name + " must take exactly one parameter (Envelope, Delivery, a payload type, or a List of one)");
            }
            StargazerListener spec = e.getValue();
            if (!spec.inbound() && (spec.stream().isBlank() || spec.group().isBlank())) {
                throw new IllegalStateException("@StargazerListener method " + name + " needs stream and group (or inbound = true)");
            }
            m.setAccessible(true);
            Method invocable = AopUtils.selectInvocableMethod(m, bean.getClass());
            endpoints.add(new Endpoint(bean, invocable, spec, name));
            if (started && spec.autoStartup()) start(endpoints.get(endpoints.size() - 1));
        }
        return bean;
    }

    /** The subscriptions running now (for the health indicator). */
    public List<Subscription> subscriptions() {
        return List.copyOf(running);
    }

    @Override
    public synchronized void start() {
        if (started) return;
        started = true;
        for (Endpoint e : endpoints) {
            if (e.spec.autoStartup()) start(e);
        }
    }

    private void start(Endpoint e) {
        StargazerListener spec = e.spec;
        UnaryOperator<ConsumerConfig.Builder> customize = b -> {
            defaults.apply(b);
            String c = resolve(spec.concurrency());
            if (!c.isEmpty()) b.concurrency(Integer.parseInt(c));
            String md = resolve(spec.maxDeliveries());
            if (!md.isEmpty()) b.maxDeliveries(Integer.parseInt(md));
            if (spec.batch()) {
                int size = Integer.parseInt(resolve(spec.batchSize()));
                b.manualAck(true).maxInFlight(Math.max(size * 2, b.build().maxInFlight()));
            }
            return b;
        };
        io.stargazer.bus.MessageHandler handler = spec.batch() ? batchHandler(e) : singleHandler(e);
        EventBus b = bus.get();
        Subscription s = spec.inbound() ? b.subscribeInbound(customize, handler)
                : b.subscribe(customize.apply(b.consumer(resolve(spec.stream()), resolve(spec.group()))).build(), handler);
        running.add(s);
    }

    private io.stargazer.bus.MessageHandler singleHandler(Endpoint e) {
        Type param = e.method.getGenericParameterTypes()[0];
        return d -> invoke(e, argument(param, d, e));
    }

    private io.stargazer.bus.MessageHandler batchHandler(Endpoint e) {
        Type param = e.method.getGenericParameterTypes()[0];
        if (!(param instanceof ParameterizedType pt) || pt.getRawType() != List.class) {
            throw new IllegalStateException("batch @StargazerListener method " + e.name + " must take a List");
        }
        Type element = pt.getActualTypeArguments()[0];
        int size = Integer.parseInt(resolve(e.spec.batchSize()));
        Duration wait = DurationStyle.detectAndParse(resolve(e.spec.batchWait()));
        Batcher b = new Batcher(size, deliveries -> {
            List<Object> args = new ArrayList<>(deliveries.size());
            for (Delivery d : deliveries) args.add(argument(element, d, e));
            try {
                invoke(e, args);
                deliveries.forEach(Delivery::ack);
            } catch (Exception ex) {
                deliveries.forEach(d -> d.nack(ex));
            }
        });
        batchers.add(b);
        ScheduledExecutorService timer = timer();
        long ms = Math.max(1, wait.toMillis());
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

    private Object argument(Type param, Delivery d, Endpoint e) {
        if (param == Delivery.class) return d;
        if (param == Envelope.class) return d.envelope();
        if (payloadMapper == null) {
            throw new IllegalStateException("@StargazerListener method " + e.name + " takes " + param.getTypeName()
                    + ": mapping payloads needs Jackson (spring-boot-jackson) on the class path");
        }
        return payloadMapper.apply(d.envelope().asMap(), param);
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

    private String resolve(String text) {
        return env.resolveRequiredPlaceholders(text).trim();
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
