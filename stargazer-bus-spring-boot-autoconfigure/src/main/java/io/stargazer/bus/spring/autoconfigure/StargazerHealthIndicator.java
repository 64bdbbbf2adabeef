package io.stargazer.bus.spring.autoconfigure;

import io.stargazer.bus.EventBus;
import io.stargazer.bus.Subscription;
import io.stargazer.bus.spring.StargazerListeners;
import java.util.LinkedHashMap;
import java.util.Map;
import org.springframework.boot.health.contributor.AbstractHealthIndicator;
import org.springframework.boot.health.contributor.Health;

/**
 * {@code stargazer} in the actuator's health: UP when Redis answers a PING and every listener subscription is
 * STARTING or RUNNING; DOWN when Redis does not answer or a subscription FAILED; OUT_OF_SERVICE while one is
 * RECONNECTING. Details: the round trip, the server version, and each subscription's state.
 */
public class StargazerHealthIndicator extends AbstractHealthIndicator {
    private final EventBus bus;
    private final StargazerListeners listeners;

    public StargazerHealthIndicator(EventBus bus, StargazerListeners listeners) {
        super("Stargazer bus health check failed");
        this.bus = bus;
        this.listeners = listeners;
    }

    @Override
    protected void doHealthCheck(Health.Builder builder) {
        builder.withDetail("ping_ms", bus.ping().toNanos() / 1e6).withDetail("server_version", bus.serverVersion());
        Map<String, String> subs = new LinkedHashMap<>();
        boolean failed = false;
        boolean reconnecting = false;
        for (Subscription s : listeners.subscriptions()) {
            for (Subscription p : s.partitions()) {
                subs.put(p.stream() + "/" + p.group(), p.state().name());
                failed |= p.state() == Subscription.State.FAILED;
                reconnecting |= p.state() == Subscription.State.RECONNECTING;
            }
        }
        builder.withDetail("subscriptions", subs);
        if (failed) builder.down();
        else if (reconnecting) builder.outOfService();
        else builder.up();
    }
}
