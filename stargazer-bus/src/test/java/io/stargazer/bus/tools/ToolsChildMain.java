package io.stargazer.bus.tools;

import io.stargazer.bus.BusConfig;
import io.stargazer.bus.Envelope;
import io.stargazer.bus.EventBus;
import io.stargazer.bus.NodeRole;
import io.stargazer.bus.RedisUrl;
import io.stargazer.bus.Topology;
import java.time.Duration;
import java.util.concurrent.CountDownLatch;

/**
 * A tools instance or a worker in a process of its own, for tests that kill it with SIGKILL: what a crashed node
 * leaves behind is only observable when the process really dies. Prints one line when ready, then waits forever.
 *
 * <p>Arguments: {@code tools|worker host port namespace nodeId}. In {@code tools} mode the tool {@code slow} prints
 * {@code RUNNING <request_id>} and never returns. In {@code worker} mode a {@link ToolClient} with a 1 s reply-stream
 * expiry is made and {@code READY <reply stream>} printed. In {@code count} mode the tool {@code count} records each
 * run as an entry of the stream {@code <namespace>:runs} and returns the number of the run.
 */
public final class ToolsChildMain {
    private ToolsChildMain() {
    }

    public static void main(String[] args) throws Exception {
        String mode = args[0];
        RedisUrl url = System.getenv(RedisUrl.ENV_REDIS_URL) != null ? RedisUrl.parse(System.getenv(RedisUrl.ENV_REDIS_URL))
                : RedisUrl.of(args[1], Integer.parseInt(args[2]));
        BusConfig config = BusConfig.builder().topology(Topology.builder().namespace(args[3]).build())
                .role(NodeRole.TOOLS).nodeId(args[4]).build();
        EventBus bus = EventBus.connect(url, config);
        CountDownLatch never = new CountDownLatch(1);
        if (mode.equals("count")) {
            ToolRegistry registry = ToolRegistry.builder().register("count", a -> {
                bus.publish(args[3] + ":runs", Envelope.of("request_id", ToolService.currentRequest().orElseThrow().requestId()));
                return "run by " + args[4];
            }).build();
            ToolService.start(bus, registry, ToolServiceConfig.builder().maxConcurrent(2).build());
            System.out.println("READY");
        } else if (mode.equals("tools")) {
            ToolRegistry registry = ToolRegistry.builder().register("slow", a -> {
                System.out.println("RUNNING " + ToolService.currentRequest().orElseThrow().requestId());
                System.out.flush();
                never.await();
                return "never";
            }).build();
            // The claim time of the instance that takes its requests over (ToolsCrashIT): a lease lasts the running
            // instance's claim time, at least 10 s, so one fleet shares one claim time.
            ToolService.start(bus, registry, ToolServiceConfig.builder().maxConcurrent(2).claimIdle(Duration.ofMillis(500)).build());
            System.out.println("READY");
        } else {
            ToolClient client = ToolClient.create(bus, ToolClientConfig.builder().replyTtl(Duration.ofSeconds(1)).build());
            System.out.println("READY " + client.replyStream());
        }
        System.out.flush();
        never.await();
    }
}
