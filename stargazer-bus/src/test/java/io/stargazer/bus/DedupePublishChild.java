package io.stargazer.bus;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;

/**
 * A publisher in a process of its own (DedupeIT): publishes envelopes 0..n-1 to a stream with dedupe keys k0..k(n-1),
 * all at once (so they coalesce into batches), and prints {@code key id} per publish, then {@code done}.
 * Args: redis url, stream, n.
 */
public final class DedupePublishChild {
    public static void main(String[] args) {
        BusConfig config = BusConfig.builder().role(NodeRole.GATEWAY).nodeId("dedupe-child-" + ProcessHandle.current().pid()).build();
        try (EventBus bus = EventBus.connect(RedisUrl.parse(args[0]), config)) {
            int n = Integer.parseInt(args[2]);
            System.out.println("ready");
            List<CompletableFuture<String>> ids = new ArrayList<>();
            for (int i = 0; i < n; i++) {
                ids.add(bus.publishAsync(args[1], Envelope.of("channel_id", "c", "n", i), PublishOptions.dedupeKey("k" + i)));
            }
            for (int i = 0; i < n; i++) {
                System.out.println("k" + i + " " + ids.get(i).join());
            }
            System.out.println("done");
        }
    }
}
