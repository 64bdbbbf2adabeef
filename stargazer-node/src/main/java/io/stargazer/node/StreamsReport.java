// The state of the node's streams, groups and consumers: what `stargazer streams` prints and /api/streams serves.
package io.stargazer.node;

import io.stargazer.bus.ConfigException;
import io.stargazer.bus.ConsumerInfo;
import io.stargazer.bus.EventBus;
import io.stargazer.bus.GroupInfo;
import io.stargazer.bus.Provisioning;
import io.stargazer.bus.RedisServerException;
import io.stargazer.bus.StreamInfo;
import io.stargazer.bus.Topology;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.Set;

/**
 * Collects diagnostics: a missing stream shows as absent ("-"), one that could not be read (Redis out of reach,
 * refusing) as "could not be read: reason" ({@code error} in JSON), never as missing.
 */
public final class StreamsReport {
    private StreamsReport() {
    }

    /**
     * The streams of the topology: inbound (each partition, then while SG_INBOUND_PARTITIONS changes those of the other
     * count, SG_INBOUND_PARTITIONS_ALSO), each platform's outbound, tools, in relay mode the outboxes, then {@code extra}.
     * The dashboard, {@code stargazer streams} and the stream gauges (dead letters among them) show these.
     */
    public static List<String> streams(EventBus bus, List<String> platforms, Iterable<String> extra) {
        Topology t = bus.topology();
        Set<String> out = new LinkedHashSet<>(inboundStreams(t));
        for (String p : platforms) out.add(t.outboundStream(p));
        out.add(t.toolsStream());
        // Relay mode: an outbox's length and its relay group's lag say how far the relay is behind.
        if (bus.config().publishVia() == io.stargazer.bus.PublishVia.RELAY) out.addAll(t.outboxes(platforms));
        for (String s : extra) out.add(s);
        return List.copyOf(out);
    }

    /** The inbound streams of this count, then those of the other count of a partition-count change (none without it). */
    static List<String> inboundStreams(Topology t) {
        List<String> out = new ArrayList<>(t.inboundStreams());
        out.addAll(t.alsoInboundStreams());
        return out;
    }

    /** One map per stream, ready for JSON: length, entries added, dead letters, groups with consumers. */
    public static List<Map<String, Object>> collect(EventBus bus, List<String> streams) {
        List<Map<String, Object>> rows = new ArrayList<>();
        long now = System.currentTimeMillis();
        for (String stream : streams) {
            Map<String, Object> row = new LinkedHashMap<>();
            String dead = bus.topology().deadLetterStream(stream);
            row.put("stream", stream);
            Optional<StreamInfo> info;
            try {
                info = bus.describeStream(stream);
            } catch (RuntimeException e) {
                // Not "missing": Redis out of reach (a paused server or cluster primary), refusing (NOPERM), ...
                info = Optional.empty();
                row.put("error", reason(e));
            }
            row.put("exists", info.isPresent());
            row.put("length", info.map(StreamInfo::length).orElse(0L));
            row.put("entries_added", info.map(StreamInfo::entriesAdded).orElse(null));
            row.put("dead_letter_stream", dead);
            try {
                row.put("dead_letters", bus.describeStream(dead).map(StreamInfo::length).orElse(0L));
            } catch (RedisServerException.WrongType notAStream) {
                row.put("dead_letters", 0L); // flagged by `stargazer streams` as "not a stream", skipped by `dead list`
            } catch (RuntimeException e) {
                row.put("dead_letters", null);
                row.putIfAbsent("error", reason(e));
            }
            List<Map<String, Object>> groups = new ArrayList<>();
            for (GroupInfo g : info.isPresent() ? bus.groups(stream) : List.<GroupInfo>of()) {
                Map<String, Object> gm = new LinkedHashMap<>();
                gm.put("group", g.name());
                gm.put("paused", paused(bus, stream, g.name()));
                gm.put("pending", g.pending());
                Long lag = g.lag() != null ? g.lag() : lagByReading(bus, stream, g.lastDeliveredId(), info.get().lastEntryId());
                gm.put("lag", lag);
                // Redis 6.2 reports no lag: counted by reading, exact up to LAG_READ_LIMIT, then "at least".
                gm.put("lag_at_least", g.lag() == null && lag != null && lag >= LAG_READ_LIMIT);
                Long added = info.get().entriesAdded();
                gm.put("entries_read", added != null && g.lag() != null ? added - g.lag() : null);
                gm.put("last_delivered_id", g.lastDeliveredId());
                List<ConsumerInfo> members;
                try {
                    members = bus.consumers(stream, g.name());
                } catch (ConfigException deleted) {
                    continue; // deleted since XINFO GROUPS listed it: not a group of the stream any more
                }
                List<Map<String, Object>> consumers = new ArrayList<>();
                for (ConsumerInfo c : members) {
                    Map<String, Object> cm = new LinkedHashMap<>();
                    cm.put("consumer", c.name());
                    cm.put("pending", c.pending());
                    cm.put("idle_ms", c.idleMillis());
                    consumers.add(cm);
                }
                gm.put("consumers", consumers);
                groups.add(gm);
            }
            row.put("groups", groups);
            rows.add(row);
        }
        return rows;
    }

    /**
     * The state of the bus's functions library on the server, for {@code stargazer streams}: {@code state} is
     * {@code loaded} (at the version this release calls), {@code missing} (an empty restart, FUNCTION FLUSH, never
     * provisioned), {@code other_version}, {@code no_functions} (Redis 6.2) or {@code unknown} (with {@code error});
     * {@code version} is the one loaded (null: none). Without the library at its version a process under
     * SG_SERVER_CODE=auto runs scripts and WARNs (docs/functions.md), which nothing else showed the operator.
     */
    public static Map<String, Object> library(EventBus bus) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("name", Provisioning.LIBRARY);
        m.put("expected_version", Provisioning.LIBRARY_VERSION);
        if (!hasFunctions(bus.serverVersion())) {
            m.put("state", "no_functions");
            m.put("version", null);
            return m;
        }
        try {
            int v = Provisioning.libraryVersion(bus);
            m.put("state", v == Provisioning.LIBRARY_VERSION ? "loaded" : v == 0 ? "missing" : "other_version");
            m.put("version", v == 0 ? null : v);
        } catch (RuntimeException e) {
            m.put("state", "unknown");
            m.put("version", null);
            m.put("error", reason(e));
        }
        return m;
    }

    /** {@link #library} as the one line {@code stargazer streams} prints below its table. */
    public static String libraryLine(Map<String, Object> library, String serverVersion) {
        // On a cluster the check asks one node: the line says what that node has (docs/operating.md).
        String head = "library " + library.get("name") + ": ";
        Object want = library.get("expected_version");
        // What the processes do depends on their settings, which this report cannot see: say both cases.
        String scripts = "processes with SG_SERVER_CODE=auto run scripts (EVAL) instead, those with =functions and strict ACL "
                + "users are refused; stargazer provision loads version " + want + " (docs/functions.md)";
        return head + switch (String.valueOf(library.get("state"))) {
            case "loaded" -> "version " + library.get("version") + " loaded (the version this release calls)";
            case "missing" -> "MISSING: " + scripts;
            case "other_version" -> "version " + library.get("version") + " loaded, OTHER than " + want + ": " + scripts;
            case "no_functions" -> "none: Redis " + serverVersion + " has no functions (processes run scripts)";
            default -> "could not be read: " + library.get("error");
        };
    }

    /** Redis 7 and later have functions; a version the report cannot parse is asked. */
    private static boolean hasFunctions(String serverVersion) {
        try {
            return Integer.parseInt(serverVersion.substring(0, serverVersion.indexOf('.'))) >= 7;
        } catch (RuntimeException e) {
            return true;
        }
    }

    /** The rows as a text table: one line per group (and per consumer below it). */
    @SuppressWarnings("unchecked")
    public static String table(List<Map<String, Object>> rows) {
        List<String[]> lines = new ArrayList<>();
        lines.add(new String[] {"STREAM", "LENGTH", "DEAD", "GROUP", "PENDING", "LAG", "CONSUMER", "C.PENDING", "IDLE"});
        for (Map<String, Object> r : rows) {
            String stream = (String) r.get("stream");
            String error = (String) r.get("error");
            String len = Boolean.TRUE.equals(r.get("exists")) ? String.valueOf(r.get("length")) : error != null ? "?" : "-";
            String dead = Boolean.TRUE.equals(r.get("dead_letter_stream_not_a_stream")) ? "not a stream"
                    : r.get("dead_letters") == null ? "?" : String.valueOf(r.get("dead_letters"));
            List<Map<String, Object>> groups = (List<Map<String, Object>>) r.get("groups");
            if (groups.isEmpty()) {
                // "-": the stream does not exist or has no group; an unreadable one says so instead of passing for missing.
                lines.add(new String[] {stream, len, dead, error != null && !Boolean.TRUE.equals(r.get("exists"))
                        ? "could not be read: " + error : "-", "", "", "", "", ""});
            }
            boolean firstGroup = true;
            for (Map<String, Object> g : groups) {
                String lag = g.get("lag") == null ? "?" : g.get("lag") + (Boolean.TRUE.equals(g.get("lag_at_least")) ? "+" : "");
                List<Map<String, Object>> consumers = (List<Map<String, Object>>) g.get("consumers");
                String group = (String) g.get("group") + (Boolean.TRUE.equals(g.get("paused")) ? " (PAUSED)" : "");
                String[] head = {firstGroup ? stream : "", firstGroup ? len : "", firstGroup ? dead : "", group,
                        String.valueOf(g.get("pending")), lag, "", "", ""};
                firstGroup = false;
                if (consumers.isEmpty()) {
                    head[6] = "-";
                    lines.add(head);
                }
                boolean firstConsumer = true;
                for (Map<String, Object> c : consumers) {
                    String[] line = firstConsumer ? head : new String[] {"", "", "", "", "", "", "", "", ""};
                    firstConsumer = false;
                    line[6] = (String) c.get("consumer");
                    line[7] = String.valueOf(c.get("pending"));
                    line[8] = idle(((Number) c.get("idle_ms")).longValue());
                    lines.add(line);
                }
            }
        }
        return format(lines);
    }

    static final int LAG_READ_LIMIT = 1000;

    /** The rows whose stream (or its dead-letter stream) could not be read: each has an {@code error}. */
    public static List<Map<String, Object>> unreadable(List<Map<String, Object>> rows) {
        return rows.stream().filter(r -> r.get("error") != null).toList();
    }

    /** A failure as one line: its message, else its type. */
    static String reason(Throwable e) {
        String m = e.getMessage();
        return (m == null || m.isBlank() ? e.getClass().getSimpleName() : m).replaceAll("\\s+", " ").strip();
    }

    /** Entries after the group's last delivered one, counted by reading (at most {@link #LAG_READ_LIMIT}); null when unknown. */
    static Long lagByReading(EventBus bus, String stream, String lastDelivered, String lastEntry) {
        if (lastDelivered == null || lastEntry == null) return null;
        if (lastDelivered.equals(lastEntry)) return 0L;
        try {
            return (long) bus.read(stream, lastDelivered, LAG_READ_LIMIT).size();
        } catch (RuntimeException e) {
            return null;
        }
    }

    /** Whether the group is paused; null when Redis cannot say (the report never throws for one group). */
    static Boolean paused(EventBus bus, String stream, String group) {
        try {
            return bus.paused(stream, group);
        } catch (RuntimeException e) {
            return null;
        }
    }

    /** Rows as aligned columns, two spaces apart, the first row the header. */
    static String format(List<String[]> lines) {
        int[] width = new int[lines.get(0).length];
        for (String[] l : lines) {
            for (int i = 0; i < l.length; i++) width[i] = Math.max(width[i], l[i].length());
        }
        StringBuilder sb = new StringBuilder();
        for (String[] l : lines) {
            StringBuilder line = new StringBuilder();
            for (int i = 0; i < l.length; i++) {
                line.append(String.format(Locale.ROOT, "%-" + width[i] + "s", l[i]));
                if (i < l.length - 1) line.append("  ");
            }
            sb.append(line.toString().stripTrailing()).append('\n');
        }
        return sb.toString();
    }

    private static String idle(long ms) {
        if (ms < 10_000) return ms + "ms";
        if (ms < 600_000) return (ms / 1000) + "s";
        return (ms / 60_000) + "m";
    }
}
