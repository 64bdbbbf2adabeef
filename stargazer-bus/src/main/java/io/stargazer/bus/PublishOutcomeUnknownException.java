package io.stargazer.bus;

/**
 * A publish was sent but no answer came (the deadline passed, or the connection was lost after the command was
 * written): the entry may or may not be in the stream. Retrying it may store it twice unless it carries a dedupe
 * key. A publish that fails before anything was sent is a plain {@link BusConnectionException} or
 * {@link BackpressureException} instead: retrying that one cannot duplicate.
 */
public class PublishOutcomeUnknownException extends BusConnectionException {
    private final String stream;

    public PublishOutcomeUnknownException(String stream, String message, Throwable cause) {
        super(message, cause);
        this.stream = stream;
    }

    /** The stream the publish was meant for. */
    public String stream() {
        return stream;
    }
}
