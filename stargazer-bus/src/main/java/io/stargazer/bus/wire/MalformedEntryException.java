package io.stargazer.bus.wire;

import io.stargazer.bus.StargazerException;

/**
 * A stream entry or payload that does not follow wire format v1 (no {@code payload} field, bad MessagePack,
 * not a map with string keys, too deep, truncated). Never carries a half-decoded envelope.
 */
public class MalformedEntryException extends StargazerException {
    public MalformedEntryException(String message) {
        super(message);
    }

    public MalformedEntryException(String message, Throwable cause) {
        super(message, cause);
    }
}
