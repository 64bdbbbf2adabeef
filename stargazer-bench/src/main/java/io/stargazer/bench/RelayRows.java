// What relay mode costs (issue 18): each message crosses Redis twice, outbox then target, with the relay's round trip
// between. Direct and relay side by side in one run, alternated A B A B A B; medians with min and max.
package io.stargazer.bench;

import io.stargazer.bus.BusConfig;
import io.stargazer.bus.Envelope;
import io.stargazer.bus.EventBus;
import io.stargazer.bus.NodeRole;
import io.stargazer.bus.Provisioning;
import io.stargazer.bus.PublishVia;
import io.stargazer.bus.Relay;
import io.stargazer.bus.Subscription;
import io.stargazer.bus.Topology;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;

/**
 * Both on the harness's server with the functions library loaded (the strict users' path), platform webchat:
 * <ul>
 *   <li>inbound delivery rate: a gateway bus publishes {@code n} envelopes asynchronously (1000 in flight), timed from
 *       the first publish until the inbound stream holds all {@code n}; in relay mode a relay in this JVM moves them
 *       from the gateway's outbox (a publish completes at the outbox, so the target's length is the fair end);</li>
 *   <li>round trip: one message at a time, gateway publishes inbound, a worker answers with {@code Delivery.reply},
 *       the gateway's subscription receives the answer; the median of the round's trips, in ms (in relay mode both legs
 *       go through an outbox and the relay).</li>
 * </ul>
 */
final class RelayRows {
    static final String SECTION = "relay";
    static final int ROUNDS = 3;

    private RelayRows() {
    }

    static void run(Ctx ctx, ObservabilityRows.Sink sink, Consumer<String> notes, Consumer<String> progress) throws Exception {
        int n = ctx.quick ? 20_000 : 100_000;
        int trips = ctx.quick ? 300 : 1000;
        Provisioning.provision(ctx.redisUrl, BusConfig.builder().build());
        try {
            // One untimed pass of each, so both code paths are compiled before any is measured.
            deliver(ctx, PublishVia.DIRECT, 2000);
            deliver(ctx, PublishVia.RELAY, 2000);
            roundTrip(ctx, PublishVia.DIRECT, 50);
            roundTrip(ctx, PublishVia.RELAY, 50);
            Alternate.Outcome rate = new Alternate()
                    .add("direct", "msg/s", () -> deliver(ctx, PublishVia.DIRECT, n))
                    .add("relay", "msg/s", () -> deliver(ctx, PublishVia.RELAY, n))
                    .run("inbound delivery rate", ROUNDS, progress);
            Alternate.Outcome rt = new Alternate()
                    .add("direct", "ms", () -> roundTrip(ctx, PublishVia.DIRECT, trips))
                    .add("relay", "ms", () -> roundTrip(ctx, PublishVia.RELAY, trips))
                    .run("round trip", ROUNDS, progress);
            String rateFigure = "relay: " + n + " inbound publishes (async), until stored in the inbound stream";
            String rtFigure = "relay: round trip gateway -> worker (reply) -> gateway, 1 at a time, median";
            // The table has a column per library, not per mode: each mode is a figure of its own in Stargazer's column
            // (written under the mode's name, they were rows of dashes).
            for (String c : List.of("direct", "relay")) {
                String mode = c.equals("direct") ? ", published directly" : ", through the outbox and the relay";
                sink.add(SECTION, rateFigure + mode, Result.STARGAZER, rate.get(c).median(), "msg/s", "");
                sink.add(SECTION, rtFigure + mode, Result.STARGAZER, rt.get(c).median(), "ms", "");
            }
            notes.accept(String.format(Locale.ROOT, "Relay mode beside direct, alternated, %d rounds (%s; %s): inbound delivery "
                    + "direct %s, relay %s msg/s (%.2fx); round trip direct %s, relay %s ms (median of each round's %d trips).",
                    ROUNDS, rate.load(), rt.load(), rate.get("direct").describe("msg/s"), rate.get("relay").describe("msg/s"),
                    rate.get("relay").median() / rate.get("direct").median(), rt.get("direct").describe("ms"),
                    rt.get("relay").describe("ms"), trips));
        } finally {
            ctx.sync().functionFlush(io.lettuce.core.FlushMode.SYNC);
        }
    }

    private static BusConfig config(Topology t, NodeRole role, PublishVia via) {
        return BusConfig.builder().topology(t).role(role).nodeId(role.wireName()).platforms(List.of("webchat"))
                .streamMaxlen(Ctx.MAXLEN).publishVia(via).build();
    }

    private static double deliver(Ctx ctx, PublishVia via, int n) throws Exception {
        Topology t = Topology.builder().namespace(ctx.key("relay-" + via.wireName())).build();
        try (EventBus gateway = EventBus.connect(ctx.redisUrl, config(t, NodeRole.GATEWAY, via));
             EventBus relayBus = EventBus.connect(ctx.redisUrl, config(t, NodeRole.RELAY, via));
             Relay relay = via == PublishVia.RELAY ? Relay.start(relayBus) : null) {
            gateway.ensureStreams(List.of());
            gateway.ensureGroup(t.inboundStream(), t.workerGroup());
            Semaphore window = new Semaphore(1000);
            long t0 = System.nanoTime();
            for (int i = 0; i < n; i++) {
                window.acquire();
                gateway.publishInboundAsync(Envelopes.envelope(i))
                        .whenComplete((id, e) -> window.release());
            }
            while (ctx.length(t.inboundStream()) < n) {
                Thread.sleep(1);
                if (System.nanoTime() - t0 > TimeUnit.MINUTES.toNanos(5)) throw new IllegalStateException("not delivered in 5 min");
            }
            return n / ((System.nanoTime() - t0) / 1e9);
        } finally {
            ctx.reset();
        }
    }

    private static double roundTrip(Ctx ctx, PublishVia via, int trips) throws Exception {
        Topology t = Topology.builder().namespace(ctx.key("relay-rt-" + via.wireName())).build();
        BlockingQueue<String> answers = new ArrayBlockingQueue<>(16);
        try (EventBus gateway = EventBus.connect(ctx.redisUrl, config(t, NodeRole.GATEWAY, via));
             EventBus worker = EventBus.connect(ctx.redisUrl, config(t, NodeRole.WORKER, via));
             EventBus relayBus = EventBus.connect(ctx.redisUrl, config(t, NodeRole.RELAY, via));
             Relay relay = via == PublishVia.RELAY ? Relay.start(relayBus) : null;
             Subscription w = worker.subscribeInbound(d -> d.reply(t.outboundStream("webchat"), Envelope.of("platform", "webchat",
                     "channel_id", d.envelope().channelId(), "content", d.envelope().content())).join());
             Subscription g = gateway.subscribe(gateway.consumer(t.outboundStream("webchat"), t.gatewayGroup("webchat")).build(),
                     d -> answers.add(d.envelope().content()))) {
            double[] ms = new double[trips];
            for (int i = 0; i < trips; i++) {
                long t0 = System.nanoTime();
                gateway.publishInbound(Envelope.of("platform", "webchat", "channel_id", "c", "content", "m" + i));
                String a = answers.poll(10, TimeUnit.SECONDS);
                if (!("m" + i).equals(a)) throw new IllegalStateException("round trip " + i + " got " + a);
                ms[i] = (System.nanoTime() - t0) / 1e6;
            }
            Arrays.sort(ms);
            return ms[trips / 2];
        } finally {
            ctx.reset();
        }
    }
}
