package io.stargazer.bus.internal;

import io.stargazer.bus.BusConfig;
import io.stargazer.bus.ConfigException;
import io.stargazer.bus.Envelope;
import io.stargazer.bus.NodeRole;
import io.stargazer.bus.PublishVia;
import io.stargazer.bus.StargazerException;
import io.stargazer.bus.Topology;
import io.stargazer.bus.wire.MalformedEntryException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * Relay mode ({@link PublishVia#RELAY}, docs/functions.md "Relay mode"): which outbox a write to a shared stream goes
 * through, and how the relay reads an outbox entry.
 *
 * <p>Why it exists: Redis runs a function's commands with the caller's ACL permissions, so a role that publishes to a
 * stream through the library must itself hold XADD on it, and XADD takes {@code MAXLEN 0}. In relay mode a role writes
 * only its own outbox; the relay, a process of its own user, adds each outbox entry to its target.
 *
 * <p>An outbox entry is {@code target <stream> dedupe <key or ''>} followed by the fields to add, byte for byte: by
 * position, so a dead letter's copied fields (which may be named anything) can never be taken for the header.
 */
final class Relaying {
    static final byte[] TARGET = "target".getBytes(StandardCharsets.US_ASCII);
    static final byte[] DEDUPE = "dedupe".getBytes(StandardCharsets.US_ASCII);
    /** The dedupe key of a dead letter put back through the operator's outbox: {@code replay:<dead stream>:<dead id>}. */
    static final String REPLAY_KEY_PREFIX = "replay:";
    /** Fields before the entry's own: target, its stream, dedupe, its key. */
    static final int HEADER = 4;

    private final BusConfig config;
    /** Relay mode, and not the relay itself (which writes the targets directly). */
    private final boolean on;

    Relaying(BusConfig config) {
        this.config = config;
        this.on = config.publishVia() == PublishVia.RELAY && config.role() != NodeRole.RELAY;
    }

    /** Relay mode, and this process is not the relay: its writes to shared streams go through outboxes. */
    boolean on() {
        return on;
    }

    /**
     * The outbox a write to {@code target} goes through, or null: written directly. Refuses ({@link ConfigException}
     * naming {@code SG_PLATFORMS}) a write the relay would not move: for a platform outside {@link BusConfig#platforms()},
     * the relay reads no gateway outbox of it (the entry would sit there, answered with an id and never delivered) and
     * moves no outbound stream of it (the entry would be dead-lettered as refused). Nothing is written.
     */
    String outboxFor(String target, String platform) {
        if (!on) return null;
        Topology t = config.topology();
        String outbox = t.outboxFor(target, platform);
        if (outbox != null && !t.mayRelay(outbox, target, config.platforms())) {
            String gateway = t.outboxPrefix() + ":gateway:";
            String named = outbox.startsWith(gateway) ? outbox.substring(gateway.length())
                    : target.startsWith(t.outboundStreamPrefix() + ":") ? target.substring(t.outboundStreamPrefix().length() + 1) : target;
            throw new ConfigException(BusConfig.ENV_PLATFORMS, "relay mode (" + BusConfig.ENV_PUBLISH_VIA + "=relay): '"
                    + Settings.printable(named) + "' is not a platform of " + BusConfig.ENV_PLATFORMS + " " + config.platforms()
                    + ", and the relay moves only theirs, so this write to '" + Settings.printable(target) + "' would never"
                    + " reach it; nothing was written (give every process, the relay's too, the same " + BusConfig.ENV_PLATFORMS + ")");
        }
        return outbox;
    }

    /**
     * The outboxes this node writes: a gateway those of its platforms ({@link BusConfig#platforms()}, not the groups it
     * reads: a web chat gateway reads with a group of its own), a worker and the tools service their own, standalone all.
     */
    List<String> outboxes() {
        if (!on) return List.of();
        List<String> platforms = config.platforms();
        Topology t = config.topology();
        List<String> out = new ArrayList<>();
        NodeRole r = config.role();
        if (r == NodeRole.GATEWAY || r == NodeRole.STANDALONE) platforms.forEach(p -> out.add(t.gatewayOutbox(p)));
        if (r == NodeRole.WORKER || r == NodeRole.STANDALONE) out.add(t.workerOutbox());
        if (r == NodeRole.TOOLS || r == NodeRole.STANDALONE) out.add(t.toolsOutbox());
        return out;
    }

    /** An outbox entry's target and dedupe key. */
    record Header(String target, String dedupeKey) {
    }

    /** The header of an outbox entry, or {@link MalformedEntryException}. */
    static Header header(RawEntry e) {
        List<byte[]> f = e.flatFields();
        if (f.size() < HEADER + 2 || !Arrays.equals(f.get(0), TARGET) || !Arrays.equals(f.get(2), DEDUPE)) {
            throw new MalformedEntryException("outbox entry does not start with target <stream> dedupe <key> and a field");
        }
        return new Header(new String(f.get(1), StandardCharsets.UTF_8), new String(f.get(3), StandardCharsets.UTF_8));
    }

    /**
     * The relay's reading of an entry of {@code outbox}: refused (as malformed, so dead-lettered at once with the reason)
     * unless its header is whole and its target one the outbox's role may write ({@link Topology#mayRelay}, the map the
     * ACL rules grant). The envelope only places it in a lane: the entry's own channel when its payload decodes, else its
     * target, so one channel keeps its order through the relay.
     */
    static Envelope read(Topology t, List<String> platforms, String outbox, RawEntry e) {
        Header h = header(e);
        if (!t.mayRelay(outbox, h.target(), platforms)) {
            throw new MalformedEntryException("refused: outbox '" + outbox + "' names target '" + Settings.printable(h.target())
                    + "', which its role may not write (a role may write only the streams its ACL rules grant it)");
        }
        String reserved = reservedFor(t, outbox, h.dedupeKey());
        if (reserved != null) {
            throw new MalformedEntryException("refused: outbox '" + outbox + "' entry carries dedupe key '"
                    + Settings.printable(h.dedupeKey()) + "', of the shape only " + reserved + " have");
        }
        try {
            Envelope body = new RawEntry(e.id(), e.flatFields().subList(HEADER, e.flatFields().size())).decode();
            if (body.channelId() != null) return body;
        } catch (RuntimeException notAnEnvelope) {
            // a dead letter's fields: relayed as they are
        }
        return Envelope.builder().channelId(h.target()).build();
    }

    /**
     * Whose keys {@code dedupeKey} has the shape of, when an entry of {@code outbox} may not carry it (the relay refuses
     * the entry), else null.
     */
    static String reservedFor(Topology t, String outbox, String dedupeKey) {
        if (isRelayKey(t, dedupeKey)) {
            // Only the relay derives keys of this shape (reply:<outbox>:<id>): one recorded early by another outbox's entry
            // would make the relay drop that outbox's entry of that id as already moved.
            return "the relay's own keys ('" + Dedupe.replyKey(t.outboxPrefix(), "") + "<outbox>:...')";
        }
        if (!outbox.equals(t.operatorOutbox()) && dedupeKey.startsWith(REPLAY_KEY_PREFIX)) {
            // Only the operator's replays carry replay:<dead stream>:<dead id>: one recorded early by a writer would make
            // the relay drop that dead letter's replay as already added, after the operator deleted the dead letter.
            return "the operator's replays ('" + REPLAY_KEY_PREFIX + "...')";
        }
        return null;
    }

    /**
     * Whether {@code key} is {@code reply:<outbox>:...} for an outbox name: the workers', the tools service's, the
     * operator's, or a gateway's of any platform. Not every key under {@code reply:<outbox prefix>:}: an answer to an entry
     * of any other stream whose name starts with the prefix (an application's own) carries {@code reply:<that stream>:<id>},
     * which no relay key can equal.
     */
    static boolean isRelayKey(Topology t, String key) {
        for (String o : List.of(t.workerOutbox(), t.toolsOutbox(), t.operatorOutbox())) {
            if (key.startsWith(Dedupe.replyKey(o, ""))) return true;
        }
        String gateway = Dedupe.replyKey(t.outboxPrefix() + ":gateway", "");
        if (!key.startsWith(gateway)) return false;
        int end = key.indexOf(':', gateway.length());
        if (end <= gateway.length()) return false;
        try {
            Topology.checkPlatform("platform", key.substring(gateway.length(), end));
            return true;
        } catch (ConfigException notAPlatform) {
            return false;
        }
    }

    /**
     * Refuses a publish to {@code target} through {@code outbox} with a dedupe key the relay would refuse: written, it
     * would be answered with its outbox id and then dead-lettered by the relay instead of reaching {@code target}. The
     * operator's replays write their outbox entries themselves (RedisDeadLetters), not through here.
     */
    void checkKey(String outbox, String target, String dedupeKey) {
        String reserved = dedupeKey == null ? null : reservedFor(config.topology(), outbox, dedupeKey);
        if (reserved != null) {
            throw new ConfigException("dedupeKey", "'" + Settings.printable(dedupeKey, 64) + "' is reserved in relay mode ("
                    + BusConfig.ENV_PUBLISH_VIA + "=relay): only " + reserved + " carry keys of its shape, and the relay would"
                    + " refuse this entry rather than add it to '" + target + "' (docs/once.md)");
        }
    }

    /**
     * The target is at its SAFE cap: the move waits, as a publish would (docs/reliability.md). Counts as a failure of the
     * infrastructure ({@link Failures#isInfrastructure}): the entry is tried again without using up its deliveries, so a
     * lagging group downstream never sends outbox entries to the dead letters.
     */
    static final class TargetFull extends StargazerException {
        TargetFull(String target) {
            super("relaying to '" + target + "': the stream is at its cap and a group lags (SG_TRIM_POLICY=safe); trying again");
        }
    }
}
