package io.stargazer.bus;

/**
 * One stream entry handed to a handler: the decoded envelope and where it came from.
 *
 * <p>{@link #ack()} and {@link #nack()} settle it. Each may be called from any thread, is idempotent, and returns
 * {@code true} only for the call that took effect (the first settle of this delivery). With automatic
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

    /** Whether {@link #ack()} or {@link #nack()} has taken effect. */
    boolean settled();
}
