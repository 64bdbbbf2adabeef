package io.stargazer.bus;

import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.regex.Pattern;

/**
 * Which dead letters a {@link DeadLetters} operation looks at. Immutable; {@link #builder()} checks each value as it is
 * set and names the bad one. Every part is optional; {@link #ALL} selects every dead letter of the topology.
 *
 * <table>
 *   <caption>Parts</caption>
 *   <tr><th>builder method</th><th>default</th><th>meaning</th></tr>
 *   <tr><td>{@code streams}</td><td>every dead-letter stream of the topology ({@link DeadLetters#streams()})</td>
 *       <td>the dead-letter streams to look in; a stream the topology carries messages on (inbound, outbound, tools, a
 *       reply stream, an outbox) is refused by {@link DeadLetters}' operations, nothing done</td></tr>
 *   <tr><td>{@code ids}</td><td>any</td><td>only these dead letters: {@code <ms>-<seq>} in every stream looked in (two
 *       streams may hold an entry of the same id, stored in the same millisecond: that id selects both), or
 *       {@code <ms>-<seq>@<dead-letter stream>} in that stream only ({@link DeadLetter#ref()}, the form of a list's
 *       cursors)</td></tr>
 *   <tr><td>{@code errorContains}</td><td>any</td><td>only entries whose {@code error} contains this text (case-insensitive)</td></tr>
 *   <tr><td>{@code olderThan}</td><td>any</td><td>only entries dead-lettered longer ago than this (by the entry id's time)</td></tr>
 *   <tr><td>{@code limit}</td><td>{@value #DEFAULT_LIMIT}</td><td>page size of {@link DeadLetters#list}, 1 to
 *       {@value #MAX_LIMIT}; replay and purge act on every match</td></tr>
 *   <tr><td>{@code after}</td><td>the start</td><td>{@link DeadLetterPage#next()} of the previous page</td></tr>
 * </table>
 */
public final class DeadLetterFilter {
    public static final int DEFAULT_LIMIT = 100;
    public static final int MAX_LIMIT = 10_000;
    private static final Pattern ID = Pattern.compile("\\d+-\\d+");
    /** Every dead letter of the topology. */
    public static final DeadLetterFilter ALL = builder().build();

    private final List<String> streams;
    private final List<String> ids;
    private final String errorContains;
    private final Duration olderThan;
    private final int limit;
    private final String after;

    private DeadLetterFilter(Builder b) {
        this.streams = List.copyOf(b.streams);
        this.ids = List.copyOf(b.ids);
        this.errorContains = b.errorContains;
        this.olderThan = b.olderThan;
        this.limit = b.limit;
        this.after = b.after;
    }

    public static Builder builder() {
        return new Builder();
    }

    /** The dead-letter streams to look in; empty for every one of the topology. */
    public List<String> streams() { return streams; }

    /** The dead letters to select, each {@code <ms>-<seq>} or {@code <ms>-<seq>@<dead-letter stream>}; empty for any. */
    public List<String> ids() { return ids; }

    /** Text the error must contain (case-insensitive), or null. */
    public String errorContains() { return errorContains; }

    /** Minimum age, or null. */
    public Duration olderThan() { return olderThan; }

    public int limit() { return limit; }

    /** The cursor to start after, or null. */
    public String after() { return after; }

    public Builder toBuilder() {
        Builder b = new Builder();
        b.streams.addAll(streams);
        b.ids.addAll(ids);
        b.errorContains = errorContains;
        b.olderThan = olderThan;
        b.limit = limit;
        b.after = after;
        return b;
    }

    @Override
    public String toString() {
        return "DeadLetterFilter{streams=" + streams + ", ids=" + ids + ", errorContains=" + errorContains + ", olderThan=" + olderThan
                + ", limit=" + limit + ", after=" + after + "}";
    }

    public static final class Builder {
        private final List<String> streams = new ArrayList<>();
        private final List<String> ids = new ArrayList<>();
        private String errorContains;
        private Duration olderThan;
        private int limit = DEFAULT_LIMIT;
        private String after;

        private Builder() {
        }

        /** Adds a dead-letter stream to look in (repeatable). */
        public Builder stream(String deadLetterStream) {
            streams.add(Topology.checkName("stream", deadLetterStream));
            return this;
        }

        public Builder streams(Collection<String> deadLetterStreams) {
            deadLetterStreams.forEach(this::stream);
            return this;
        }

        /**
         * Selects these dead letters only: each an entry id ({@code <ms>-<seq>}), in whichever of the filter's streams
         * holds it, or an entry id and its dead-letter stream ({@code <ms>-<seq>@<stream>}, {@link DeadLetter#ref()}).
         */
        public Builder ids(Collection<String> entryIds) {
            for (String id : entryIds) {
                int at = id == null ? -1 : id.indexOf('@');
                if (!isEntryId(at < 0 ? id : id.substring(0, at)) || at == id.length() - 1) {
                    throw new ConfigException("ids", "'" + id + "' is not a stream entry id (<ms>-<seq>, each a whole number from 0 to "
                            + Long.toUnsignedString(-1) + ", for example 1700000000000-0), nor one with its dead-letter stream"
                            + " (<ms>-<seq>@<stream>)");
                }
                if (at >= 0) {
                    try {
                        Topology.checkName("ids", id.substring(at + 1)); // else a stream no dead letter could be in
                    } catch (ConfigException e) {
                        throw new ConfigException("ids", "'" + id + "': its dead-letter stream " + e.reason());
                    }
                }
                ids.add(id);
            }
            return this;
        }

        public Builder errorContains(String text) {
            this.errorContains = text == null || text.isEmpty() ? null : text;
            return this;
        }

        public Builder olderThan(Duration age) {
            if (age != null && age.isNegative()) {
                throw new ConfigException("olderThan", "'" + age + "' must not be negative");
            }
            this.olderThan = age;
            return this;
        }

        public Builder limit(int n) {
            if (n < 1 || n > MAX_LIMIT) {
                throw new ConfigException("limit", "'" + n + "' must be between 1 and " + MAX_LIMIT);
            }
            this.limit = n;
            return this;
        }

        /** Starts after this cursor ({@link DeadLetterPage#next()}); null for the start. */
        public Builder after(String cursor) {
            if (cursor != null) {
                int at = cursor.indexOf('@');
                if (at < 0 || !isEntryId(cursor.substring(0, at))) {
                    throw new ConfigException("after", "'" + cursor + "' is not a dead-letter list's cursor (<id>@<dead-letter stream>, as a list returns it)");
                }
            }
            this.after = cursor;
            return this;
        }

        /**
         * Redis's own test: two unsigned 64-bit numbers. A larger one would reach Redis and come back as its "ERR Invalid
         * stream ID", a server error, where it is the caller's mistake.
         */
        private static boolean isEntryId(String id) {
            if (id == null || !ID.matcher(id).matches()) return false;
            int dash = id.indexOf('-');
            try {
                Long.parseUnsignedLong(id.substring(0, dash));
                Long.parseUnsignedLong(id.substring(dash + 1));
                return true;
            } catch (NumberFormatException tooLarge) {
                return false;
            }
        }

        public DeadLetterFilter build() {
            return new DeadLetterFilter(this);
        }
    }
}
