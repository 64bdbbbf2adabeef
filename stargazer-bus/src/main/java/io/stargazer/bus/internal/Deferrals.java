package io.stargazer.bus.internal;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * The entries a consumer read and deferred instead of holding them: those of a channel whose lane was full
 * ({@code ConsumerConfig.maxWaitingPerChannel} waiting behind its running entry), and every later one of that channel
 * read meanwhile, so the channel keeps its order. A deferred entry stays pending with its consumer in Redis (the read
 * delivered it there), kept its own by the ownership refresh as a held one is; only its id, delivery count and read
 * number are kept here, and it is read back from the consumer's own pending list, oldest first, when its lane has room.
 *
 * <p>Thread-safe (one lock): the reader thread adds and takes, the heartbeat lists and drops lost ids, close() takes all.
 */
final class Deferrals {
    /**
     * The most ids kept; past it the consumer stops reading new entries (as it did before deferring: the in-flight window
     * full) until read-backs bring it under, and says so in a WARN. A read in progress may add its batch past it.
     */
    static final int MAX_DEFERRED = 100_000;

    /**
     * One deferred entry, with what it is handed out with when read back: its delivery count when deferred (whether
     * Redis's pending list gave it), whether it must be confirmed still this consumer's before it runs (taken over, or
     * read from the pending list), the number of the read that delivered it, and whether it was found pending nowhere
     * after its group was lost (then it is claimed back with XCLAIM ... FORCE to run here, its only chance).
     */
    record Entry(String id, String channel, long count, boolean countKnown, boolean confirmFirst, long readAt, boolean pendingNowhere) {
    }

    /** By channel, oldest id first. */
    private final Map<String, TreeMap<String, Entry>> byChannel = new HashMap<>();
    /** By id: what a read of the pending list or a takeover returns again is looked up here. */
    private final Map<String, Entry> byId = new HashMap<>();
    /** byId's size, readable without the lock (the reader's and heartbeat's fast path). */
    private volatile int size;

    /** Whether {@code channel} has entries deferred: then its later entries are deferred too, whatever its lane holds. */
    synchronized boolean has(String channel) {
        return byChannel.containsKey(channel);
    }

    /** Whether {@code channel} has an entry older than {@code id} deferred: then {@code id} must not run before it. */
    synchronized boolean hasOlderThan(String channel, String id) {
        TreeMap<String, Entry> ids = byChannel.get(channel);
        return ids != null && StreamIds.compare(ids.firstKey(), id) < 0;
    }

    boolean isEmpty() {
        return size == 0;
    }

    int size() {
        return size;
    }

    synchronized boolean contains(String id) {
        return byId.containsKey(id);
    }

    synchronized Entry get(String id) {
        return byId.get(id);
    }

    synchronized void add(String channel, String id, long count, boolean countKnown, boolean confirmFirst, long readAt) {
        if (byId.containsKey(id)) return;
        Entry e = new Entry(id, channel, count, countKnown, confirmFirst, readAt, false);
        byId.put(id, e);
        byChannel.computeIfAbsent(channel, c -> new TreeMap<>(StreamIds.ORDER)).put(id, e);
        size = byId.size();
    }

    /** Marks {@code id} found pending nowhere after its group was lost; true when it was deferred and not marked yet. */
    synchronized boolean markPendingNowhere(String id) {
        Entry e = byId.get(id);
        if (e == null || e.pendingNowhere()) return false;
        Entry marked = new Entry(e.id(), e.channel(), e.count(), e.countKnown(), e.confirmFirst(), e.readAt(), true);
        byId.put(id, marked);
        byChannel.get(e.channel()).put(id, marked);
        return true;
    }

    /** Forgets {@code id} (read back and handed out, or no longer this consumer's); true when it was deferred. */
    synchronized boolean remove(String id) {
        Entry e = byId.remove(id);
        if (e == null) return false;
        TreeMap<String, Entry> ids = byChannel.get(e.channel());
        ids.remove(id);
        if (ids.isEmpty()) byChannel.remove(e.channel());
        size = byId.size();
        return true;
    }

    /** The channels with deferred entries. */
    synchronized List<String> channels() {
        return new ArrayList<>(byChannel.keySet());
    }

    /** Up to {@code max} of {@code channel}'s deferred entries, oldest first (left deferred until removed). */
    synchronized List<Entry> oldest(String channel, int max) {
        TreeMap<String, Entry> ids = byChannel.get(channel);
        List<Entry> out = new ArrayList<>(Math.min(max, ids == null ? 0 : ids.size()));
        if (ids == null) return out;
        for (Entry e : ids.values()) {
            if (out.size() >= max) break;
            out.add(e);
        }
        return out;
    }

    /** Every deferred id (the ownership refresh). */
    synchronized List<String> ids() {
        return new ArrayList<>(byId.keySet());
    }

    /** Every deferred entry (close). */
    synchronized List<Entry> all() {
        return new ArrayList<>(byId.values());
    }

    /** Entries of {@code channel} deferred (tests and diagnostics). */
    synchronized int of(String channel) {
        TreeMap<String, Entry> ids = byChannel.get(channel);
        return ids == null ? 0 : ids.size();
    }
}
