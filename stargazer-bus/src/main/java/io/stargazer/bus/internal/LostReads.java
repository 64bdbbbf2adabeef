package io.stargazer.bus.internal;

import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;
import org.slf4j.Logger;

/**
 * A consumer's reads of new entries whose reply never came, and the delivery counts of what they delivered put right.
 *
 * <p>When a connection goes silent or loses a reply while an {@code XREADGROUP >} is on it, the server has delivered
 * and counted the entries, and no handler saw them. Read again from the pending list after the reconnect (which counts
 * once more), an entry no handler ever saw would come as delivery 2, and with one delivery allowed be dead-lettered
 * unrun; left pending by a subscription that closes meanwhile, it would be counted twice by the consumer taking it
 * over (LostReadReplyIT). The entries such a read delivered are those of the consumer's pending list above the newest
 * id its reads of new entries returned ({@link #receivedUpTo}) that it never handed out: a read of new entries
 * delivers each entry once, so the lost read was their only delivery. {@link #uncount} puts their count back to one
 * after the read of the pending list; {@link #giveBackAtEnd} gives them back at zero when the reader ends instead.
 * Neither runs after a lost takeover ({@code XAUTOCLAIM}), whose entries, counted by earlier deliveries that were real,
 * can lie above that id too.
 *
 * <p>Threads: the consumer's reader thread only (its turns and its end); not safe for any other.
 */
final class LostReads {
    /** What this needs of its consumer's reader, on the reader's connection. */
    interface Consumer {
        /** Held here (handed out, not finally settled) or settled with its acknowledgement on the wire. */
        boolean holds(String id);

        /** XCLAIM ... RETRYCOUNT {@code count} JUSTID to this consumer, if idle at least {@code minIdleMillis}; true when it was. */
        boolean setCount(ReaderConnection conn, String id, long minIdleMillis, long count);

        /** XPENDING of this consumer: up to {@code count} rows (id, consumer, idle, count) after {@code afterId}. */
        List<?> pendingAfter(ReaderConnection conn, String afterId, int count);
    }

    /** The handed-out ids above {@link #receivedUpTo} kept at most; past it counts are left as Redis has them. */
    static final int MAX_HANDED_OUT_ABOVE = 100_000;

    private final Consumer consumer;
    private final String stream;
    private final String group;
    private final int batchSize;
    private final Logger log;

    /**
     * The newest id a read of new entries returned to this consumer (or the group's position when it started): an entry
     * of its pending list above it that it never handed out ({@link #handedOutAbove}) came from a read whose reply never
     * arrived.
     */
    private String receivedUpTo = "0-0";
    /**
     * Entries above {@link #receivedUpTo} this consumer handed out all the same: taken over from other consumers, or read
     * again from its pending list. They ran here (or are held), so their counts are real: never put back as a lost
     * read's. Dropped as {@link #receivedUpTo} passes them.
     */
    private final TreeSet<String> handedOutAbove = new TreeSet<>(StreamIds.ORDER);
    /** More than {@link #MAX_HANDED_OUT_ABOVE} were: counts are left as Redis has them until reads pass the newest. */
    private String overflowTo;
    /** A read of new entries ({@code >}, blocking or ahead) is on the wire, its reply not yet taken. */
    private boolean newReadOnWire;
    /** A takeover (XAUTOCLAIM) is on the wire, its reply not yet taken. */
    private boolean claimOnWire;
    /** Since the last complete read of the pending list: a read of new entries was lost with its connection, and a takeover. */
    private boolean lostNewRead;
    private boolean lostClaim;

    LostReads(Consumer consumer, String stream, String group, int batchSize, Logger log) {
        this.consumer = consumer;
        this.stream = stream;
        this.group = group;
        this.batchSize = batchSize;
        this.log = log;
    }

    /** The group had delivered up to {@code id} when this consumer started: nothing up to it is this consumer's lost read. */
    void startAt(String id) {
        if (id != null) receivedUpTo = id;
    }

    void newReadSent() {
        newReadOnWire = true;
    }

    /** The read of new entries on the wire answered; {@code newestId} is its newest entry, or null when it returned none. */
    void newReadAnswered(String newestId) {
        newReadOnWire = false;
        if (newestId == null) return;
        receivedUpTo = StreamIds.max(receivedUpTo, newestId);
        handedOutAbove.headSet(receivedUpTo, true).clear();
        if (overflowTo != null && StreamIds.compare(overflowTo, receivedUpTo) <= 0) overflowTo = null;
    }

    void claimSent() {
        claimOnWire = true;
    }

    void claimAnswered() {
        claimOnWire = false;
    }

    /**
     * The reader's connection failed. {@code unknown}: no reply at all came (a server's error reply says the command ran
     * and delivered nothing), so what was on the wire may have delivered entries.
     */
    void connectionFailed(boolean unknown) {
        lostNewRead |= newReadOnWire && unknown;
        lostClaim |= claimOnWire && unknown;
        newReadOnWire = false;
        claimOnWire = false;
    }

    /** The read of the pending list that follows a failure has read all of it: what was lost has been put right. */
    void pendingListRead() {
        lostNewRead = false;
        lostClaim = false;
    }

    /** Handed out from a takeover or a read of the pending list (not a read of new entries): its count is real. */
    void handedOut(String id) {
        if (StreamIds.compare(id, receivedUpTo) <= 0) return; // a read of new entries has passed it: never a lost read's
        if (handedOutAbove.size() < MAX_HANDED_OUT_ABOVE) {
            handedOutAbove.add(id);
        } else {
            overflowTo = overflowTo == null ? id : StreamIds.max(overflowTo, id);
        }
    }

    /**
     * After a page of the read of the pending list ({@code read}, with the counts XPENDING gave, updated here): puts back
     * to one the count of each entry a lost read of new entries delivered, which that page counted a second time.
     */
    void uncount(ReaderConnection conn, List<RawEntry> read, Map<String, Long> counts) {
        if (!lostNewRead || lostClaim || overflowTo != null) return;
        for (RawEntry e : read) {
            Long count = counts.get(e.id());
            if (count == null || count <= 1 || !neverHandedOut(e.id()) || consumer.holds(e.id())) continue;
            consumer.setCount(conn, e.id(), 0, 1);
            counts.put(e.id(), 1L);
        }
    }

    /**
     * The reader ends with a read of new entries whose reply never came (the subscription closed while its connection
     * was silent: the read timed out, or close's wait for it ran out first), or lost and not yet read again from the
     * pending list (closed while backing off): what that read delivered is pending here, counted once, and no handler
     * saw it. Each such entry (above {@link #receivedUpTo}, counted once, not held) is given back with its count at zero,
     * as close gives back what it read and never ran. {@code conn} must be a new connection (the old one is silent);
     * Redis out of reach: they stay counted, said in one WARN.
     */
    void giveBackAtEnd(ReaderConnection conn) {
        if (!mayHaveLostAtEnd()) return;
        int given = 0;
        try {
            // Paged: rows this consumer holds or handed out can come first. A lost read delivered at most a batch, so
            // a few pages past the newest id read reach all of it.
            String after = receivedUpTo;
            int pageSize = Math.max(batchSize * 2, 16);
            for (int page = 0; page < 8; page++) {
                List<?> rows = consumer.pendingAfter(conn, after, pageSize);
                if (rows.isEmpty()) break;
                for (Object row : rows) {
                    if (!(row instanceof List<?> r) || r.size() < 4) continue;
                    String id = new String((byte[]) r.get(0), StandardCharsets.US_ASCII);
                    after = id;
                    if (!Long.valueOf(1L).equals(r.get(3)) || !neverHandedOut(id) || consumer.holds(id)) continue;
                    // Only while still idle since the lost read: taken over meanwhile (its idle time reset by the claim),
                    // it is another consumer's, and a claim with no such bound would take it back from it.
                    if (consumer.setCount(conn, id, (Long) r.get(2), 0)) given++;
                }
                if (rows.size() < pageSize) break;
            }
            if (given > 0) {
                log.atInfo().addKeyValue("stream", stream).addKeyValue("group", group).addKeyValue("count", given)
                        .log("Gave back the entries of a read whose reply never came before the subscription closed; left pending, not counted");
            }
        } catch (RuntimeException e) {
            log.atWarn().addKeyValue("stream", stream).addKeyValue("group", group).addKeyValue("after_id", receivedUpTo)
                    .log("A read's reply never came before the subscription closed; what it may have delivered stays pending here, "
                            + "counted once (given back " + given + "): " + e.getMessage());
        }
    }

    /** Whether the reader's end has something to give back ({@link #giveBackAtEnd}), worth a new connection. */
    boolean mayHaveLostAtEnd() {
        return (newReadOnWire || lostNewRead) && !claimOnWire && !lostClaim && overflowTo == null;
    }

    /** Above every entry a read of new entries returned here, and never handed out here: only a lost read delivered it. */
    private boolean neverHandedOut(String id) {
        return StreamIds.compare(id, receivedUpTo) > 0 && !handedOutAbove.contains(id);
    }
}
