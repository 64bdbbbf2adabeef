package io.stargazer.bus;

import java.util.List;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.function.UnaryOperator;

/**
 * The Stargazer event bus on Redis Streams: provisioning, publishing, consuming and diagnostics for one node.
 *
 * <p>One instance per process, shared by every thread: it owns one multiplexed connection for publishing,
 * acknowledging and diagnostics, and one more connection per subscription for blocking reads.
 *
 * <p>Publishing is asynchronous underneath. Concurrent publishes to one stream are coalesced into server-side
 * batches (one command carrying many entries), in the order they were submitted: entries published by one
 * thread, and so one channel published from one thread, keep their order in the stream. Each returned future
 * completes with the entry's id once Redis has stored it, or exceptionally if it was not; it completes on a
 * Redis I/O thread, so dependent stages must not block (use the {@code *Async} stage methods for heavy work).
 * The blocking forms ({@link #publish}, {@link #publishInbound}, {@link #publishOutbound}) wait for that thread, so
 * called on it (from a {@code thenAccept}/{@code whenComplete} stage of a bus future) they would wait for themselves
 * until the command timed out, stalling the connection meanwhile: they throw {@link IllegalStateException} at once,
 * before publishing anything. In a stage, use the {@code *Async} form
 * and chain on its future, or move the work to an executor of your own ({@code thenAcceptAsync(.., executor)}).
 *
 * <pre>{@code
 * try (EventBus bus = EventBus.connect(RedisUrl.parse("redis://localhost:6379"), BusConfig.fromEnvironment())) {
 *     bus.ensureStreams();
 *     String id = bus.publishInbound(Envelope.of("platform", "webchat", "channel_id", "c-1", "content", "hi"));
 * }
 * }</pre>
 */
public interface EventBus extends AutoCloseable {

    /**
     * Connects to Redis and checks that it answers. Throws {@link BusConnectionException} (naming the URL
     * without its password) when it does not, or {@link RedisServerException.AccessDenied} when the login is refused.
     * A URL in cluster mode ({@link RedisUrl#cluster()}) connects to a Redis Cluster (docs/cluster.md).
     */
    static EventBus connect(RedisUrl url, BusConfig config) {
        return io.stargazer.bus.internal.BusFactory.connect(url, config);
    }

    BusConfig config();

    default Topology topology() {
        return config().topology();
    }

    /** The Redis server's version, as {@code INFO server} reports it (for example {@code 7.0.15}). */
    String serverVersion();

    /**
     * How this bus runs its server-side logic now, as chosen at connect from {@link BusConfig#serverCode()}:
     * {@link ServerCodeMode#FUNCTIONS} (the {@code stargazer} library, FCALL) or {@link ServerCodeMode#SCRIPTS} (EVAL).
     * Under {@code auto}, a bus that chose functions runs scripts while the library is gone from the server (an empty
     * restart) or at another version, and functions again once it is back (docs/functions.md).
     */
    ServerCodeMode serverCode();

    /**
     * Round trip to Redis (PING) on the shared connection; how long it took. Needs no key permission, so any role's
     * ACL user may use it for health checks. Throws {@link BusConnectionException} when Redis does not answer.
     */
    java.time.Duration ping();

    /** {@link #ensureStreams(List)} with the configured platforms. */
    void ensureStreams();

    /**
     * Creates the consumer groups this node's role reads with, as the original module does: worker and standalone
     * the worker group on the inbound stream(s); gateway and standalone the gateway group on each platform's outbound
     * stream, but webchat's (its gateways read with groups of their own, {@link Topology#hasSharedGatewayGroup}: the one
     * place this differs from the original); tools the tools group on the tools stream. Groups start at {@code $}; streams are made if missing.
     * Only "group already exists" (BUSYGROUP) counts as success: any other failure throws
     * {@link ProvisioningException} naming the stream and group.
     */
    void ensureStreams(List<String> platforms);

    /** Creates one group ({@code $}, MKSTREAM); true if created, false if it existed. */
    boolean ensureGroup(String stream, String group);

    /**
     * Deletes a consumer group ({@code XGROUP DESTROY}) with its pending list; true if it existed. For groups that
     * belong to one process, such as a web chat gateway's own group, removed when that process stops. When Redis
     * refuses or does not answer, throws the bus exception for it, its message naming the stream and group.
     */
    boolean deleteGroup(String stream, String group);

    /**
     * Marks {@code key} as alive for {@code ttl} ({@code SET key 1 PX ttl}): a presence signal a process refreshes
     * while it runs, for others to tell a live process from a dead one (consumer idle times cannot: Redis does not
     * refresh them on reads that return nothing).
     *
     * <p>Why the bus offers it: a process that reads a stream with a group of its own (so that every process sees
     * every entry, as web chat gateways do) leaves that group behind when it dies, and under the SAFE trim policy a
     * group nobody reads stops the stream's trimming and then its publishing. The processes that remain must tell a
     * dead owner's group from a quiet live one to delete it ({@link #deleteGroup}); this presence key is how.
     */
    void setAlive(String key, java.time.Duration ttl);

    /** Whether {@code key} was marked alive and has not expired. */
    boolean isAlive(String key);

    /** Publishes to the inbound stream (or the channel's partition of it). */
    CompletableFuture<String> publishInboundAsync(Envelope envelope);

    /**
     * As {@link #publishInboundAsync(Envelope)}, with a dedupe key and retries ({@link PublishOptions}): within the
     * dedupe window a second publish with the same key adds nothing and completes with the first entry's id.
     */
    CompletableFuture<String> publishInboundAsync(Envelope envelope, PublishOptions options);

    String publishInbound(Envelope envelope, PublishOptions options);

    CompletableFuture<String> publishOutboundAsync(String platform, Envelope envelope, PublishOptions options);

    String publishOutbound(String platform, Envelope envelope, PublishOptions options);

    /**
     * Publishes to any stream with a dedupe key and retries. With {@link PublishOptions#maxAttempts()} above 1, a
     * failure that may pass ({@link PublishOutcomeUnknownException}, a lost connection, a server that cannot serve
     * now, a full queue or stream) is tried again with the same key, so the entry is stored once; the future fails
     * with the last error when the attempts are used up.
     */
    CompletableFuture<String> publishAsync(String stream, Envelope envelope, PublishOptions options);

    String publish(String stream, Envelope envelope, PublishOptions options);

    /**
     * Blocking form of {@link #publishInboundAsync}: returns the entry id. Throws {@link IllegalStateException} when
     * called on a Redis I/O thread (see the class comment).
     */
    String publishInbound(Envelope envelope);

    /** Publishes to {@code platform}'s outbound stream. */
    CompletableFuture<String> publishOutboundAsync(String platform, Envelope envelope);

    /** Blocking form of {@link #publishOutboundAsync}; refused on a Redis I/O thread like {@link #publishInbound}. */
    String publishOutbound(String platform, Envelope envelope);

    /** Publishes to any stream (tools requests and replies, custom streams), with the same framing and cap. */
    CompletableFuture<String> publishAsync(String stream, Envelope envelope);

    /** Blocking form of {@link #publishAsync}; refused on a Redis I/O thread like {@link #publishInbound}. */
    String publish(String stream, Envelope envelope);

    /**
     * A consumer configuration for {@code stream}/{@code group} preset for this node: consumer name {@code nodeId},
     * dead-letter stream from the topology, every other setting its default. It does not read the environment: add
     * {@link ConsumerConfig.Builder#fromEnvironment()} for the {@code SG_*} consumer settings.
     */
    default ConsumerConfig.Builder consumer(String stream, String group) {
        return ConsumerConfig.builder(stream, group)
                .consumerName(config().nodeId())
                .deadLetterStream(topology().deadLetterStream(stream));
    }

    /**
     * Starts consuming {@code config.stream()} with {@code config.group()}; the handler runs on the subscription's threads.
     *
     * @throws ConfigException when this bus already has a subscription open with the same stream, group and consumer
     *     name: one consumer's pending entries are its own, and a second subscription under its name would read the
     *     first one's from the pending list (after a reconnect, and both at a restart) and run them again. Two
     *     subscriptions of one group in one process need consumer names of their own.
     */
    Subscription subscribe(ConsumerConfig config, MessageHandler handler);

    /** As {@link #subscribe(ConsumerConfig, MessageHandler)} (refused the same way), for handlers that finish asynchronously. */
    Subscription subscribeAsync(ConsumerConfig config, AsyncMessageHandler handler);

    /**
     * Reads up to {@code count} entries after {@code afterId} ({@code "0"} for the start) without a consumer group, so
     * no group's position or pending list changes: what {@code stargazer tail} follows a stream with. Does not block:
     * an empty list means nothing newer yet. Throws {@link BusConnectionException} when Redis does not answer.
     */
    List<StreamEntry> read(String stream, String afterId, int count);
    /** {@link #subscribeInbound(UnaryOperator, MessageHandler)} with the preset consumer settings. */
    default Subscription subscribeInbound(MessageHandler handler) {
        return subscribeInbound(UnaryOperator.identity(), handler);
    }

    /**
     * Consumes every inbound stream with the worker group: the one stream, or each of the
     * {@code SG_INBOUND_PARTITIONS} partitions (see {@link Topology#inboundStreams()}). Each partition gets a
     * subscription of its own, configured by {@link #consumer(String, String)} and then {@code customize} (called
     * once per partition, so {@code concurrency} and {@code maxInFlight} apply per partition). On a cluster each
     * partition has a reader thread and a handler pool of its own; on a single server one reader thread reads every
     * partition (one {@code XREADGROUP} for all) and one handler pool, of as many threads as the partitions'
     * {@code concurrency} adds up to, runs every partition's handlers, each partition at most its {@code concurrency}
     * at once. The handler is called on the pool threads, concurrently across partitions and channels, and may block.
     * One channel maps to one partition, so per-channel order holds as with one stream. The result
     * is one {@link Subscription}: its state is the worst of its parts, its stats their sum, its {@code stream()}
     * the base inbound name; {@link Subscription#partitions()} gives the parts; closing it closes every part at once.
     */
    default Subscription subscribeInbound(UnaryOperator<ConsumerConfig.Builder> customize, MessageHandler handler) {
        return io.stargazer.bus.internal.PartitionedSubscription.start(topology().inboundStream(), topology().inboundStreams(),
                stream -> subscribe(customize.apply(consumer(stream, topology().workerGroup())).build(), handler));
    }

    /** As {@link #subscribeInbound(UnaryOperator, MessageHandler)}, for handlers that finish asynchronously. */
    default Subscription subscribeInboundAsync(UnaryOperator<ConsumerConfig.Builder> customize, AsyncMessageHandler handler) {
        return io.stargazer.bus.internal.PartitionedSubscription.start(topology().inboundStream(), topology().inboundStreams(),
                stream -> subscribeAsync(customize.apply(consumer(stream, topology().workerGroup())).build(), handler));
    }

    /** Reading, replaying and purging the dead-letter streams ({@link DeadLetters}). */
    DeadLetters deadLetters();

    /**
     * Pauses {@code group} on {@code stream} in every process: a flag in Redis (in the stream's cluster slot, kept until
     * {@link #resume}), which every consumer of the group checks at least twice a second. A paused consumer takes no
     * new entries (no read, no takeover, no retry of a failed entry, so delivery counts do not climb), finishes and
     * acknowledges what it holds, and reports {@link Subscription.State#PAUSED}. The pause survives the consumers'
     * restarts. Returns false when the group was already paused. A group that is not on the stream (a typo, or a
     * stream that does not exist) is refused with a {@link ConfigException} naming both, and nothing is set: a group
     * cannot be paused before it is created.
     */
    boolean pause(String stream, String group);

    /** Ends a {@link #pause}: the group's consumers take entries again within a second. False when it was not paused. */
    boolean resume(String stream, String group);

    /** Whether {@code group} on {@code stream} is paused ({@link #pause}). */
    boolean paused(String stream, String group);

    /**
     * The inbound streams, of any partition count (the unpartitioned stream, or partitions under any
     * {@code SG_INBOUND_PARTITIONS}), on which {@code group} is paused: found by a SCAN of their pause flags (on every
     * master of a cluster), so pauses left on another count's partitions after a partition-count change can be
     * resumed once that count is no longer configured. A blocking call for operator tools, not for a consumer's path.
     */
    List<String> pausedInboundStreams(String group);

    /**
     * {@code XINFO STREAM}; empty when the stream does not exist or the call fails. Never throws: to tell a missing
     * stream from one that could not be read, use {@link #describeStream(String)}.
     */
    Optional<StreamInfo> streamInfo(String stream);

    /**
     * {@code XINFO STREAM} for diagnostics that must tell a missing stream from an unreadable one: empty only when the
     * stream does not exist; throws when the call fails ({@link BusConnectionException}: Redis out of reach or not
     * answering in time; {@link RedisServerException}: refused, such as {@code NOPERM}, or {@code WRONGTYPE} for a key
     * of another type).
     */
    Optional<StreamInfo> describeStream(String stream);

    /** Entries delivered to the group and not yet acknowledged; 0 when unknown. Never throws. */
    long pendingCount(String stream, String group);

    /** The id of the oldest entry delivered to the group and not yet acknowledged; empty when none or unknown. Never throws. */
    Optional<String> oldestPendingId(String stream, String group);

    /** Every group of the stream with consumers, pending count and lag; empty when unknown. Never throws. */
    List<GroupInfo> groups(String stream);

    /**
     * The consumers of one group (empty when it has none, or when Redis cannot answer). A group that is not on the
     * stream (lost in an empty restart, deleted, a typo, or a stream that does not exist) is refused with a
     * {@link ConfigException} naming both and the stream's groups, as {@link #pause} does: an empty list would read as
     * a group that exists and that nobody consumes. Throws nothing else.
     */
    List<ConsumerInfo> consumers(String stream, String group);

    /**
     * Stops every subscription (gracefully: each waits its {@code closeTimeout} for running handlers), then closes the
     * connections. Publishing, answers included, stays open until the subscriptions have stopped, so the handlers
     * being waited for can finish their work; then every publish accepted is answered (within the publish timeout)
     * before the connections close, and a retrying publish waiting for its next try fails with its last try's outcome.
     * Deliveries settled after their subscription closed (a manual ack, nack or {@link Delivery#release()}) reach Redis
     * before the connections close, within the same publish timeout; deliveries nobody settles are not waited for (they
     * stay pending, counted). New subscriptions are refused from the start.
     */
    @Override
    void close();
}
