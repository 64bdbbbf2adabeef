package io.stargazer.bus;

/**
 * Handles deliveries of one subscription.
 *
 * <p><b>Threading:</b> called on one of the subscription's handler threads, never on a Redis I/O thread; it may
 * block (call a model, a database, another service). Entries with the same {@code channel_id} are handed over one
 * at a time in stream order; different channels run in parallel, up to {@link ConsumerConfig#concurrency()} at once.
 *
 * <p>Returning normally acknowledges the delivery (unless {@link ConsumerConfig#manualAck()} is set or the handler
 * settled it itself). Throwing nacks it: it is delivered again after a backoff, and dead-lettered with the
 * exception's message after {@link ConsumerConfig#maxDeliveries()} deliveries; a {@link NotRetryableException} is
 * dead-lettered at once.
 */
@FunctionalInterface
public interface MessageHandler {
    void handle(Delivery delivery) throws Exception;
}
