package io.stargazer.bus;

import java.util.List;
import java.util.Optional;

/**
 * Reading, replaying and purging dead letters ({@link EventBus#deadLetters()}): what {@code stargazer dead} and the
 * dashboard's dead-letter page run. Every method is blocking and may be called from any thread but a Redis I/O thread;
 * Redis failures throw the bus's exceptions ({@link BusConnectionException}, {@link RedisServerException}).
 *
 * <p>Replay puts each dead letter's original fields back on its {@code source_stream} byte for byte, plus
 * {@code replay_of} (the dead-letter id), then removes the dead letter. Putting back is one script on the source
 * stream that first checks, and then sets, a key remembering the dead letter ({@link ReplayOptions#dedupeWindow()}),
 * so a replay interrupted anywhere and run again puts nothing back twice and loses nothing (docs/operating.md). A
 * replayed entry that fails again is a new entry: it is dead-lettered again with its delivery count starting over.
 */
public interface DeadLetters {

    /**
     * Every dead-letter stream of the topology: those of the inbound stream(s), each platform's outbound stream, tools;
     * in relay mode also each outbox's (entries the relay refused or could not move).
     */
    List<String> streams();

    /**
     * One page of the dead letters the filter selects, oldest first across its streams (by entry id; entries of two
     * streams with the same id in the order of the filter's streams, else of {@link #streams()}). A stream whose name
     * holds a key of another type is skipped and named in {@link DeadLetterPage#notStreams()}.
     */
    DeadLetterPage list(DeadLetterFilter filter);

    /**
     * Those of {@code deadStreams} whose name holds a key of another type (a stray {@code SET}), which {@link #list}
     * skips: one {@code XLEN} each, a read the monitor's ACL user has too.
     */
    List<String> notStreams(List<String> deadStreams);

    /**
     * The dead letter with this id in any of the filter's streams (all of the topology's when none): {@code <ms>-<seq>},
     * the first of the streams' order when two hold it (see {@link #list}), or {@code <ms>-<seq>@<stream>}
     * ({@link DeadLetter#ref()}) for that stream's. To act on the one found, select it by its {@code ref()}: its id
     * alone selects every stream's entry of that id.
     */
    Optional<DeadLetter> get(String id, DeadLetterFilter filter);

    /** {@link #get(String, DeadLetterFilter)} in every dead-letter stream of the topology. */
    default Optional<DeadLetter> get(String id) {
        return get(id, DeadLetterFilter.ALL);
    }

    /**
     * Replays every dead letter the filter selects (its {@code limit} and {@code after} are ignored): see the class
     * comment. Returns how many were put back; with {@link ReplayOptions#dryRun()} only counts them.
     */
    ReplayResult replay(DeadLetterFilter filter, ReplayOptions options);

    /**
     * Deletes every dead letter the filter selects (its {@code limit} and {@code after} are ignored); returns how many.
     * A filter with only {@code olderThan} (and streams) trims each stream by id ({@code XTRIM MINID}) in one command.
     */
    long purge(DeadLetterFilter filter);
}
