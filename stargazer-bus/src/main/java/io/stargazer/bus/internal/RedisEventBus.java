package io.stargazer.bus.internal;

import io.lettuce.core.RedisFuture;
import io.lettuce.core.StreamMessage;
import io.lettuce.core.XGroupCreateArgs;
import io.lettuce.core.XReadArgs;
import io.lettuce.core.cluster.api.async.RedisClusterAsyncCommands;
import io.stargazer.bus.AsyncMessageHandler;
import io.stargazer.bus.BusConfig;
import io.stargazer.bus.ConfigException;
import io.stargazer.bus.ConsumerConfig;
import io.stargazer.bus.ConsumerInfo;
import io.stargazer.bus.Envelope;
import io.stargazer.bus.EnvelopeTooLargeException;
import io.stargazer.bus.EventBus;
import io.stargazer.bus.GroupInfo;
import io.stargazer.bus.MessageHandler;
import io.stargazer.bus.NodeRole;
import io.stargazer.bus.ProvisioningException;
import io.stargazer.bus.PublishOptions;
import io.stargazer.bus.PublishOutcomeUnknownException;
import io.stargazer.bus.PublishQueueFullException;
import io.stargazer.bus.BackpressureException;
import io.stargazer.bus.RedisServerException;
import io.stargazer.bus.RedisUrl;
import io.stargazer.bus.StargazerException;
import io.stargazer.bus.StreamEntry;
import io.stargazer.bus.StreamInfo;
import io.stargazer.bus.Subscription;
import io.stargazer.bus.Topology;
import io.stargazer.bus.wire.MalformedEntryException;
import io.stargazer.bus.wire.WireFormat;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The {@link EventBus} on one Redis server or a Redis Cluster (see the interface for the contract).
 *
 * <p>Threads it owns: {@code stargazer-maintenance} runs checks that wait for Redis (backlog, safe trimming, idle
 * publishers); {@code stargazer-timer} runs what must happen on time whatever Redis does (publish deadlines, the
 * dead-peer check, retry timers of subscriptions and retrying publishes), and never waits for Redis. Publish batches
 * are formed and sent on the shared connection's Netty event loop; each subscription owns a reader thread and a
 * handler pool ({@link StreamConsumer}). Callers' completion stages run on Redis I/O threads and must not block.
 */
final class RedisEventBus implements EventBus {
    private static final Logger log = LoggerFactory.getLogger(EventBus.class);
    private static final long DIAGNOSTIC_TIMEOUT_MS = 5000;

    private final BusConfig config;
    private final Redis redis;
    private final RedisClusterAsyncCommands<String, byte[]> async;
    private final ConcurrentHashMap<String, StreamPublisher> publishers = new ConcurrentHashMap<>();
    private final Set<Subscription> subscriptions = ConcurrentHashMap.newKeySet();
    /**
     * Closed subscriptions that still hold deliveries their handlers may settle later (manual acknowledgement), or
     * whose settlements are on the wire: close() lets those finish before it closes the connections under them.
     */
    private final Set<StreamConsumer> closedButHolding = ConcurrentHashMap.newKeySet();
    /**
     * Tool clients made on this bus, closed with it after the subscriptions (whose handlers may wait for a call). Left
     * open, a client outlived its bus: its reader retried the closed connection for good, and it kept its reply stream's
     * name, so no client could be made under that node id again in the process (ToolClientClosedWithItsBusIT).
     */
    private final Set<AutoCloseable> toolClients = ConcurrentHashMap.newKeySet();
    private final ScheduledExecutorService maintenance;
    /** Timers that must fire on time whatever Redis does: never runs a blocking call (see the class comment). */
    private final ScheduledExecutorService timers;
    private final BacklogMonitor backlog;
    private final StreamGuard guard;
    /** Blocking publishes' own connections (BusConfig#blockingPublishConnections); null on a cluster, over TLS, or when 0. */
    private final CallerConnections callers;
    private final AtomicBoolean closed = new AtomicBoolean();

    /**
     * True once close() has let the late settlements go and is closing the connections: nothing more is acknowledged.
     * Not at close()'s start: while its subscriptions close and their late settlements are awaited, acknowledging works.
     */
    boolean isClosed() {
        return connectionsClosing;
    }

    private volatile boolean connectionsClosing;
    /**
     * Set by {@link #close()} after its subscriptions closed, not before: their handlers still running may answer and
     * publish while close() waits for them (refused, an answer would be a failure, and on a last delivery a dead letter).
     */
    private final AtomicBoolean publishingClosed = new AtomicBoolean();
    /** Publishes and answers between their call and their hand-over to a publisher (see publishOnce). */
    private final AtomicInteger entering = new AtomicInteger();
    /** Retrying publishes waiting for their next try, and the later publishes of their streams waiting behind them. */
    private final RetryLanes lanes;
    /** Metrics observer (io.stargazer.bus.micrometer): {@link BusHooks#NONE} until a binder is bound. */
    private volatile BusHooks hooks = BusHooks.NONE;
    /** Trace context observer: null (nothing done, plain scripts) until one is installed. */
    private volatile BusTracing tracing;
    private final RedisDeadLetters deadLetters;
    /** Relay mode: which writes go through an outbox (docs/functions.md, "Relay mode"). */
    private final Relaying relaying;
    /**
     * On a single server, the publisher the inbound partitions' plain publishes share, so that six partitions are
     * written and answered as one stream is (StreamPublisher's class comment); null on a cluster or with one inbound stream.
     */
    private final StreamPublisher inboundSpan;
    /** The streams that publish through {@link #inboundSpan}: the inbound partitions. */
    private final Set<String> spanStreams;

    private RedisEventBus(BusConfig config, Redis redis) {
        this.config = config;
        this.redis = redis;
        this.callers = redis.cluster() || redis.url().tls() || config.blockingPublishConnections() == 0 ? null
                : new CallerConnections(redis.url(), config.nodeId(), config.blockingPublishConnections(),
                        config.deadPeerTimeout());
        this.relaying = new Relaying(config);
        this.async = redis.sharedAsync();
        this.lanes = new RetryLanes(config.publishQueueLimit());
        List<String> partitions = config.topology().inboundStreams();
        this.spanStreams = redis.cluster() || partitions.size() < 2 ? Set.of() : Set.copyOf(partitions);
        this.inboundSpan = spanStreams.isEmpty() ? null : StreamPublisher.spanning("partitions of '" + config.topology().inboundStream() + "'",
                async, config.publishBatchMax(), config.publishQueueLimit(), redis.publishLoop(), redis.code(),
                redis.writeOnce(), redis::notThePrimary);
        this.maintenance = Executors.newSingleThreadScheduledExecutor(r -> {
            Thread t = new Thread(r, "stargazer-maintenance");
            t.setDaemon(true);
            return t;
        });
        // Streams published to once (a tools service answering workers that come and go) must not be kept forever.
        this.timers = Executors.newSingleThreadScheduledExecutor(r -> {
            Thread t = new Thread(r, "stargazer-timer");
            t.setDaemon(true);
            return t;
        });
        maintenance.scheduleWithFixedDelay(() -> forgetIdleStreams(IDLE_STREAM), 1, 1, TimeUnit.MINUTES);
        if (redis.code().follows()) {
            // The library can go (an empty restart, FUNCTION FLUSH) or change under a running bus: follow it.
            long every = ServerCode.CHECK_INTERVAL.toMillis();
            maintenance.scheduleWithFixedDelay(() -> redis.code().check(redis.sharedSync()), every, every, TimeUnit.MILLISECONDS);
        }
        this.guard = new StreamGuard(config, async, redis.code(), maintenance, redis.version(),
                this::publisher, () -> hooks);
        ConnectionHealth health = redis.health(config.deadPeerTimeout());
        timers.scheduleWithFixedDelay(health::check, health.intervalMillis(), health.intervalMillis(), TimeUnit.MILLISECONDS);
        // Every publish completes within its deadline, even on a connection that stopped answering.
        long expiry = Math.max(10, Math.min(100, config.publishTimeout().toMillis() / 10));
        timers.scheduleWithFixedDelay(this::expirePublishes, expiry, expiry, TimeUnit.MILLISECONDS);
        this.backlog = new BacklogMonitor(config.clock(), config.backlogCheckInterval().toMillis(), config.streamMaxlen(),
                this::length, this::groups, maintenance, config.trimPolicy());
        this.deadLetters = new RedisDeadLetters(this);
    }

    static RedisEventBus connect(RedisUrl url, BusConfig config) {
        Redis redis = Redis.connect(url, config.nodeId(), config.deadPeerTimeout());
        try {
            if (config.publishVia() == io.stargazer.bus.PublishVia.RELAY && redis.cluster()) {
                // The relay moves an entry between its outbox and its target in one script: two slots, which a cluster refuses.
                throw new ConfigException(BusConfig.ENV_PUBLISH_VIA, "'relay' needs a single Redis server, not a cluster");
            }
            redis.useCode(ServerCode.choose(redis, config));
        } catch (RuntimeException e) {
            redis.close();
            throw e;
        }
        log.atInfo().addKeyValue("redis", url).addKeyValue("server_version", redis.version())
                .addKeyValue("node_role", config.role().wireName()).addKeyValue("node_id", config.nodeId())
                .log("Connected to Redis");
        return new RedisEventBus(config, redis);
    }

    @Override
    public BusConfig config() {
        return config;
    }

    @Override
    public io.stargazer.bus.ServerCodeMode serverCode() {
        return redis.code().functions() ? io.stargazer.bus.ServerCodeMode.FUNCTIONS : io.stargazer.bus.ServerCodeMode.SCRIPTS;
    }

    @Override
    public String serverVersion() {
        return redis.version().text();
    }

    /**
     * How long a stream may go without publishes before what this bus keeps for it (publisher, trim state, backlog
     * state) is dropped; a new one is made on the next publish.
     */
    static final java.time.Duration IDLE_STREAM = java.time.Duration.ofMinutes(5);

    /** The stream's publisher, made on first use. */
    private StreamPublisher publisher(String stream) {
        return publishers.computeIfAbsent(stream, k -> new StreamPublisher(k, async, config.publishBatchMax(),
                redis.cluster() ? 1 : StreamPublisher.MAX_IN_FLIGHT, config.publishQueueLimit(), config.dedupeWindow(),
                redis.publishLoop(), redis.code(), callers, redis.writeOnce(), redis::notThePrimary,
                spanStreams.contains(k) ? inboundSpan : null));
    }

    /**
     * Drops the publishers (and trim state) of streams not published to for {@code idle}, and their backlog state;
     * returns how many publishers.
     */
    int forgetIdleStreams(java.time.Duration idle) {
        backlog.forgetIdle(idle.toMillis());
        int dropped = 0;
        for (String stream : List.copyOf(publishers.keySet())) {
            StreamPublisher before = publishers.get(stream);
            if (before != null && publishers.computeIfPresent(stream, (k, p) -> p.retireIfIdle(idle.toNanos()) ? null : p) == null) {
                guard.forgetIfQuiet(stream);
                dropped++;
            }
        }
        return dropped;
    }

    /**
     * The timer's deadline pass. Each step guarded: a scheduled task that throws is never run again, and then nothing
     * on the bus would end at its deadline any more (a review made it throw through a callback that published again).
     */
    private void expirePublishes() {
        long now = System.nanoTime();
        for (StreamPublisher p : publishers.values()) {
            guarded("publish deadlines of " + p.stream(), () -> p.expire(now));
        }
        if (inboundSpan != null) guarded("publish deadlines of the " + inboundSpan.stream(), () -> inboundSpan.expire(now));
        guarded("held publishes' deadlines", () -> guard.expireParked(now));
        guarded("deadlines of publishes behind retries", () -> lanes.expire(now));
        if (callers != null) {
            guarded("unanswered publishes on connections of their own", () -> callers.settle(now, s -> {
                StreamPublisher p = publishers.get(s);
                if (p != null) p.resume();
            }));
        }
    }

    private static void guarded(String what, Runnable step) {
        try {
            step.run();
        } catch (RuntimeException e) {
            log.atError().setCause(e).log("Enforcing " + what + " failed; tried again at the next tick");
        }
    }

    /** Streams this bus holds a publisher for (diagnostics and tests). */
    int publisherCount() {
        return publishers.size();
    }

    /** For the consumer and the tools path in this package. */
    Redis redis() {
        return redis;
    }

    ScheduledExecutorService maintenance() {
        return maintenance;
    }

    /** The timer thread: for tasks that only hand work on (retries, deadlines), never for a blocking call. */
    ScheduledExecutorService timers() {
        return timers;
    }

    StreamGuard guard() {
        return guard;
    }

    RetryLanes lanes() {
        return lanes;
    }

    Relaying relaying() {
        return relaying;
    }

    // ---- provisioning --------------------------------------------------------------------------------------

    @Override
    public void ensureStreams() {
        ensureStreams(config.platforms());
    }

    @Override
    public void ensureStreams(List<String> platforms) {
        Topology t = topology();
        Map<String, String> groups = new LinkedHashMap<>();
        NodeRole role = config.role();
        if (role == NodeRole.WORKER || role == NodeRole.STANDALONE) {
            for (String s : t.inboundStreams()) groups.put(s, t.workerGroup());
        }
        if (role == NodeRole.GATEWAY || role == NodeRole.STANDALONE) {
            for (String p : platforms) {
                if (Topology.hasSharedGatewayGroup(p)) groups.put(t.outboundStream(p), t.gatewayGroup(p));
            }
        }
        if (role == NodeRole.TOOLS) {
            // Only the dedicated tools service consumes the tools stream; standalone runs tools in-process.
            groups.put(t.toolsStream(), t.toolsGroup());
        }
        if (role == NodeRole.RELAY) {
            for (String o : t.outboxes(platforms)) groups.put(o, t.relayGroup());
        }
        if (config.publishVia() == io.stargazer.bus.PublishVia.RELAY) {
            // The relay group on each outbox this node writes (from the outbox's first entry: see ensureGroup), so that
            // what it writes before the relay first runs is relayed too; the relay itself reads every outbox.
            for (String o : relaying.outboxes()) groups.put(o, t.relayGroup());
        }
        log.atDebug().addKeyValue("node_role", role.wireName()).addKeyValue("node_id", config.nodeId())
                .addKeyValue("streams_to_provision", groups.size()).log("Provisioning consumer groups");
        groups.forEach(this::ensureGroup);
    }

    @Override
    public boolean ensureGroup(String stream, String group) {
        try {
            // An outbox's relay group starts at its first entry: whoever creates it, nothing written before is skipped.
            String from = group.equals(topology().relayGroup()) && group.equals(topology().groupFor(stream)) ? "0" : "$";
            await(async.xgroupCreate(XReadArgs.StreamOffset.from(stream, from), group, XGroupCreateArgs.Builder.mkstream()),
                    "creating group '" + group + "' on '" + stream + "'");
            log.atInfo().addKeyValue("stream", stream).addKeyValue("group", group).log("Created " + groupText(stream, group));
            return true;
        } catch (RedisServerException e) {
            if ("BUSYGROUP".equals(e.code())) {
                log.atDebug().addKeyValue("stream", stream).addKeyValue("group", group).log("Consumer group already exists");
                return false;
            }
            throw new ProvisioningException(stream, group, e);
        } catch (StargazerException e) {
            throw new ProvisioningException(stream, group, e);
        }
    }

    @Override
    public boolean deleteGroup(String stream, String group) {
        Boolean destroyed = await(async.xgroupDestroy(stream, group), "deleting group '" + group + "' on '" + stream + "'");
        log.atInfo().addKeyValue("stream", stream).addKeyValue("group", group).log("Deleted " + groupText(stream, group));
        return Boolean.TRUE.equals(destroyed);
    }

    @Override
    public java.time.Duration ping() {
        long t0 = System.nanoTime();
        await(async.ping(), "PING");
        return java.time.Duration.ofNanos(System.nanoTime() - t0);
    }

    @Override
    public void setAlive(String key, java.time.Duration ttl) {
        Topology.checkName("key", key);
        await(async.set(key, ALIVE, io.lettuce.core.SetArgs.Builder.px(ttl.toMillis())), "SET " + key);
    }

    @Override
    public boolean isAlive(String key) {
        return await(async.exists(key), "EXISTS " + key) > 0;
    }

    private static final byte[] ALIVE = {'1'};

    // ---- operating: dead letters, pausing ------------------------------------------------------------------

    @Override
    public io.stargazer.bus.DeadLetters deadLetters() {
        return deadLetters;
    }

    @Override
    public boolean pause(String stream, String group) {
        Topology.checkName("stream", stream);
        Topology.checkName("group", group);
        requireGroup(stream, group);
        boolean set = setPauseFlag(stream, group);
        String which = groupText(stream, group);
        log.atInfo().addKeyValue("stream", stream).addKeyValue("group", group).log(set ? "Paused " + which : "The " + which + " was already paused");
        return set;
    }

    /**
     * Sets the pause flag of {@code group} on {@code stream} unless it is set ({@code sg_pause}, or {@code SET NX}
     * under scripts); true when this call set it. Throws the server's refusal, translated. Also what a paused consumer
     * calls to set a flag lost with its group again (StreamConsumer).
     */
    boolean setPauseFlag(String stream, String group) {
        String key = Dedupe.pauseKeyName(stream, group);
        try {
            return redis.code().functions()
                    ? await(async.<Long>fcall("sg_pause", io.lettuce.core.ScriptOutputType.INTEGER, new String[] {stream, key}, group.getBytes(StandardCharsets.UTF_8)), "sg_pause " + key) == 1
                    : await(async.set(key, ALIVE, io.lettuce.core.SetArgs.Builder.nx()), "SET " + key) != null;
        } catch (RuntimeException e) {
            redis.code().noticed(e);
            throw e;
        }
    }

    /**
     * Refuses an unknown group before a pause: the flag of a mistyped group would report success and stop nobody, and
     * stay for ever (it has no expiry). Checked apart from the flag's SET, so a group deleted in between still gets
     * its flag; that race is the caller's to lose, not a typo's.
     */
    private void requireGroup(String stream, String group) {
        List<Object> groups;
        try {
            groups = await(async.xinfoGroups(stream), "XINFO GROUPS " + stream);
        } catch (RedisServerException e) {
            if (!noSuchKey(e)) throw e;
            throw new ConfigException("group", "'" + group + "' is not a consumer group of '" + stream + "': the stream does not exist");
        }
        List<String> names = new ArrayList<>();
        for (Object g : groups) names.add(Replies.text(Replies.pairs((List<?>) g).get("name")));
        if (!names.contains(group)) {
            throw new ConfigException("group", "'" + group + "' is not a consumer group of '" + stream + "' ("
                    + (names.isEmpty() ? "it has none" : "its groups: " + String.join(", ", names)) + ")");
        }
    }

    @Override
    public boolean resume(String stream, String group) {
        String key = Dedupe.pauseKeyName(Topology.checkName("stream", stream), Topology.checkName("group", group));
        boolean removed;
        try {
            removed = (redis.code().functions()
                    ? await(async.<Long>fcall("sg_resume", io.lettuce.core.ScriptOutputType.INTEGER, new String[] {stream, key}, group.getBytes(StandardCharsets.UTF_8)), "sg_resume " + key)
                    : await(async.del(key), "DEL " + key)) > 0;
        } catch (RuntimeException e) {
            redis.code().noticed(e);
            throw e;
        }
        String which = groupText(stream, group);
        log.atInfo().addKeyValue("stream", stream).addKeyValue("group", group).log(removed ? "Resumed " + which : "The " + which + " was not paused");
        return removed;
    }

    @Override
    public boolean paused(String stream, String group) {
        String key = Dedupe.pauseKeyName(Topology.checkName("stream", stream), Topology.checkName("group", group));
        return await(async.exists(key), "EXISTS " + key) > 0;
    }

    @Override
    public List<String> pausedInboundStreams(String group) {
        String inbound = topology().inboundStream();
        String suffix = ":" + "paused:" + Topology.checkName("group", group);
        List<String> out = new ArrayList<>();
        if (paused(inbound, group)) out.add(inbound);
        // A partition of any count is INBOUND:{part-I-of-N~K} (Topology.partitionNames), its flag beside it in its slot.
        io.lettuce.core.ScanArgs match = io.lettuce.core.ScanArgs.Builder.limit(1000)
                .match(RedisGlob.literal(inbound) + ":{part-*}" + RedisGlob.literal(suffix));
        java.util.regex.Pattern name = java.util.regex.Pattern.compile(java.util.regex.Pattern.quote(inbound)
                + ":\\{part-(\\d+)-of-(\\d+)~\\d+}");
        try {
            var keys = io.lettuce.core.ScanIterator.scan(redis.sharedSync(), match);
            while (keys.hasNext()) {
                String key = keys.next();
                String stream = key.substring(0, key.length() - suffix.length());
                java.util.regex.Matcher m = name.matcher(stream);
                if (!m.matches()) continue;
                int n = Integer.parseInt(m.group(2));
                if (n >= 2 && n <= Topology.MAX_INBOUND_PARTITIONS && Topology.partitionNames(inbound, n).contains(stream)) out.add(stream);
            }
        } catch (RuntimeException e) {
            throw Redis.translate(e, "SCAN for the pause flags of '" + inbound + "' partitions");
        }
        out.sort(null);
        return out;
    }

    // ---- publishing ----------------------------------------------------------------------------------------

    @Override
    public CompletableFuture<String> publishInboundAsync(Envelope envelope) {
        return publishInboundAsync(envelope, PublishOptions.NONE);
    }

    @Override
    public CompletableFuture<String> publishInboundAsync(Envelope envelope, PublishOptions options) {
        return publishAsync(topology().inboundStreamFor(envelope.channelId()), envelope, options);
    }

    @Override
    public String publishInbound(Envelope envelope) {
        return publishInbound(envelope, PublishOptions.NONE);
    }

    @Override
    public String publishInbound(Envelope envelope, PublishOptions options) {
        refuseOnIoThread("publishInbound");
        return publishBlocking(topology().inboundStreamFor(envelope.channelId()), envelope, options);
    }

    @Override
    public CompletableFuture<String> publishOutboundAsync(String platform, Envelope envelope) {
        return publishOutboundAsync(platform, envelope, PublishOptions.NONE);
    }

    @Override
    public CompletableFuture<String> publishOutboundAsync(String platform, Envelope envelope, PublishOptions options) {
        String stream;
        try {
            stream = topology().outboundStream(platform);
        } catch (RuntimeException e) {
            return CompletableFuture.failedFuture(e);
        }
        return publishAsync(stream, envelope, options);
    }

    @Override
    public String publishOutbound(String platform, Envelope envelope) {
        return publishOutbound(platform, envelope, PublishOptions.NONE);
    }

    @Override
    public String publishOutbound(String platform, Envelope envelope, PublishOptions options) {
        refuseOnIoThread("publishOutbound");
        String stream;
        try {
            stream = topology().outboundStream(platform);
        } catch (RuntimeException e) {
            return join(CompletableFuture.failedFuture(e));
        }
        return publishBlocking(stream, envelope, options);
    }

    @Override
    public String publish(String stream, Envelope envelope) {
        return publish(stream, envelope, PublishOptions.NONE);
    }

    @Override
    public String publish(String stream, Envelope envelope, PublishOptions options) {
        refuseOnIoThread("publish");
        return publishBlocking(stream, envelope, options);
    }

    @Override
    public CompletableFuture<String> publishAsync(String stream, Envelope envelope) {
        return publishOnce(stream, envelope, null);
    }

    @Override
    public CompletableFuture<String> publishAsync(String stream, Envelope envelope, PublishOptions options) {
        return publishAsync(stream, envelope, options, stream);
    }

    /**
     * {@link #publishAsync(String, Envelope, PublishOptions)} whose publish meters name the stream {@code destination}:
     * how a publish to a stream named by input (a tools request's reply_to) keeps the meters' tags bounded.
     */
    public CompletableFuture<String> publishAsync(String stream, Envelope envelope, PublishOptions options, String destination) {
        if (options.maxAttempts() <= 1) {
            return publishOnce(stream, envelope, options.dedupeKey(), false, RetryLanes.NOW, destination);
        }
        CompletableFuture<String> result = new CompletableFuture<>();
        attempt(lanes.retry(stream, result), envelope, options, 1, true, null, destination, System.nanoTime() + config.publishTimeout().toNanos());
        return result;
    }

    /**
     * One try of a retrying publish; a failure that may pass is tried again after a backoff, up to the options' bound.
     * Its first try takes its place among the stream's publishes; a later one is let go by the stream's lane, in turn.
     */
    private void attempt(RetryLanes.Retry r, Envelope envelope, PublishOptions options, int n, boolean first,
            PublishOutcomeUnknownException unknown, String destination, long waitConnectedUntil) {
        CompletableFuture<String> tried;
        try {
            tried = publishOnce(r.stream, envelope, options.dedupeKey(), false, first ? r.place : IN_TURN, destination);
        } catch (RuntimeException e) {
            tried = CompletableFuture.failedFuture(e);
        }
        CompletableFuture<String> result = r.result;
        tried.whenComplete((id, error) -> {
            if (error == null) {
                lanes.settled(r);
                result.complete(id);
                return;
            }
            Throwable e = Failures.unwrap(error);
            // A try whose outcome is unknown may have stored the entry: a later try that surely wrote nothing (refused,
            // full, the bus closing) does not make the publish's outcome "not written".
            PublishOutcomeUnknownException stillUnknown = e instanceof PublishOutcomeUnknownException u ? u : unknown;
            Throwable outcome = stillUnknown != null ? stillUnknown : e;
            // A caller that cancelled (or completed) its publish expects nothing more of it: no more tries, and the
            // publishes waiting behind it go on (they waited for the whole retry budget).
            // Refused by the client while it has no connection (Redis restarting): nothing reached Redis, so such a try
            // does not use up an attempt while the publish timeout since the call lasts. Before, the tries were spent
            // within 0.3 s of an outage's start and a gateway refused messages a reconnect a moment later would have
            // stored (tests from outside, helper-86).
            boolean waiting = notConnected(e) && System.nanoTime() - waitConnectedUntil < 0;
            if ((n >= options.maxAttempts() && !waiting) || publishingClosed.get() || !mayPass(e) || result.isDone()) {
                lanes.settled(r);
                result.completeExceptionally(outcome);
                return;
            }
            int next = waiting ? n : n + 1;
            long backoff = Failures.backoffMillis(java.time.Duration.ofMillis(100), waiting ? Redis.MAX_RECONNECT_DELAY
                    : java.time.Duration.ofSeconds(2), n);
            log.atDebug().addKeyValue("stream", r.stream).addKeyValue("attempt", n).addKeyValue("backoff_ms", backoff)
                    .log("Publish failed; trying again with the same dedupe key: " + e.getMessage());
            boolean held = lanes.hold(r, outcome, () -> {
                // A close() that came meanwhile ends it with this try's outcome, not with its own refusal; a caller
                // that cancelled it meanwhile ends it too.
                if (publishingClosed.get() || result.isDone()) {
                    lanes.settled(r);
                    result.completeExceptionally(outcome);
                } else {
                    attempt(r, envelope, options, next, false, stillUnknown, destination, waitConnectedUntil);
                }
            });
            if (!held) {
                result.completeExceptionally(outcome); // the bus closed
                return;
            }
            try {
                timers.schedule(() -> lanes.due(r), backoff, TimeUnit.MILLISECONDS);
            } catch (java.util.concurrent.RejectedExecutionException closing) {
                lanes.settled(r);
                result.completeExceptionally(outcome);
            }
        });
    }

    /** A try the client refused because it had no connection at the moment: nothing was written. */
    private static boolean notConnected(Throwable e) {
        for (Throwable c = e; c != null; c = c.getCause() == c ? null : c.getCause()) {
            if (c instanceof PublishOutcomeUnknownException) return false;
            if (String.valueOf(c.getMessage()).contains("Currently not connected")) return true;
        }
        return false;
    }

    /** Failures a later try may not meet: no answer, a lost connection, a server that cannot serve now, a full queue or stream. */
    private static boolean mayPass(Throwable e) {
        return Failures.isInfrastructure(e) || e instanceof PublishQueueFullException || e instanceof BackpressureException;
    }

    /** How an answer was stored: its id, and whether the source entry was acknowledged in the same step. */
    record Answered(String id, boolean acknowledged) {
    }

    /**
     * Stores {@code answer} on {@code stream} with the dedupe key of entry {@code sourceId} of {@code sourceStream} and,
     * where one script can touch both streams (one server, or one cluster slot), acknowledges the entry in the same
     * script (Delivery.reply). A stream at its SAFE cap goes the two-step way, through the publisher's backpressure.
     */
    CompletableFuture<Answered> answer(String stream, Envelope answer, String sourceStream, String group, String sourceId) {
        entering.incrementAndGet(); // as in publishOnce
        try {
            return answerEntered(stream, answer, sourceStream, group, sourceId);
        } finally {
            entering.decrementAndGet();
        }
    }

    private CompletableFuture<Answered> answerEntered(String stream, Envelope answer, String sourceStream, String group, String sourceId) {
        String dedupeKey = Dedupe.replyKey(sourceStream, sourceId);
        // Relay mode: the answer goes to this node's outbox, carrying its target and dedupe key, acknowledged as one step.
        String outbox;
        try {
            if (redis.cluster()) Dedupe.checkHashesInSlot(stream);
            outbox = relaying.outboxFor(stream, answer.platform());
        } catch (RuntimeException e) {
            return CompletableFuture.failedFuture(e);
        }
        String written = outbox == null ? stream : outbox;
        boolean oneStep = !redis.cluster()
                || io.lettuce.core.cluster.SlotHash.getSlot(written) == io.lettuce.core.cluster.SlotHash.getSlot(sourceStream);
        // Traced answers go the two-step way (publish with the derived dedupe key, then ack): the one-step script
        // writes no trace fields, and the dedupe key keeps the answer single all the same.
        if (!oneStep || tracing != null || guard.isFull(written) || publishingClosed.get()) {
            return publishOnce(stream, answer, dedupeKey).thenApply(id -> new Answered(id, false));
        }
        byte[] payload;
        try {
            Topology.checkName("stream", stream);
            payload = WireFormat.encode(answer);
        } catch (RuntimeException e) {
            return CompletableFuture.failedFuture(e);
        }
        if (payload.length > config.maxEnvelopeBytes()) {
            return CompletableFuture.failedFuture(new EnvelopeTooLargeException(stream, payload.length, config.maxEnvelopeBytes()));
        }
        byte[] traceId = WireFormat.traceIdFor(answer).getBytes(StandardCharsets.UTF_8);
        byte[] dk = dedupeKey.getBytes(StandardCharsets.UTF_8);
        List<byte[]> tail;
        if (outbox == null) {
            tail = List.of(payload, traceId, dk);
        } else {
            // sg_reply's relay form: the reply key dedupes in the outbox; the entry carries the same key for its target.
            tail = List.of(dk, new byte[0], Relaying.TARGET, stream.getBytes(StandardCharsets.UTF_8), Relaying.DEDUPE, dk,
                    WireFormat.PAYLOAD_FIELD.getBytes(StandardCharsets.US_ASCII), payload,
                    WireFormat.TRACE_ID_FIELD.getBytes(StandardCharsets.US_ASCII), traceId,
                    "dedupe_key".getBytes(StandardCharsets.US_ASCII), dk);
        }
        return replyStep(written, sourceStream, group, sourceId, tail, "answering on stream '" + stream + "'");
    }

    /**
     * The relay's move of outbox entry {@code e} (of {@code outbox}, read with {@code group}) to its target: added with
     * the dedupe key derived from the outbox entry, so a redelivered entry adds nothing new, and with the entry's own
     * dedupe key, so it dedupes in the target as its publish would have; the outbox entry acknowledged in the same step
     * (sg_reply's relay form). A target at its SAFE cap waits ({@link Relaying.TargetFull}).
     */
    CompletableFuture<Answered> relay(String outbox, String group, RawEntry e) {
        Relaying.Header h = Relaying.header(e);
        if (guard.isFull(h.target())) {
            guard.countPublish(h.target()); // keeps the re-checks going until there is room
            return CompletableFuture.failedFuture(new Relaying.TargetFull(h.target()));
        }
        List<byte[]> tail = new ArrayList<>();
        tail.add(Dedupe.replyKey(outbox, e.id()).getBytes(StandardCharsets.UTF_8));
        tail.add(h.dedupeKey().getBytes(StandardCharsets.UTF_8));
        tail.addAll(e.flatFields().subList(Relaying.HEADER, e.flatFields().size()));
        CompletableFuture<Answered> moved = replyStep(h.target(), outbox, group, e.id(), tail, "relaying to stream '" + h.target() + "'");
        // Counted on the outbox too, so that this guard trims what the relay has moved once the outbox reaches its cap.
        // Its writers' guards do so only as they publish: the operator's outbox is written only by replays, from a
        // process that then ends, and kept every entry it ever put back.
        moved.thenRun(() -> guard.countPublish(outbox));
        return moved;
    }

    /**
     * sg_reply: adds an entry to {@code stream} (its arguments after the XADD options: {@code tail}) and acknowledges the
     * source entry, never written again on a new connection ({@link WriteOnce}): Lettuce wrote a step whose reply was
     * lost again on its next connection, where it ran again and, past SG_DEDUPE_WINDOW_MS, stored its entry a second
     * time (the source entry acknowledged by the first run): a relay's move (RelayOnceInOrderIT) or a Delivery.reply
     * answer (ReplyIT). Failed instead, its outcome unknown, the delivery is tried again only if the entry is still
     * pending here (StreamConsumer confirms that before a retry).
     */
    private CompletableFuture<Answered> replyStep(String stream, String sourceStream, String group, String sourceId, List<byte[]> tail,
            String what) {
        List<String> opts = guard.trimArgsFor(stream);
        List<byte[]> argv = new ArrayList<>();
        argv.add(Long.toString(config.dedupeWindow().toMillis()).getBytes(StandardCharsets.US_ASCII));
        argv.add(group.getBytes(StandardCharsets.UTF_8));
        argv.add(sourceId.getBytes(StandardCharsets.US_ASCII));
        argv.add(Integer.toString(opts.size()).getBytes(StandardCharsets.US_ASCII));
        for (String o : opts) argv.add(o.getBytes(StandardCharsets.US_ASCII));
        argv.addAll(tail);
        String[] hashes = Dedupe.hashNames(stream);
        String[] keys = {stream, hashes[0], hashes[1], sourceStream};
        CompletableFuture<Answered> out = new CompletableFuture<>();
        // Written by the stream's publisher in its turn among the publishes: this thread's next publish to the stream
        // (through the shared connection or one of its own) comes after this answer.
        byte[][] args = argv.toArray(byte[][]::new);
        long deadline = System.nanoTime() + config.publishTimeout().toNanos();
        CompletableFuture<String> written = StreamPublisher.onCurrent(this::publisher, stream, p -> p.submitStep(
                () -> redis.writeOnce().dispatch(async, redis.code().valueCommand(Dedupe.REPLY_SCRIPT, keys, args)), deadline));
        written.whenComplete((id, e) -> {
            if (e != null) {
                out.completeExceptionally(Redis.translate(e, what));
            } else {
                guard.countPublish(stream);
                out.complete(new Answered(id, true));
            }
        });
        return out;
    }

    private CompletableFuture<String> publishOnce(String stream, Envelope envelope, String dedupeKey) {
        return publishOnce(stream, envelope, dedupeKey, false, RetryLanes.NOW, stream);
    }

    /** {@link #publishOnce}'s place for a retrying publish's later try: the stream's lane lets it go in its turn. */
    private static final long IN_TURN = -1;

    /**
     * A blocking publish: once, on this thread's own connection where it can ({@link StreamPublisher}); a retrying one
     * goes the asynchronous way, its later tries running on a timer thread.
     */
    private String publishBlocking(String stream, Envelope envelope, PublishOptions options) {
        if (options.maxAttempts() > 1) {
            return join(publishAsync(stream, envelope, options));
        }
        return join(publishOnce(stream, envelope, options.dedupeKey(), true, RetryLanes.NOW, stream));
    }

    /**
     * {@code place}: {@link RetryLanes#NOW} for a publish made now, a retrying publish's own place for its first try, or
     * {@link #IN_TURN}; behind a retry of the stream, the first two wait in its lane. {@code destination}: the stream's
     * name in the publish meters.
     */
    private CompletableFuture<String> publishOnce(String stream, Envelope envelope, String dedupeKey, boolean blocking, long place,
            String destination) {
        // Counted before the check, so that close() (which sets the flag, then waits for the count) either sees this
        // publish and waits for it to be handed on, or this publish sees the flag: none is written after close().
        entering.incrementAndGet();
        try {
            return publishOnceEntered(stream, envelope, dedupeKey, blocking, place, destination);
        } finally {
            entering.decrementAndGet();
        }
    }

    private CompletableFuture<String> publishOnceEntered(String stream, Envelope envelope, String dedupeKey, boolean blocking, long place,
            String destination) {
        if (publishingClosed.get()) {
            return CompletableFuture.failedFuture(new StargazerException("the bus is closed; cannot publish to '" + stream + "'"));
        }
        byte[] payload;
        try {
            Topology.checkName("stream", stream);
            payload = WireFormat.encode(envelope);
        } catch (RuntimeException e) {
            return CompletableFuture.failedFuture(e);
        }
        if (payload.length > config.maxEnvelopeBytes()) {
            return CompletableFuture.failedFuture(new EnvelopeTooLargeException(stream, payload.length, config.maxEnvelopeBytes()));
        }
        String outbox;
        try {
            outbox = relaying.outboxFor(stream, envelope.platform());
            if (dedupeKey != null && outbox != null) relaying.checkKey(outbox, stream, dedupeKey);
            if (dedupeKey != null && redis.cluster()) Dedupe.checkHashesInSlot(stream);
        } catch (RuntimeException e) {
            return CompletableFuture.failedFuture(e);
        }
        BusTracing tr = tracing;
        BusTracing.Send span = tr == null ? null : tr.send(stream, destination, envelope.traceId());
        String parent = span == null ? null : span.traceparent();
        byte[][] trace = null;
        String traceId;
        if (parent == null) {
            traceId = WireFormat.traceIdFor(envelope);
        } else {
            // A generated trace_id is the trace's own id (wire format: traceparent is 00-<trace id>-<span id>-<flags>).
            String own = envelope.traceId();
            traceId = own != null && !own.isEmpty() ? own : parent.substring(3, 35);
            String state = span.tracestate();
            trace = new byte[][] {parent.getBytes(StandardCharsets.US_ASCII),
                    state == null ? new byte[0] : state.getBytes(StandardCharsets.US_ASCII)};
        }
        BusHooks h = hooks;
        long start = h == BusHooks.NONE ? 0 : System.nanoTime();
        long deadline = System.nanoTime() + config.publishTimeout().toNanos();
        byte[] traceIdBytes = traceId.getBytes(StandardCharsets.UTF_8);
        byte[][] traceFields = trace;
        String written = outbox == null ? stream : outbox;
        CompletableFuture<String> id = place == IN_TURN ? null : lanes.offer(stream, place, deadline, () -> guard.waiting(written),
                // Sent from whichever thread settles the retry: never on a connection of the caller's. A retrying
                // publish's first try begins here, so its timeout counts from now (SG_PUBLISH_TIMEOUT_MS is per try);
                // with its call's deadline, long passed after a wait behind another retry, the bus's timer failed it as
                // unanswered just after sending it. A publish made now keeps its call's deadline, waiting included.
                () -> released(stream, () -> toGuard(stream, outbox, payload, traceIdBytes,
                        place == RetryLanes.NOW ? deadline : System.nanoTime() + config.publishTimeout().toNanos(),
                        dedupeKey, traceFields, false, false, destination)));
        if (id == null) {
            id = toGuard(stream, outbox, payload, traceIdBytes, deadline, dedupeKey, trace, blocking, true, destination);
        }
        backlog.published(written);
        if (h != BusHooks.NONE) {
            id.whenComplete((entryId, e) -> h.published(destination, System.nanoTime() - start, e));
        }
        if (span != null) {
            id.whenComplete(span::end);
        }
        if (log.isDebugEnabled()) {
            String content = envelope.content();
            id.thenAccept(entryId -> log.atDebug().addKeyValue("stream", stream).addKeyValue("stream_msg_id", entryId)
                    .addKeyValue("platform", envelope.platform()).addKeyValue("channel_id", envelope.channelId())
                    .addKeyValue("trace_id", traceId).addKeyValue("content_len", content == null ? 0 : content.length())
                    .log("Published event"));
        }
        return id;
    }

    /** In relay mode to the role's outbox, which the guard keeps within its cap; the relay adds it to the stream. */
    private CompletableFuture<String> toGuard(String stream, String outbox, byte[] payload, byte[] traceId, long deadline,
            String dedupeKey, byte[][] trace, boolean blocking, boolean limited, String destination) {
        return outbox == null
                ? guard.publish(stream, payload, traceId, deadline, dedupeKey, trace, null, blocking, limited, destination)
                : guard.publish(outbox, payload, traceId, deadline, dedupeKey, trace, stream.getBytes(StandardCharsets.UTF_8), false, limited, outbox);
    }

    /**
     * A publish its stream's lane lets go: counted and checked as in publishOnce, so that none is written after close();
     * not held to the queue limit again, having been admitted within it.
     */
    private CompletableFuture<String> released(String stream, java.util.function.Supplier<CompletableFuture<String>> send) {
        entering.incrementAndGet();
        try {
            if (publishingClosed.get()) {
                return CompletableFuture.failedFuture(RetryLanes.closedBehindARetry(stream));
            }
            return send.get();
        } finally {
            entering.decrementAndGet();
        }
    }

    /** Waits for a publish and rethrows its failure as the bus exception it is. */
    static <T> T join(CompletableFuture<T> f) {
        try {
            return f.join();
        } catch (CompletionException e) {
            throw Redis.translate(e.getCause() == null ? e : e.getCause(), "publishing");
        }
    }

    /**
     * A blocking call on a Redis I/O thread would wait for a reply that only that thread can read: it would hang until
     * the command timeout and stall every other user of the connection meanwhile. Refused before anything is sent.
     * Lettuce's event loops are Netty threads ({@link io.netty.util.concurrent.FastThreadLocalThread}); the publish
     * loop is checked too in case Lettuce was given threads of another kind.
     */
    private void refuseOnIoThread(String call) {
        if (Thread.currentThread() instanceof io.netty.util.concurrent.FastThreadLocalThread || redis.publishLoop().inEventLoop()) {
            throw new IllegalStateException(call + " blocks, and was called on a Redis I/O thread ("
                    + Thread.currentThread().getName() + "), probably from a completion stage of a bus future: use the "
                    + "*Async form and chain on its future, or move the work off the I/O thread (thenApplyAsync(.., executor))");
        }
    }

    // ---- consuming -----------------------------------------------------------------------------------------

    @Override
    public Subscription subscribe(ConsumerConfig consumerConfig, MessageHandler handler) {
        return subscribeAsync(consumerConfig, Handlers.async(handler));
    }

    @Override
    public Subscription subscribeAsync(ConsumerConfig consumerConfig, AsyncMessageHandler handler) {
        return subscribe(consumerConfig, handler, RawEntry::decode);
    }

    @Override
    public Subscription subscribeInbound(java.util.function.UnaryOperator<ConsumerConfig.Builder> customize, MessageHandler handler) {
        return subscribeInboundAsync(customize, Handlers.async(handler));
    }

    /**
     * As the interface's, with one reader for the partitions on a single server ({@link PartitionReader}) when every
     * partition's consumer has the same name (the preset; {@code customize} could give each its own).
     */
    @Override
    public Subscription subscribeInboundAsync(java.util.function.UnaryOperator<ConsumerConfig.Builder> customize, AsyncMessageHandler handler) {
        List<String> streams = topology().inboundStreams();
        Map<String, ConsumerConfig> configs = new java.util.LinkedHashMap<>();
        for (String s : streams) configs.put(s, customize.apply(consumer(s, topology().workerGroup())).build()); // once per partition
        // spanStreams: the inbound partitions, when there are several on a single server.
        boolean oneReader = !spanStreams.isEmpty()
                && configs.values().stream().map(ConsumerConfig::consumerName).distinct().count() == 1;
        if (!oneReader) {
            return PartitionedSubscription.start(topology().inboundStream(), streams, s -> subscribeAsync(configs.get(s), handler));
        }
        // One handler pool for the partitions too, of as many threads as their pools had together (PoolShare).
        PartitionReader reader = new PartitionReader(redis, topology().inboundStream(), StreamConsumer.log,
                configs.values().stream().mapToInt(ConsumerConfig::concurrency).sum());
        Subscription sub = PartitionedSubscription.start(topology().inboundStream(), streams,
                s -> subscribe(configs.get(s), handler, RawEntry::decode, reader));
        reader.start();
        return sub;
    }

    /** A subscription whose entries are read by {@code decoder} (the relay's outboxes) instead of as wire-format envelopes. */
    Subscription subscribe(ConsumerConfig consumerConfig, AsyncMessageHandler handler, java.util.function.Function<RawEntry, Envelope> decoder) {
        return subscribe(consumerConfig, handler, decoder, null);
    }

    /** {@code reader}: the shared reader of the partitions this one is among, or null for a reader of its own. */
    private Subscription subscribe(ConsumerConfig consumerConfig, AsyncMessageHandler handler,
            java.util.function.Function<RawEntry, Envelope> decoder, PartitionReader reader) {
        StreamConsumer consumer;
        synchronized (subscriptions) {
            // Checked and added under the lock close() takes its list under: none is added after close() looked.
            if (closed.get()) {
                throw new StargazerException("the bus is closed; cannot subscribe to '" + consumerConfig.stream() + "'");
            }
            for (Subscription open : subscriptions) {
                // One consumer's pending entries are its own: a second subscription under its name would read the first
                // one's entries from the pending list (after a reconnect, and both at a restart) and run them again.
                if (open.stream().equals(consumerConfig.stream()) && open.group().equals(consumerConfig.group())
                        && open.consumerName().equals(consumerConfig.consumerName())) {
                    throw new ConfigException("consumerName", "stream '" + consumerConfig.stream() + "' group '" + consumerConfig.group()
                            + "' already has a subscription of consumer '" + consumerConfig.consumerName() + "' open on this bus; two"
                            + " subscriptions of one consumer share its pending entries and run each other's again after a reconnect"
                            + " or a restart: give each its own consumerName (ConsumerConfig.Builder.consumerName), or close the first");
                }
            }
            consumer = new StreamConsumer(this, consumerConfig, handler, s -> {
                subscriptions.remove(s);
                StreamConsumer c = (StreamConsumer) s;
                closedButHolding.removeIf(StreamConsumer::settledAll);
                if (!c.settledAll()) closedButHolding.add(c);
                hooks.unsubscribed(s);
            }, decoder, reader);
            if (reader != null) reader.add(consumer);
            subscriptions.add(consumer);
        }
        // Before it starts: its first handlings (a backlog) are timed in a series that exists by then.
        hooks.subscribed(consumer);
        try {
            consumer.start();
        } catch (RuntimeException e) {
            hooks.unsubscribed(consumer);
            throw e;
        }
        return consumer;
    }

    // ---- diagnostics ---------------------------------------------------------------------------------------

    @Override
    public Optional<StreamInfo> streamInfo(String stream) {
        try {
            return describeStream(stream);
        } catch (RuntimeException e) {
            return Optional.empty();
        }
    }

    @Override
    public Optional<StreamInfo> describeStream(String stream) {
        Map<String, Object> m;
        try {
            m = Replies.pairs(await(async.xinfoStream(stream), "XINFO STREAM " + stream));
        } catch (RedisServerException e) {
            // Redis, Valkey (6.2 on): "ERR no such key" for a stream that does not exist.
            if ("ERR".equals(e.code()) && e.getMessage() != null && e.getMessage().endsWith("ERR no such key")) return Optional.empty();
            throw e;
        }
        Object first = m.get("first-entry");
        String firstId = first instanceof List<?> l && !l.isEmpty() ? Replies.text(l.get(0)) : null;
        Object added = m.get("entries-added");
        return Optional.of(new StreamInfo(stream, Replies.num(m.get("length")), Replies.num(m.get("groups")), firstId,
                Replies.text(m.get("last-generated-id")), added == null ? null : Replies.num(added)));
    }

    @Override
    public List<StreamEntry> read(String stream, String afterId, int count) {
        Topology.checkName("stream", stream);
        Topology.checkName("afterId", afterId);
        if (count <= 0) {
            throw new ConfigException("count", "'" + count + "' must be greater than zero");
        }
        List<StreamMessage<String, byte[]>> messages = await(
                async.xread(XReadArgs.Builder.count(count), XReadArgs.StreamOffset.from(stream, afterId)), "XREAD");
        List<StreamEntry> out = new ArrayList<>(messages.size());
        for (StreamMessage<String, byte[]> m : messages) {
            try {
                out.add(new StreamEntry(m.getId(), WireFormat.decodeEntry(m.getBody()), null));
            } catch (MalformedEntryException e) {
                out.add(new StreamEntry(m.getId(), null, e.getMessage()));
            }
        }
        return out;
    }

    @Override
    public long pendingCount(String stream, String group) {
        try {
            return await(async.xpending(stream, group), "XPENDING").getCount();
        } catch (RuntimeException e) {
            return 0;
        }
    }

    @Override
    public Optional<String> oldestPendingId(String stream, String group) {
        try {
            io.lettuce.core.models.stream.PendingMessages p = await(async.xpending(stream, group), "XPENDING");
            return p.getCount() == 0 || p.getMessageIds() == null ? Optional.empty()
                    : Optional.ofNullable(p.getMessageIds().getLower().getValue());
        } catch (RuntimeException e) {
            return Optional.empty();
        }
    }

    @Override
    public List<GroupInfo> groups(String stream) {
        try {
            return Replies.groups(await(async.xinfoGroups(stream), "XINFO GROUPS"));
        } catch (RuntimeException e) {
            return List.of();
        }
    }

    @Override
    public List<ConsumerInfo> consumers(String stream, String group) {
        List<Object> reply;
        try {
            reply = await(async.xinfoConsumers(stream, group), "XINFO CONSUMERS");
        } catch (RedisServerException e) {
            if (!(e instanceof RedisServerException.NoGroup) && !noSuchKey(e)) return List.of();
            // A missing group is an answer, not an unknown: an empty list would read as "a group nobody consumes".
            // requireGroup names the group's stream and the groups it has, as pause does.
            try {
                requireGroup(stream, group);
            } catch (ConfigException missing) {
                throw missing;
            } catch (RuntimeException unknown) {
                return List.of(); // Redis could not list the groups: unknown, as any other failure here
            }
            return List.of(); // created between the two calls: it has no consumer yet
        } catch (RuntimeException e) {
            return List.of();
        }
        List<ConsumerInfo> out = new ArrayList<>();
        for (Object c : reply) {
            Map<String, Object> m = Replies.pairs((List<?>) c);
            out.add(new ConsumerInfo(Replies.text(m.get("name")), Replies.num(m.get("pending")), Replies.num(m.get("idle"))));
        }
        return out;
    }

    /**
     * A group as the INFO lines name it in their text ("consumer group 'g' on stream 's'"), not only in key-values: Spring
     * Boot's default log pattern, as many others, leaves those out.
     */
    private static String groupText(String stream, String group) {
        return "consumer group '" + group + "' on stream '" + stream + "'";
    }

    /** Whether {@code e} says the key (a stream) does not exist, as XINFO answers for a missing stream. */
    static boolean noSuchKey(RedisServerException e) {
        return e.getMessage() != null && e.getMessage().toLowerCase(java.util.Locale.ROOT).contains("no such key");
    }

    private long length(String stream) {
        return await(async.xlen(stream), "XLEN");
    }

    /** Streams the backlog monitor holds state for (tests). */
    int backlogStreamCount() {
        return backlog.size();
    }

    /** Runs one backlog check at once; true when the stream is at eviction risk. For tests and the dashboard. */
    boolean checkBacklog(String stream) {
        return backlog.check(stream);
    }

    /** How many high-backlog episodes have been warned about (one log line each). */
    long backlogWarnings() {
        return backlog.warnings();
    }

    static <T> T await(RedisFuture<T> f, String what) {
        try {
            return f.get(DIAGNOSTIC_TIMEOUT_MS, TimeUnit.MILLISECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new StargazerException(what + " interrupted", e);
        } catch (Exception e) {
            throw Redis.translate(e, what);
        }
    }

    // ---- observers (io.stargazer.bus.micrometer) ---------------------------------------------------------------

    BusHooks hooks() {
        return hooks;
    }

    BusTracing tracing() {
        return tracing;
    }

    /** Adds a metrics observer beside any already there; returns the subscriptions running now, for it to watch. */
    synchronized List<Subscription> addHooks(BusHooks h) {
        BusHooks old = hooks;
        hooks = old == BusHooks.NONE ? h : Hooks.both(old, h);
        return List.copyOf(subscriptions);
    }

    synchronized void setTracing(BusTracing t) {
        tracing = t;
    }

    // ---- lifecycle -----------------------------------------------------------------------------------------

    /**
     * Waits until no publish is between its call and its hand-over ({@code enteringOnly}), or also until no publisher
     * has one queued or unanswered; at most until {@code deadline}.
     */
    private void awaitPublishes(long deadline, boolean enteringOnly) {
        while (System.nanoTime() - deadline < 0) {
            boolean idle = entering.get() == 0;
            if (!enteringOnly) {
                for (StreamPublisher p : publishers.values()) idle &= p.idle();
                if (inboundSpan != null) idle &= inboundSpan.idle();
            }
            if (idle) return;
            try {
                Thread.sleep(5);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return;
            }
        }
    }

    /**
     * Closes {@code client} with this bus; false when the bus is closed already (then it is not kept). Under the lock
     * close() takes its copy of the subscriptions with, so a client made as the bus closes is either closed by it or told.
     */
    boolean closeWith(AutoCloseable client) {
        synchronized (subscriptions) {
            if (closed.get()) return false;
            toolClients.add(client);
            return true;
        }
    }

    /** {@code client} closed on its own: no longer closed with the bus. */
    void forget(AutoCloseable client) {
        toolClients.remove(client);
    }

    @Override
    public void close() {
        List<Subscription> open;
        synchronized (subscriptions) {
            if (!closed.compareAndSet(false, true)) {
                return;
            }
            open = List.copyOf(subscriptions);
        }
        for (Subscription s : open) {
            try {
                s.close();
            } catch (RuntimeException e) {
                Redis.logClosed("subscription " + s.stream(), e);
            }
        }
        for (AutoCloseable c : List.copyOf(toolClients)) {
            try {
                c.close();
            } catch (Exception e) {
                Redis.logClosed("tool client", e);
            }
        }
        publishingClosed.set(true);
        // Like a Kafka producer's close: what was accepted is answered before the connections go, within the
        // publish timeout every publish has anyway.
        long deadline = System.nanoTime() + config.publishTimeout().toNanos();
        // A delivery settled after its subscription closed (a manual ack, or the Spring starter's batch listener
        // releasing what its stop interrupted) sends its XACK, XCLAIM or dead letter on the shared connection: closing
        // it under them left a released entry counted, dead-lettered unrun by the consumer that took it over.
        for (StreamConsumer c : List.copyOf(closedButHolding)) c.awaitSettlements(deadline);
        closedButHolding.clear();
        awaitPublishes(deadline, true);
        // Held for room in a full stream: nothing frees it now, and none of them was written.
        guard.failParked();
        awaitPublishes(deadline, false);
        lanes.close();
        connectionsClosing = true;
        maintenance.shutdownNow();
        timers.shutdownNow();
        // What is still queued now was held from the wire past close()'s wait (behind an unanswered publish on a
        // connection of its own, a full set of unanswered batches): with the timer gone nothing would ever answer it.
        for (StreamPublisher p : publishers.values()) p.failQueued();
        if (inboundSpan != null) inboundSpan.failQueued();
        if (callers != null) callers.close();
        redis.close();
        log.atInfo().addKeyValue("node_id", config.nodeId()).log("Event bus closed");
    }
}
