package io.stargazer.bus;

import io.stargazer.bus.internal.Settings;
import java.util.Locale;

/** What a node does; decides which consumer groups {@link EventBus#ensureStreams()} creates. */
public enum NodeRole {
    /** Takes platform messages in (publishes inbound), reads its platforms' outbound streams. */
    GATEWAY,
    /** Reads the inbound stream with the worker group, publishes outbound. */
    WORKER,
    /** Gateway and worker in one process (tools run in-process, so no tools group). */
    STANDALONE,
    /** The dedicated tools service: reads the tools stream with the tools group. */
    TOOLS,
    /**
     * The trusted relay of relay mode ({@link PublishVia#RELAY}): reads every outbox with the relay group and adds each
     * entry to its target ({@code io.stargazer.bus.Relay}); writes directly, never through an outbox.
     */
    RELAY;

    public String wireName() {
        return name().toLowerCase(Locale.ROOT);
    }

    /** Parses {@code gateway}, {@code worker}, {@code standalone} or {@code tools}, naming the setting when refused. */
    public static NodeRole parse(String setting, String value) {
        if (value != null) {
            for (NodeRole r : values()) {
                if (r.wireName().equals(value.trim().toLowerCase(Locale.ROOT))) {
                    return r;
                }
            }
        }
        throw new ConfigException(setting, "'" + (value == null ? null : Settings.printable(value))
                + "' is not a node role (gateway, worker, standalone, tools, relay)");
    }
}
