package io.stargazer.bus.internal;

import io.lettuce.core.RedisFuture;
import io.lettuce.core.ScriptOutputType;
import io.lettuce.core.cluster.api.async.RedisClusterAsyncCommands;
import io.lettuce.core.output.IntegerOutput;
import io.lettuce.core.output.NestedMultiOutput;
import io.lettuce.core.protocol.CommandArgs;
import io.lettuce.core.protocol.CommandType;
import io.stargazer.bus.DeadLetter;
import io.stargazer.bus.DeadLetterFilter;
import io.stargazer.bus.DeadLetterPage;
import io.stargazer.bus.Envelope;
import io.stargazer.bus.ReplayOptions;
import io.stargazer.bus.ReplayResult;
import io.stargazer.bus.StargazerException;
import io.stargazer.bus.Topology;
import io.stargazer.bus.wire.MalformedEntryException;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.function.BiConsumer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * {@link io.stargazer.bus.DeadLetters} on the bus's shared connection: lists dead-letter streams with XRANGE, puts
 * entries back with {@link Dedupe#REPLAY_SCRIPT} (one script per entry on its source stream's slot) and then XDELs
 * them from the dead-letter stream, and purges with XDEL or XTRIM.
 *
 * <p>Runs on the caller's thread; it blocks for Redis, so it must not be called on a Redis I/O thread. A replay
 * interrupted anywhere leaves every dead letter either still in its stream (put back or not: a rerun finds its replay
 * key and only removes it) or put back and removed: never lost, never put back twice within the replay key's window.
 */
final class RedisDeadLetters implements io.stargazer.bus.DeadLetters {
    private static final Logger log = LoggerFactory.getLogger(io.stargazer.bus.DeadLetters.class);
    /** Entries read per XRANGE while scanning. */
    private static final int SCAN_CHUNK = 500;
    private static final String MAX_ID = "18446744073709551615-18446744073709551615";
    /** Entries put back per round trip (without a rate limit). */
    private static final int REPLAY_BATCH = 100;
    /** The fields a dead-letter writer appends to the original ones (wire format), and a replay's own. */
    private static final Set<String> ADDED = Set.of("error", "source_stream", "source_id", "group", "deliveries", "dead_at_ms");
    private static final byte[] ERROR = bytes("error");
    private static final byte[] REPLAY_OF = bytes("replay_of");

    private final RedisEventBus bus;
    private final RedisClusterAsyncCommands<String, byte[]> redis;

    RedisDeadLetters(RedisEventBus bus) {
        this.bus = bus;
        this.redis = bus.redis().sharedAsync();
    }

    @Override
    public List<String> streams() {
        // The dead letters of every stream a replay may go back to; in relay mode the outboxes' too (what the relay
        // refused or could not move: docs/functions.md, "Relay mode").
        Topology t = bus.topology();
        Set<String> out = new LinkedHashSet<>();
        for (String source : t.replaySources(bus.config().platforms(), bus.config().publishVia() == io.stargazer.bus.PublishVia.RELAY)) {
            out.add(t.deadLetterStream(source));
        }
        // While SG_INBOUND_PARTITIONS changes, workers on the other count dead-letter into that count's streams: an
        // operator given the count (SG_INBOUND_PARTITIONS_ALSO) sees and replays them too (docs/cluster.md).
        for (String in : t.alsoInboundStreams()) out.add(t.deadLetterStream(in));
        return List.copyOf(out);
    }

    @Override
    public DeadLetterPage list(DeadLetterFilter filter) {
        // Oldest first across the streams: each stream read oldest first, merged by id (then by the streams' order, for
        // ids two streams share). After a cursor id@S, a stream up to S in that order resumes after the id, a stream past
        // S at the id itself, so a page neither repeats nor skips an entry sharing the cursor's id.
        List<String> streams = streamsOf(filter);
        String after = null;
        int cursorStream = -1;
        if (filter.after() != null) {
            int at = filter.after().indexOf('@');
            after = filter.after().substring(0, at);
            cursorStream = streams.indexOf(filter.after().substring(at + 1));
            if (cursorStream < 0) {
                // Without its stream's place the cursor cannot say where equal ids resume: refused, not guessed.
                throw new io.stargazer.bus.ConfigException("after", "'" + filter.after() + "' names a stream that is not one of the"
                        + " dead-letter streams listed (" + String.join(", ", streams) + ")");
            }
        }
        Selection selection = new Selection(filter);
        // A page and the one entry that says whether more follow is what one stream can give to the page at most; with
        // an error text or an age to match, reads stay full-sized, or a few matches among many would take a read each.
        boolean everyEntryMatches = filter.errorContains() == null && filter.olderThan() == null;
        int chunk = everyEntryMatches ? Math.min(SCAN_CHUNK, filter.limit() + 1) : SCAN_CHUNK;
        java.util.PriorityQueue<Head> heads = new java.util.PriorityQueue<>();
        List<String> notStreams = new ArrayList<>();
        for (int i = 0; i < streams.size(); i++) {
            // After the largest id there is nothing (and Redis refuses it as an exclusive start).
            if (after != null && i <= cursorStream && StreamIds.compare(after, MAX_ID) >= 0) continue;
            String from = after == null ? "-" : i <= cursorStream ? "(" + after : after;
            Head h = new Head(i, new Entries(streams.get(i), from, "+", selection, chunk));
            try {
                if (h.advance()) heads.add(h);
            } catch (io.stargazer.bus.RedisServerException.WrongType e) {
                // One stray key must not hide the dead letters of every other stream.
                notStreams.add(streams.get(i));
            }
        }
        List<DeadLetter> out = new ArrayList<>();
        String next = null;
        while (!heads.isEmpty()) {
            Head h = heads.poll();
            // A full page has a next cursor only if a match follows it: one that ends at the last match must not send
            // the reader to an empty page.
            if (out.size() == filter.limit()) {
                DeadLetter last = out.get(out.size() - 1);
                next = last.ref();
                break;
            }
            out.add(parse(h.entries.stream, h.entry));
            if (h.advance()) heads.add(h);
        }
        return new DeadLetterPage(out, next, notStreams);
    }

    /** One stream's next entry in a merge: ordered by id, then by the stream's place in the list. */
    private static final class Head implements Comparable<Head> {
        final int order;
        final Entries entries;
        RawEntry entry;

        Head(int order, Entries entries) {
            this.order = order;
            this.entries = entries;
        }

        boolean advance() {
            entry = entries.hasNext() ? entries.next() : null;
            return entry != null;
        }

        @Override
        public int compareTo(Head o) {
            int c = StreamIds.compare(entry.id(), o.entry.id());
            return c != 0 ? c : Integer.compare(order, o.order);
        }
    }

    @Override
    public List<String> notStreams(List<String> deadStreams) {
        List<String> out = new ArrayList<>();
        for (String s : deadStreams) {
            if (holdsAnotherType(s)) out.add(s);
        }
        return out;
    }

    @Override
    public Optional<DeadLetter> get(String id, DeadLetterFilter filter) {
        List<DeadLetter> found = list(filter.toBuilder().ids(List.of(id)).after(null).limit(1).build()).entries();
        return found.isEmpty() ? Optional.empty() : Optional.of(found.get(0));
    }

    @Override
    public ReplayResult replay(DeadLetterFilter filter, ReplayOptions options) {
        Replay r = new Replay(options);
        scan(filter, r::add);
        r.flush();
        log.atInfo().addKeyValue("matched", r.matched).addKeyValue("replayed", r.replayed).addKeyValue("already_replayed", r.already)
                .addKeyValue("skipped", r.skipped).addKeyValue("foreign_source", r.foreign).addKeyValue("dry_run", options.dryRun())
                .log("Replayed dead letters");
        return new ReplayResult(r.matched, r.replayed, r.already, r.skipped, r.foreign, options.dryRun());
    }

    @Override
    public long purge(DeadLetterFilter filter) {
        List<String> streams = streamsOf(filter);
        if (filter.ids().isEmpty() && filter.errorContains() == null) {
            // Nothing to read first: trim each stream by id in one command.
            long total = 0;
            for (String s : streams) {
                CommandArgs<String, byte[]> args = new CommandArgs<>(Redis.CODEC).addKey(s);
                if (filter.olderThan() == null) {
                    args.add("MAXLEN").add("=").add(0);
                } else {
                    args.add("MINID").add("=").add(cutoffMs(filter) + "-0");
                }
                try {
                    total += RedisEventBus.await(dispatchLong(CommandType.XTRIM, args), "XTRIM " + s);
                } catch (io.stargazer.bus.RedisServerException.WrongType e) {
                    warnNotAStream(s); // a stray key of another type: the other streams are still purged
                }
            }
            log.atInfo().addKeyValue("purged", total).log("Purged dead letters");
            return total;
        }
        long[] total = {0};
        List<String> batch = new ArrayList<>();
        String[] batchStream = {null};
        scan(filter, (stream, e) -> {
            if (!stream.equals(batchStream[0]) || batch.size() >= SCAN_CHUNK) {
                total[0] += xdel(batchStream[0], batch);
                batchStream[0] = stream;
            }
            batch.add(e.id());
        });
        total[0] += xdel(batchStream[0], batch);
        log.atInfo().addKeyValue("purged", total[0]).log("Purged dead letters");
        return total[0];
    }

    // ---- replay ---------------------------------------------------------------------------------------------

    /** One replay run: batches of one dead-letter stream, put back, then removed; paced by the rate limit. */
    private final class Replay {
        final ReplayOptions options;
        final int batchSize;
        final long startNanos = System.nanoTime();
        final List<RawEntry> batch = new ArrayList<>();
        String batchStream;
        long matched;
        long replayed;
        long already;
        long skipped;
        long foreign;

        Replay(ReplayOptions options) {
            this.options = options;
            this.batchSize = options.ratePerSecond() > 0 ? Math.max(1, Math.min(REPLAY_BATCH, options.ratePerSecond() / 10)) : REPLAY_BATCH;
        }

        void add(String stream, RawEntry e) {
            if (!stream.equals(batchStream) || batch.size() >= batchSize) {
                flush();
                batchStream = stream;
            }
            batch.add(e);
        }

        void flush() {
            if (batch.isEmpty()) return;
            matched += batch.size();
            List<RedisFuture<List<Object>>> added = new ArrayList<>();
            List<String> ids = new ArrayList<>();
            for (RawEntry e : batch) {
                Fields f = Fields.of(e);
                // A dead letter among a stream's dead letters (<stream><suffix>) goes back only to that stream: its
                // source_stream field is text whoever may write those dead letters chose, and must not send it to a
                // stream of another role. (A consumer's own dead-letter stream, ConsumerConfig.deadLetterStream, is
                // its owner's to replay from.)
                if (f.sourceStream == null || (batchStream.endsWith(bus.topology().deadLetterSuffix())
                        && !batchStream.equals(bus.topology().deadLetterStream(f.sourceStream)))) {
                    if (f.sourceStream != null) {
                        foreign++;
                        log.atWarn().addKeyValue("stream", batchStream).addKeyValue("id", e.id()).addKeyValue("source_stream", f.sourceStream)
                                .log("Dead letter not replayed: its source_stream is not the stream of this dead-letter stream");
                    }
                    skipped++;
                    continue;
                }
                ids.add(e.id());
                if (!options.dryRun()) added.add(putBack(f.sourceStream, batchStream, e.id(), f.original, options));
            }
            batch.clear();
            if (options.dryRun()) {
                return;
            }
            StargazerException failure = null;
            List<String> done = new ArrayList<>();
            for (int i = 0; i < added.size(); i++) {
                try {
                    List<Object> reply = RedisEventBus.await(added.get(i), "putting dead letter " + ids.get(i) + " back");
                    if (Long.valueOf(1).equals(reply.get(0))) replayed++;
                    else already++;
                    done.add(ids.get(i));
                } catch (StargazerException e) {
                    failure = e;
                }
            }
            xdel(batchStream, done);
            if (failure != null) throw failure;
            pace();
        }

        private void pace() {
            if (options.ratePerSecond() <= 0) return;
            long due = startNanos + TimeUnit.SECONDS.toNanos(replayed + already) / options.ratePerSecond();
            long wait = due - System.nanoTime();
            if (wait > 0) {
                try {
                    TimeUnit.NANOSECONDS.sleep(wait);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    throw new StargazerException("replay interrupted", e);
                }
            }
        }
    }

    /**
     * Puts one dead letter back on {@code source} (sg_replay: once per replay key's window). In relay mode the entry goes
     * to the operator's outbox instead, headed by its target and the dedupe key {@code replay:<dead stream>:<dead id>},
     * and the relay adds it to {@code source} (docs/functions.md "Relay mode"): the replay key then lives beside the
     * outbox, and the target's dedupe hashes catch a second replay whose replay key has expired.
     */
    private RedisFuture<List<Object>> putBack(String source, String deadStream, String deadId, List<byte[]> fields, ReplayOptions options) {
        boolean relay = bus.relaying().on();
        String target = relay ? bus.topology().operatorOutbox() : source;
        List<String> opts = bus.guard().trimArgsFor(target);
        List<byte[]> argv = new ArrayList<>(fields.size() + opts.size() + 8);
        argv.add(bytes(Long.toString(options.dedupeWindow().toMillis())));
        argv.add(bytes(Integer.toString(opts.size())));
        for (String o : opts) argv.add(bytes(o));
        if (relay) {
            argv.add(Relaying.TARGET);
            argv.add(source.getBytes(StandardCharsets.UTF_8));
            argv.add(Relaying.DEDUPE);
            argv.add((Relaying.REPLAY_KEY_PREFIX + deadStream + ":" + deadId).getBytes(StandardCharsets.UTF_8));
        }
        argv.addAll(fields);
        argv.add(REPLAY_OF);
        argv.add(bytes(deadId));
        return bus.redis().code().run(redis, Dedupe.REPLAY_SCRIPT, ScriptOutputType.MULTI,
                new String[] {target, Dedupe.replayKeyName(target, deadStream, deadId)}, argv.toArray(byte[][]::new));
    }

    // ---- reading --------------------------------------------------------------------------------------------

    /**
     * The filter's streams, every one of the topology's without. A stream the topology carries messages on (inbound,
     * outbound, tools, a reply stream, an outbox) is refused: taken for a dead-letter stream, a purge trimmed its
     * messages away (XTRIM MAXLEN 0) where its dead letters were meant. A consumer's own dead-letter stream, of a name
     * of its choosing, is taken as before.
     */
    private List<String> streamsOf(DeadLetterFilter filter) {
        if (filter.streams().isEmpty()) return streams();
        Topology t = bus.topology();
        for (String s : filter.streams()) {
            if (s.endsWith(t.deadLetterSuffix())) continue;
            if (s.equals(t.inboundStream()) || t.isInboundOfEitherCount(s) || s.equals(t.toolsStream()) || s.startsWith(t.outboundStreamPrefix() + ":")
                    || s.startsWith(t.toolsReplyStreamPrefix() + ":") || s.startsWith(t.outboxPrefix() + ":")) {
                throw new io.stargazer.bus.ConfigException("streams", "'" + s + "' is a stream of the topology, not a dead-letter stream;"
                        + " its dead letters are in '" + t.deadLetterStream(s) + "' (nothing was done)");
            }
        }
        return filter.streams();
    }

    /**
     * Visits the entries the filter selects (replay, purge), stream by stream in order, oldest first, only those each
     * stream held when the scan began.
     */
    private void scan(DeadLetterFilter filter, BiConsumer<String, RawEntry> visitor) {
        List<String> streams = streamsOf(filter);
        Selection selection = new Selection(filter);
        // A replay's own entries can be dead-lettered again while it runs, after its read position, in its stream or
        // another one (a replayed inbound entry's answer dead-lettered on an outbound stream): taken at the start, every
        // stream's end keeps one replay from putting them back again, and again, for as long as the consumer fails.
        List<String> ends = selection.byId ? null : streams.stream().map(this::lastId).toList();
        for (int i = 0; i < streams.size(); i++) {
            String stream = streams.get(i);
            String to = ends == null ? "+" : ends.get(i);
            if (to == null) continue;
            Entries entries = new Entries(stream, "-", to, selection, SCAN_CHUNK);
            try {
                while (entries.hasNext()) visitor.accept(stream, entries.next());
            } catch (io.stargazer.bus.RedisServerException.WrongType e) {
                warnNotAStream(stream); // a stray key of another type: the other streams are still replayed or purged
            }
        }
    }

    /** What a filter selects within a stream: ids, error text and age. */
    private final class Selection {
        /** Whether the filter names dead letters: then a stream none of its ids is for selects nothing. */
        final boolean byId;
        /** The ids given alone, for every stream, and those given with their stream ({@code id@stream}), by stream. */
        final Set<String> everyStream = new LinkedHashSet<>();
        final Map<String, Set<String>> byStream = new HashMap<>();
        final String needle;
        final long maxMs;

        Selection(DeadLetterFilter filter) {
            byId = !filter.ids().isEmpty();
            for (String id : filter.ids()) {
                int at = id.indexOf('@');
                if (at < 0) everyStream.add(id);
                else byStream.computeIfAbsent(id.substring(at + 1), s -> new LinkedHashSet<>()).add(id.substring(0, at));
            }
            needle = filter.errorContains() == null ? null : filter.errorContains().toLowerCase(Locale.ROOT);
            maxMs = filter.olderThan() == null ? Long.MAX_VALUE : cutoffMs(filter);
        }

        /**
         * The ids to read in {@code stream}. A set: an id given twice (or alone and with its stream) is one dead letter;
         * read twice, it would be put back once but counted twice.
         */
        Set<String> idsIn(String stream) {
            Set<String> ids = new LinkedHashSet<>(everyStream);
            ids.addAll(byStream.getOrDefault(stream, Set.of()));
            return ids;
        }

        boolean test(RawEntry e) {
            if (e.deleted() || StreamIds.millis(e.id()) >= maxMs) return false;
            if (needle == null) return true;
            String error = Fields.of(e).error;
            return error != null && error.toLowerCase(Locale.ROOT).contains(needle);
        }
    }

    /**
     * The entries of one stream a selection takes, oldest first from {@code from} to {@code to} (XRANGE bounds). Reads
     * {@code chunkSize} at a time, each read after the last id seen and only once the entries before were taken, so
     * whoever takes them may delete them.
     */
    private final class Entries implements java.util.Iterator<RawEntry> {
        final String stream;
        private String from;
        private final String to;
        private final Selection selection;
        private final Set<String> ids;
        private final int chunkSize;
        private final java.util.ArrayDeque<RawEntry> ready = new java.util.ArrayDeque<>();
        private boolean done;

        Entries(String stream, String from, String to, Selection selection, int chunkSize) {
            this.stream = stream;
            this.from = from;
            this.to = to;
            this.selection = selection;
            this.ids = selection.idsIn(stream);
            this.chunkSize = chunkSize;
        }

        @Override
        public boolean hasNext() {
            while (ready.isEmpty() && !done) {
                List<RawEntry> chunk;
                if (selection.byId) {
                    chunk = new ArrayList<>();
                    boolean exclusive = from.startsWith("(");
                    String bound = exclusive ? from.substring(1) : from;
                    List<String> wanted = new ArrayList<>();
                    for (String id : ids) {
                        if (from.equals("-") || StreamIds.compare(id, bound) >= (exclusive ? 1 : 0)) wanted.add(id);
                    }
                    chunk.addAll(byIds(stream, wanted));
                    chunk.sort((a, b) -> StreamIds.compare(a.id(), b.id()));
                    done = true;
                } else {
                    chunk = xrange(stream, from, to, chunkSize);
                    done = chunk.size() < chunkSize;
                    if (!done) from = "(" + chunk.get(chunk.size() - 1).id();
                }
                for (RawEntry e : chunk) {
                    if (selection.test(e)) ready.add(e);
                }
            }
            return !ready.isEmpty();
        }

        @Override
        public RawEntry next() {
            if (!hasNext()) throw new java.util.NoSuchElementException();
            return ready.poll();
        }
    }

    /**
     * The time before which an entry is older than {@code filter.olderThan()}: 0, matching nothing, for an age from before
     * 1970 (which would make a negative MINID, an invalid stream id) or one too large to count in milliseconds.
     */
    private long cutoffMs(DeadLetterFilter filter) {
        long now = bus.config().clock().millis();
        return filter.olderThan().compareTo(Duration.ofMillis(now)) >= 0 ? 0 : now - filter.olderThan().toMillis();
    }

    /** XLEN, which the monitor user may run too: refused as WRONGTYPE for a key of another type. */
    private boolean holdsAnotherType(String key) {
        try {
            RedisEventBus.await(dispatchLong(CommandType.XLEN, new CommandArgs<>(Redis.CODEC).addKey(key)), "XLEN " + key);
            return false;
        } catch (io.stargazer.bus.RedisServerException.WrongType e) {
            return true;
        }
    }

    private static void warnNotAStream(String key) {
        log.atWarn().addKeyValue("key", key).log("'" + key + "' is not a stream (a key of another type at a dead-letter stream's name);"
                + " skipped, the other dead-letter streams are not");
    }

    /**
     * The id of the last entry ever added to {@code stream} (XINFO STREAM, which the operator's ACL user has as the
     * monitor's read), or null when it holds nothing, or is a key of another type (said in a WARN: skipped).
     */
    private String lastId(String stream) {
        long length;
        try {
            length = RedisEventBus.await(dispatchLong(CommandType.XLEN, new CommandArgs<>(Redis.CODEC).addKey(stream)), "XLEN " + stream);
        } catch (io.stargazer.bus.RedisServerException.WrongType e) {
            warnNotAStream(stream);
            return null;
        }
        if (length == 0) {
            return null;
        }
        return Replies.text(Replies.pairs(RedisEventBus.await(redis.xinfoStream(stream), "XINFO STREAM " + stream)).get("last-generated-id"));
    }

    private List<RawEntry> xrange(String stream, String from, String to, int count) {
        CommandArgs<String, byte[]> args = new CommandArgs<>(Redis.CODEC).addKey(stream).add(from).add(to).add("COUNT").add(count);
        Object reply = RedisEventBus.await(redis.dispatch(CommandType.XRANGE, new NestedMultiOutput<>(Redis.CODEC), args), "XRANGE " + stream);
        return RawEntry.parseList(reply, null);
    }

    /** {@code XRANGE id id} for each id, every one sent before the first answer is awaited: one round trip, not one each. */
    private List<RawEntry> byIds(String stream, List<String> ids) {
        List<RedisFuture<List<Object>>> sent = new ArrayList<>(ids.size());
        for (String id : ids) {
            CommandArgs<String, byte[]> args = new CommandArgs<>(Redis.CODEC).addKey(stream).add(id).add(id).add("COUNT").add(1);
            sent.add(redis.dispatch(CommandType.XRANGE, new NestedMultiOutput<>(Redis.CODEC), args));
        }
        List<RawEntry> out = new ArrayList<>();
        for (RedisFuture<List<Object>> f : sent) out.addAll(RawEntry.parseList(RedisEventBus.await(f, "XRANGE " + stream), null));
        return out;
    }

    private long xdel(String stream, List<String> ids) {
        if (ids.isEmpty()) return 0;
        CommandArgs<String, byte[]> args = new CommandArgs<>(Redis.CODEC).addKey(stream);
        for (String id : ids) args.add(id);
        long n = RedisEventBus.await(dispatchLong(CommandType.XDEL, args), "XDEL " + stream);
        ids.clear();
        return n;
    }

    private RedisFuture<Long> dispatchLong(CommandType type, CommandArgs<String, byte[]> args) {
        return redis.dispatch(type, new IntegerOutput<>(Redis.CODEC), args);
    }

    private static DeadLetter parse(String deadStream, RawEntry e) {
        Fields f = Fields.of(e);
        Envelope envelope = null;
        String malformed = null;
        try {
            envelope = new RawEntry(e.id(), f.original).decode();
        } catch (MalformedEntryException ex) {
            malformed = ex.getMessage();
        }
        long deadAt = f.deadAtMs > 0 ? f.deadAtMs : StreamIds.millis(e.id());
        return new DeadLetter(deadStream, e.id(), f.sourceStream, f.sourceId, f.group, f.error, f.deliveries, deadAt, f.replayOf,
                envelope, malformed);
    }

    /**
     * A dead letter's fields split into the original entry's (byte for byte, without an earlier {@code replay_of}) and
     * what the dead-letter writer added after them: everything from the last {@code error} field on.
     */
    private record Fields(List<byte[]> original, String error, String sourceStream, String sourceId, String group, long deliveries,
            long deadAtMs, String replayOf) {

        static Fields of(RawEntry e) {
            List<byte[]> flat = e.flatFields();
            int split = flat.size();
            for (int i = flat.size() - 2; i >= 0; i -= 2) {
                if (Arrays.equals(flat.get(i), ERROR)) {
                    split = i;
                    break;
                }
            }
            List<byte[]> original = new ArrayList<>(split);
            String replayOf = null;
            for (int i = 0; i + 1 < split; i += 2) {
                if (Arrays.equals(flat.get(i), REPLAY_OF)) {
                    replayOf = text(flat.get(i + 1));
                } else {
                    original.add(flat.get(i));
                    original.add(flat.get(i + 1));
                }
            }
            String error = null, source = null, sourceId = null, group = null;
            long deliveries = 0, deadAt = 0;
            for (int i = split; i + 1 < flat.size(); i += 2) {
                String name = text(flat.get(i));
                if (!ADDED.contains(name)) continue;
                String value = text(flat.get(i + 1));
                switch (name) {
                    case "error" -> error = value;
                    case "source_stream" -> source = value;
                    case "source_id" -> sourceId = value;
                    case "group" -> group = value;
                    case "deliveries" -> deliveries = number(value);
                    default -> deadAt = number(value);
                }
            }
            return new Fields(original, error, source, sourceId, group, deliveries, deadAt, replayOf);
        }

        private static long number(String s) {
            try {
                return Long.parseLong(s);
            } catch (NumberFormatException e) {
                return 0;
            }
        }
    }

    private static String text(byte[] b) {
        return new String(b, StandardCharsets.UTF_8);
    }

    private static byte[] bytes(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }
}
