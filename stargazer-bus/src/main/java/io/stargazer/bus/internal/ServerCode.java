package io.stargazer.bus.internal;

import io.lettuce.core.RedisFuture;
import io.lettuce.core.ScriptOutputType;
import io.lettuce.core.cluster.api.async.RedisClusterAsyncCommands;
import io.lettuce.core.cluster.api.sync.RedisClusterCommands;
import io.stargazer.bus.BusConfig;
import io.stargazer.bus.ServerCodeMode;
import io.stargazer.bus.StargazerException;
import io.stargazer.bus.TrimPolicy;
import java.util.List;
import java.util.Map;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Runs the bus's server-side Lua one of two ways: {@code EVAL} of each script's text (every server; the path since
 * the start), or {@code FCALL} of the function of the {@code stargazer} Redis Functions library that has the same
 * keys, arguments and reply ({@code stargazer.lua} beside this class; Redis 7+; loaded by provisioning). The functions
 * also check their keys' shapes and refuse XADD options that could trim unacknowledged entries, so a role's ACL user
 * can be given {@code FCALL} of named functions instead of {@code EVAL} of any code (docs/functions.md).
 *
 * <p>Which way is decided at connect ({@link #choose}) from {@link BusConfig#serverCode()} and what the server has. A bus
 * that chose functions under {@code SG_SERVER_CODE=auto} follows the library while it runs: when the library is gone
 * from the server (an empty restart, {@code FUNCTION FLUSH}) or another version replaced it, it runs scripts, and
 * functions again once the library is back at its version ({@link #noticed}, {@link #check}). Before, every batch of
 * publishes, dedupe-keyed publish and answer was refused ("Function not found") until someone provisioned again.
 *
 * <p>Threads: {@link #run} and {@link #noticed} on any thread (a reply callback on a Redis I/O thread only flips a
 * flag); {@link #check} on the bus's maintenance thread, every {@link #CHECK_INTERVAL}.
 */
public final class ServerCode {
    private static final Logger log = LoggerFactory.getLogger(ServerCode.class);
    /** The library's name ({@code #!lua name=...}). */
    public static final String LIBRARY = "stargazer";
    /** The library version this code calls; {@code sg_version} of a loaded library must return it. */
    public static final int VERSION = 10;

    /** The script whose text is the key has the same contract as the function named by the value. */
    private static final Map<String, String> FUNCTION_OF = Map.ofEntries(
            Map.entry(StreamPublisher.BATCH_SCRIPT, "sg_publish_batch"),
            Map.entry(StreamPublisher.TRACED_BATCH_SCRIPT, "sg_publish_batch_traced"),
            Map.entry(Dedupe.PUBLISH_SCRIPT, "sg_publish"),
            Map.entry(Dedupe.REPLY_SCRIPT, "sg_reply"),
            Map.entry(StreamPublisher.OUTBOX_SCRIPT, "sg_outbox"),
            Map.entry(Dedupe.REPLAY_SCRIPT, "sg_replay"),
            Map.entry(Dedupe.DEAD_LETTER_SCRIPT, "sg_dead_letter"),
            Map.entry(StreamGuard.TRIM_SCRIPT, "sg_trim"),
            Map.entry(Ownership.REFRESH, "sg_refresh"),
            Map.entry(Ownership.CONFIRM, "sg_confirm"),
            Map.entry(IdleConsumerSweep.DELETE_IF_IDLE, "sg_delete_idle_consumer"),
            Map.entry(ToolRuns.BEGIN, "sg_tool_begin"),
            Map.entry(ToolRuns.RENEW, "sg_tool_renew"),
            Map.entry(ToolRuns.KEEP, "sg_tool_keep"),
            Map.entry(ToolRuns.FINISH, "sg_tool_finish"),
            Map.entry(RedisToolClient.INIT_SCRIPT, "sg_reply_stream_init"),
            Map.entry(RedisToolClient.MAINTAIN_SCRIPT, "sg_reply_stream_maintain"));

    /** Scripts, as before the library: what a bus uses until {@link #choose} says otherwise. */
    public static final ServerCode SCRIPTS = new ServerCode(false, false);
    /** How often a bus that follows the library asks the server for its version. */
    public static final java.time.Duration CHECK_INTERVAL = java.time.Duration.ofSeconds(5);

    private volatile boolean functions;
    /** Chosen under {@code auto} with the library there: runs scripts while it is gone, functions when it is back. */
    private final boolean follows;

    private ServerCode(boolean functions, boolean follows) {
        this.functions = functions;
        this.follows = follows;
    }

    /** True when this bus follows the library at run time ({@link #check} is worth scheduling). */
    boolean follows() {
        return follows;
    }

    /**
     * A failure of a call this bus made: when it says the library's functions are gone, a bus that follows the library
     * runs scripts from its next call on. The calls on the wire with it fail as it did: refused before they ran, so
     * nothing of theirs was stored, and a retry is safe.
     */
    void noticed(Throwable error) {
        if (!follows || !functions) return;
        if (refusedForLibrary(error)) {
            fallBack("the " + LIBRARY + " library is no longer on the server (an empty restart, FUNCTION FLUSH or DELETE)");
        }
    }

    /** Whether {@code error} is the server's refusal of an FCALL whose function it does not have: nothing of the call ran. */
    static boolean refusedForLibrary(Throwable error) {
        return String.valueOf(Failures.unwrap(error).getMessage()).contains("Function not found");
    }

    /** Asks the server which library version it has, and follows it: scripts unless it is this bus's version. */
    void check(RedisClusterCommands<String, byte[]> redis) {
        if (!follows) return;
        int loaded;
        try {
            loaded = loadedVersion(redis);
        } catch (RuntimeException e) {
            return; // Redis out of reach or refusing: the calls meet that themselves, asked again at the next check
        }
        if (loaded == VERSION) {
            if (!functions) {
                functions = true;
                log.atInfo().addKeyValue("library", LIBRARY).addKeyValue("version", VERSION)
                        .log("The library is on the server again: server-side logic runs as library functions (FCALL)");
            }
        } else if (functions) {
            fallBack(loaded == 0 ? "the " + LIBRARY + " library is no longer on the server (an empty restart, FUNCTION FLUSH or DELETE)"
                    : "the " + LIBRARY + " library was replaced by version " + loaded + ", this bus needs " + VERSION);
        }
    }

    private synchronized void fallBack(String why) {
        if (!functions) return;
        functions = false;
        log.atWarn().addKeyValue("reason", why).log("Server-side logic runs as scripts (EVAL) until the library is back at version "
                + VERSION + " (stargazer provision; checked every " + CHECK_INTERVAL.toSeconds() + " s). A user that may not run "
                + "EVAL (the strict users) is refused until then");
    }

    /** True when this bus calls the library's functions. */
    public boolean functions() {
        return functions;
    }

    /** The library's source, {@code #!lua name=stargazer} first: what {@code FUNCTION LOAD} is given. */
    public static String librarySource() {
        return LibrarySource.TEXT;
    }

    /** The function that does what {@code script} does. */
    static String functionOf(String script) {
        String f = FUNCTION_OF.get(script);
        if (f == null) throw new IllegalArgumentException("no library function for this script");
        return f;
    }

    <K, V, T> RedisFuture<T> run(RedisClusterAsyncCommands<K, V> redis, String script, ScriptOutputType type, K[] keys, V... args) {
        return run(redis, script, functions, type, keys, args);
    }

    /**
     * As above, but as functions or as scripts as the caller says (a caller that decided it earlier, from
     * {@link #functions()}, and must write what it decided: {@link StreamPublisher}).
     */
    <K, V, T> RedisFuture<T> run(RedisClusterAsyncCommands<K, V> redis, String script, boolean asFunctions, ScriptOutputType type, K[] keys,
            V... args) {
        if (!asFunctions) return redis.eval(script, type, keys, args);
        RedisFuture<T> reply = redis.fcall(functionOf(script), type, keys, args);
        if (follows) reply.whenComplete((r, e) -> { if (e != null) noticed(e); });
        return reply;
    }

    /**
     * The command {@link #run} would dispatch (EVAL of the script's text, or FCALL of its function) with a MULTI reply,
     * built but not sent: for a caller that must mark it before it can be written ({@link WriteOnce}).
     */
    io.lettuce.core.protocol.RedisCommand<String, byte[], List<Object>> multiCommand(String script, String[] keys, byte[]... args) {
        return multiCommand(script, functions, keys, args);
    }

    /** As above, as functions or as scripts as the caller says. */
    io.lettuce.core.protocol.RedisCommand<String, byte[], List<Object>> multiCommand(String script, boolean functions, String[] keys,
            byte[]... args) {
        return command(script, functions, new io.lettuce.core.output.NestedMultiOutput<>(Redis.CODEC), keys, args);
    }

    /** As {@link #multiCommand}, for a script whose reply is one value (an entry's id). */
    io.lettuce.core.protocol.RedisCommand<String, byte[], byte[]> valueCommand(String script, String[] keys, byte[]... args) {
        return command(script, functions, new io.lettuce.core.output.ValueOutput<>(Redis.CODEC), keys, args);
    }

    /** The command {@link #run} would dispatch, with {@code output}, built but not sent ({@link #multiCommand}). */
    <T> io.lettuce.core.protocol.RedisCommand<String, byte[], T> command(String script, boolean functions,
            io.lettuce.core.output.CommandOutput<String, byte[], T> output, String[] keys, byte[]... args) {
        io.lettuce.core.protocol.CommandArgs<String, byte[]> a = new io.lettuce.core.protocol.CommandArgs<>(Redis.CODEC);
        if (functions) {
            a.add(functionOf(script));
        } else {
            a.add(script.getBytes(java.nio.charset.StandardCharsets.UTF_8));
        }
        a.add(keys.length).addKeys(keys).addValues(args);
        return new io.lettuce.core.protocol.Command<>(functions ? io.lettuce.core.protocol.CommandType.FCALL
                : io.lettuce.core.protocol.CommandType.EVAL, output, a);
    }

    <K, V, T> T run(RedisClusterCommands<K, V> redis, String script, ScriptOutputType type, K[] keys, V... args) {
        if (!functions) return redis.eval(script, type, keys, args);
        try {
            return redis.fcall(functionOf(script), type, keys, args);
        } catch (RuntimeException e) {
            noticed(e);
            throw e;
        }
    }

    /**
     * The library version loaded on the server ({@code FCALL_RO sg_version 0}), or 0 when there is none. Throws what
     * the server answers otherwise (a refusal, a lost connection), translated.
     */
    public static int loadedVersion(RedisClusterCommands<String, byte[]> redis) {
        try {
            Object v = redis.fcallReadOnly("sg_version", ScriptOutputType.INTEGER, new String[0]);
            return v instanceof Long l ? l.intValue() : 0;
        } catch (RuntimeException e) {
            String m = String.valueOf(e.getMessage());
            if (m.contains("Function not found") || m.contains("unknown command")) return 0;
            throw Redis.translate(e, "asking for the " + LIBRARY + " library's version");
        }
    }

    /**
     * Loads the library (replacing one of another version); returns the version that was loaded before (0: none).
     * Loading the same version again changes nothing and sends no FUNCTION LOAD.
     */
    public static int load(RedisClusterCommands<String, byte[]> redis) {
        int before = loadedVersion(redis);
        if (before != VERSION) {
            try {
                redis.functionLoad(librarySource(), true);
            } catch (RuntimeException e) {
                throw Redis.translate(e, "loading the " + LIBRARY + " library (FUNCTION LOAD REPLACE)");
            }
        }
        return before;
    }

    /** How this bus runs its server-side logic: {@link BusConfig#serverCode()} against what the server has. */
    static ServerCode choose(Redis redis, BusConfig config) {
        ServerCodeMode mode = config.serverCode();
        if (mode == ServerCodeMode.SCRIPTS) return SCRIPTS;
        String why = null;
        int loaded = 0;
        if (!redis.version().atLeast(7, 0)) {
            why = "Redis " + redis.version().text() + " has no functions";
        } else if (redis.cluster()) {
            why = "a Redis Cluster (provisioning loads the library on one server only)";
        } else if (config.trimPolicy() == TrimPolicy.EVICT) {
            why = BusConfig.ENV_TRIM_POLICY + "=evict (the functions never trim unacknowledged entries)";
        } else {
            loaded = loadedVersion(redis.sharedSync());
            if (loaded != VERSION) {
                why = loaded == 0 ? "the " + LIBRARY + " library is not loaded (stargazer provision loads it)"
                        : "the " + LIBRARY + " library is version " + loaded + ", this bus needs " + VERSION + " (stargazer provision replaces it)";
            }
        }
        if (why == null) {
            log.atInfo().addKeyValue("library", LIBRARY).addKeyValue("version", VERSION).log("Server-side logic runs as library functions (FCALL)");
            return new ServerCode(true, mode == ServerCodeMode.AUTO);
        }
        if (mode == ServerCodeMode.FUNCTIONS) {
            throw new StargazerException(BusConfig.ENV_SERVER_CODE + "=functions, but " + why);
        }
        (loaded > 0 ? log.atWarn() : log.atInfo()).addKeyValue("reason", why).log("Server-side logic runs as scripts (EVAL)");
        return SCRIPTS;
    }

    @Override
    public String toString() {
        return functions ? "functions" : "scripts";
    }
}
