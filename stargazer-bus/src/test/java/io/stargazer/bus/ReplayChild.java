package io.stargazer.bus;

/**
 * A replay in a process of its own (DeadLettersIT): replays every dead letter of the topology under a namespace at a
 * given rate, printing {@code READY} first and {@code DONE <replayed>} at the end, so the test can SIGKILL it halfway.
 * Args: redis url, namespace, rate per second.
 */
public final class ReplayChild {
    public static void main(String[] args) {
        BusConfig config = BusConfig.builder().topology(Topology.builder().namespace(args[1]).build()).role(NodeRole.GATEWAY)
                .nodeId("replay-child-" + ProcessHandle.current().pid()).build();
        try (EventBus bus = EventBus.connect(RedisUrl.parse(args[0]), config)) {
            System.out.println("READY");
            System.out.flush();
            ReplayResult r = bus.deadLetters().replay(DeadLetterFilter.ALL,
                    ReplayOptions.builder().ratePerSecond(Integer.parseInt(args[2])).build());
            System.out.println("DONE " + r.replayed());
        }
    }
}
