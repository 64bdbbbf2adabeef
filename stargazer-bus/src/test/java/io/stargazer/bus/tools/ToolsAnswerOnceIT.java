package io.stargazer.bus.tools;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.stargazer.bus.Envelope;
import io.stargazer.bus.EventBus;
import io.stargazer.bus.NodeRole;
import io.stargazer.bus.PublishOptions;
import io.stargazer.bus.StreamEntry;
import io.stargazer.bus.Topology;
import io.stargazer.bus.testing.Closer;
import io.stargazer.bus.testing.RawRedis;
import io.stargazer.bus.testing.TcpProxy;
import io.stargazer.bus.testing.TestRedis;
import io.stargazer.bus.wire.WireFormat;
import java.time.Duration;
import java.util.AbstractMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

/**
 * One answer per tools request, and a call that always completes, through faults around the edges of a call: a request
 * taken over or sent again after its deadline, whose tool ran and was answered, gets no second answer ("it was not
 * run"); a call racing the client's close() is completed (it was left waiting forever); a request that cannot be
 * answered once, or whose answer cannot be sent, is settled (it was left pending forever).
 */
@org.junit.jupiter.api.Timeout(value = 2, unit = TimeUnit.MINUTES)
class ToolsAnswerOnceIT {

    private static Envelope request(String requestId, String tool, String replyTo, long deadlineMs) {
        return Envelope.of("request_id", requestId, "tool", tool, "args", Map.of(), "reply_to", replyTo, "deadline_ms", deadlineMs);
    }

    /**
     * A call that passed the closed check when close() started registers itself and schedules its timeout after close
     * took its copy of the pending calls and before it shut the timer down: nothing ever completes it.
     */
    @Test
    void aCallRacingCloseIsCompleted() throws Exception {
        Topology t = TestRedis.topology();
        try (EventBus worker = TestRedis.bus(TestRedis.config(NodeRole.WORKER).topology(t).build())) {
            ToolClient client = ToolClient.create(worker);
            CountDownLatch inCall = new CountDownLatch(1);
            CountDownLatch goOn = new CountDownLatch(1);
            // Args whose iteration (while call() builds the request) waits: pins call() between its closed check and
            // its registration, as a thread descheduled there would be.
            Map<String, Object> pausing = new AbstractMap<>() {
                @Override
                public Set<Entry<String, Object>> entrySet() {
                    inCall.countDown();
                    try {
                        goOn.await(20, TimeUnit.SECONDS);
                    } catch (InterruptedException e) {
                        Thread.currentThread().interrupt();
                    }
                    return Map.<String, Object>of("x", 1L).entrySet();
                }
            };
            // A call in flight when close() starts (no tools service: it waits).
            CompletableFuture<Object> first = client.call("slow", Map.of(), Duration.ofSeconds(60));
            CompletableFuture<CompletableFuture<Object>> racing = new CompletableFuture<>();
            Thread caller = new Thread(() -> racing.complete(client.call("slow", pausing, Duration.ofSeconds(1))), "racing-caller");
            caller.start();
            assertThat(inCall.await(10, TimeUnit.SECONDS)).isTrue();
            // close() fails 'first' between taking its copy of the pending calls and shutting the timer down: let the
            // racing call finish registering right then.
            first.whenComplete((r, e) -> {
                goOn.countDown();
                racing.join();
            });
            client.close();
            CompletableFuture<Object> second = racing.get(10, TimeUnit.SECONDS);
            assertThat(first).isCompletedExceptionally();
            // Its timeout is 1 s: it must be settled (timeout or 'closed') well within 10 s.
            await("the racing call's future completes").atMost(Duration.ofSeconds(10)).until(second::isDone);
        }
    }

    /**
     * "A request ... sent again later gets the stored reply, and the reply stream holds one answer" (docs/once.md,
     * docs/tools.md): a copy carries the request's deadline_ms, which has passed by then, and is answered 'timeout'
     * (the tool "was not run") beside the stored reply.
     */
    @Test
    void aRequestSentAgainAfterItsDeadlineGetsTheStoredReply() throws Exception {
        String ns = TestRedis.namespace();
        Topology t = Topology.builder().namespace(ns).build();
        String replyTo = ns + ":replies";
        AtomicInteger runs = new AtomicInteger();
        ToolRegistry registry = counting(runs);
        try (EventBus worker = TestRedis.bus(TestRedis.config(NodeRole.WORKER).topology(t).build());
             EventBus toolsBus = TestRedis.bus(TestRedis.config(NodeRole.TOOLS).topology(t).build());
             ToolService tools = ToolService.start(toolsBus, registry, ToolServiceConfig.builder().build())) {
            long deadline = System.currentTimeMillis() + 1500;
            worker.publish(t.toolsStream(), request("again", "count", replyTo, deadline));
            await().atMost(Duration.ofSeconds(10)).until(() -> TestRedis.readAll(toolsBus, replyTo).size() == 1
                    && toolsBus.pendingCount(t.toolsStream(), t.toolsGroup()) == 0);
            await().atMost(Duration.ofSeconds(5)).until(() -> System.currentTimeMillis() > deadline + 100);
            worker.publish(t.toolsStream(), request("again", "count", replyTo, deadline)); // the same request again
            await().atMost(Duration.ofSeconds(10)).until(() -> tools.stats().received() == 2
                    && toolsBus.pendingCount(t.toolsStream(), t.toolsGroup()) == 0);
            assertThat(runs.get()).isEqualTo(1);
            List<StreamEntry> replies = TestRedis.readAll(toolsBus, replyTo);
            assertOneAnswer(replies);
        }
    }

    /**
     * The instance ran the tool, stored and sent its reply, and its XACK never reached Redis (connection lost as it
     * went out; the instance then stops). Taken over by another instance once the call's deadline has passed (any
     * takeover after the claim time, 30 s by default): it must send the stored reply (deduped), not a second answer.
     */
    @Test
    void aRequestTakenOverAfterItsDeadlineIsNotAnsweredAgain() throws Exception {
        String ns = TestRedis.namespace();
        Topology t = Topology.builder().namespace(ns).build();
        String replyTo = ns + ":replies";
        AtomicInteger runs = new AtomicInteger();
        ToolRegistry registry = counting(runs);
        try (Closer closer = new Closer()) {
            TcpProxy proxy = closer.add(TcpProxy.to(TestRedis.url()));
            EventBus worker = closer.add(TestRedis.bus(TestRedis.config(NodeRole.WORKER).topology(t).build()));
            EventBus survivorBus = closer.add(TestRedis.bus(TestRedis.config(NodeRole.TOOLS).topology(t).build()));
            EventBus doomedBus = EventBus.connect(proxy.url(), TestRedis.config(NodeRole.TOOLS).topology(t).build());
            ToolService doomed = ToolService.start(doomedBus, registry, ToolServiceConfig.builder().consumerName("tools-doomed").build());
            proxy.cutConnectionsSending("XACK", 1000);
            long deadline = System.currentTimeMillis() + 2000;
            worker.publish(t.toolsStream(), request("taken-over", "count", replyTo, deadline));
            await().atMost(Duration.ofSeconds(10)).until(() -> TestRedis.readAll(worker, replyTo).size() == 1 && proxy.commandsCut() >= 1);
            doomed.close();
            doomedBus.close();
            assertThat(worker.pendingCount(t.toolsStream(), t.toolsGroup())).as("left pending by the lost XACK").isEqualTo(1);
            await().atMost(Duration.ofSeconds(5)).until(() -> System.currentTimeMillis() > deadline + 100);
            try (ToolService survivor = ToolService.start(survivorBus, registry,
                    ToolServiceConfig.builder().consumerName("tools-survivor").claimIdle(Duration.ofMillis(500)).build())) {
                await().atMost(Duration.ofSeconds(20)).until(() -> survivorBus.pendingCount(t.toolsStream(), t.toolsGroup()) == 0);
            }
            assertThat(runs.get()).isEqualTo(1);
            List<StreamEntry> replies = TestRedis.readAll(worker, replyTo);
            assertOneAnswer(replies);
        }
    }

    /**
     * close() waits its closeTimeout for running tools, then interrupts them: an interrupted tool was stopped, not
     * failed. Its request must stay pending and run again on another instance, not be answered 'tool_failed' (a final
     * answer, also stored for any takeover), and not be dead-lettered either, though this was its last allowed delivery
     * (maxDeliveries 1): giving it back is not a failed delivery.
     */
    @Test
    void aToolInterruptedByCloseIsRunAgainElsewhereNotAnsweredFailed() throws Exception {
        String ns = TestRedis.namespace();
        Topology t = Topology.builder().namespace(ns).build();
        String replyTo = ns + ":replies";
        AtomicInteger runs = new AtomicInteger();
        CountDownLatch firstRunning = new CountDownLatch(1);
        CountDownLatch never = new CountDownLatch(1);
        ToolRegistry registry = ToolRegistry.builder().register("slow", a -> {
            if (runs.incrementAndGet() == 1) {
                firstRunning.countDown();
                never.await(); // until close() interrupts it
            }
            return "run " + runs.get();
        }).build();
        try (EventBus worker = TestRedis.bus(TestRedis.config(NodeRole.WORKER).topology(t).build());
             EventBus firstBus = TestRedis.bus(TestRedis.config(NodeRole.TOOLS).topology(t).build());
             EventBus secondBus = TestRedis.bus(TestRedis.config(NodeRole.TOOLS).topology(t).build())) {
            ToolService first = ToolService.start(firstBus, registry,
                    ToolServiceConfig.builder().consumerName("tools-first").closeTimeout(Duration.ofMillis(300))
                            .consumer(c -> c.maxDeliveries(1)).build());
            worker.publish(t.toolsStream(), request("interrupted", "slow", replyTo, System.currentTimeMillis() + 60_000));
            assertThat(firstRunning.await(10, TimeUnit.SECONDS)).isTrue();
            first.close();
            assertThat(TestRedis.readAll(worker, replyTo)).as("answers after the interrupted run").isEmpty();
            assertThat(worker.pendingCount(t.toolsStream(), t.toolsGroup())).as("left pending").isEqualTo(1);
            assertThat(TestRedis.readAll(worker, t.deadLetterStream(t.toolsStream()))).as("dead letters").isEmpty();
            // The taker goes by the count Redis keeps: with maxDeliveries 1 it would dead-letter the request without
            // running it if the given-back delivery had stayed counted.
            try (ToolService second = ToolService.start(secondBus, registry, ToolServiceConfig.builder().consumerName("tools-second")
                    .claimIdle(Duration.ofMillis(500)).consumer(c -> c.maxDeliveries(1)).build())) {
                await().atMost(Duration.ofSeconds(40)).until(() -> TestRedis.readAll(worker, replyTo).size() == 1
                        && worker.pendingCount(t.toolsStream(), t.toolsGroup()) == 0);
            }
            assertThat(runs.get()).isEqualTo(2);
            assertThat(TestRedis.readAll(worker, t.deadLetterStream(t.toolsStream()))).as("dead letters").isEmpty();
            assertThat(TestRedis.readAll(worker, replyTo)).singleElement().satisfies(e -> {
                assertThat(e.envelope().get("ok")).isEqualTo(true);
                assertThat(e.envelope().get("result")).isEqualTo("run 2");
            });
        }
    }

    /**
     * A request read before close() and looked up after it (a link with latency) is left pending for another instance,
     * as the requests read while closing are: not answered "overloaded" for a room close() is emptying, an answer that
     * is stored as the request's outcome for the dedupe window (helper-116's review: the room is checked when the
     * lookup returns).
     */
    @Test
    void aRequestLookedUpAfterCloseBeganIsLeftPendingNotAnsweredOverloaded() throws Exception {
        String ns = TestRedis.namespace();
        Topology t = Topology.builder().namespace(ns).build();
        String replyTo = ns + ":replies";
        CountDownLatch firstRunning = new CountDownLatch(1);
        CountDownLatch never = new CountDownLatch(1);
        // Deaf to close()'s interrupt: its place in the room stays taken while the second is looked up.
        ToolRegistry registry = ToolRegistry.builder().register("slow", TestTools.deafToInterrupts(firstRunning, never, "ran")).build();
        try (Closer closer = new Closer()) {
            closer.add(never::countDown); // the tool's thread ends with the test
            TcpProxy proxy = closer.add(TcpProxy.to(TestRedis.url()));
            EventBus worker = closer.add(TestRedis.bus(TestRedis.config(NodeRole.WORKER).topology(t).build()));
            EventBus toolsBus = closer.add(EventBus.connect(proxy.url(), TestRedis.config(NodeRole.TOOLS).topology(t).build()));
            // Room for one: the first request runs, and the second, read ahead, finds no room when its lookup returns.
            ToolService tools = ToolService.start(toolsBus, registry, ToolServiceConfig.builder().maxConcurrent(1).maxQueued(0)
                    .readAhead(1).closeTimeout(Duration.ofMillis(300)).build());
            worker.publish(t.toolsStream(), request("first", "slow", replyTo, System.currentTimeMillis() + 60_000));
            assertThat(firstRunning.await(20, TimeUnit.SECONDS)).isTrue();
            proxy.delay(Duration.ofSeconds(1)); // the second's lookup takes two seconds or more, there and back
            worker.publish(t.toolsStream(), request("second", "slow", replyTo, System.currentTimeMillis() + 60_000));
            await().atMost(Duration.ofSeconds(20)).pollInterval(Duration.ofMillis(10)).until(() -> tools.stats().received() == 2);
            tools.close();
            proxy.delay(Duration.ZERO);
            // On the tools bus's shared connection, after the second's lookup: its answer comes after that lookup's, whose
            // completion has decided by then (where the refusal is counted before it is stored and sent).
            toolsBus.pendingCount(t.toolsStream(), t.toolsGroup());
            assertThat(TestRedis.readAll(worker, replyTo)).as("answers").isEmpty();
            assertThat(tools.stats().overloaded()).as("answered overloaded").isZero();
            assertThat(worker.pendingCount(t.toolsStream(), t.toolsGroup())).as("left pending").isEqualTo(2);
        }
    }

    /**
     * A tool's reply is sent with dedupe key {@code tool-reply:<request_id>}, so a request_id that cannot be part of a
     * dedupe key (longer than {@value PublishOptions#MAX_DEDUPE_KEY_LENGTH} characters with that prefix, or with a control
     * character) cannot be answered once: the request is malformed, counted so, never run, and dead-lettered after its
     * deliveries. Before, the tool ran, its reply was stored, and the reply's key was refused inside a completion stage:
     * nothing settled the request, which stayed pending with no answer, forever.
     */
    @Test
    void aRequestIdThatCannotKeyItsReplyIsMalformedAndItsToolNeverRuns() {
        int longest = PublishOptions.MAX_DEDUPE_KEY_LENGTH - "tool-reply:".length();
        try (TwoDeliveries rig = new TwoDeliveries()) {
            rig.send("r".repeat(longest + 1));
            rig.send("req\t1");
            rig.send("r".repeat(longest)); // the longest that keys its reply
            List<String> errors = rig.deadLetterErrors(2);
            assertThat(rig.runs.get()).as("runs: only the request whose id keys its reply").isEqualTo(1);
            assertThat(TestRedis.readAll(rig.worker, rig.replyTo)).singleElement()
                    .satisfies(e -> assertThat(e.envelope().get("request_id")).isEqualTo("r".repeat(longest)));
            assertThat(rig.tools.stats().malformed()).as("two deliveries of each bad request").isEqualTo(4);
            assertThat(errors.get(0)).contains("request_id 'req\\u00091'").contains("control character at index 3");
            assertThat(errors.get(1)).contains("request_id 'rrrr").contains((longest + 1) + " characters").contains("at most " + longest);
        }
    }

    /**
     * Whatever fails while a request is answered settles its delivery, here a stored reply that does not decode (found
     * by a copy of the request): the delivery fails, is tried again, and is dead-lettered after its deliveries. Before,
     * the exception was thrown inside a completion stage and lost, and the request stayed pending forever.
     */
    @Test
    void aFailureWhileAnsweringSettlesTheRequestInsteadOfLeavingItPendingForever() {
        try (TwoDeliveries rig = new TwoDeliveries()) {
            rig.raw.sync().set(RawRedis.b(Topology.slotKey(rig.t.toolsStream(), "result:garbled")), new byte[] {(byte) 0xc1});
            rig.send("garbled");
            assertThat(rig.deadLetterErrors(1)).singleElement().satisfies(error -> assertThat(error)
                    .contains("reply stored for request 'garbled'").contains("not valid MessagePack"));
            assertThat(rig.runs.get()).isZero();
            assertThat(TestRedis.readAll(rig.worker, rig.replyTo)).isEmpty();
        }
    }

    /**
     * docs/tools.md: the lease of a running tool stops a copy of its request from running it again. The lease lapses
     * while its tool still runs (here: deleted, as a Redis paused or unreachable for longer than the lease leaves it):
     * the instance's renewal takes it back, so a copy sent afterwards finds it held. Before, the renewal only extended
     * a lease that still existed, and every later copy ran the tool again.
     */
    @Test
    void aLeaseThatLapsedWhileItsToolRunsIsTakenBackAndACopyDoesNotRunTheToolAgain() throws Exception {
        String ns = TestRedis.namespace();
        Topology t = Topology.builder().namespace(ns).build();
        String replyTo = ns + ":replies";
        AtomicInteger runs = new AtomicInteger();
        CountDownLatch release = new CountDownLatch(1);
        ToolRegistry registry = ToolRegistry.builder().register("hold", a -> {
            int n = runs.incrementAndGet();
            release.await(60, TimeUnit.SECONDS);
            return "run " + n;
        }).build();
        try (EventBus worker = TestRedis.bus(TestRedis.config(NodeRole.WORKER).topology(t).build());
             EventBus toolsBus = TestRedis.bus(TestRedis.config(NodeRole.TOOLS).topology(t).build());
             ToolService tools = ToolService.start(toolsBus, registry, ToolServiceConfig.builder().maxConcurrent(4).build());
             RawRedis raw = new RawRedis(TestRedis.url())) {
            worker.publish(t.toolsStream(), request("lapsed", "hold", replyTo, System.currentTimeMillis() + 60_000));
            await().atMost(Duration.ofSeconds(10)).until(() -> runs.get() == 1);
            byte[] lease = RawRedis.b(Topology.slotKey(t.toolsStream(), "run:lapsed"));
            assertThat(raw.sync().pttl(lease)).isPositive();
            raw.sync().del(lease);
            await("the lease taken back").atMost(Duration.ofSeconds(10)).until(() -> raw.sync().pttl(lease) > 0);

            worker.publish(t.toolsStream(), request("lapsed", "hold", replyTo, System.currentTimeMillis() + 60_000));
            await().atMost(Duration.ofSeconds(10)).until(() -> tools.stats().received() == 2
                    && (runs.get() == 2 || toolsBus.pendingCount(t.toolsStream(), t.toolsGroup()) == 1));
            assertThat(runs.get()).as("runs while the first still runs").isEqualTo(1);
            release.countDown();
            await().atMost(Duration.ofSeconds(10)).until(() -> toolsBus.pendingCount(t.toolsStream(), t.toolsGroup()) == 0);
            assertThat(runs.get()).isEqualTo(1);
            assertOneAnswer(TestRedis.readAll(worker, replyTo));
        } finally {
            release.countDown();
        }
    }

    /**
     * A run whose reply is stored after another run of the same request stored its own (both ran: a lease that lapsed
     * during an outage, an instance thought dead) keeps and sends the first stored reply: that is the one any other
     * copy of the request got. Before, the later run overwrote it, so the caller and a later copy could get different
     * answers to one request.
     */
    @Test
    void aRunFinishingAfterAnotherRunStoredItsReplySendsAndKeepsTheFirstReply() throws Exception {
        String ns = TestRedis.namespace();
        Topology t = Topology.builder().namespace(ns).build();
        String replyTo = ns + ":replies";
        CountDownLatch running = new CountDownLatch(1);
        CountDownLatch release = new CountDownLatch(1);
        ToolRegistry registry = ToolRegistry.builder().register("hold", a -> {
            running.countDown();
            release.await(60, TimeUnit.SECONDS);
            return "run here";
        }).build();
        try (EventBus worker = TestRedis.bus(TestRedis.config(NodeRole.WORKER).topology(t).build());
             EventBus toolsBus = TestRedis.bus(TestRedis.config(NodeRole.TOOLS).topology(t).build());
             ToolService tools = ToolService.start(toolsBus, registry);
             RawRedis raw = new RawRedis(TestRedis.url())) {
            worker.publish(t.toolsStream(), request("second", "hold", replyTo, System.currentTimeMillis() + 60_000));
            assertThat(running.await(10, TimeUnit.SECONDS)).isTrue();
            byte[] result = RawRedis.b(Topology.slotKey(t.toolsStream(), "result:second"));
            Map<String, Object> elsewhere = new java.util.LinkedHashMap<>();
            elsewhere.put("request_id", "second");
            elsewhere.put("ok", true);
            elsewhere.put("result", "run elsewhere");
            elsewhere.put("error", null);
            byte[] first = io.stargazer.bus.wire.WireFormat.encode(Envelope.of(elsewhere));
            raw.sync().set(result, first); // stored by another run of the request, which finished first
            release.countDown();
            await().atMost(Duration.ofSeconds(10)).until(() -> toolsBus.pendingCount(t.toolsStream(), t.toolsGroup()) == 0);
            assertThat(TestRedis.readAll(worker, replyTo)).singleElement()
                    .satisfies(e -> assertThat(e.envelope().get("result")).isEqualTo("run elsewhere"));
            assertThat(raw.sync().get(result)).as("the stored reply").isEqualTo(first);
        } finally {
            release.countDown();
        }
    }

    /**
     * docs/tools.md: when the tool returns, its reply is stored before it is sent, and the tool does not run again. The
     * tools instance loses Redis (connections reset, new ones stall) just as its tool returns, and gets it back; nobody
     * died. Before, the reply's store was refused and only logged, the answer's publish failed too, the request was
     * tried again on the same instance, whose lease it still was: the tool ran a second time, and the first run's
     * result was lost.
     */
    @Test
    void aToolThatReturnsWhileItsInstanceIsCutOffFromRedisDoesNotRunAgain() throws Exception {
        Topology t = TestRedis.topology();
        AtomicInteger runs = new AtomicInteger();
        CountDownLatch release = new CountDownLatch(1);
        ToolRegistry registry = TestTools.firstRunWaits(runs, release);
        try (TcpProxy proxy = TcpProxy.to(TestRedis.url());
             EventBus worker = TestRedis.bus(TestRedis.config(NodeRole.WORKER).topology(t).build());
             EventBus toolsBus = EventBus.connect(proxy.url(), TestRedis.config(NodeRole.TOOLS).topology(t).build());
             ToolService tools = ToolService.start(toolsBus, registry, ToolServiceConfig.builder().maxConcurrent(4).build());
             ToolClient client = ToolClient.create(worker)) {
            CompletableFuture<Object> call = client.call("count", Map.of(), Duration.ofSeconds(60));
            await().atMost(Duration.ofSeconds(10)).until(() -> runs.get() == 1);

            proxy.freezeAll();
            proxy.cutAll();
            await().atMost(Duration.ofSeconds(10)).until(() -> tools.subscription().state() != io.stargazer.bus.Subscription.State.RUNNING);
            release.countDown(); // the tool returns while its instance cannot reach Redis
            await().atMost(Duration.ofSeconds(30)).until(() -> tools.subscription().stats().failed() >= 1);
            proxy.unfreeze();

            Object result = call.get(45, TimeUnit.SECONDS);
            await().atMost(Duration.ofSeconds(30)).until(() -> toolsBus.pendingCount(t.toolsStream(), t.toolsGroup()) == 0);
            assertThat(runs.get()).as("runs of the tool for one request on a live instance").isEqualTo(1);
            assertThat(result).isEqualTo("run 1");
        } finally {
            release.countDown();
        }
    }

    /**
     * A result over the envelope limit (SG_MAX_ENVELOPE_BYTES, 1 MiB) is answered tool_failed, once, and that error is
     * the request's stored outcome, which a copy of the request gets. Before, the oversized result itself was stored
     * (kept at its full size for the dedupe window) and refused only when sent, on the first answer and again on
     * every copy or takeover.
     */
    @Test
    void aResultOverTheEnvelopeLimitIsStoredAndAnsweredAsOneError() throws Exception {
        Topology t = TestRedis.topology();
        AtomicInteger runs = new AtomicInteger();
        ToolRegistry registry = ToolRegistry.builder().register("huge", a -> {
            runs.incrementAndGet();
            return new byte[2 << 20];
        }).register("small", a -> "small").build();
        try (EventBus worker = TestRedis.bus(TestRedis.config(NodeRole.WORKER).topology(t).build());
             EventBus toolsBus = TestRedis.bus(TestRedis.config(NodeRole.TOOLS).topology(t).build());
             ToolService tools = ToolService.start(toolsBus, registry);
             ToolClient client = ToolClient.create(worker);
             RawRedis raw = new RawRedis(TestRedis.url())) {
            CompletableFuture<Object> call = client.call("huge", Map.of(), Duration.ofSeconds(30));
            ToolException refused = (ToolException) org.assertj.core.api.Assertions.catchThrowable(() -> call.get(20, TimeUnit.SECONDS)).getCause();
            assertThat(refused.type()).isEqualTo(ToolException.TOOL_FAILED);
            assertThat(refused.errorMessage()).contains("over the envelope limit of " + toolsBus.config().maxEnvelopeBytes() + " bytes");

            byte[] stored = raw.sync().get(RawRedis.b("{" + t.toolsStream() + "}:result:" + refused.requestId()));
            assertThat(stored).as("the request's stored outcome").isNotNull();
            assertThat(stored.length).as("size of the stored outcome").isLessThan(toolsBus.config().maxEnvelopeBytes());
            Envelope outcome = WireFormat.decode(stored);
            assertThat(outcome.get("ok")).isEqualTo(false);
            assertThat(outcome.get("error")).isEqualTo(Map.of("type", ToolException.TOOL_FAILED, "message", refused.errorMessage()));

            // A copy of the request (sent twice) gets the stored error, deduped: no second run, no second answer.
            worker.publish(t.toolsStream(), request(refused.requestId(), "huge", client.replyStream(), System.currentTimeMillis() + 30_000));
            await().atMost(Duration.ofSeconds(10)).until(() -> tools.stats().received() == 2
                    && toolsBus.pendingCount(t.toolsStream(), t.toolsGroup()) == 0);
            assertThat(runs.get()).as("runs of the tool").isEqualTo(1);
            assertThat(tools.stats().succeeded()).isZero();
            assertThat(tools.stats().errors()).isEqualTo(1);
            // Answered after anything the copy got on the same reply stream: read, a second answer would be late.
            assertThat(client.callBlocking("small", Map.of(), Duration.ofSeconds(10))).isEqualTo("small");
            assertThat(client.stats().lateReplies()).as("answers beyond the first").isZero();
        }
    }

    /** A worker and a tools service running "count" that tries each request twice, on a topology of their own. */
    private static final class TwoDeliveries implements AutoCloseable {
        final String ns = TestRedis.namespace();
        final Topology t = Topology.builder().namespace(ns).build();
        final String replyTo = ns + ":replies";
        final AtomicInteger runs = new AtomicInteger();
        final EventBus worker = TestRedis.bus(TestRedis.config(NodeRole.WORKER).topology(t).build());
        final EventBus toolsBus = TestRedis.bus(TestRedis.config(NodeRole.TOOLS).topology(t).build());
        final RawRedis raw = new RawRedis(TestRedis.url());
        final ToolService tools = ToolService.start(toolsBus, counting(runs), ToolServiceConfig.builder()
                .consumer(c -> c.maxDeliveries(2).retryBackoff(Duration.ofMillis(50))).build());

        void send(String requestId) {
            worker.publish(t.toolsStream(), request(requestId, "count", replyTo, System.currentTimeMillis() + 60_000));
        }

        /** Once {@code n} requests are dead-lettered and none is left pending: their errors, sorted. */
        List<String> deadLetterErrors(int n) {
            String dead = t.deadLetterStream(t.toolsStream());
            await().atMost(Duration.ofSeconds(20)).until(() -> raw.xlen(dead) == n
                    && worker.pendingCount(t.toolsStream(), t.toolsGroup()) == 0);
            return raw.xrange(dead).stream().map(m -> RawRedis.s(RawRedis.fields(m).get("error"))).sorted().toList();
        }

        @Override
        public void close() {
            tools.close();
            raw.close();
            toolsBus.close();
            worker.close();
        }
    }

    /** A tool "count" that answers which run of it this is. */
    private static ToolRegistry counting(AtomicInteger runs) {
        return ToolRegistry.builder().register("count", a -> "run " + runs.incrementAndGet()).build();
    }

    private static void assertOneAnswer(List<StreamEntry> replies) {
        assertThat(replies).extracting(e -> "ok=" + e.envelope().get("ok") + " result=" + e.envelope().get("result")
                + " error=" + e.envelope().get("error")).as("answers on the reply stream").hasSize(1);
    }
}
