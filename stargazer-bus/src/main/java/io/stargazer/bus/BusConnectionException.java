package io.stargazer.bus;

/** Redis could not be reached, the connection was lost, or a command got no answer in time. */
public class BusConnectionException extends StargazerException {
    public BusConnectionException(String message, Throwable cause) {
        super(message, cause);
    }
}
