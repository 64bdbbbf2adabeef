// Test worker handler (loaded by class name in a node process): logs each envelope, fails the first attempt at each
// channel, then echoes: a handler's own log line and the bus's retry line for one delivery, both inside its span.
package io.stargazer.node;

import io.stargazer.bus.Envelope;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

public final class FailOnceHandler implements WorkerHandler {
    private static final Logger log = LoggerFactory.getLogger(FailOnceHandler.class);
    private final Set<String> failed = ConcurrentHashMap.newKeySet();

    @Override
    public void handle(Envelope inbound, Context context) {
        log.info("Handling '{}'", inbound.content());
        if (failed.add(inbound.channelId())) {
            throw new IllegalStateException("first attempt fails on purpose");
        }
        context.reply(inbound.content());
    }
}
