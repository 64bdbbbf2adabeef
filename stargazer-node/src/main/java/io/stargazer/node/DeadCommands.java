// The operator commands for dead letters and pausing: `stargazer dead list|show|replay|purge` and
// `stargazer pause|resume STREAM GROUP`, all through the library's DeadLetters and EventBus.pause (docs/operating.md).
package io.stargazer.node;

import io.stargazer.bus.ConfigException;
import io.stargazer.bus.DeadLetter;
import io.stargazer.bus.DeadLetterFilter;
import io.stargazer.bus.DeadLetterPage;
import io.stargazer.bus.EventBus;
import io.stargazer.bus.ReplayOptions;
import io.stargazer.bus.ReplayResult;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/** Holder of {@code stargazer dead ...}, {@code pause} and {@code resume}. */
final class DeadCommands {
    private DeadCommands() {
    }

    @Command(name = "dead", mixinStandardHelpOptions = true, description = "Dead letters: list, show, replay, purge.",
            subcommands = {ListCmd.class, Show.class, Replay.class, Purge.class})
    static final class Dead {
        @picocli.CommandLine.ParentCommand Main main;
    }

    /** A dead-letter command: STREAM / --stream default to every dead-letter stream of the topology. */
    abstract static class DeadCommand implements java.util.concurrent.Callable<Integer> {
        @picocli.CommandLine.ParentCommand Dead dead;
        @picocli.CommandLine.Spec picocli.CommandLine.Model.CommandSpec spec;
        @picocli.CommandLine.Mixin OperatorCommands.ConnectionOptions connection;
        Main main;

        /**
         * The filter's streams part: what {@code name} names (inbound, outbound:p, tools, a stream), or every one. A
         * dead-letter stream that is neither one of the topology's nor there in Redis is refused: a typo listed,
         * replayed and purged nothing, and "purged 0" read as done. Refusals name the STREAM
         * argument or the --stream flag ({@link #streamFlag}).
         */
        DeadLetterFilter.Builder filter(EventBus bus, String name) {
            DeadLetterFilter.Builder f = DeadLetterFilter.builder();
            if (name != null) {
                List<String> dead = DeadLetterView.deadStreams(bus.topology(), OperatorCommands.resolveStreams(bus, name, streamFlag()));
                List<String> known = bus.deadLetters().streams();
                for (String s : dead) {
                    if (!known.contains(s) && absent(bus, s)) {
                        throw new ConfigException(streamFlag(), "'" + name + "': its dead-letter stream '" + s + "' is not one of the"
                                + " topology's (" + String.join(", ", known) + ") and is not in Redis (nothing was done)");
                    }
                }
                f.streams(dead);
            }
            return f;
        }

        /** How the operator named the stream: {@code --stream}, or list's STREAM. */
        String streamFlag() {
            return "--stream";
        }

        /** Only a stream Redis says is not there; one that could not be read is left to the command, which says why. */
        private static boolean absent(EventBus bus, String stream) {
            try {
                return bus.describeStream(stream).isEmpty();
            } catch (io.stargazer.bus.StargazerException e) {
                return false;
            }
        }

        /** The command itself; its ConfigExceptions name the library's filter parts, which call() renames. */
        abstract int run();

        /** What the library names by DeadLetterFilter's parts ({@code ids}, {@code after}...) the operator typed as ID, --after... */
        @Override
        public final Integer call() {
            try {
                return run();
            } catch (ConfigException e) {
                String flag = switch (e.setting()) {
                    case "ids" -> "ID";
                    case "after" -> "--after";
                    case "limit" -> "--limit";
                    case "olderThan" -> "--older-than";
                    default -> null;
                };
                if (flag == null) throw e;
                throw new ConfigException(flag, e.reason());
            }
        }

        EventBus connect() {
            main = dead.main;
            return OperatorCommands.connect(main, spec, connection);
        }

        /** Says on stderr that a dead-letter stream's name holds a key of another type, and what that means. */
        static void warnNotAStream(picocli.CommandLine.Model.CommandSpec spec, String stream, String consequence) {
            spec.commandLine().getErr().println("stargazer: warning: '" + stream + "' is not a stream (a key of another type): " + consequence);
            spec.commandLine().getErr().flush();
        }


        /**
         * After the ids found were acted on: a mistyped id ends the command with exit code 2, as show does, so a script
         * is told.
         */
        static void requireFound(List<String> ids, List<String> missing) {
            if (!missing.isEmpty()) {
                throw new ConfigException("ID", missing.size() + " of " + ids.stream().distinct().count() + " id(s) not found: "
                        + String.join(", ", missing));
            }
        }
    }

    @Command(name = "list", mixinStandardHelpOptions = true,
            description = "Dead letters as a table (id, age, deliveries, error, channel, content) or JSON lines.")
    static final class ListCmd extends DeadCommand {
        @Parameters(index = "0", arity = "0..1", paramLabel = "STREAM",
                description = "inbound, outbound:<platform>, tools, or a stream name (default: every dead-letter stream)")
        String stream;

        @Option(names = "--json", description = "Print one JSON object per entry instead of a table, each with the cursor "
                + "--after takes; 'more: --after CURSOR' goes to stderr")
        boolean json;

        @Option(names = "--error", paramLabel = "TEXT", description = "Only entries whose error contains TEXT (case-insensitive)")
        String error;

        @Option(names = {"-n", "--limit"}, paramLabel = "N", defaultValue = "100", description = "At most N entries (default 100)")
        int limit;

        @Option(names = "--after", paramLabel = "CURSOR", description = "Continue after the cursor a previous list printed")
        String after;

        @Override
        String streamFlag() {
            return "STREAM";
        }

        @Override
        int run() {
            try (EventBus bus = connect()) {
                DeadLetterPage page = bus.deadLetters().list(filter(bus, stream).errorContains(error).limit(limit).after(after).build());
                for (String s : page.notStreams()) warnNotAStream(spec, s, "its dead letters, if any, are not listed");
                long now = System.currentTimeMillis();
                if (json) {
                    for (DeadLetter d : page.entries()) {
                        // The cursor list --after takes (the library's id@stream), on each line: a script pages from its last.
                        Map<String, Object> line = DeadLetterView.full(d, now);
                        line.put("cursor", d.ref());
                        main.out.println(NodeJson.write(line));
                    }
                    // stdout stays one JSON object a line; whoever reads along is told there are more as the table tells.
                    if (page.next() != null) {
                        spec.commandLine().getErr().println("more: --after " + page.next());
                        spec.commandLine().getErr().flush();
                    }
                } else {
                    List<String[]> rows = new ArrayList<>();
                    rows.add(new String[] {"ID", "STREAM", "AGE", "DELIVERIES", "ERROR", "CHANNEL", "CONTENT"});
                    for (DeadLetter d : page.entries()) {
                        rows.add(new String[] {d.id(), DeadLetterView.printable(d.deadStream()), DeadLetterView.age(Math.max(0, now - d.deadAtMs())),
                                d.deliveries() == 0 ? "?" : Long.toString(d.deliveries()), DeadLetterView.errorSummary(d.error()),
                                DeadLetterView.printable(d.envelope() == null ? null : d.envelope().channelId()),
                                DeadLetterView.printable(DeadLetterView.preview(d))});
                    }
                    main.out.print(StreamsReport.format(rows));
                    if (page.next() != null) main.out.println("more: --after " + page.next());
                }
                main.out.flush();
            }
            return 0;
        }
    }

    @Command(name = "show", mixinStandardHelpOptions = true, description = "One dead letter as JSON, its envelope whole (bytes as base64).")
    static final class Show extends DeadCommand {
        @Parameters(paramLabel = "ID", description = "The dead letter's id, or ID@STREAM where two dead-letter streams hold that id")
        String id;

        @Option(names = "--stream", paramLabel = "S", description = "Look only in this stream's dead letters")
        String stream;

        @Override
        int run() {
            try (EventBus bus = connect()) {
                DeadLetter d = DeadLetterView.lookUp(bus, filter(bus, stream).build(), List.of(id), "ids").byId().get(id);
                if (d == null) throw new ConfigException("ID", "'" + id + "' is not in any dead-letter stream");
                main.out.println(NodeJson.write(DeadLetterView.full(d, System.currentTimeMillis())));
                main.out.flush();
            }
            return 0;
        }
    }

    /** What replay and purge act on: ids, or --all, within --stream and matching --error. */
    static final class Selection {
        @Parameters(arity = "0..*", paramLabel = "ID", description = "Dead letters to act on: ids, or ID@STREAM where two dead-letter streams hold an id")
        List<String> ids = new ArrayList<>();

        @Option(names = "--all", description = "Every dead letter (of --stream, matching --error)")
        boolean all;

        @Option(names = "--stream", paramLabel = "S", description = "inbound, outbound:<platform>, tools, or a stream name")
        String stream;

        @Option(names = "--error", paramLabel = "TEXT", description = "Only entries whose error contains TEXT")
        String error;

        /**
         * The error text to match, or null without --error. An empty one is refused: the filter takes it for "any", so
         * {@code --error "$REASON"} with REASON unset replayed or purged every dead letter.
         */
        String error() {
            if (error != null && error.isBlank()) {
                throw new ConfigException("--error", "'" + error + "' is empty: give the text to match, or leave --error out (nothing was done)");
            }
            return error;
        }
    }

    @Command(name = "replay", mixinStandardHelpOptions = true,
            description = "Puts dead letters back on their source stream (original fields and replay_of), then removes them. "
                    + "Safe to run again after an interruption: nothing is put back twice.")
    static final class Replay extends DeadCommand {
        @picocli.CommandLine.Mixin Selection sel;

        @Option(names = "--rate", paramLabel = "N/s", description = "At most N entries per second")
        String rate;

        @Option(names = "--dry-run", description = "Only count what would be replayed")
        boolean dryRun;

        @Override
        int run() {
            if (sel.ids.isEmpty() == !sel.all) throw new ConfigException("ID", "give dead-letter ids or --all (not both)");
            String error = sel.error();
            ReplayOptions.Builder o = ReplayOptions.builder().dryRun(dryRun);
            if (rate != null) o.ratePerSecond(DeadLetterView.rate("--rate", rate));
            try (EventBus bus = connect()) {
                DeadLetterFilter f = filter(bus, sel.stream).errorContains(error).build();
                // By ids: what they name is looked up first (an id two streams hold is refused), then those found are
                // acted on by id@stream; none found, nothing is (a filter without ids would select every one).
                DeadLetterView.Named named = sel.all ? null : DeadLetterView.lookUp(bus, f, sel.ids, "ids");
                ReplayResult r = (named == null ? Optional.of(f) : named.selected()).map(s -> bus.deadLetters().replay(s, o.build()))
                        .orElse(new ReplayResult(0, 0, 0, 0, dryRun));
                main.out.println(r.dryRun() ? String.format(Locale.ROOT, "would replay %d (%s)", r.matched() - r.skipped(), whySkipped(r))
                        : String.format(Locale.ROOT, "replayed %d, already replayed %d, skipped %d (%s)", r.replayed(),
                                r.alreadyReplayed(), r.skipped(), r.foreignSource() == 0 ? "no source stream" : whySkipped(r)));
                main.out.flush();
                if (named != null) requireFound(sel.ids, named.missing());
            }
            return 0;
        }
    }

    /**
     * Why dead letters were left: without a source stream (another tool's), or naming one that is not their dead-letter
     * stream's, which the library refuses; told apart, as the operator does something different about each.
     */
    static String whySkipped(ReplayResult r) {
        return r.withoutSource() + " without a source stream" + (r.foreignSource() == 0 ? ""
                : ", " + r.foreignSource() + " whose source stream is not that of its dead-letter stream");
    }

    @Command(name = "purge", mixinStandardHelpOptions = true, description = "Deletes dead letters: by id, --all, or --older-than.")
    static final class Purge extends DeadCommand {
        @picocli.CommandLine.Mixin Selection sel;

        @Option(names = "--older-than", paramLabel = "DURATION", description = "Delete those dead-lettered longer ago than this (90s, 30m, 12h, 7d)")
        String olderThan;

        @Override
        int run() {
            int ways = (sel.ids.isEmpty() ? 0 : 1) + (sel.all ? 1 : 0) + (olderThan != null ? 1 : 0);
            if (ways != 1) throw new ConfigException("ID", "give dead-letter ids, --all or --older-than (one of them)");
            String error = sel.error();
            try (EventBus bus = connect()) {
                DeadLetterFilter.Builder f = filter(bus, sel.stream).errorContains(error);
                if (olderThan != null) f.olderThan(DeadLetterView.duration("--older-than", olderThan));
                DeadLetterView.Named named = sel.ids.isEmpty() ? null : DeadLetterView.lookUp(bus, f.build(), sel.ids, "ids");
                long purged = (named == null ? Optional.of(f.build()) : named.selected()).map(bus.deadLetters()::purge).orElse(0L);
                main.out.println("purged " + purged);
                main.out.flush();
                if (named != null) requireFound(sel.ids, named.missing());
            }
            return 0;
        }
    }

    /** pause and resume: the same arguments, one operation each. */
    abstract static class GroupCommand extends OperatorCommands.RedisCommand {
        @Parameters(index = "0", paramLabel = "STREAM", description = "inbound (every partition), outbound:<platform>, tools, or a stream name")
        String stream;

        @Parameters(index = "1", paramLabel = "GROUP", description = "The consumer group")
        String group;

        /** Pauses or resumes; the line to print for {@code s}. */
        abstract String apply(EventBus bus, String s);

        /**
         * Whether {@code s} is a partition only of the other count (SG_INBOUND_PARTITIONS_ALSO), named by {@code inbound}:
         * there a group that is not there is skipped (its workers have not created it yet, or no longer run), and the rest
         * are still acted on. A stream of this process's own count without it is refused, as a typo would be. Whether the
         * group is there is Redis's answer to the pause itself (a ConfigException for "group"), never an unreadable
         * XINFO GROUPS (NOPERM, a timeout) taken for "no group": that said "no group, skipped" and exit code 0 over
         * partitions whose group exists and kept consuming.
         */
        boolean ofTheOtherCount(EventBus bus, String s) {
            io.stargazer.bus.Topology t = bus.topology();
            return "inbound".equals(stream) && !t.inboundStreams().contains(s) && t.alsoInboundStreams().contains(s);
        }

        /** After the streams named: {@code inbound}'s further streams to act on ({@code done} are those acted on). */
        List<String> more(EventBus bus, List<String> done) {
            return List.of();
        }

        /** Before anything is acted on: refuses what would leave the command done on some streams only. */
        void check(EventBus bus, List<String> streams) {
        }

        @Override
        public Integer call() {
            try (EventBus bus = connect()) {
                List<String> streams = OperatorCommands.resolveStreams(bus, stream, "STREAM");
                check(bus, streams);
                for (String s : streams) main.out.println(apply(bus, s) + " " + s + " " + group);
                if ("inbound".equals(stream)) {
                    for (String s : more(bus, streams)) main.out.println(apply(bus, s) + " " + s + " " + group);
                }
            } finally {
                // What was done before a failure is on stdout, line by line, beside the error on stderr.
                main.out.flush();
            }
            return 0;
        }
    }

    @Command(name = "pause", mixinStandardHelpOptions = true,
            description = "Pauses a consumer group in every process: its consumers take no new entries until resumed (state PAUSED).")
    static final class Pause extends GroupCommand {
        /**
         * Every stream of {@code inbound} (this count's partitions) must hold the group before any is paused: a group
         * missing on some is refused with nothing paused, naming each, as a pause of one stream is. Paused partly, the
         * group went on consuming the others' partitions while exit code 2 said the command had been refused. The other
         * count's partitions are skipped where the group is not there ({@link #ofTheOtherCount}). A stream that cannot be
         * read (NOPERM for a user made for one partition count, Redis out of reach) fails the command here too, before
         * any flag is set: consumers() takes that for "unknown", and the pause would fail only on reaching it.
         */
        @Override
        void check(EventBus bus, List<String> streams) {
            List<String> missing = new ArrayList<>();
            for (String s : streams) {
                try {
                    bus.describeStream(s);
                    bus.consumers(s, group);
                } catch (ConfigException e) {
                    if (!"group".equals(e.setting())) throw e;
                    if (!ofTheOtherCount(bus, s)) missing.add(e.reason());
                }
            }
            if (!missing.isEmpty()) {
                throw new ConfigException("group", String.join("; ", missing) + (streams.size() > 1 ? "; on " + missing.size() + " of "
                        + streams.size() + " streams of '" + stream + "'" : "") + ": nothing was paused");
            }
        }

        @Override
        String apply(EventBus bus, String s) {
            try {
                return bus.pause(s, group) ? "paused" : "already paused";
            } catch (ConfigException e) {
                if ("group".equals(e.setting()) && ofTheOtherCount(bus, s)) return "no group, skipped";
                throw e;
            }
        }
    }

    @Command(name = "resume", mixinStandardHelpOptions = true, description = "Resumes a paused consumer group; "
            + "for inbound, also on the inbound streams of any other partition count it is paused on.")
    static final class Resume extends GroupCommand {
        @Override
        String apply(EventBus bus, String s) {
            if (bus.resume(s, group)) return "resumed";
            // A flag removed is a resume even of a group gone meanwhile; with none, a group that is not there is a typo,
            // which "was not paused" and exit code 0 would hide: consumers() refuses it as pause does.
            try {
                bus.consumers(s, group);
            } catch (ConfigException e) {
                if (!ofTheOtherCount(bus, s)) throw e;
            }
            return "was not paused";
        }

        /** Paused partitions of a count no longer configured (paused with SG_INBOUND_PARTITIONS_ALSO, since removed). */
        @Override
        List<String> more(EventBus bus, List<String> done) {
            try {
                return bus.pausedInboundStreams(group).stream().filter(s -> !done.contains(s)).toList();
            } catch (io.stargazer.bus.StargazerException e) {
                // An operator user without SCAN (stargazer acl's rules grant none): this count's streams are resumed.
                spec.commandLine().getErr().println("stargazer: warning: could not look for '" + group + "' paused on inbound partitions of another partition count ("
                        + e.getMessage() + "); resume them with SG_INBOUND_PARTITIONS_ALSO=<that count>");
                spec.commandLine().getErr().flush();
                return List.of();
            }
        }
    }
}
