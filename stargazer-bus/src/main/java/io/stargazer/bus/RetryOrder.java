package io.stargazer.bus;

import java.util.Locale;

/**
 * What a channel does while one of its entries waits for a retry after its handler failed
 * ({@link ConsumerConfig#retryOrder()}, {@code SG_RETRY_ORDER}). As Spring Kafka's blocking and non-blocking retries.
 */
public enum RetryOrder {
    /**
     * The default: the channel's later entries wait behind the failed one until it succeeds or is dead-lettered, so
     * one channel is handled in stream order however often its handler fails. Other channels go on. The waiting
     * entries count against {@link ConsumerConfig#maxInFlight()}.
     */
    ORDERED,
    /**
     * The failed entry is set aside and redelivered after its backoff; the channel's later entries go ahead of it.
     * More throughput under failures, at the price of order within a channel.
     */
    UNORDERED;

    public static RetryOrder parse(String setting, String value) {
        try {
            return valueOf(value.trim().toUpperCase(Locale.ROOT));
        } catch (RuntimeException e) {
            throw new ConfigException(setting, "'" + value + "' is not a retry order (ordered, unordered)");
        }
    }
}
