package io.stargazer.bus.internal;

import io.lettuce.core.ScriptOutputType;
import io.stargazer.bus.ConsumerInfo;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Removes the consumers of a group that have been idle past a limit with nothing pending (processes that stopped
 * long ago under names that will not come back), so the group's consumer list does not grow without bound. The
 * pending check and the removal are one script, so a consumer that takes an entry meanwhile is never removed.
 * Called from the subscription's reader thread; never throws.
 */
final class IdleConsumerSweep {
    private static final Logger log = LoggerFactory.getLogger(IdleConsumerSweep.class);

    static final String DELETE_IF_IDLE = LibrarySource.script("delete_idle_consumer");

    private final RedisEventBus bus;
    private final String stream;
    private final String group;
    private final String self;
    private final Duration idleLimit;

    IdleConsumerSweep(RedisEventBus bus, String stream, String group, String self, Duration idleLimit) {
        this.bus = bus;
        this.stream = stream;
        this.group = group;
        this.self = self;
        this.idleLimit = idleLimit;
    }

    /** How often the sweep is worth running: a quarter of the limit, between 1 s and 1 min. */
    long intervalMillis() {
        return Math.max(1000, Math.min(60_000, idleLimit.toMillis() / 4));
    }

    void run() {
        java.util.List<ConsumerInfo> consumers;
        try {
            consumers = bus.consumers(stream, group);
        } catch (io.stargazer.bus.ConfigException groupLost) {
            return; // the group is missing: its consumer re-creates it, with no idle consumer to remove
        }
        for (ConsumerInfo c : consumers) {
            if (c.pending() == 0 && c.idleMillis() > idleLimit.toMillis() && !c.name().equals(self)) {
                try {
                    Object r = bus.redis().code().run(bus.redis().sharedSync(), DELETE_IF_IDLE, ScriptOutputType.INTEGER, new String[] {stream},
                            group.getBytes(StandardCharsets.UTF_8), c.name().getBytes(StandardCharsets.UTF_8));
                    if (r instanceof Long l && l >= 0) {
                        log.atInfo().addKeyValue("stream", stream).addKeyValue("group", group).addKeyValue("consumer", c.name())
                                .addKeyValue("idle_ms", c.idleMillis()).log("Removed idle consumer with nothing pending");
                    }
                } catch (RuntimeException e) {
                    log.atDebug().addKeyValue("consumer", c.name()).setCause(e).log("Idle consumer removal failed");
                }
            }
        }
    }
}
