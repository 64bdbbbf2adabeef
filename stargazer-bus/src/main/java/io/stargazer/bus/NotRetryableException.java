package io.stargazer.bus;

/**
 * A handler's failure that trying again cannot cure (a payload that cannot be read, a message that breaks a rule): the
 * entry is dead-lettered at once with this exception's message as the reason, instead of being retried up to
 * {@link ConsumerConfig#maxDeliveries()} times while its channel waits. Thrown by a handler, returned as its stage's
 * failure, or given to {@link Delivery#nack(Throwable)}; found anywhere in the cause chain. The Spring starter throws it
 * for a payload its listener's parameter type cannot be mapped from.
 */
public class NotRetryableException extends StargazerException {
    public NotRetryableException(String message, Throwable cause) {
        super(message, cause);
    }
}
