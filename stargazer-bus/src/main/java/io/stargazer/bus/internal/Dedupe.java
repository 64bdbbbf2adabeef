package io.stargazer.bus.internal;

/**
 * Where a stream's dedupe keys live in Redis, and the scripts that use them (docs/once.md documents both for publishers
 * in other languages).
 *
 * <p>A stream's dedupe keys are fields of two hashes that take turns: the window's time is cut into periods one window
 * long, counted from the epoch by the server's clock ({@code TIME}); period {@code b} writes into hash {@code b mod 2},
 * and a lookup reads that hash and the previous period's. A key therefore answers for at least one window and at most
 * two. Each hash carries its period in the field {@code ""} (no dedupe key is empty): a hash found holding an older
 * period than the previous one is dropped ({@code UNLINK}, freed off the main thread) before it is reused, and each
 * expires at the end of the period after its own, so an idle stream's keys go too.
 *
 * <p>Why hashes and not one string key per dedupe key with a TTL (the first design): the server's time per entry
 * decides the throughput of keyed publishing, and per-key strings cost a GET, an XADD and a SET with an expiry per
 * entry (7.1 µs of server CPU per entry, against 2.5 µs for plain publishing, measured by /proc CPU time and
 * {@code INFO commandstats}); with the hashes a batch costs two HMGETs and one HSET whatever its size.
 *
 * <p>The hashes' names put them in their stream's cluster slot, so one script can check them and add the entries
 * atomically on a Redis Cluster too: a stream whose name has a hash tag ({@code sg:stream:inbound:{part-0-of-6~43}})
 * keeps it ({@code <stream>:dedupe:0} and {@code :1}); any other stream's whole name becomes the tag
 * ({@code {<stream>}:dedupe:0}), which hashes exactly as the untagged stream name does.
 */
final class Dedupe {
    private Dedupe() {
    }

    /** The two hashes holding {@code stream}'s dedupe keys (the script's KEYS after the stream). */
    static String[] hashNames(String stream) {
        return new String[] {slotKey(stream, "dedupe:0"), slotKey(stream, "dedupe:1")};
    }

    /**
     * On a Redis Cluster, refuses a keyed write to {@code stream} whose dedupe hashes lie in another slot, which Redis
     * would refuse (CROSSSLOT) with the whole batch. Only a name holding a '}' and no hash tag has them there: the tag
     * of {@code {<stream>}:dedupe:N} then ends at the name's first '}'. The layout stays as it is, since publishers in
     * other languages compute it (docs/once.md).
     */
    static void checkHashesInSlot(String stream) {
        if (!hashesInSlot(stream)) {
            String hash = hashNames(stream)[0];
            int slot = io.lettuce.core.cluster.SlotHash.getSlot(stream);
            int hashSlot = io.lettuce.core.cluster.SlotHash.getSlot(hash);
            throw new io.stargazer.bus.ConfigException("stream", "'" + Settings.printable(stream) + "' cannot take writes with a"
                    + " dedupe key on a Redis Cluster: its dedupe hashes ('" + Settings.printable(hash) + "', ...) lie in another slot ("
                    + hashSlot + ", the stream's " + slot + "), because the name has a '}' but no hash tag; give it a hash tag"
                    + " ({...}) or a name without '}' (docs/once.md)");
        }
    }

    /** Whether {@code stream}'s dedupe hashes are in its cluster slot: always, unless the name has a '}' but no hash tag. */
    static boolean hashesInSlot(String stream) {
        if (stream.indexOf('}') < 0) return true;
        // Both hashes share the tag (their names differ after it), so the first answers for both.
        return io.lettuce.core.cluster.SlotHash.getSlot(stream) == io.lettuce.core.cluster.SlotHash.getSlot(hashNames(stream)[0]);
    }

    /** A key named after {@code stream} that lives in the stream's cluster slot ({@link io.stargazer.bus.Topology#slotKey}). */
    static String slotKey(String stream, String suffix) {
        return io.stargazer.bus.Topology.slotKey(stream, suffix);
    }

    /**
     * The part every keyed script shares, taken from the functions library's source (stargazer.lua, section
     * {@code dedupe}), which runs the same helpers. {@code dedupe_open(h0, h1, window)}: the current period's hash, and the
     * previous period's when it still holds that period (else nil). {@code dedupe_find(cur, prev, args, from, to)}: the
     * ids of the keys {@code args[from..to]} by position (false where absent), in one HMGET per hash per 500 keys.
     * {@code dedupe_record(cur, pairs, n)}: stores key, id, ... in the current hash.
     */
    private static final String LIB = LibrarySource.section("dedupe");

    /**
     * KEYS[1] stream, KEYS[2..3] its dedupe hashes ({@link #hashNames}). ARGV[1] window in ms, ARGV[2] the width of an
     * entry (2, or 4 with trace context), ARGV[3] n, ARGV[4 .. 3+n] XADD options, ARGV[4+n] c, the number of entries,
     * then their c dedupe keys ('' for none), then per entry: payload, trace_id[, traceparent, tracestate ('' for
     * none)]. Returns each entry's id: the first one's for a key already used (also earlier in the same batch).
     *
     * <p>The keys come as one run of arguments so that the lookup passes them on as they lie ({@code unpack}) and finds
     * them by position: the first version gathered them into string-keyed Lua tables, and that Lua work cost more
     * server time per entry than the hash lookups (callgrind on redis-server: 29 000 instructions per keyed entry
     * against 17 000 plain; this layout 26 500).
     */
    static final String PUBLISH_SCRIPT = LIB + """
            local width = tonumber(ARGV[2])
            local n = tonumber(ARGV[3])
            local c = tonumber(ARGV[n + 4])
            local kfrom = n + 5
            local e = kfrom + c
            local cur, prev = dedupe_open(KEYS[2], KEYS[3], tonumber(ARGV[1]))
            local found = dedupe_find(cur, prev, ARGV, kfrom, e - 1)
            local args = {'XADD', KEYS[1]}
            for j = 1, n do args[j + 2] = ARGV[3 + j] end
            local base = n + 2
            args[base + 1] = '*'
            args[base + 2] = 'payload'
            args[base + 4] = 'trace_id'
            local ids, new, nn, seen = {}, {}, 0, {}
            for j = 1, c do
              local dk = ARGV[kfrom + j - 1]
              local id = dk ~= '' and (found[j] or seen[dk])
              if not id then
                args[base + 3] = ARGV[e]
                args[base + 5] = ARGV[e + 1]
                local m = base + 5
                if dk ~= '' then
                  args[m + 1] = 'dedupe_key'
                  args[m + 2] = dk
                  m = m + 2
                end
                if width == 4 then
                  args[m + 1] = 'traceparent'
                  args[m + 2] = ARGV[e + 2]
                  m = m + 2
                  if ARGV[e + 3] ~= '' then
                    args[m + 1] = 'tracestate'
                    args[m + 2] = ARGV[e + 3]
                    m = m + 2
                  end
                end
                id = redis.call(unpack(args, 1, m))
                if dk ~= '' then
                  seen[dk] = id
                  new[nn + 1] = dk
                  new[nn + 2] = id
                  nn = nn + 2
                end
              end
              ids[j] = id
              e = e + width
            end
            dedupe_record(cur, new, nn)
            return ids
            """;

    /** The dedupe key of the answer to entry {@code id} of {@code sourceStream} (Delivery.reply). */
    static String replyKey(String sourceStream, String id) {
        return "reply:" + sourceStream + ":" + id;
    }

    /**
     * Answer and acknowledge in one step. KEYS[1] answer stream, KEYS[2..3] its dedupe hashes, KEYS[4] source stream.
     * ARGV[1] window ms, ARGV[2] group, ARGV[3] source id, ARGV[4] n, ARGV[5 .. 4+n] XADD options, then either payload,
     * trace_id, dedupe key (an answer), or dedupe key, the entry's own dedupe key ('' for none), field, value, ... (the
     * relay: {@link Relaying}). Returns the answer's id (the earlier one's when either key was used). The answer's
     * layout and dedupe are the library's own section {@code reply}, which {@code sg_reply} runs too.
     */
    static final String REPLY_SCRIPT = LIB + LibrarySource.section("reply") + """
            local n = tonumber(ARGV[4])
            local opts = {}
            for j = 1, n do opts[j] = ARGV[4 + j] end
            local rk, own, fields = reply_parts(ARGV, 5 + n)
            local id = reply_add(KEYS[1], KEYS[2], KEYS[3], tonumber(ARGV[1]), opts, rk, own, fields)
            redis.call('XACK', KEYS[4], ARGV[2], ARGV[3])
            return id
            """;

    /**
     * The key that makes a dead letter of entry {@code id} of {@code sourceStream}, by {@code group}, stored once in its
     * dead-letter stream ({@link #DEAD_LETTER_SCRIPT}): the same entry dead-lettered again by the same group within the
     * window (its acknowledgement was lost, and whoever took it over dead-lettered it again) adds nothing.
     */
    static String deadLetterKey(String sourceStream, String id, String group) {
        // The stream's length first: stream and group names may hold ':', so without it the entry 1-1 of X by group
        // g:2-2:h and the entry 2-2 of X:1-1:g by group h would share a key in a dead-letter stream both write to.
        return "dead:" + sourceStream.length() + ":" + sourceStream + ":" + id + ":" + group;
    }

    /**
     * Stores a dead letter once ({@link #deadLetterKey}). KEYS[1] dead-letter stream, KEYS[2..3] its dedupe hashes.
     * ARGV[1] window ms, ARGV[2] n, ARGV[3 .. 2+n] XADD options, then the key, then field, value, ... Returns {1, id}
     * when added, {0, id} when that key's dead letter is there already. An answer's way of being stored once (the
     * library's section {@code reply}), which {@code sg_dead_letter} runs too.
     */
    static final String DEAD_LETTER_SCRIPT = LIB + LibrarySource.section("reply") + """
            local n = tonumber(ARGV[2])
            local opts = {}
            for j = 1, n do opts[j] = ARGV[2 + j] end
            local fields = {}
            for i = 4 + n, #ARGV do fields[#fields + 1] = ARGV[i] end
            local id, added = reply_add(KEYS[1], KEYS[2], KEYS[3], tonumber(ARGV[1]), opts, ARGV[3 + n], '', fields)
            return {added and 1 or 0, id}
            """;

    /** Where a replay remembers that dead letter {@code deadId} of {@code deadStream} was put back on {@code sourceStream}. */
    static String replayKeyName(String sourceStream, String deadStream, String deadId) {
        return slotKey(sourceStream, "replay:" + deadStream + ":" + deadId);
    }

    /** The pause flag of {@code group} on {@code stream} (EventBus.pause): in the stream's slot, no expiry. */
    static String pauseKeyName(String stream, String group) {
        return slotKey(stream, "paused:" + group);
    }

    /**
     * Puts one dead letter back. KEYS[1] source stream, KEYS[2] its replay key ({@link #replayKeyName}). ARGV[1] window
     * ms, ARGV[2] n, ARGV[3 .. 2+n] XADD options, then the fields to add (name, value, ...; replay_of last). Returns
     * {1, id} when added, {0, id} when an earlier replay already added it.
     */
    static final String REPLAY_SCRIPT = """
            local id = redis.call('GET', KEYS[2])
            if id then return {0, id} end
            local n = tonumber(ARGV[2])
            local args = {'XADD', KEYS[1]}
            for j = 1, n do args[#args + 1] = ARGV[2 + j] end
            args[#args + 1] = '*'
            for i = n + 3, #ARGV do args[#args + 1] = ARGV[i] end
            id = redis.call(unpack(args))
            redis.call('SET', KEYS[2], id, 'PX', ARGV[1])
            return {1, id}
            """;
}
