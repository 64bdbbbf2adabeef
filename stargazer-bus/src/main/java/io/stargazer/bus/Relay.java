package io.stargazer.bus;

import java.util.List;
import java.util.function.UnaryOperator;

/**
 * The trusted relay of relay mode ({@link PublishVia#RELAY}; docs/functions.md, "Relay mode"): reads every outbox of
 * the topology ({@link Topology#outboxes}, for {@link BusConfig#platforms()}) with the relay group and adds each entry
 * to the stream it names, acknowledging the outbox entry in the same step. It is the one process whose ACL user may
 * write the shared streams: run it as the relay's user ({@code stargazer acl --relay}), with no application code.
 *
 * <p>Each outbox is an ordinary subscription (takeover of a dead relay's entries, retries, one channel in order, dead
 * letters to {@code <outbox>:dead}). What it promises:
 * <ul>
 *   <li><b>Once.</b> The move is the answer-and-acknowledge step of {@link Delivery#reply}: the target entry is stored
 *       with a dedupe key derived from the outbox entry ({@code reply:<outbox>:<id>}) and the outbox entry is
 *       acknowledged in one script, so a relay killed at any point and restarted (or taken over) adds nothing twice; an
 *       entry published with a dedupe key still dedupes in its target under that key.</li>
 *   <li><b>Only what the role may write.</b> An entry whose target is not one its outbox's role writes
 *       ({@link Topology#mayRelay}, the streams the ACL rules grant that role in direct mode) is refused: moved to the
 *       outbox's dead letters with the reason, never added to the target.</li>
 *   <li><b>No unread entry trimmed.</b> Targets are capped by the same SAFE trim as any publish; a target at its cap
 *       holds the move (retried, never counted as a failed delivery) until a group catches up.</li>
 * </ul>
 */
public interface Relay extends AutoCloseable {

    /** {@link #start(EventBus, UnaryOperator)} with the {@link EventBus#consumer} defaults. */
    static Relay start(EventBus bus) {
        return start(bus, UnaryOperator.identity());
    }

    /**
     * Creates the relay group on every outbox if needed (from the outbox's first entry) and starts reading them;
     * {@code customize} adjusts each outbox's consumer settings (the node adds the {@code SG_*} consumer settings), except
     * the retry order: always {@link RetryOrder#ORDERED}, so that a channel's entries are moved in their order.
     */
    static Relay start(EventBus bus, UnaryOperator<ConsumerConfig.Builder> customize) {
        return io.stargazer.bus.internal.BusFactory.relay(bus, customize);
    }

    /** One subscription per outbox. */
    List<Subscription> subscriptions();

    /** Stops reading; entries being moved finish or stay pending for the next relay. Idempotent. */
    @Override
    void close();
}
