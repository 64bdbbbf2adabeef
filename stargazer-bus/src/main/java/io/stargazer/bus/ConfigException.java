package io.stargazer.bus;

/**
 * A setting that cannot be used. The message names the setting (the environment variable or builder
 * method) and the value, so start-up fails with something a person can fix.
 */
public class ConfigException extends StargazerException {
    private final String setting;
    private final String reason;

    public ConfigException(String setting, String message) {
        super(setting + ": " + message);
        this.setting = setting;
        this.reason = message;
    }

    /** The environment variable or builder property that was refused. */
    public String setting() {
        return setting;
    }

    /** The message without the setting's name: what is wrong with the value, for a caller that names it otherwise. */
    public String reason() {
        return reason;
    }
}
