package io.stargazer.bus.spring;

import io.stargazer.bus.EventBus;
import io.stargazer.bus.Subscription;
import io.stargazer.bus.tools.ToolRegistry;
import io.stargazer.bus.tools.ToolService;
import io.stargazer.bus.tools.ToolServiceConfig;
import java.util.Objects;
import java.util.concurrent.CompletableFuture;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.springframework.context.SmartLifecycle;

/**
 * The starter's {@link ToolService}: a {@link SmartLifecycle} that runs a library tools service
 * ({@link ToolService#start}) while the context runs, as the {@code @StargazerListener} methods do. It starts reading
 * the tools stream once every singleton is ready (so no tool runs for a request read while the beans it uses are still
 * being made), unless {@code autoStartup} is off, and is closed when the context stops or closes, in the listeners'
 * phase ({@link StargazerListeners#PHASE}), before the beans it uses and the bus are destroyed. The close
 * ({@link ToolService#close()}: running tools get the close timeout, then are interrupted and their requests given
 * back) runs on a thread of its own, so it overlaps the listeners' stop instead of adding its close timeout to theirs.
 * It can be started again after a stop; {@link #close()} (the bean's destruction) ends it for good.
 *
 * <p>Between runs: {@link #config()} is always the configuration; {@link #stats()} is all zeros before the first start,
 * and its counters add up every run so far (they never go back, for a metrics binder), with {@code running} and
 * {@code queued} those of the current run (zero when stopped); {@link #subscription()} is the current run's subscription
 * while it runs or is being closed, and throws {@link IllegalStateException} saying why otherwise.
 */
public class StargazerToolService implements ToolService, SmartLifecycle {
    private static final Logger log = LoggerFactory.getLogger(StargazerToolService.class);
    private static final Stats ZERO = new Stats(0, 0, 0, 0, 0, 0, 0, 0, 0);

    private final EventBus bus;
    private final ToolRegistry registry;
    private final ToolServiceConfig config;
    private final boolean autoStartup;
    private final Object lock = new Object();

    /** The current or last run; null before the first start. */
    private volatile Run run;
    private volatile boolean running;
    /** Completes when the last run's close has returned: a start waits for it, so two runs never read at once. */
    private volatile CompletableFuture<Void> closing = CompletableFuture.completedFuture(null);
    private volatile boolean closed;

    /** A run of the library's service, and the counters of the runs before it (one field, so stats() never counts one twice). */
    private record Run(ToolService service, Stats past) {
    }

    public StargazerToolService(EventBus bus, ToolRegistry registry, ToolServiceConfig config, boolean autoStartup) {
        this.bus = Objects.requireNonNull(bus, "bus");
        this.registry = Objects.requireNonNull(registry, "registry");
        this.config = Objects.requireNonNull(config, "config");
        this.autoStartup = autoStartup;
    }

    /**
     * Starts a run: creates the tools group if needed and starts reading (ProvisioningException when it cannot). After a
     * stop, waits for that stop's close first. Nothing when it runs already.
     *
     * @throws IllegalStateException after {@link #close()}
     */
    @Override
    public void start() {
        synchronized (lock) {
            if (closed) throw new IllegalStateException("The tools service is closed (its bean was destroyed); it cannot start again");
            if (running) return;
            // The same consumer name reading twice would share one consumer's pending entries between two runs.
            awaitUninterruptibly(closing);
            Run last = run;
            ToolService next = ToolService.start(bus, registry, config);
            run = new Run(next, last == null ? ZERO : plus(last.past, last.service.stats()));
            running = true;
        }
    }

    /** Stops the current run and waits for its close; nothing when it does not run (but a close under way is waited for). */
    @Override
    public void stop() {
        stop(() -> { });
        awaitUninterruptibly(closing);
    }

    /**
     * Closes the current run ({@link ToolService#close()}) on a thread of its own, so that the context's stop goes on
     * to the other beans of the phase meanwhile; {@code callback} runs when the close has returned. It no longer runs
     * from the moment this is called.
     */
    @Override
    public void stop(Runnable callback) {
        ToolService s;
        CompletableFuture<Void> done;
        synchronized (lock) {
            if (!running) {
                closing.whenComplete((v, e) -> callback.run());
                return;
            }
            running = false;
            s = run.service;
            done = new CompletableFuture<>();
            closing = done;
        }
        Thread t = new Thread(() -> {
            try {
                s.close();
            } catch (RuntimeException e) {
                log.atWarn().setCause(e).log("Closing the tools service failed");
            } finally {
                done.complete(null);
                callback.run();
            }
        }, "stargazer-tools-stop");
        t.setDaemon(true);
        t.start();
    }

    /** Stops as {@link #stop()} does, waiting for the close, and refuses any later start. Idempotent. */
    @Override
    public void close() {
        synchronized (lock) {
            closed = true;
        }
        stop();
    }

    @Override
    public boolean isRunning() {
        return running;
    }

    @Override
    public boolean isAutoStartup() {
        return autoStartup;
    }

    @Override
    public int getPhase() {
        return StargazerListeners.PHASE;
    }

    /**
     * The current run's subscription, while it runs or is being closed.
     *
     * @throws IllegalStateException before the first start, and once a run's close has returned
     */
    @Override
    public Subscription subscription() {
        Run r = run;
        if (r == null) {
            throw new IllegalStateException("The tools service has not started yet: it starts once the application context has"
                    + " started, or through start() with stargazer.bus.tools.service.auto-startup=false");
        }
        if (!running && closing.isDone()) {
            throw new IllegalStateException(closed ? "The tools service is closed (its bean was destroyed)"
                    : "The tools service is stopped (its stop(), or the context's stop or close); start() starts it again");
        }
        return r.service.subscription();
    }

    @Override
    public ToolServiceConfig config() {
        return config;
    }

    /** Zeros before the first start; then the counters of every run so far, and the current run's running and queued. */
    @Override
    public Stats stats() {
        Run r = run;
        return r == null ? ZERO : plus(r.past, r.service.stats());
    }

    private static Stats plus(Stats a, Stats b) {
        return new Stats(a.received() + b.received(), a.succeeded() + b.succeeded(), a.errors() + b.errors(),
                a.expired() + b.expired(), a.overloaded() + b.overloaded(), a.malformed() + b.malformed(), b.running(),
                b.queued(), a.unanswered() + b.unanswered());
    }

    /** The closes are bounded by the close timeout (then tools are interrupted): finish waiting, keep the interrupt. */
    private static void awaitUninterruptibly(CompletableFuture<Void> f) {
        boolean interrupted = false;
        while (true) {
            try {
                f.get();
                break;
            } catch (InterruptedException ie) {
                interrupted = true;
            } catch (java.util.concurrent.ExecutionException e) {
                break; // never completed exceptionally: the close's failure is logged where it happens
            }
        }
        if (interrupted) Thread.currentThread().interrupt();
    }
}
