package io.stargazer.bus;

import java.time.Duration;
import java.util.List;

/**
 * A relay in a process of its own (RelayIT), to be killed mid-stream. Args: redis url, namespace of the topology,
 * platform, consumer name, claim time in ms. Prints {@code READY} once its subscriptions run.
 */
public final class RelayChild {
    public static void main(String[] args) throws Exception {
        Topology t = Topology.builder().namespace(args[1]).build();
        EventBus bus = EventBus.connect(RedisUrl.parse(args[0]), BusConfig.builder().topology(t).role(NodeRole.RELAY)
                .platforms(List.of(args[2])).nodeId(args[3]).publishVia(PublishVia.RELAY).build());
        Relay.start(bus, c -> c.consumerName(args[3]).claimIdle(Duration.ofMillis(Long.parseLong(args[4]))));
        System.out.println("READY");
        System.out.flush();
        Thread.currentThread().join();
    }
}
