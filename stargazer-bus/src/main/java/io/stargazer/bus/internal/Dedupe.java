package io.stargazer.bus.internal;

/**
 * Where a stream's dedupe keys live in Redis (docs/once.md documents it for publishers in other languages): one string
 * key per dedupe key, holding the id of the entry first published with it, expiring after the dedupe window.
 *
 * <p>The key's name puts it in its stream's cluster slot, so one script can check it and add the entry atomically on
 * a Redis Cluster too: a stream whose name has a hash tag ({@code sg:stream:inbound:{part-0-of-6~43}}) keeps it
 * ({@code <stream>:dedupe:<key>}); any other stream's whole name becomes the tag ({@code {<stream>}:dedupe:<key>}),
 * which hashes exactly as the untagged stream name does.
 */
final class Dedupe {
    private Dedupe() {
    }

    static String keyName(String stream, String dedupeKey) {
        return slotKey(stream, "dedupe:" + dedupeKey);
    }

    /** A key named after {@code stream} that lives in the stream's cluster slot ({@link io.stargazer.bus.Topology#slotKey}). */
    static String slotKey(String stream, String suffix) {
        return io.stargazer.bus.Topology.slotKey(stream, suffix);
    }

    /**
     * KEYS[1] stream, KEYS[2..] the dedupe key names of the entries that have one, in order. ARGV[1] window in ms,
     * ARGV[2] n, ARGV[3 .. 2+n] XADD options, then per entry: payload, trace_id, dedupe key ('' for none). Returns
     * each entry's id: the first one's for a key already used (also earlier in the same batch).
     */
    static final String PUBLISH_SCRIPT = """
            local window = ARGV[1]
            local n = tonumber(ARGV[2])
            local ids = {}
            local k = 2
            for i = n + 3, #ARGV, 3 do
              local dk = ARGV[i + 2]
              local id = false
              if dk ~= '' then id = redis.call('GET', KEYS[k]) end
              if not id then
                local args = {'XADD', KEYS[1]}
                for j = 1, n do args[#args + 1] = ARGV[2 + j] end
                args[#args + 1] = '*'
                args[#args + 1] = 'payload'
                args[#args + 1] = ARGV[i]
                args[#args + 1] = 'trace_id'
                args[#args + 1] = ARGV[i + 1]
                if dk ~= '' then
                  args[#args + 1] = 'dedupe_key'
                  args[#args + 1] = dk
                end
                id = redis.call(unpack(args))
                if dk ~= '' then redis.call('SET', KEYS[k], id, 'PX', window) end
              end
              if dk ~= '' then k = k + 1 end
              ids[#ids + 1] = id
            end
            return ids
            """;

    /**
     * {@link #PUBLISH_SCRIPT} for publishes that carry trace context: per entry payload, trace_id, dedupe key,
     * traceparent, tracestate ('' for none). Used only for batches of traced publishes, so the common path is unchanged.
     */
    static final String TRACED_PUBLISH_SCRIPT = """
            local window = ARGV[1]
            local n = tonumber(ARGV[2])
            local ids = {}
            local k = 2
            for i = n + 3, #ARGV, 5 do
              local dk = ARGV[i + 2]
              local id = false
              if dk ~= '' then id = redis.call('GET', KEYS[k]) end
              if not id then
                local args = {'XADD', KEYS[1]}
                for j = 1, n do args[#args + 1] = ARGV[2 + j] end
                args[#args + 1] = '*'
                args[#args + 1] = 'payload'
                args[#args + 1] = ARGV[i]
                args[#args + 1] = 'trace_id'
                args[#args + 1] = ARGV[i + 1]
                if dk ~= '' then
                  args[#args + 1] = 'dedupe_key'
                  args[#args + 1] = dk
                end
                args[#args + 1] = 'traceparent'
                args[#args + 1] = ARGV[i + 3]
                if ARGV[i + 4] ~= '' then
                  args[#args + 1] = 'tracestate'
                  args[#args + 1] = ARGV[i + 4]
                end
                id = redis.call(unpack(args))
                if dk ~= '' then redis.call('SET', KEYS[k], id, 'PX', window) end
              end
              if dk ~= '' then k = k + 1 end
              ids[#ids + 1] = id
            end
            return ids
            """;

    /** The dedupe key of the answer to entry {@code id} of {@code sourceStream} (Delivery.reply). */
    static String replyKey(String sourceStream, String id) {
        return "reply:" + sourceStream + ":" + id;
    }

    /**
     * Answer and acknowledge in one step. KEYS[1] answer stream, KEYS[2] its dedupe key name, KEYS[3] source stream.
     * ARGV[1] window ms, ARGV[2] group, ARGV[3] source id, ARGV[4] n, ARGV[5 .. 4+n] XADD options, then payload,
     * trace_id, dedupe key. Returns the answer's id (the first one's when the key was used).
     */
    static final String REPLY_SCRIPT = """
            local n = tonumber(ARGV[4])
            local id = redis.call('GET', KEYS[2])
            if not id then
              local args = {'XADD', KEYS[1]}
              for j = 1, n do args[#args + 1] = ARGV[4 + j] end
              local p = 5 + n
              args[#args + 1] = '*'
              args[#args + 1] = 'payload'
              args[#args + 1] = ARGV[p]
              args[#args + 1] = 'trace_id'
              args[#args + 1] = ARGV[p + 1]
              args[#args + 1] = 'dedupe_key'
              args[#args + 1] = ARGV[p + 2]
              id = redis.call(unpack(args))
              redis.call('SET', KEYS[2], id, 'PX', ARGV[1])
            end
            redis.call('XACK', KEYS[3], ARGV[2], ARGV[3])
            return id
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
