package io.stargazer.bus;

/**
 * A publish refused at once because too many publishes to its stream are already waiting to be sent, or for room in
 * the stream while it is full ({@link BusConfig#publishQueueLimit()}, {@code SG_PUBLISH_QUEUE_LIMIT}): Redis is slower
 * than the publishers, or not answering, or a group lags (SG_BACKPRESSURE=block). Nothing was written; the caller may
 * retry later. This keeps memory bounded while Redis stalls or a stream stays full.
 */
public class PublishQueueFullException extends StargazerException {
    private final String stream;
    private final int limit;

    public PublishQueueFullException(String stream, int limit) {
        super("publishing to stream '" + stream + "': " + limit
                + " publishes are already waiting, to be sent or for room in the full stream (SG_PUBLISH_QUEUE_LIMIT); nothing was written");
        this.stream = stream;
        this.limit = limit;
    }

    public String stream() { return stream; }
    public int limit() { return limit; }
}
