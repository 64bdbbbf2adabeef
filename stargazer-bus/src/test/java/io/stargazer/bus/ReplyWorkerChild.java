package io.stargazer.bus;

import java.time.Duration;

/**
 * A worker in a process of its own (ReplyIT): answers each entry of a stream on another stream, and on entry
 * {@code hangAt} prints {@code ANSWERED <n>} once its answer is stored and then hangs, as a process that is about to
 * be killed. Mode {@code reply} answers with Delivery.reply; mode {@code publish} publishes and returns (the way
 * without it, for comparison). Args: redis url, in stream, group, out stream, hangAt (-1: never), mode, and
 * optionally consumer name and claim time in ms. Prints {@code ANSWERED n} for every entry, and hangs on none, when
 * hangAt is -2 (ClusterReplyIT: its user may not XACK, so every entry stays pending after its answer is stored).
 */
public final class ReplyWorkerChild {
    public static void main(String[] args) throws Exception {
        String name = args.length > 6 ? args[6] : "child";
        Duration claimIdle = Duration.ofMillis(args.length > 7 ? Long.parseLong(args[7]) : 60_000);
        EventBus bus = EventBus.connect(RedisUrl.parse(args[0]), BusConfig.builder().role(NodeRole.WORKER).nodeId(name).build());
        long hangAt = Long.parseLong(args[4]);
        boolean reply = args[5].equals("reply");
        bus.subscribe(ConsumerConfig.builder(args[1], args[2]).consumerName(name).claimIdle(claimIdle).build(), d -> {
            long n = d.envelope().longValue("n", -1);
            Envelope answer = Envelope.of("channel_id", d.envelope().channelId(), "answer_to", n);
            if (reply) {
                d.reply(args[3], answer).join();
            } else {
                bus.publish(args[3], answer);
            }
            if (n == hangAt || hangAt == -2) {
                System.out.println("ANSWERED " + n);
                System.out.flush();
            }
            if (n == hangAt) Thread.sleep(Long.MAX_VALUE);
        });
        System.out.println("READY");
        System.out.flush();
        Thread.currentThread().join();
    }
}
