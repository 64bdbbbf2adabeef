package io.stargazer.bus.testing;

import io.stargazer.bus.BusConfig;
import io.stargazer.bus.ConsumerConfig;
import io.stargazer.bus.EventBus;
import io.stargazer.bus.NodeRole;
import io.stargazer.bus.RedisUrl;
import java.time.Duration;

/**
 * A consumer in a process of its own, for tests that kill it with SIGKILL. Prints {@code READY} once
 * subscribed and {@code GOT <seq>} after each handled entry; each handler sleeps {@code handlerMillis} so a kill
 * lands while entries are in flight.
 *
 * <p>Usage: {@code ConsumerProcess <redis-url> <stream> <group> <consumer> <handlerMillis>}
 */
public final class ConsumerProcess {
    public static void main(String[] args) throws Exception {
        RedisUrl url = RedisUrl.parse(args[0]);
        String stream = args[1];
        String group = args[2];
        String consumer = args[3];
        long handlerMillis = Long.parseLong(args[4]);
        EventBus bus = EventBus.connect(url, BusConfig.builder().role(NodeRole.WORKER).nodeId(consumer).build());
        bus.subscribe(ConsumerConfig.builder(stream, group).consumerName(consumer).concurrency(4).batchSize(8)
                .claimIdle(Duration.ofSeconds(60)).build(), d -> {
                    Thread.sleep(handlerMillis);
                    System.out.println("GOT " + d.envelope().get("seq"));
                    System.out.flush();
                });
        System.out.println("READY");
        System.out.flush();
        Thread.currentThread().join();
    }
}
