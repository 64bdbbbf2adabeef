package io.stargazer.bus;

/** Creating a consumer group failed for a reason other than "it already exists" (BUSYGROUP). */
public class ProvisioningException extends StargazerException {
    private final String stream;
    private final String group;

    public ProvisioningException(String stream, String group, Throwable cause) {
        super("could not create consumer group '" + group + "' on stream '" + stream + "': " + cause.getMessage(), cause);
        this.stream = stream;
        this.group = group;
    }

    public String stream() {
        return stream;
    }

    public String group() {
        return group;
    }
}
