package io.stargazer.bus;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;

import io.stargazer.bus.testing.Closer;
import io.stargazer.bus.testing.Monitor;
import io.stargazer.bus.testing.RawRedis;
import io.stargazer.bus.testing.RedisFaults;
import io.stargazer.bus.testing.TcpProxy;
import io.stargazer.bus.testing.TestRedis;
import io.stargazer.embedded.RedisServerProcess;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.function.UnaryOperator;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

// A blocking publish on a single server is written and read on the calling thread, over a connection of its own
// (BusConfig.blockingPublishConnections): what that connection may never do is reorder, lose, stall or hide a failure.
class BlockingPublishIT {
    private final Closer closer = new Closer();
    /** Tells this run's node ids apart on the shared server. */
    private static final String NS = TestRedis.namespace();

    @AfterEach
    void close() throws Exception {
        closer.close();
    }

    private EventBus bus(RedisUrl url, Topology t, String nodeId, UnaryOperator<BusConfig.Builder> tune) {
        return closer.add(EventBus.connect(url, tune.apply(BusConfig.builder().topology(t).role(NodeRole.GATEWAY).nodeId(nodeId)).build()));
    }

    /** The lines of CLIENT LIST of {@code url}'s server that describe {@code nodeId}'s blocking-publish connections. */
    private static List<String> clients(RedisUrl url, String nodeId) {
        try (RawRedis raw = new RawRedis(url)) {
            String list = new String((byte[]) raw.sync().dispatch(io.lettuce.core.protocol.CommandType.CLIENT,
                    new io.lettuce.core.output.ByteArrayOutput<>(io.lettuce.core.codec.ByteArrayCodec.INSTANCE),
                    new io.lettuce.core.protocol.CommandArgs<>(io.lettuce.core.codec.ByteArrayCodec.INSTANCE).add("LIST")));
            return Arrays.stream(list.split("\n")).filter(l -> l.contains(" name=" + nodeId + ":publish ")).toList();
        }
    }

    /** A server of this test's own, to restart, fill or turn into a replica. */
    private RedisServerProcess ownServer() {
        return closer.add(RedisServerProcess.builder().appendOnly(false).start());
    }

    /** {@link #ownServer}, with {@code t}'s streams and groups made as a gateway's provisioning makes them. */
    private RedisUrl provisionedOwnServer(Topology t) {
        RedisUrl url = RedisUrl.parse(ownServer().url());
        Provisioning.provision(url, BusConfig.builder().topology(t).role(NodeRole.GATEWAY).nodeId("provision").build());
        return url;
    }

    private static Envelope message(String channel, int n) {
        return Envelope.of("platform", "test", "channel_id", channel, "n", n);
    }

    @Test
    void aBlockingPublishGoesOnAConnectionOfItsOwnUnlessTurnedOff() {
        Topology t = TestRedis.topology();
        RedisUrl url = TestRedis.url();
        EventBus own = bus(url, t, "own-" + NS, b -> b);
        String id = own.publish(t.inboundStream(), message("c", 1));
        assertThat(clients(url, "own-" + NS)).hasSize(1);
        EventBus shared = bus(url, t, "shared-" + NS, b -> b.blockingPublishConnections(0));
        String second = shared.publish(t.inboundStream(), message("c", 2));
        assertThat(clients(url, "shared-" + NS)).isEmpty();
        assertThat(TestRedis.readAll(own, t.inboundStream())).extracting(StreamEntry::id).containsExactly(id, second);
    }

    /**
     * One thread publishes 1 on its connection of its own and then 2 on the shared one, both to one channel, while Redis
     * is paused: both outcomes unknown. When Redis resumes, it reads whichever socket the kernel lists first, and the
     * shared connection, which carried something else before 1 was written (here a publish to another stream; in
     * production its dead-peer PING or an acknowledgement), is listed first: before, 2 was stored before 1 (0, 2, 1, 3).
     * Now a stream whose publish on a connection of its own went unanswered waits for that connection's answer (or its
     * end) before anything else of the stream is written: 2 waits, and fails at its deadline as not sent.
     */
    @Test
    void aBlockingPublishWithAnUnknownOutcomeIsNotOvertakenByTheNextPublishOfItsChannel() throws Exception {
        RedisServerProcess server = ownServer();
        RedisUrl url = RedisUrl.parse(server.url());
        Topology t = TestRedis.topology();
        String node = "unknown-" + NS;
        EventBus bus = bus(url, t, node, b -> b.publishTimeout(Duration.ofSeconds(1)));
        String stream = t.inboundStream();
        bus.publish(stream, message("c", 0));
        // Opened by that publish, now idle; and this CLIENT LIST, on another connection, was answered after Redis last
        // looked at its socket, so the server's list of sockets to read is empty when it is paused.
        assertThat(clients(url, node)).hasSize(1);
        int shared = clientPort(url, node);
        Throwable first;
        CompletableFuture<String> second;
        try (RedisFaults.Fault paused = RedisFaults.pause(server)) {
            CompletableFuture<String> elsewhere = bus.publishAsync(stream + ":elsewhere", message("x", 0));
            await().atMost(Duration.ofSeconds(5)).until(() -> unread(url.port(), shared) > 0);
            first = org.assertj.core.api.Assertions.catchThrowable(() -> bus.publish(stream, message("c", 1)));
            second = bus.publishAsync(stream, message("c", 2));
            await().atMost(Duration.ofSeconds(10)).until(() -> second.isDone() && elsewhere.isDone());
        }
        assertThat(first).as("the blocking publish, on its connection of its own").isInstanceOf(PublishOutcomeUnknownException.class);
        // Before, written on the shared connection and unanswered; now held until 1 is answered, failed at its deadline unsent.
        assertThat(second.handle((id, e) -> e).join()).as("the next publish, through the shared connection")
                .isInstanceOfAny(PublishOutcomeUnknownException.class, BusConnectionException.class);
        // Answered after Redis has read what was waiting on every socket.
        bus.publish(stream, message("c", 3));
        List<Long> seen = TestRedis.readAll(bus, stream).stream().map(e -> e.envelope().longValue("n", -1)).toList();
        assertThat(seen).as("the channel's entries, in stream order").startsWith(0L).endsWith(3L).isSorted();
    }

    /** The client port of {@code nodeId}'s shared connection to {@code url}'s server (CLIENT LIST). */
    private static int clientPort(RedisUrl url, String nodeId) {
        try (RawRedis raw = new RawRedis(url)) {
            String list = new String((byte[]) raw.sync().dispatch(io.lettuce.core.protocol.CommandType.CLIENT,
                    new io.lettuce.core.output.ByteArrayOutput<>(io.lettuce.core.codec.ByteArrayCodec.INSTANCE),
                    new io.lettuce.core.protocol.CommandArgs<>(io.lettuce.core.codec.ByteArrayCodec.INSTANCE).add("LIST")));
            String line = Arrays.stream(list.split("\n")).filter(l -> l.contains(" name=" + nodeId + " ")).findFirst().orElseThrow();
            String addr = line.replaceAll(".* addr=([^ ]+) .*", "$1").trim();
            return Integer.parseInt(addr.substring(addr.lastIndexOf(':') + 1));
        }
    }

    /** Bytes the server on {@code serverPort} has received from {@code clientPort} and not yet read (Linux, IPv4 loopback). */
    private static long unread(int serverPort, int clientPort) throws java.io.IOException {
        String local = String.format(":%04X", serverPort);
        String remote = String.format(":%04X", clientPort);
        for (String l : java.nio.file.Files.readAllLines(java.nio.file.Path.of("/proc/net/tcp"))) {
            String[] f = l.trim().split("\\s+");
            if (f.length > 4 && f[1].endsWith(local) && f[2].endsWith(remote)) {
                return Long.parseLong(f[4].substring(f[4].indexOf(':') + 1), 16);
            }
        }
        return 0;
    }

    /** One thread's asynchronous publishes still in flight are not overtaken by its next blocking publish. */
    @Test
    void oneThreadsAsynchronousAndBlockingPublishesReachTheStreamInTheirOrder() {
        Topology t = TestRedis.topology();
        EventBus bus = bus(TestRedis.url(), t, "order-" + NS, b -> b);
        String stream = t.inboundStream();
        List<CompletableFuture<String>> async = new ArrayList<>();
        int n = 3000;
        for (int i = 0; i < n; i++) {
            if (i % 100 == 99) {
                // Nothing in flight: this one goes on the connection of its own, the others after asynchronous ones.
                CompletableFuture.allOf(async.toArray(CompletableFuture[]::new)).join();
                bus.publish(stream, message("c", i));
            } else if (i % 10 == 9) {
                bus.publish(stream, message("c", i));
            } else {
                async.add(bus.publishAsync(stream, message("c", i)));
            }
        }
        CompletableFuture.allOf(async.toArray(CompletableFuture[]::new)).join();
        List<Long> seen = TestRedis.readAll(bus, stream).stream().map(e -> e.envelope().longValue("n", -1)).toList();
        assertThat(seen).hasSize(n).isSorted();
        assertThat(clients(TestRedis.url(), "order-" + NS)).as("the blocking publishes that found nothing in flight")
                .hasSize(1);
    }

    /** More threads than connections: the others coalesce through the shared connection; each entry once, in order per thread. */
    @Test
    void moreThreadsThanConnectionsShareThemAndStoreEveryEntryOnce() throws Exception {
        Topology t = TestRedis.topology();
        String node = "many-" + NS;
        EventBus bus = bus(TestRedis.url(), t, node, b -> b.blockingPublishConnections(2));
        String stream = t.inboundStream();
        int threads = 8;
        int each = 400;
        List<Thread> all = new ArrayList<>();
        for (int k = 0; k < threads; k++) {
            String channel = "c" + k;
            all.add(new Thread(() -> {
                for (int i = 0; i < each; i++) bus.publish(stream, message(channel, i));
            }));
        }
        all.forEach(Thread::start);
        for (Thread th : all) th.join(60_000);
        assertThat(clients(TestRedis.url(), node)).hasSizeBetween(1, 2);
        long[] next = new long[threads];
        List<StreamEntry> entries = TestRedis.readAll(bus, stream);
        for (StreamEntry e : entries) {
            int k = Integer.parseInt(e.envelope().channelId().substring(1));
            assertThat(e.envelope().longValue("n", -1)).as("entry of channel %s", e.envelope().channelId()).isEqualTo(next[k]);
            next[k]++;
        }
        assertThat(entries).hasSize(threads * each);
    }

    /**
     * Sixteen threads publishing to one stream at once keep several batches on the wire, each on its writer's connection
     * (one connection before, one batch at a time), never more than {@link #WRITERS}; every publish is answered with its
     * own entry's id, once, and each thread's entries are in its order. A writer whose own publish another writer took
     * into its batch waits for that answer (it once failed as "lost track of the publish").
     */
    @Test
    void sixteenThreadsKeepSeveralBatchesOnTheWireAndEachPublishIsAnsweredWithItsOwnEntry() throws Exception {
        Topology t = TestRedis.topology();
        String node = "writers-" + NS;
        EventBus bus = bus(TestRedis.url(), t, node, b -> b);
        String stream = t.inboundStream();
        int threads = 16;
        int each = 300;
        java.util.Queue<Throwable> failures = new java.util.concurrent.ConcurrentLinkedQueue<>();
        java.util.Map<String, String> publishedAs = new java.util.concurrent.ConcurrentHashMap<>();
        List<Thread> all = new ArrayList<>();
        for (int k = 0; k < threads; k++) {
            String channel = "c" + k;
            all.add(new Thread(() -> {
                try {
                    for (int i = 0; i < each; i++) {
                        if (publishedAs.put(bus.publish(stream, message(channel, i)), channel + "/" + i) != null) {
                            failures.add(new AssertionError("an id given twice, last to " + channel + "/" + i));
                        }
                    }
                } catch (Throwable e) {
                    failures.add(e);
                }
            }));
        }
        all.forEach(Thread::start);
        for (Thread th : all) th.join(60_000);
        assertThat(all).allSatisfy(th -> assertThat(th.isAlive()).isFalse());
        assertThat(failures).isEmpty();
        // How many writers were ever busy at once depends on the machine; more than one, and no more than WRITERS.
        assertThat(clients(TestRedis.url(), node)).as("connections of their own").hasSizeBetween(2, WRITERS);
        long[] next = new long[threads];
        List<StreamEntry> entries = TestRedis.readAll(bus, stream);
        for (StreamEntry e : entries) {
            String channel = e.envelope().channelId();
            int k = Integer.parseInt(channel.substring(1));
            assertThat(e.envelope().longValue("n", -1)).as("entry of channel %s", channel).isEqualTo(next[k]);
            assertThat(publishedAs.get(e.id())).as("the publish answered with id %s", e.id()).isEqualTo(channel + "/" + next[k]);
            next[k]++;
        }
        assertThat(entries).hasSize(threads * each);
    }

    /** Blocking publishes to one stream on the wire at once, each on its writer's connection (CallerBatches.WRITERS). */
    private static final int WRITERS = 4;
    /**
     * The proxy's numbers of the writers' connections but the first's ({@link #publishersBehindFrozenOnes}), to keep them
     * frozen while the rest (the first writer's, the shared connection) carry bytes again.
     */
    private final int[] otherWritersConnections = new int[WRITERS - 1];

    /**
     * Publishing threads parked behind the batches on the wire, with their own connections in the harness: one slow
     * publish per writer (its connection frozen: publishers 0 .. WRITERS - 1) and {@code n} that come meanwhile
     * (WRITERS ..). Returns the threads, each parked or done, and fills {@code outcomes} with each one's id or failure.
     * Before them, one publish of channel "c" per writer opened its connection.
     */
    private List<Thread> publishersBehindFrozenOnes(EventBus bus, TcpProxy link, String stream, int n, Object[] outcomes) {
        return publishersBehindFrozenOnes(bus, link, stream, n, outcomes, "");
    }

    /** As above, the {@code n} that come meanwhile carrying {@code text}. */
    private List<Thread> publishersBehindFrozenOnes(EventBus bus, TcpProxy link, String stream, int n, Object[] outcomes, String text) {
        List<Thread> all = new ArrayList<>();
        for (int k = 0; k < WRITERS + n; k++) {
            int me = k;
            if (k < WRITERS) {
                // Its connection opened first, while the writers before it wait (so it is a new one), then frozen.
                bus.publish(stream, message("c", k));
                if (k > 0) otherWritersConnections[k - 1] = link.acceptedCount();
                link.freezeExisting();
            }
            Thread th = new Thread(() -> {
                try {
                    outcomes[me] = bus.publish(stream, Envelope.of("platform", "test", "channel_id", "t" + me, "text", me < WRITERS ? "" : text));
                } catch (RuntimeException e) {
                    outcomes[me] = e;
                }
            }, "publisher-" + k);
            all.add(th);
            th.start();
            if (k < WRITERS) {
                // It writes on its frozen connection and waits for its answer there; the others come while the writers wait.
                // Polled often: a test with a short publish timeout has its first writer's running while the rest is set up.
                await().atMost(Duration.ofSeconds(5)).pollInterval(Duration.ofMillis(5)).until(() -> Arrays.stream(th.getStackTrace())
                        .anyMatch(f -> f.getClassName().endsWith(".CallerConnections") && f.getMethodName().equals("await")));
            }
        }
        await().atMost(Duration.ofSeconds(5)).pollInterval(Duration.ofMillis(5)).until(() -> all.stream().skip(WRITERS)
                .allMatch(th -> th.getState() == Thread.State.TIMED_WAITING || th.getState() == Thread.State.TERMINATED));
        return all;
    }

    /**
     * Lets every connection carry bytes again but the writers' after the first ({@link #publishersBehindFrozenOnes}), and
     * waits for every publisher but those writers; returns them, still held.
     */
    private List<Thread> answerAllButTheOtherWriters(TcpProxy link, List<Thread> all) throws InterruptedException {
        List<Thread> held = all.subList(1, WRITERS);
        link.unfreezeAllBut(otherWritersConnections);
        for (Thread th : all) if (!held.contains(th)) th.join(10_000);
        return held;
    }

    /**
     * What the server ran for {@code stream}: XADDs, none inside a script or function, so many on each connection (in
     * any order of connections).
     */
    private static void assertPlainXaddsPerConnection(Monitor monitor, String stream, long... perConnection) {
        long all = Arrays.stream(perConnection).sum();
        List<Monitor.Line> adds = await().atMost(Duration.ofSeconds(5)).until(() -> monitor.lines().stream()
                .filter(l -> l.command().equals("XADD") && l.args().contains(stream)).toList(), l -> l.size() >= all);
        assertThat(adds).as("XADDs a script or function ran").noneSatisfy(l -> assertThat(l.client()).isEqualTo("lua"));
        assertThat(adds.stream().collect(java.util.stream.Collectors.groupingBy(Monitor.Line::client,
                java.util.stream.Collectors.counting())).values()).as("XADDs per connection")
                .containsExactlyInAnyOrderElementsOf(Arrays.stream(perConnection).boxed().toList());
    }

    /**
     * {@link #answerAllButTheOtherWriters}, checking that only the other writers are still waiting (the rest went out
     * on the first writer's turn), then lets them go and waits for every publisher.
     */
    private void answerTheBatchThenTheOtherWriters(TcpProxy link, List<Thread> all) throws InterruptedException {
        List<Thread> held = answerAllButTheOtherWriters(link, all);
        assertThat(all).allSatisfy(th -> assertThat(th.isAlive()).isEqualTo(held.contains(th)));
        link.unfreeze();
        for (Thread th : all) th.join(10_000);
        assertThat(all).allSatisfy(th -> assertThat(th.isAlive()).isFalse());
    }

    /** The channel of each entry, by its id. */
    private static java.util.Map<String, String> channelsById(List<StreamEntry> entries) {
        java.util.Map<String, String> channelById = new java.util.HashMap<>();
        for (StreamEntry e : entries) channelById.put(e.id(), e.envelope().channelId());
        return channelById;
    }

    /** Publisher k (its outcome {@code outcomes[k]}, an id) published to channel "t" + k. */
    private static void assertEachIdNamesItsPublishersEntry(List<StreamEntry> entries, Object[] outcomes) {
        java.util.Map<String, String> channelById = channelsById(entries);
        for (int k = 0; k < outcomes.length; k++) {
            assertThat(channelById.get((String) outcomes[k])).as("the entry of the id publisher %s was given", k).isEqualTo("t" + k);
        }
    }

    /**
     * Blocking publishes to one stream made while the writers' batches are on the wire wait for them and then go out
     * together, pipelined on one connection of its own, instead of one connection and one command each (before batching:
     * seven connections of their own, each writing an XADD). Each is a plain XADD (before: one batch script for the
     * seven, which costs the server several XADDs' worth of its own). The other writers' connections stay frozen until
     * the batch is answered, so that it is the first writer's turn that takes the whole queue.
     */
    @Test
    void blockingPublishesMadeWhileTheWritersWaitGoOutTogetherAsPlainXaddsOnOneConnection() throws Exception {
        Topology t = TestRedis.topology();
        RedisUrl url = provisionedOwnServer(t);
        TcpProxy link = closer.add(TcpProxy.to(url));
        String node = "together-" + NS;
        EventBus bus = bus(link.url(), t, node, b -> b);
        String stream = t.inboundStream();
        Monitor monitor = closer.add(Monitor.open(url));
        Object[] outcomes = new Object[WRITERS + 7];
        List<Thread> all = publishersBehindFrozenOnes(bus, link, stream, 7, outcomes);
        List<Thread> held = answerAllButTheOtherWriters(link, all);
        assertThat(all).allSatisfy(th -> assertThat(th.isAlive()).isEqualTo(held.contains(th)));
        List<String> publishConnections = clients(url, node);
        link.unfreeze();
        for (Thread th : held) th.join(10_000);
        assertThat(held).allSatisfy(th -> assertThat(th.isAlive()).isFalse());
        assertThat(outcomes).allSatisfy(o -> assertThat(o).isInstanceOf(String.class));
        assertThat(publishConnections).as("connections of their own").hasSize(WRITERS);
        List<StreamEntry> entries = TestRedis.readAll(bus, stream);
        assertThat(entries).hasSize(WRITERS + WRITERS + 7);
        assertEachIdNamesItsPublishersEntry(entries, outcomes);
        // Each writer's connection: its "c" and its own publish; the first writer's the seven as well.
        assertPlainXaddsPerConnection(monitor, stream, 2, 2, 2, 2 + 7);
    }

    /**
     * Functions mode: the waiting publishes go out as plain XADDs, which need no library (before: the library's batch
     * function, which the server refused once the library was gone, and they went the shared way). The library is
     * flushed just before: each is still stored once on the first writer's turn, its id naming its own entry.
     */
    @Test
    void waitingPublishesGoOutOnTheFirstWritersTurnWithTheLibraryGone() throws Exception {
        Topology t = TestRedis.topology();
        RedisUrl url = provisionedOwnServer(t);
        TcpProxy link = closer.add(TcpProxy.to(url));
        EventBus bus = bus(link.url(), t, "library", b -> b);
        assertThat(bus.serverCode()).isEqualTo(ServerCodeMode.FUNCTIONS);
        String stream = t.inboundStream();
        Monitor monitor = closer.add(Monitor.open(url));
        Object[] outcomes = new Object[WRITERS + 3];
        List<Thread> all = publishersBehindFrozenOnes(bus, link, stream, 3, outcomes);
        try (RawRedis raw = new RawRedis(url)) {
            raw.sync().functionFlush(io.lettuce.core.FlushMode.SYNC);
        }
        // The other writers' answers held back until the waiting three have gone out, as one batch, on the first's turn.
        answerTheBatchThenTheOtherWriters(link, all);
        assertThat(outcomes).allSatisfy(o -> assertThat(o).isInstanceOf(String.class));
        List<StreamEntry> entries = TestRedis.readAll(bus, stream);
        assertThat(entries).hasSize(WRITERS + WRITERS + 3);
        assertEachIdNamesItsPublishersEntry(entries, outcomes);
        assertPlainXaddsPerConnection(monitor, stream, 2, 2, 2, 2 + 3);
    }

    /**
     * Each publish of a batch has its own answer: seven publishes of 500 KB each go out together on the first writer's
     * turn to a server given 2 MB more than it holds (maxmemory, noeviction): room for the first, not for all seven (the
     * server counts each command's own arguments as it checks). The ones it stored get their ids, the others its OOM
     * refusal, and exactly the ones given an id are in the stream. Before, the seven were one script call, refused whole
     * (the call's 3.5 MB of arguments over the limit) or stored whole.
     */
    @Test
    void eachPublishOfABatchGetsItsOwnAnswerWhenTheServerRefusesSome() throws Exception {
        Topology t = TestRedis.topology();
        RedisUrl url = provisionedOwnServer(t);
        TcpProxy link = closer.add(TcpProxy.to(url));
        EventBus bus = bus(link.url(), t, "refused-" + NS, b -> b);
        String stream = t.inboundStream();
        Object[] outcomes = new Object[WRITERS + 7];
        List<Thread> all = publishersBehindFrozenOnes(bus, link, stream, 7, outcomes, "x".repeat(500_000));
        try (RawRedis raw = new RawRedis(url)) {
            // Nothing of the seven has reached the server yet (the first writer's connection is frozen).
            long used = Long.parseLong(raw.sync().info("memory").lines().filter(l -> l.startsWith("used_memory:"))
                    .findFirst().orElseThrow().substring("used_memory:".length()).trim());
            raw.sync().configSet("maxmemory-policy", "noeviction");
            raw.sync().configSet("maxmemory", Long.toString(used + 2_000_000));
            // The seven answered while the other writers' connections are still frozen: on the first writer's, together.
            answerTheBatchThenTheOtherWriters(link, all);
            raw.sync().configSet("maxmemory", "0");
        }
        List<Object> seven = Arrays.asList(outcomes).subList(WRITERS, WRITERS + 7);
        assertThat(seven).allSatisfy(o -> assertThat(o).satisfiesAnyOf(id -> assertThat(id).isInstanceOf(String.class),
                e -> assertThat(e).isInstanceOfSatisfying(RedisServerException.class, r -> assertThat(r.code()).isEqualTo("OOM"))));
        assertThat(seven).as("stored").anySatisfy(o -> assertThat(o).isInstanceOf(String.class));
        assertThat(seven).as("refused").anySatisfy(o -> assertThat(o).isInstanceOf(RedisServerException.class));
        java.util.Map<String, String> channelById = channelsById(TestRedis.readAll(bus, stream));
        for (int k = WRITERS; k < WRITERS + 7; k++) {
            String channel = "t" + k;
            if (outcomes[k] instanceof String id) {
                assertThat(channelById.get(id)).as("the entry of publisher %s's id", k).isEqualTo(channel);
            } else {
                assertThat(channelById.values()).as("entries of the refused publisher %s", k).doesNotContain(channel);
            }
        }
    }

    /**
     * Publishes waiting behind one whose answer does not come (publish timeout 2 s): that one fails as of unknown
     * outcome, and the stream is held for its answer, so the ones behind it are not written: each fails as not sent
     * within its own deadline, and none is stored later (before: each took a connection of its own and was stored).
     */
    @Test
    void publishesWaitingBehindOneThatTimesOutFailAsNotSentAndAreNeverStored() throws Exception {
        Topology t = TestRedis.topology();
        TcpProxy link = closer.add(TcpProxy.to(TestRedis.url()));
        // 2 s: the first writer's publish times out while the other writers and the three behind them are set up.
        EventBus bus = bus(link.url(), t, "behind-timeout-" + NS, b -> b.publishTimeout(Duration.ofSeconds(2)));
        EventBus observer = bus(TestRedis.url(), t, "observer-" + NS, b -> b);
        String stream = t.inboundStream();
        Object[] outcomes = new Object[WRITERS + 3];
        List<Thread> all = publishersBehindFrozenOnes(bus, link, stream, 3, outcomes);
        for (Thread th : all) th.join(10_000);
        assertThat(all).allSatisfy(th -> assertThat(th.isAlive()).isFalse());
        assertThat(Arrays.copyOfRange(outcomes, 0, WRITERS)).allSatisfy(o -> assertThat(o).isInstanceOf(PublishOutcomeUnknownException.class));
        assertThat(Arrays.copyOfRange(outcomes, WRITERS, WRITERS + 3))
                .allSatisfy(o -> assertThat(o).isExactlyInstanceOf(BusConnectionException.class));
        link.unfreeze();
        await().atMost(Duration.ofSeconds(10)).until(() -> TestRedis.readAll(observer, stream).size() == WRITERS + WRITERS);
        await().atMost(Duration.ofSeconds(10)).ignoreExceptions().until(() -> bus.publish(stream, message("c", 2)) != null);
        List<String> channels = TestRedis.readAll(observer, stream).stream().map(e -> e.envelope().channelId()).toList();
        assertThat(channels.subList(0, WRITERS)).containsOnly("c");
        assertThat(channels.subList(WRITERS, WRITERS + WRITERS)).as("the frozen writers', stored when the link carried them")
                .containsExactlyInAnyOrderElementsOf(java.util.stream.IntStream.range(0, WRITERS).mapToObj(k -> "t" + k).toList());
        assertThat(channels).hasSize(WRITERS + WRITERS + 1).last().isEqualTo("c");
    }

    /**
     * The connection is lost as the batch of waiting publishes goes out: every publish in it fails as of unknown
     * outcome (none waits on, none succeeds unwritten), and publishing goes on afterwards.
     */
    @Test
    void aBatchOfBlockingPublishesLostOnTheWireFailsEachOfThemAsOfUnknownOutcome() throws Exception {
        Topology t = TestRedis.topology();
        TcpProxy link = closer.add(TcpProxy.to(TestRedis.url()));
        EventBus bus = bus(link.url(), t, "lost-batch-" + NS, b -> b);
        String stream = t.inboundStream();
        Object[] outcomes = new Object[WRITERS + 3];
        List<Thread> all = publishersBehindFrozenOnes(bus, link, stream, 3, outcomes, "lost with its batch");
        link.cutConnectionsCarrying("lost with its batch", 1);
        // The other writers' answers held back until the waiting three have gone out, as one batch, on the first's turn.
        List<Thread> held = answerAllButTheOtherWriters(link, all);
        assertThat(held).as("the other writers, answered only after the batch").allSatisfy(th -> assertThat(th.isAlive()).isTrue());
        link.unfreeze();
        for (Thread th : all) th.join(10_000);
        assertThat(all).allSatisfy(th -> assertThat(th.isAlive()).isFalse());
        assertThat(link.commandsCut()).isEqualTo(1);
        assertThat(Arrays.copyOfRange(outcomes, 0, WRITERS)).allSatisfy(o -> assertThat(o).isInstanceOf(String.class));
        assertThat(Arrays.copyOfRange(outcomes, WRITERS, WRITERS + 3))
                .allSatisfy(o -> assertThat(o).isInstanceOf(PublishOutcomeUnknownException.class));
        String after = bus.publish(stream, message("c", WRITERS));
        List<String> ids = TestRedis.readAll(bus, stream).stream().map(StreamEntry::id).toList();
        // The writers' "c" publishes, the first writer's, the others' (released together, in any order), the one after;
        // none of the lost batch.
        assertThat(ids).hasSize(WRITERS + WRITERS + 1);
        assertThat(ids.get(WRITERS)).isEqualTo(outcomes[0]);
        assertThat(ids.subList(WRITERS + 1, WRITERS + WRITERS)).containsExactlyInAnyOrderElementsOf(
                Arrays.stream(outcomes, 1, WRITERS).map(o -> (String) o).toList());
        assertThat(ids).last().isEqualTo(after);
    }

    /**
     * The server closes the idle connection (CLIENT KILL, as its idle timeout or a failover would): the next publish
     * sees that before writing and goes on a new connection, so it neither fails nor is of unknown outcome.
     */
    @Test
    void aConnectionTheServerClosedWhileIdleIsReplacedBeforeThePublishIsWritten() {
        Topology t = TestRedis.topology();
        String node = "killed-" + NS;
        EventBus bus = bus(TestRedis.url(), t, node, b -> b);
        String stream = t.inboundStream();
        bus.publish(stream, message("c", 0));
        for (int round = 1; round <= 3; round++) {
            try (RawRedis raw = new RawRedis(TestRedis.url())) {
                raw.sync().dispatch(io.lettuce.core.protocol.CommandType.CLIENT,
                        new io.lettuce.core.output.IntegerOutput<>(io.lettuce.core.codec.ByteArrayCodec.INSTANCE),
                        new io.lettuce.core.protocol.CommandArgs<>(io.lettuce.core.codec.ByteArrayCodec.INSTANCE)
                                .add("KILL").add("ID").add(publishClientId(node)));
            }
            await().atMost(Duration.ofSeconds(5)).until(() -> clients(TestRedis.url(), node).isEmpty());
            bus.publish(stream, message("c", round));
            assertThat(clients(TestRedis.url(), node)).as("a new connection of its own carried publish %s", round).hasSize(1);
        }
        assertThat(TestRedis.readAll(bus, stream)).extracting(e -> e.envelope().longValue("n", -1)).containsExactly(0L, 1L, 2L, 3L);
    }

    private static String publishClientId(String node) {
        return clients(TestRedis.url(), node).stream().findFirst().map(l -> l.replaceAll("^id=(\\d+) .*", "$1")).orElseThrow();
    }

    /** The same across a restart of the server: the old connection is gone, the publish after it is stored once. */
    @Test
    void aServerRestartBetweenTwoPublishesIsInvisibleToTheSecond() {
        RedisServerProcess server = ownServer();
        RedisUrl url = RedisUrl.parse(server.url());
        Topology t = TestRedis.topology();
        EventBus bus = bus(url, t, "restart", b -> b);
        bus.publish(t.inboundStream(), message("c", 0));
        server.kill();
        server.restart();
        await().atMost(Duration.ofSeconds(10)).ignoreExceptions().until(() -> bus.ping() != null);
        bus.publish(t.inboundStream(), message("c", 1));
        assertThat(clients(url, "restart")).as("the publish after the restart went on a new connection of its own").hasSize(1);
        assertThat(TestRedis.readAll(bus, t.inboundStream())).extracting(e -> e.envelope().longValue("n", -1)).containsExactly(1L);
    }

    /**
     * Behind a stalled connection a blocking publish fails within its publish timeout, saying its outcome is unknown
     * (it was written); once the stall ends it is in the stream, and publishing goes on.
     */
    @Test
    void aStalledConnectionFailsTheBlockingPublishWithinItsTimeoutAsOfUnknownOutcome() {
        Topology t = TestRedis.topology();
        TcpProxy link = closer.add(TcpProxy.to(TestRedis.url()));
        EventBus bus = bus(link.url(), t, "stall", b -> b.publishTimeout(Duration.ofSeconds(1)));
        EventBus observer = bus(TestRedis.url(), t, "observer", b -> b);
        String stream = t.inboundStream();
        bus.publish(stream, message("c", 0));
        link.freezeAll();
        long start = System.nanoTime();
        assertThatThrownBy(() -> bus.publish(stream, message("c", 1))).isInstanceOf(PublishOutcomeUnknownException.class)
                .hasMessageContaining(stream);
        assertThat(Duration.ofNanos(System.nanoTime() - start)).isLessThan(Duration.ofSeconds(3));
        link.unfreeze();
        await().atMost(Duration.ofSeconds(10)).until(() -> TestRedis.readAll(observer, stream).size() == 2);
        await().atMost(Duration.ofSeconds(10)).ignoreExceptions().until(() -> bus.publish(stream, message("c", 2)) != null);
        assertThat(TestRedis.readAll(observer, stream)).extracting(e -> e.envelope().longValue("n", -1)).containsExactly(0L, 1L, 2L);
    }

    /**
     * When a connection of its own cannot be opened (the server is at maxclients), a blocking publish goes through the
     * shared connection instead of failing.
     */
    @Test
    void whenNoConnectionOfItsOwnCanBeOpenedThePublishGoesThroughTheSharedOne() {
        RedisServerProcess server = ownServer();
        RedisUrl url = RedisUrl.parse(server.url());
        Topology t = TestRedis.topology();
        EventBus bus = bus(url, t, "full", b -> b);
        try (RawRedis raw = new RawRedis(url)) {
            // The bus's shared and reader connections and this one: no room for another.
            raw.sync().configSet("maxclients", "1");
            try {
                String id = bus.publish(t.inboundStream(), message("c", 0));
                assertThat(id).isNotBlank();
                assertThat(bus.publish(t.inboundStream(), message("c", 1))).isNotBlank();
            } finally {
                raw.sync().configSet("maxclients", "10000");
            }
        }
        assertThat(clients(url, "full")).isEmpty();
        assertThat(TestRedis.readAll(bus, t.inboundStream())).extracting(e -> e.envelope().longValue("n", -1)).containsExactly(0L, 1L);
    }

    /**
     * A server that cannot take writes now (a replica: READONLY, as a demoted primary answers after a failover) is not
     * this publish's fault: the connection of its own is dropped and the publish goes the shared way, whose answer the
     * caller gets.
     */
    @Test
    void aReadOnlyServerSendsTheBlockingPublishTheSharedWay() {
        RedisServerProcess primary = ownServer();
        RedisServerProcess replica = ownServer();
        RedisUrl url = RedisUrl.parse(replica.url());
        try (RawRedis raw = new RawRedis(url)) {
            raw.sync().replicaof("127.0.0.1", primary.port());
        }
        Topology t = TestRedis.topology();
        EventBus bus = bus(url, t, "readonly", b -> b);
        assertThatThrownBy(() -> bus.publish(t.inboundStream(), message("c", 0))).isInstanceOf(RedisServerException.class)
                .satisfies(e -> assertThat(((RedisServerException) e).code()).isEqualTo("READONLY"));
        assertThat(clients(url, "readonly")).as("the connection that met READONLY").isEmpty();
    }

    /** An error reply is the publisher's error, and the connection stays in use: the next publish goes on it. */
    @Test
    void anErrorReplyFailsThatPublishAndKeepsTheConnection() {
        Topology t = TestRedis.topology();
        String node = "wrong-" + NS;
        EventBus bus = bus(TestRedis.url(), t, node, b -> b);
        String notAStream = t.inboundStream() + ":string";
        try (RawRedis raw = new RawRedis(TestRedis.url())) {
            raw.sync().set(RawRedis.utf8(notAStream), RawRedis.utf8("x"));
        }
        assertThatThrownBy(() -> bus.publish(notAStream, message("c", 0))).isInstanceOf(RedisServerException.WrongType.class)
                .hasMessageContaining(notAStream);
        String before = publishClientId(node);
        bus.publish(t.inboundStream(), message("c", 1));
        assertThat(publishClientId(node)).isEqualTo(before);
    }

    /**
     * A handler answers with {@code Delivery.reply} (asynchronous) and then publishes a follow-up with the blocking
     * form to the same stream: the follow-up must not overtake the answer on a connection of its own.
     */
    @Test
    void aBlockingPublishAfterAReplyToTheSameStreamComesAfterIt() {
        Topology t = TestRedis.topology();
        EventBus bus = bus(TestRedis.url(), t, "replies-" + NS, b -> b.role(NodeRole.STANDALONE));
        String in = t.inboundStream();
        String out = t.outboundStream("webchat");
        bus.ensureGroup(in, t.workerGroup());
        int n = 300;
        for (int i = 0; i < n; i++) bus.publishAsync(in, message("c" + i, i));
        java.util.concurrent.atomic.AtomicInteger done = new java.util.concurrent.atomic.AtomicInteger();
        closer.add(bus.subscribe(bus.consumer(in, t.workerGroup()).concurrency(4).build(), d -> {
            String channel = d.envelope().channelId();
            d.reply(out, Envelope.of("channel_id", channel, "step", 1));
            bus.publish(out, Envelope.of("channel_id", channel, "step", 2));
            done.incrementAndGet();
        }));
        await().atMost(Duration.ofSeconds(60)).until(() -> done.get() == n && TestRedis.readAll(bus, out).size() == 2 * n);
        java.util.Map<String, Long> last = new java.util.HashMap<>();
        for (StreamEntry e : TestRedis.readAll(bus, out)) {
            long step = e.envelope().longValue("step", -1);
            assertThat(step).as("step of channel %s after step %s", e.envelope().channelId(), last.get(e.envelope().channelId()))
                    .isEqualTo(last.getOrDefault(e.envelope().channelId(), 0L) + 1);
            last.put(e.envelope().channelId(), step);
        }
    }

    /**
     * A publish that failed at its deadline but may still be written later (its connection stalled) is not overtaken
     * by the same thread's next blocking publish on a fresh connection of its own: that one waits its turn behind it.
     */
    @Test
    void aBlockingPublishDoesNotOvertakeAnEarlierOneThatTimedOutButMayStillBeWritten() throws Exception {
        Topology t = TestRedis.topology();
        TcpProxy link = closer.add(TcpProxy.to(TestRedis.url()));
        EventBus bus = bus(link.url(), t, "late-" + NS, b -> b.publishTimeout(Duration.ofMillis(700)));
        EventBus observer = bus(TestRedis.url(), t, "observer", b -> b);
        String stream = t.inboundStream();
        bus.ping();
        link.freezeExisting(); // the shared connection stalls; a new connection of its own would not
        CompletableFuture<String> first = bus.publishAsync(stream, message("c", 1));
        assertThatThrownBy(first::join).hasCauseInstanceOf(PublishOutcomeUnknownException.class);
        CompletableFuture<String> second = CompletableFuture.supplyAsync(() -> bus.publish(stream, message("c", 2)));
        // While the first is held, nothing may be stored: the second waits behind it (wrongly, it would be stored at once).
        await().during(Duration.ofMillis(200)).atMost(Duration.ofSeconds(2)).until(() -> TestRedis.readAll(observer, stream).isEmpty());
        link.unfreeze();
        await().atMost(Duration.ofSeconds(10)).until(() -> TestRedis.readAll(observer, stream).size() == 2);
        assertThat(TestRedis.readAll(observer, stream)).extracting(e -> e.envelope().longValue("n", -1)).containsExactly(1L, 2L);
        second.handle((id, e) -> id).join();
    }

    /** The login of a connection of its own: an ACL user with a password, and a database other than 0. */
    @Test
    void aConnectionOfItsOwnLogsInAsTheUrlsUserToItsDatabase() {
        RedisServerProcess server = ownServer();
        try (RawRedis raw = new RawRedis(RedisUrl.parse(server.url()))) {
            raw.sync().aclSetuser("publisher", io.lettuce.core.AclSetuserArgs.Builder.on().addPassword("p@ss:w/rd").allKeys().allCommands());
        }
        RedisUrl url = RedisUrl.parse("redis://publisher:p%40ss%3Aw%2Frd@127.0.0.1:" + server.port() + "/3");
        Topology t = TestRedis.topology();
        EventBus bus = bus(url, t, "login", b -> b);
        bus.publish(t.inboundStream(), message("c", 0));
        List<String> own = clients(RedisUrl.parse(server.url()), "login");
        assertThat(own).hasSize(1);
        assertThat(own.get(0)).contains(" user=publisher ").contains(" db=3 ");
        try (RawRedis raw = new RawRedis(RedisUrl.parse(server.url() + "/3"))) {
            assertThat(raw.xlen(t.inboundStream())).isEqualTo(1);
        }
    }

    /** An interrupted thread's publish is stored and answered as before, and the thread is still interrupted after it. */
    @Test
    void anInterruptedThreadsPublishIsStoredAndTheInterruptKept() {
        Topology t = TestRedis.topology();
        EventBus bus = bus(TestRedis.url(), t, "interrupted-" + NS, b -> b);
        Thread.currentThread().interrupt();
        String id;
        try {
            id = bus.publish(t.inboundStream(), message("c", 0));
        } finally {
            assertThat(Thread.interrupted()).as("interrupt status after the publish").isTrue();
        }
        assertThat(TestRedis.readAll(bus, t.inboundStream())).extracting(StreamEntry::id).containsExactly(id);
        assertThat(clients(TestRedis.url(), "interrupted-" + NS)).hasSize(1);
    }

    /**
     * A flow lost (a NAT or load-balancer entry dropped: the open connections stay open and carry nothing, new ones
     * work) while a blocking publish waits on its connection of its own. Dead-peer timeout 2 s, publish timeout 6 s.
     * Before, that publish waited its whole 6 s, and its stream was then held 10 s more (Lettuce's command timeout) for
     * an answer that could not come: the asynchronous publish behind it failed at its deadline unsent, although the
     * shared connection had been replaced and answered after about 3 s, and the next blocking publish was stored about
     * 16 s after the flow was lost. Now the connection is taken for dead once it has carried nothing for the dead-peer
     * timeout, as the shared connection is, and the hold ends one dead-peer timeout later at the latest: publishing
     * resumes within about twice the dead-peer timeout. The same with the connections of their own turned off.
     */
    @Test
    void aLostFlowFailsTheBlockingPublishWithinTheDeadPeerTimeoutAndPublishingResumesSoonAfter() {
        publishingResumesAfterALostFlow(BusConfig.DEFAULT_BLOCKING_PUBLISH_CONNECTIONS);
    }

    @Test
    void aLostFlowFailsTheBlockingPublishWithinTheDeadPeerTimeoutAndPublishingResumesSoonAfterWithoutConnectionsOfTheirOwn() {
        publishingResumesAfterALostFlow(0);
    }

    private void publishingResumesAfterALostFlow(int ownConnections) {
        RedisServerProcess server = ownServer();
        TcpProxy link = closer.add(TcpProxy.to(RedisUrl.parse(server.url())));
        Topology t = TestRedis.topology();
        String node = "flow-" + ownConnections + "-" + NS;
        EventBus bus = bus(link.url(), t, node, b -> b.deadPeerTimeout(Duration.ofSeconds(2)).publishTimeout(Duration.ofSeconds(6))
                .blockingPublishConnections(ownConnections));
        String stream = t.inboundStream();
        bus.publish(stream, message("c", 0));
        assertThat(clients(RedisUrl.parse(server.url()), node)).hasSize(ownConnections == 0 ? 0 : 1);

        link.freezeExisting();
        long lost = System.nanoTime();
        Throwable first = org.assertj.core.api.Assertions.catchThrowable(() -> bus.publish(stream, message("c", 1)));
        Duration failedAfter = Duration.ofNanos(System.nanoTime() - lost);
        assertThat(first).as("the blocking publish on the lost flow").isInstanceOf(PublishOutcomeUnknownException.class);
        assertThat(failedAfter).as("when it failed (dead-peer timeout 2 s, publish timeout 6 s)").isLessThan(Duration.ofMillis(4500));

        CompletableFuture<String> behind = bus.publishAsync(stream, message("c", 2));
        java.util.concurrent.atomic.AtomicLong storedAt = new java.util.concurrent.atomic.AtomicLong();
        await().atMost(Duration.ofSeconds(20)).pollInterval(Duration.ofMillis(50)).ignoreExceptions().until(() -> {
            bus.publish(stream, message("c", 3));
            storedAt.set(System.nanoTime());
            return true;
        });
        assertThat(Duration.ofNanos(storedAt.get() - lost)).as("from the lost flow to the first blocking publish stored again")
                .isLessThan(Duration.ofSeconds(8));
        if (ownConnections > 0) {
            // Held behind the unanswered publish (about 2 s), then written on the replaced shared connection.
            assertThat(behind.handle((id, e) -> e == null ? id : e.toString()).join())
                    .as("the asynchronous publish made right after the failure, behind it on the same stream").matches("\\d+-\\d+");
            assertThat(TestRedis.readAll(bus, stream)).extracting(e -> e.envelope().longValue("n", -1)).containsSubsequence(0L, 2L, 3L);
        } else {
            // Nothing holds it: sent at once, while the shared connection may be reconnecting (refused then, unsent).
            assertThat(behind.handle((id, e) -> e == null || e instanceof BusConnectionException).join()).isTrue();
            assertThat(TestRedis.readAll(bus, stream)).extracting(e -> e.envelope().longValue("n", -1)).containsSubsequence(0L, 3L);
        }
    }

    /**
     * The connections of their own have TCP keepalive timed from the dead-peer timeout, as Lettuce's connections have:
     * the kernel's keepalive timer on the idle socket (Linux: /proc/net/tcp, timer 2, in hundredths of a second) runs
     * out within the dead-peer timeout, 2 s here. Before, only SO_KEEPALIVE was set: the kernel's default, 7 200 s.
     */
    @Test
    void aConnectionOfItsOwnHasTcpKeepaliveTimedFromTheDeadPeerTimeout() {
        Topology t = TestRedis.topology();
        RedisUrl url = TestRedis.url();
        String node = "keepalive-" + NS;
        EventBus bus = bus(url, t, node, b -> b.deadPeerTimeout(Duration.ofSeconds(2)));
        bus.publish(t.inboundStream(), message("c", 1));
        List<String> own = clients(url, node);
        assertThat(own).hasSize(1);
        String addr = own.get(0).replaceAll(".* addr=([^ ]+) .*", "$1").trim();
        int port = Integer.parseInt(addr.substring(addr.lastIndexOf(':') + 1));
        await().atMost(Duration.ofSeconds(5)).untilAsserted(() -> assertThat(keepaliveTimerHundredths(port, url.port()))
                .as("the keepalive timer of the connection from port %d", port).isBetween(0L, 200L));
    }

    /**
     * The kernel's keepalive timer of the TCP socket from {@code localPort} to {@code remotePort} (Linux), or -1 when
     * none runs. Both ports: a local port alone can be another connection's too (to another server, from the other test
     * JVM).
     */
    private static long keepaliveTimerHundredths(int localPort, int remotePort) throws java.io.IOException {
        String local = String.format(":%04X", localPort);
        String remote = String.format(":%04X", remotePort);
        List<String> lines = new ArrayList<>(java.nio.file.Files.readAllLines(java.nio.file.Path.of("/proc/net/tcp")));
        lines.addAll(java.nio.file.Files.readAllLines(java.nio.file.Path.of("/proc/net/tcp6")));
        for (String l : lines) {
            String[] f = l.trim().split("\\s+");
            if (f.length > 5 && f[1].endsWith(local) && f[2].endsWith(remote)) {
                String[] timer = f[5].split(":");
                return "02".equals(timer[0]) ? Long.parseLong(timer[1], 16) : -1;
            }
        }
        return -1;
    }
}
