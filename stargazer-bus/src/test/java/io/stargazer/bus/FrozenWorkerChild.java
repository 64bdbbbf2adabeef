// A worker in a child JVM for FrozenConsumerIT, frozen with SIGSTOP; prints what its handler starts and finishes.
package io.stargazer.bus;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.time.Duration;

/**
 * A worker in a process of its own, for tests that freeze it with SIGSTOP (FrozenConsumerIT): prints {@code READY} once
 * subscribed, {@code START <content> <delivery count>} as a handler starts and {@code DONE <content>} as it returns; the
 * handler of the entry whose content is {@code slow} returns when a line comes on standard input (one sent while the
 * process is stopped: at once when it is continued). Args: redis url, stream, group, consumer name, claim idle in ms.
 */
public final class FrozenWorkerChild {
    public static void main(String[] args) throws Exception {
        EventBus bus = EventBus.connect(RedisUrl.parse(args[0]), BusConfig.builder().role(NodeRole.WORKER).nodeId(args[3]).build());
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        bus.subscribe(ConsumerConfig.builder(args[1], args[2]).consumerName(args[3])
                .claimIdle(Duration.ofMillis(Long.parseLong(args[4]))).build(), d -> {
                    String content = d.envelope().content();
                    say("START " + content + " " + d.deliveryCount());
                    if (content.equals("slow")) in.readLine();
                    say("DONE " + content);
                });
        say("READY");
        Thread.currentThread().join();
    }

    private static void say(String line) {
        synchronized (System.out) {
            System.out.println(line);
            System.out.flush();
        }
    }
}
