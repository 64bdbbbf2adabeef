package io.stargazer.bus;

/**
 * The root of every exception the bus throws. Unchecked, like Lettuce's {@code RedisException}: callers catch
 * the typed subtypes they can act on and let the rest propagate.
 */
public class StargazerException extends RuntimeException {
    public StargazerException(String message) {
        super(message);
    }

    public StargazerException(String message, Throwable cause) {
        super(message, cause);
    }
}
