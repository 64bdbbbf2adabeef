package io.stargazer.bus.micrometer;

import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.FunctionCounter;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.Meter;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Tags;
import io.micrometer.core.instrument.Timer;
import io.micrometer.core.instrument.binder.MeterBinder;
import io.stargazer.bus.EventBus;
import io.stargazer.bus.GroupInfo;
import io.stargazer.bus.Subscription;
import io.stargazer.bus.internal.BusFactory;
import io.stargazer.bus.internal.BusHooks;
import io.stargazer.bus.tools.ToolException;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ScheduledThreadPoolExecutor;
import java.util.concurrent.TimeUnit;

/**
 * The bus's meters in a Micrometer registry: {@code new BusMetrics(bus).bindTo(registry)}.
 *
 * <p>What a subscription already counts ({@link Subscription#stats()}: delivered, acknowledged, redelivered,
 * dead-lettered, failed, in flight) is read when the registry is scraped, so those cost the bus nothing. Only
 * durations (publish, handler, backpressure waits, tools calls) are recorded as they happen, through a hook the bus
 * calls only once a binder is bound.
 *
 * <p>Lag and pending per group come from {@code XINFO GROUPS}, which waits for Redis; a scrape never does. Reading one
 * of these gauges returns the last answer for its stream (NaN before the first, and after a read that failed, as
 * when Redis does not answer) and starts the stream's refresh if it is not running: the thread
 * {@code stargazer-metrics-groups}, one per registry bound, owned by the binder, reads the stream's groups every
 * {@link #GROUP_INFO_MAX_AGE_MS} while its gauges are read, and stops after {@link #GROUP_INFO_IDLE_MS} without a read
 * or when the stream's last subscription closes. The thread starts with the first refresh and ends a minute after the
 * last one stopped, so the binder needs no closing.
 *
 * <table>
 *   <caption>Meters (every one tagged {@code messaging.system=redis_streams})</caption>
 *   <tr><th>name</th><th>type</th><th>tags</th><th>what</th></tr>
 *   <tr><td>{@code messaging.client.sent.messages}</td><td>counter</td><td>destination, operation, error.type</td><td>publishes, by outcome ({@code error.type=none} when stored)</td></tr>
 *   <tr><td>{@code messaging.client.operation.duration}</td><td>timer</td><td>destination, operation=send, error.type</td><td>publish latency: call to stored id</td></tr>
 *   <tr><td>{@code stargazer.publish.backpressure.waits}</td><td>timer</td><td>destination, outcome={@code room}|{@code timeout}</td><td>publishes held while the stream was full, or for an overdue trim check's answer</td></tr>
 *   <tr><td>{@code messaging.client.consumed.messages}</td><td>function counter</td><td>destination, consumer group</td><td>deliveries handed to handlers (redeliveries included)</td></tr>
 *   <tr><td>{@code stargazer.messaging.acknowledged} / {@code .redelivered} / {@code .dead.lettered} / {@code .failed}</td><td>function counters</td><td>destination, consumer group</td><td>{@link Subscription.Stats}</td></tr>
 *   <tr><td>{@code stargazer.messaging.in.flight}</td><td>gauge</td><td>destination, consumer group</td><td>deliveries not yet settled</td></tr>
 *   <tr><td>{@code stargazer.messaging.lag} / {@code .pending}</td><td>gauges</td><td>destination, consumer group</td><td>entries not yet delivered to the group / delivered and unacknowledged</td></tr>
 *   <tr><td>{@code messaging.process.duration}</td><td>timer</td><td>destination, consumer group, operation=process, error.type</td><td>handler duration, per attempt</td></tr>
 *   <tr><td>{@code stargazer.tools.client.duration}</td><td>timer</td><td>tool ({@value #UNKNOWN_TOOL} until the tools service has shown it has the tool), outcome ({@code ok} or the error type)</td><td>tools calls made through a ToolClient and their latency</td></tr>
 * </table>
 *
 * <p>The tag keys are OpenTelemetry's: {@code messaging.destination.name}, {@code messaging.consumer.group.name},
 * {@code messaging.operation.name}, {@code error.type}.
 *
 * <p>A stream and group's meters are one series however many subscriptions this bus has on them (two listeners of
 * one group in one process, say): the counters sum them all, the ones closed since the series began included, so
 * they only grow; {@code in.flight} sums the open ones. The series is removed when its last subscription closes (so a
 * process subscribing to ever new streams does not grow its registry), and one subscribed to again starts from zero,
 * as a restarted process would (a monitoring system reads it as a counter reset).
 *
 * <p>Every tag has a bounded set of values. Publishes to the tools reply streams (one per worker process, named
 * {@code {prefix}:{worker node id}}) are tagged {@code messaging.destination.name={prefix}:{worker_id}}, the template,
 * and a tools service's answers on a request's {@code reply_to} outside that prefix all {@code {reply_to}};
 * a tools call's {@code tool} is its name once the tools service has answered a call of it as a tool it has
 * ({@code ok}, {@code bad_arguments}, {@code tool_failed}), else {@value #UNKNOWN_TOOL}.
 *
 * <p>Thread-safe; the hook methods run on bus threads and only look up cached meters.
 */
public final class BusMetrics implements MeterBinder {
    public static final String SYSTEM = "redis_streams";
    public static final String TAG_SYSTEM = "messaging.system";
    public static final String TAG_DESTINATION = "messaging.destination.name";
    public static final String TAG_GROUP = "messaging.consumer.group.name";
    public static final String TAG_OPERATION = "messaging.operation.name";
    public static final String TAG_ERROR = "error.type";
    /** The {@code tool} tag of a tools call whose name the tools service has not shown it knows. */
    public static final String UNKNOWN_TOOL = "unknown";
    /**
     * Outcomes of a tools call that show the tools service has the tool: it ran it, or refused its arguments. Not
     * {@code unknown_tool}, and not {@code timeout}, {@code overloaded} or a local failure, which may come before the
     * service looked at the name.
     */
    private static final Set<String> RECOGNISED = Set.of("ok", ToolException.BAD_ARGUMENTS, ToolException.TOOL_FAILED);
    /** How often the {@code XINFO GROUPS} answer behind the lag and pending gauges is read again while they are read. */
    public static final long GROUP_INFO_MAX_AGE_MS = 1000;
    /** After how long without a read of its lag or pending gauge a stream's {@code XINFO GROUPS} stops being read. */
    public static final long GROUP_INFO_IDLE_MS = 5 * 60_000;

    private final EventBus bus;
    private final Tags common;
    private final Destinations destinations;

    public BusMetrics(EventBus bus) {
        this(bus, Tags.empty());
    }

    /** {@code extraTags}: added to every meter (for example the node's role). */
    public BusMetrics(EventBus bus, Iterable<io.micrometer.core.instrument.Tag> extraTags) {
        this.bus = Objects.requireNonNull(bus, "bus");
        this.common = Tags.of(TAG_SYSTEM, SYSTEM).and(extraTags);
        this.destinations = new Destinations(bus.topology());
    }

    /** The destination tag of a publish to {@code stream} ({@link Destinations}). */
    private String destination(String stream) {
        return destinations.of(stream);
    }

    @Override
    public void bindTo(MeterRegistry registry) {
        Bound b = new Bound(registry);
        for (Subscription s : BusFactory.addHooks(bus, b)) {
            b.subscribed(s);
        }
    }

    /** The hooks of one registry: caches its meters so that a hook call is a map lookup and a record. */
    private final class Bound implements BusHooks {
        private final MeterRegistry registry;
        private final Map<String, Timer> sendOk = new ConcurrentHashMap<>();
        private final Map<String, Counter> sentOk = new ConcurrentHashMap<>();
        /** The series of each stream and group this bus has a subscription on, by {@code List.of(stream, group)}. */
        private final Map<List<String>, Series> series = new ConcurrentHashMap<>();
        /** Each open subscription's series: what a handling's hook looks up, by the subscription itself (no key built). */
        private final Map<Subscription, Series> seriesOf = new ConcurrentHashMap<>();
        /** The last XINFO GROUPS answer per stream whose lag or pending gauge is read; an empty list when the read failed. */
        private final Map<String, List<GroupInfo>> groups = new ConcurrentHashMap<>();
        /** When a lag or pending gauge of the stream was last read (nanoTime): present while the stream's refresh runs. */
        private final Map<String, Long> readAt = new ConcurrentHashMap<>();
        /** Runs the refreshes (see the class comment): they wait for Redis, which a scrape must never do. */
        private final ScheduledThreadPoolExecutor refresher;
        /** Tool names the tools service answered as tools it has (RECOGNISED): bounded by its registry. */
        private final Set<String> knownTools = ConcurrentHashMap.newKeySet();

        Bound(MeterRegistry registry) {
            this.registry = registry;
            this.refresher = new ScheduledThreadPoolExecutor(1, r -> {
                Thread t = new Thread(r, "stargazer-metrics-groups");
                t.setDaemon(true);
                return t;
            });
            // Nothing to shut down: the thread ends a minute after the last refresh stopped (no gauge read, none left).
            refresher.setKeepAliveTime(1, TimeUnit.MINUTES);
            refresher.allowCoreThreadTimeOut(true);
        }

        @Override
        public void published(String stream, long nanos, Throwable error) {
            String destination = destination(stream);
            if (error == null) {
                sendOk.computeIfAbsent(destination, d -> sendTimer(d, "none")).record(nanos, TimeUnit.NANOSECONDS);
                sentOk.computeIfAbsent(destination, d -> sentCounter(d, "none")).increment();
            } else {
                String type = errorType(error);
                sendTimer(destination, type).record(nanos, TimeUnit.NANOSECONDS);
                sentCounter(destination, type).increment();
            }
        }

        private Timer sendTimer(String destination, String errorType) {
            return Timer.builder("messaging.client.operation.duration").description("Publish latency: from the call to the stored entry id")
                    .tags(common).tag(TAG_DESTINATION, destination).tag(TAG_OPERATION, "send").tag(TAG_ERROR, errorType).register(registry);
        }

        private Counter sentCounter(String destination, String errorType) {
            return Counter.builder("messaging.client.sent.messages").description("Envelopes published, by outcome")
                    .tags(common).tag(TAG_DESTINATION, destination).tag(TAG_OPERATION, "send").tag(TAG_ERROR, errorType).register(registry);
        }

        @Override
        public void backpressureWaited(String stream, long nanos, boolean gotRoom) {
            Timer.builder("stargazer.publish.backpressure.waits").description("Publishes held while their stream was at its cap, or for an overdue trim check's answer")
                    .tags(common).tag(TAG_DESTINATION, destination(stream)).tag("outcome", gotRoom ? "room" : "timeout").register(registry)
                    .record(nanos, TimeUnit.NANOSECONDS);
        }

        @Override
        public void handled(Subscription s, long nanos, Throwable error) {
            Series x = seriesOf.get(s);
            Timer t = x == null ? null : x.processTimer(error == null ? "none" : errorType(error));
            if (t != null) t.record(nanos, TimeUnit.NANOSECONDS);
        }

        @Override
        public void toolCalled(String tool, String outcome, long nanos) {
            // Names come from callers (a model's output, a user): only those the tools service showed it has get a series.
            if (RECOGNISED.contains(outcome)) knownTools.add(tool);
            String tag = knownTools.contains(tool) ? tool : UNKNOWN_TOOL;
            Timer.builder("stargazer.tools.client.duration").description("Tools calls made through a ToolClient, by tool and outcome")
                    .tags(common).tag("tool", tag).tag("outcome", outcome).register(registry).record(nanos, TimeUnit.NANOSECONDS);
        }

        @Override
        public void subscribed(Subscription s) {
            Series x = series.compute(List.of(s.stream(), s.group()), (k, v) -> (v == null ? new Series(k.get(0), k.get(1)) : v).open(s));
            seriesOf.put(s, x);
        }

        @Override
        public void unsubscribed(Subscription s) {
            seriesOf.remove(s);
            series.computeIfPresent(List.of(s.stream(), s.group()), (k, x) -> x.close(s) ? x : null);
        }

        /**
         * One stream and group's meters and the subscriptions they sum. Opened and closed inside the series map's
         * compute, so a subscription opening as the last one closes finds the series either whole or gone; the counts
         * are read under this object's lock, so a scrape never sees a closing subscription counted twice or not at all.
         */
        private final class Series {
            private final String stream;
            private final String group;
            private final Tags tags;
            /** Guarded by this. */
            private final java.util.Set<Subscription> open = new java.util.HashSet<>();
            /** What the subscriptions closed since the series began counted, per counter (COUNTERS' order); guarded by this. */
            private final long[] closed = new long[COUNTERS.size()];
            /** Its process timer of each outcome ("none" or the error type), registered once. */
            private final Map<String, Timer> processTimers = new ConcurrentHashMap<>();
            /** What to remove from the registry when the last subscription closes: each meter once. */
            private final List<Meter> meters = new java.util.concurrent.CopyOnWriteArrayList<>();
            /** Its last subscription closed and its meters left the registry; guarded by this. */
            private boolean gone;

            Series(String stream, String group) {
                this.stream = stream;
                this.group = group;
                this.tags = common.and(TAG_DESTINATION, stream).and(TAG_GROUP, group);
                for (int i = 0; i < COUNTERS.size(); i++) {
                    Stat c = COUNTERS.get(i);
                    int at = i;
                    meters.add(FunctionCounter.builder(c.name, this, x -> x.count(at)).description(c.help).tags(tags).register(registry));
                }
                meters.add(Gauge.builder("stargazer.messaging.in.flight", this, Series::inFlight).description("Deliveries not yet settled")
                        .tags(tags).register(registry));
                meters.add(Gauge.builder("stargazer.messaging.lag", this, x -> groupInfo(stream, group, GroupInfo::lag))
                        .description("Entries of the stream not yet delivered to the group (XINFO GROUPS lag; NaN when unknown)")
                        .tags(tags).register(registry));
                meters.add(Gauge.builder("stargazer.messaging.pending", this, x -> groupInfo(stream, group, GroupInfo::pending))
                        .description("Entries delivered to the group and not yet acknowledged").tags(tags).register(registry));
            }

            synchronized Series open(Subscription s) {
                open.add(s);
                return this;
            }

            /** Keeps what {@code s} counted; false when it was the last one open: the series' meters have left the registry. */
            synchronized boolean close(Subscription s) {
                if (open.remove(s)) {
                    Subscription.Stats st = s.stats();
                    for (int i = 0; i < COUNTERS.size(); i++) closed[i] += COUNTERS.get(i).of.applyAsLong(st);
                }
                if (!open.isEmpty()) return true;
                gone = true;
                meters.forEach(registry::remove);
                return false;
            }

            synchronized double count(int i) {
                long sum = closed[i];
                for (Subscription s : open) sum += COUNTERS.get(i).of.applyAsLong(s.stats());
                return sum;
            }

            synchronized double inFlight() {
                long sum = 0;
                for (Subscription s : open) sum += s.stats().inFlight();
                return sum;
            }

            /** Null once gone: a handling that ends as the last subscription closes must not register a timer left behind. */
            Timer processTimer(String outcome) {
                Timer t = processTimers.get(outcome);
                return t != null ? t : newProcessTimer(outcome);
            }

            private synchronized Timer newProcessTimer(String outcome) {
                if (gone) return null;
                // Registered and listed for removal once per outcome: a handler that keeps failing must not grow the list.
                return processTimers.computeIfAbsent(outcome, o -> {
                    Timer n = Timer.builder("messaging.process.duration").description("Handler duration per delivery attempt")
                            .tags(tags).tag(TAG_OPERATION, "process").tag(TAG_ERROR, o).register(registry);
                    meters.add(n);
                    return n;
                });
            }
        }

        /** On the scraping thread: the last answer's value, NaN before the first one or after a failed read. */
        private double groupInfo(String stream, String group, java.util.function.Function<GroupInfo, Long> f) {
            if (readAt.put(stream, System.nanoTime()) == null) refresher.execute(() -> refresh(stream));
            List<GroupInfo> last = groups.get(stream);
            if (last == null) return Double.NaN;
            for (GroupInfo g : last) {
                if (g.name().equals(group)) {
                    Long v = f.apply(g);
                    return v == null ? Double.NaN : v;
                }
            }
            return Double.NaN;
        }

        /**
         * On the refresher thread: reads the stream's groups (bus.groups gives an empty list when Redis does not answer
         * within its timeout, so the gauges turn NaN rather than keep a value Redis can no longer confirm), and again
         * every GROUP_INFO_MAX_AGE_MS while the gauges are read; stops when they have not been read for
         * GROUP_INFO_IDLE_MS or no subscription of the stream is left.
         */
        private void refresh(String stream) {
            Long last = readAt.get(stream);
            if (last == null) return;
            boolean watched = series.keySet().stream().anyMatch(k -> k.get(0).equals(stream));
            // A read between get and remove changed the value: the refresh goes on for it.
            if ((!watched || System.nanoTime() - last > TimeUnit.MILLISECONDS.toNanos(GROUP_INFO_IDLE_MS)) && readAt.remove(stream, last)) {
                groups.remove(stream);
                return;
            }
            try {
                groups.put(stream, bus.groups(stream));
            } finally {
                refresher.schedule(() -> refresh(stream), GROUP_INFO_MAX_AGE_MS, TimeUnit.MILLISECONDS);
            }
        }
    }

    /** A function counter each stream and group's series has, read from its subscriptions' {@link Subscription.Stats}. */
    private record Stat(String name, String help, java.util.function.ToLongFunction<Subscription.Stats> of) {
    }

    private static final List<Stat> COUNTERS = List.of(
            new Stat("messaging.client.consumed.messages", "Deliveries handed to handlers, redeliveries included", Subscription.Stats::delivered),
            new Stat("stargazer.messaging.acknowledged", "Entries acknowledged", Subscription.Stats::acknowledged),
            new Stat("stargazer.messaging.redelivered", "Deliveries with a delivery count above 1", Subscription.Stats::redelivered),
            new Stat("stargazer.messaging.dead.lettered", "Entries moved to the dead-letter stream", Subscription.Stats::deadLettered),
            new Stat("stargazer.messaging.failed", "Handler failures and nacks", Subscription.Stats::failed));

    static String errorType(Throwable e) {
        Throwable t = e instanceof java.util.concurrent.CompletionException && e.getCause() != null ? e.getCause() : e;
        return t.getClass().getSimpleName();
    }
}
