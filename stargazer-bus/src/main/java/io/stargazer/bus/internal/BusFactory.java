package io.stargazer.bus.internal;

import io.stargazer.bus.BusConfig;
import io.stargazer.bus.EventBus;
import io.stargazer.bus.RedisUrl;
import io.stargazer.bus.tools.ToolClient;
import io.stargazer.bus.tools.ToolClientConfig;
import io.stargazer.bus.tools.ToolRegistry;
import io.stargazer.bus.tools.ToolRequest;
import io.stargazer.bus.tools.ToolService;
import io.stargazer.bus.tools.ToolServiceConfig;
import java.util.Optional;

/**
 * The one door from the API's static factories ({@link EventBus#connect}, {@link ToolClient#create},
 * {@link ToolService#start}) to their implementations, which stay package-private: it hands out API types only.
 */
public final class BusFactory {
    private BusFactory() {
    }

    public static EventBus connect(RedisUrl url, BusConfig config) {
        return RedisEventBus.connect(url, config);
    }

    public static ToolClient toolClient(EventBus bus, ToolClientConfig config) {
        return RedisToolClient.create(bus, config);
    }

    public static ToolService toolService(EventBus bus, ToolRegistry registry, ToolServiceConfig config) {
        return RedisToolService.start(bus, registry, config);
    }

    public static io.stargazer.bus.Relay relay(EventBus bus, java.util.function.UnaryOperator<io.stargazer.bus.ConsumerConfig.Builder> customize) {
        return RedisRelay.start(impl(bus), customize);
    }

    /**
     * Adds a metrics observer to {@code bus} (io.stargazer.bus.micrometer only; the package is not exported);
     * returns the subscriptions running now. Throws IllegalArgumentException for a bus of another implementation.
     */
    public static java.util.List<io.stargazer.bus.Subscription> addHooks(EventBus bus, BusHooks hooks) {
        return impl(bus).addHooks(hooks);
    }

    /** Installs the trace context observer of {@code bus} (null removes it). */
    public static void setTracing(EventBus bus, BusTracing tracing) {
        impl(bus).setTracing(tracing);
    }

    /** Loads the stargazer functions library over {@code bus}'s connection; the version loaded before (0: none). */
    public static int loadLibrary(EventBus bus) {
        return ServerCode.load(impl(bus).redis().sharedSync());
    }

    public static int libraryVersion(EventBus bus) {
        return ServerCode.loadedVersion(impl(bus).redis().sharedSync());
    }

    private static RedisEventBus impl(EventBus bus) {
        if (bus instanceof RedisEventBus r) return r;
        throw new IllegalArgumentException("not a bus made by EventBus.connect: " + bus.getClass().getName());
    }

    public static Optional<ToolRequest> currentToolRequest() {
        return RedisToolService.currentRequest();
    }
}
