package io.stargazer.bus;

/**
 * One stream entry handed to a handler: the decoded envelope and where it came from.
 *
 * <p>{@link #ack()}, {@link #nack()}, {@link #release()} and {@link #reply} settle it. Each may be called from any
 * thread; {@code ack}, {@code nack} and {@code release} are idempotent and return {@code true} only for the call that
 * took effect (the first settle of this delivery). With automatic
 * acknowledgement the subscription settles the delivery when the handler returns (ack) or throws (nack), unless the
 * handler settled it first.
 */
public interface Delivery {
    Envelope envelope();

    /** The stream entry id, for example {@code 1700000000000-0}. */
    String id();

    String stream();

    String group();

    /** 1 on the first delivery, then one more on each redelivery (as {@code XPENDING} counts it). */
    long deliveryCount();

    /** Acknowledges (XACK, batched): the entry will not be delivered again. */
    boolean ack();

    /**
     * Gives the entry back: it stays pending and is delivered again after a backoff that grows with its delivery
     * count; after its last allowed delivery it is moved to the dead-letter stream.
     */
    boolean nack();

    /** {@link #nack()} with the reason recorded in the dead-letter entry if this was the last allowed delivery. */
    boolean nack(Throwable reason);

    /**
     * Gives the entry back to its group, neither handled nor failed: it stays pending, this delivery is not counted
     * (the count Redis added when it was read is put back with {@code XCLAIM ... RETRYCOUNT}; if that fails it stays
     * counted, as after a nack), and it is never dead-lettered for it. It is not retried here: the group delivers it
     * again after the claim time, to whichever of its consumers claims it first (this one included), or sooner to this
     * consumer when it reads its own pending entries again (after a reconnect or a restart). An entry another consumer
     * has taken over meanwhile is left with that one. An entry whose group was lost since it was read (Redis restarted
     * empty, or the group was deleted, and re-created past it) is pending nowhere: no consumer would be given it again,
     * so it is dead-lettered instead, with an error naming the release and the lost group, to be replayed. If the group
     * was re-created before it, the group delivers it again and it is not dead-lettered (see docs/reliability.md, Closing
     * the bus, for the one case that cannot be told apart). With ordered retries, a released entry gives up its channel's
     * turn, as a dead-lettered one does: the channel's later entries go on without it. For work a shutdown cut short,
     * which says nothing about the entry: a nack would count the delivery, and dead-letter an entry on its last allowed
     * one. The Spring starter's batch listeners release what a stop interrupts.
     */
    boolean release();

    /**
     * Answers this delivery on {@code stream} and acknowledges it as one step, so an answer is sent once even when the
     * delivery comes again (its consumer died after answering, or it was taken over). On one server, and on a cluster
     * when {@code stream} and this delivery's stream share a slot, one script stores the answer and acknowledges;
     * otherwise the answer carries a dedupe key derived from this entry ({@code reply:<stream>:<id>}) and the
     * acknowledgement follows, so a redelivered entry whose answer is already stored adds nothing. The future completes
     * with the answer's entry id (the first answer's, when it was already stored). It settles the delivery: a failure
     * to store the answer is a nack with that cause. docs/once.md says where the guarantee ends.
     *
     * @throws IllegalStateException when the delivery is already settled
     */
    java.util.concurrent.CompletableFuture<String> reply(String stream, Envelope answer);

    /**
     * The entry's W3C {@code traceparent} field (wire format: written by a publisher that traces), or null. A bus with
     * tracing installed (io.stargazer.bus.micrometer.BusObservations) already continues it; this is for handlers that
     * trace on their own.
     */
    default String traceparent() {
        return null;
    }

    /** Whether {@link #ack()}, {@link #nack()}, {@link #release()} or {@link #reply} has taken effect. */
    boolean settled();
}
