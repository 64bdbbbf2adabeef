package io.stargazer.bus;

/**
 * A publish refused because its stream is at its cap and trimming more would remove entries a group has not yet
 * had delivered and acknowledged ({@link TrimPolicy#SAFE}), or because it lost the consumer groups it had (Redis
 * restarted empty) and a re-created group would read them ({@link #laggingGroup()} empty then). Nothing was written;
 * the caller may retry later.
 */
public class BackpressureException extends StargazerException {
    private final String stream;
    private final long length;
    private final long cap;
    private final String laggingGroup;

    public BackpressureException(String stream, long length, long cap, String laggingGroup, String how) {
        super("stream '" + stream + "' is at its cap (" + length + " entries, cap " + cap + ") and " + (laggingGroup == null || laggingGroup.isEmpty()
                ? "has lost the consumer groups it had (Redis restarted empty, or they were deleted): held for a consumer to re-create its group: "
                : "group '" + laggingGroup + "' has not acknowledged the oldest of them: ") + how);
        this.stream = stream;
        this.length = length;
        this.cap = cap;
        this.laggingGroup = laggingGroup;
    }

    public String stream() { return stream; }
    public long length() { return length; }
    public long cap() { return cap; }
    public String laggingGroup() { return laggingGroup; }
}
