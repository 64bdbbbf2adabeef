package io.stargazer.bus.spring.autoconfigure;

import io.stargazer.bus.EventBus;
import io.stargazer.bus.Subscription;
import io.stargazer.bus.spring.StargazerListeners;
import io.stargazer.bus.tools.ToolService;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Supplier;
import org.springframework.boot.health.contributor.AbstractHealthIndicator;
import org.springframework.boot.health.contributor.Health;

/**
 * {@code stargazer} in the actuator's health: UP when Redis answers a PING and every subscription (each listener's, and
 * the tools service's: the starter's and any {@link ToolService} bean of the application) is STARTING or RUNNING; DOWN
 * when Redis does not answer or a subscription FAILED; OUT_OF_SERVICE while one is RECONNECTING. A
 * {@link io.stargazer.bus.spring.StargazerToolService} that is not running (not started yet, stopped) has no subscription to count. Details:
 * the round trip, the server version, and each subscription's state, keyed {@code stream/group/consumer}.
 */
public class StargazerHealthIndicator extends AbstractHealthIndicator {
    private final EventBus bus;
    private final StargazerListeners listeners;
    private final Supplier<? extends Iterable<? extends ToolService>> toolServices;

    public StargazerHealthIndicator(EventBus bus, StargazerListeners listeners) {
        this(bus, listeners, List::of);
    }

    /** @param toolServices the tools services whose subscription counts too, looked up at each check */
    public StargazerHealthIndicator(EventBus bus, StargazerListeners listeners, Supplier<? extends Iterable<? extends ToolService>> toolServices) {
        super("Stargazer bus health check failed");
        this.bus = bus;
        this.listeners = listeners;
        this.toolServices = toolServices;
    }

    @Override
    protected void doHealthCheck(Health.Builder builder) {
        builder.withDetail("ping_ms", bus.ping().toNanos() / 1e6).withDetail("server_version", bus.serverVersion());
        Map<String, String> subs = new LinkedHashMap<>();
        boolean failed = false;
        boolean reconnecting = false;
        List<Subscription> all = new ArrayList<>(listeners.subscriptions());
        for (ToolService t : toolServices.get()) {
            try {
                all.add(t.subscription());
            } catch (IllegalStateException notRunning) {
                // A StargazerToolService before its start or after its stop (the check may race with either).
            }
        }
        for (Subscription s : all) {
            for (Subscription p : s.partitions()) {
                // Keyed by consumer too: two listeners of one group (each a consumer of its own) are two subscriptions.
                subs.put(p.stream() + "/" + p.group() + "/" + p.consumerName(), p.state().name());
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
