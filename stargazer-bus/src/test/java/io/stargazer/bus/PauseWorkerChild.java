package io.stargazer.bus;

import java.time.Duration;

/**
 * A worker in a process of its own (PauseIT): consumes a stream with a group, printing {@code GOT <n> <delivery count>}
 * per delivery and {@code STATE <state>} whenever its subscription's state changes. Args: redis url, stream, group, name.
 */
public final class PauseWorkerChild {
    public static void main(String[] args) throws Exception {
        EventBus bus = EventBus.connect(RedisUrl.parse(args[0]), BusConfig.builder().role(NodeRole.WORKER).nodeId(args[3]).build());
        Subscription s = bus.subscribe(ConsumerConfig.builder(args[1], args[2]).consumerName(args[3]).claimIdle(Duration.ofSeconds(60)).build(),
                d -> {
                    synchronized (System.out) {
                        System.out.println("GOT " + d.envelope().longValue("n", -1) + " " + d.deliveryCount());
                        System.out.flush();
                    }
                });
        Subscription.State last = null;
        while (true) {
            Subscription.State now = s.state();
            if (now != last) {
                synchronized (System.out) {
                    System.out.println("STATE " + now);
                    System.out.flush();
                }
                last = now;
            }
            Thread.sleep(50);
        }
    }
}
