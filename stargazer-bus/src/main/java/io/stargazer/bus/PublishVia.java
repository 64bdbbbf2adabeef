package io.stargazer.bus;

import java.util.Locale;

/**
 * How a node writes the streams other roles depend on ({@code SG_PUBLISH_VIA}, {@link BusConfig#publishVia()}):
 * directly, or through an outbox of its own that the trusted relay moves to the target (docs/functions.md, "Relay
 * mode"). Relay mode is what lets the ACL users of gateways, workers and the tools service hold no {@code XADD},
 * {@code XTRIM}, {@code XDEL} or {@code DEL} on any stream another role reads.
 */
public enum PublishVia {
    /** XADD (or the library's functions) on the target stream itself, as always. */
    DIRECT,
    /**
     * Every write to a shared stream (inbound, outbound, tools, reply and dead-letter streams) goes to the writer's
     * outbox ({@link Topology#outboxFor}); the relay ({@code io.stargazer.bus.Relay}) adds it to the target. A publish
     * completes with the outbox entry's id, once the outbox has stored it.
     */
    RELAY;

    public String wireName() {
        return name().toLowerCase(Locale.ROOT);
    }

    public static PublishVia parse(String setting, String value) {
        try {
            return valueOf(value.trim().toUpperCase(Locale.ROOT));
        } catch (RuntimeException e) {
            throw new ConfigException(setting, "'" + io.stargazer.bus.internal.Settings.printable(String.valueOf(value))
                    + "' is not a way to publish (direct, relay)");
        }
    }
}
