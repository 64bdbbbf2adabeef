package io.stargazer.bus;

/** An envelope whose encoded size exceeds the configured limit; refused before anything reaches Redis. */
public class EnvelopeTooLargeException extends StargazerException {
    private final long size;
    private final long limit;

    public EnvelopeTooLargeException(String stream, long size, long limit) {
        super("envelope for stream '" + stream + "' encodes to " + size + " bytes, over the limit of " + limit
                + " bytes (SG_MAX_ENVELOPE_BYTES)");
        this.size = size;
        this.limit = limit;
    }

    public long size() {
        return size;
    }

    public long limit() {
        return limit;
    }
}
