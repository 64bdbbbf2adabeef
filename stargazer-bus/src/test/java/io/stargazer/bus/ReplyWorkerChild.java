package io.stargazer.bus;

import java.time.Duration;

/**
 * A worker in a process of its own (ReplyIT): answers each entry of a stream on another stream, and on entry
 * {@code hangAt} prints {@code ANSWERED <n>} once its answer is stored and then hangs, as a process that is about to
 * be killed. Mode {@code reply} answers with Delivery.reply; mode {@code publish} publishes and returns (the way
 * without it, for comparison). Args: redis url, in stream, group, out stream, hangAt, mode.
 */
public final class ReplyWorkerChild {
    public static void main(String[] args) throws Exception {
        EventBus bus = EventBus.connect(RedisUrl.parse(args[0]), BusConfig.builder().role(NodeRole.WORKER).nodeId("child").build());
        long hangAt = Long.parseLong(args[4]);
        boolean reply = args[5].equals("reply");
        bus.subscribe(ConsumerConfig.builder(args[1], args[2]).consumerName("child").claimIdle(Duration.ofSeconds(60)).build(), d -> {
            long n = d.envelope().longValue("n", -1);
            Envelope answer = Envelope.of("channel_id", d.envelope().channelId(), "answer_to", n);
            if (reply) {
                d.reply(args[3], answer).join();
            } else {
                bus.publish(args[3], answer);
            }
            if (n == hangAt) {
                System.out.println("ANSWERED " + n);
                System.out.flush();
                Thread.sleep(Long.MAX_VALUE);
            }
        });
        System.out.println("READY");
        System.out.flush();
        Thread.currentThread().join();
    }
}
