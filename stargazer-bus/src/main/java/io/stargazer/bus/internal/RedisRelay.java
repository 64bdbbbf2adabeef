package io.stargazer.bus.internal;

import io.stargazer.bus.ConsumerConfig;
import io.stargazer.bus.Relay;
import io.stargazer.bus.RetryOrder;
import io.stargazer.bus.Subscription;
import io.stargazer.bus.Topology;
import java.util.ArrayList;
import java.util.List;
import java.util.function.UnaryOperator;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * {@link Relay} on {@link RedisEventBus}: one subscription per outbox, each entry checked by {@link Relaying#read} and
 * moved by {@link RedisEventBus#relay} through the delivery's answer-and-acknowledge step (the one {@code reply} uses).
 */
final class RedisRelay implements Relay {
    private static final Logger log = LoggerFactory.getLogger(Relay.class);

    private final List<Subscription> subscriptions;

    private RedisRelay(List<Subscription> subscriptions) {
        this.subscriptions = List.copyOf(subscriptions);
    }

    static RedisRelay start(RedisEventBus bus, UnaryOperator<ConsumerConfig.Builder> customize) {
        Topology t = bus.topology();
        List<String> platforms = bus.config().platforms();
        List<Subscription> subs = new ArrayList<>();
        try {
            for (String outbox : t.outboxes(platforms)) {
                // Ordered retries whatever customize says (the node passes SG_RETRY_ORDER on): with unordered ones a
                // channel's later entries would be moved while its earlier one waits for its retry, out of their order.
                ConsumerConfig cc = customize.apply(bus.consumer(outbox, t.relayGroup())).retryOrder(RetryOrder.ORDERED).build();
                subs.add(bus.subscribe(cc,
                        d -> ((StreamConsumer.DeliveryImpl) d).answerWith(() -> bus.relay(outbox, cc.group(), ((StreamConsumer.DeliveryImpl) d).raw())),
                        e -> Relaying.read(t, platforms, outbox, e)));
            }
        } catch (RuntimeException e) {
            subs.forEach(Subscription::close);
            throw e;
        }
        log.atInfo().addKeyValue("outboxes", t.outboxes(platforms)).addKeyValue("group", t.relayGroup()).log("Relay started");
        return new RedisRelay(subs);
    }

    @Override
    public List<Subscription> subscriptions() {
        return subscriptions;
    }

    @Override
    public void close() {
        for (Subscription s : subscriptions) {
            try {
                s.close();
            } catch (RuntimeException e) {
                Redis.logClosed("relay subscription " + s.stream(), e);
            }
        }
    }
}
