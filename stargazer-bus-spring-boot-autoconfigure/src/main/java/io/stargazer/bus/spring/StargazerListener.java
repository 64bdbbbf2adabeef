package io.stargazer.bus.spring;

import java.lang.annotation.Documented;
import java.lang.annotation.ElementType;
import java.lang.annotation.Retention;
import java.lang.annotation.RetentionPolicy;
import java.lang.annotation.Target;

/**
 * Marks a bean method as the handler of a bus subscription, started and stopped with the application context.
 *
 * <p>The method takes one parameter: an {@link io.stargazer.bus.Envelope}, a {@link io.stargazer.bus.Delivery}, or
 * any other type, which is the envelope's members mapped with the application's Jackson {@code JsonMapper}. With
 * {@link #batch()} it takes a {@code List} of one of these. Returning normally acknowledges (unless the method took a
 * Delivery and settled it itself, or has {@link #manualAck()}); throwing, an {@code Error} included, hands the entry
 * back to the bus, which retries it with backoff and dead-letters it after its last allowed delivery. A payload that
 * cannot be mapped to the parameter type is dead-lettered at once, the mapping failure as the reason. A handler error
 * never stops the listener.
 *
 * <p>The method returns {@code void}, or (not a batch listener) a {@code CompletionStage}/{@code CompletableFuture}:
 * then its entry is settled when that completes, acknowledged when it completes normally and handed back when it
 * fails, and the channel's next entry waits for it. Any other return type fails the start-up, naming the method.
 *
 * <p>Every text attribute resolves {@code ${...}} placeholders. Unset numbers take {@code stargazer.bus.consumer.*}.
 */
@Target(ElementType.METHOD)
@Retention(RetentionPolicy.RUNTIME)
@Documented
public @interface StargazerListener {

    /** The stream to read; empty with {@link #inbound()}. */
    String stream() default "";

    /** The consumer group; empty with {@link #inbound()} (the worker group). Required otherwise. */
    String group() default "";

    /**
     * Read every inbound stream with the worker group ({@code EventBus.subscribeInbound}): the one stream, or each
     * partition with a subscription of its own, {@link #concurrency()} applying per partition.
     */
    boolean inbound() default false;

    /** Handler threads (text, so that it may be a placeholder); empty for {@code stargazer.bus.consumer.concurrency}. */
    String concurrency() default "";

    /**
     * The method takes a {@link io.stargazer.bus.Delivery} and settles it itself, possibly later on another thread:
     * returning does not acknowledge it ({@code ConsumerConfig.manualAck}). A delivery never settled stays pending with
     * this consumer (and holds one of its max-in-flight places) until it is settled or the consumer stops. Not with a
     * batch listener or a returned CompletionStage.
     */
    boolean manualAck() default false;

    /** Deliveries before dead-lettering; empty for the default. */
    String maxDeliveries() default "";

    /**
     * Hand the method up to {@link #batchSize()} entries at once (a {@code List} parameter), gathered for at most
     * {@link #batchWait()}; all are acknowledged when it returns, all handed back when it throws.
     */
    boolean batch() default false;

    /** Most entries per batch call. */
    String batchSize() default "100";

    /** Longest a partial batch waits for more entries, e.g. {@code 200ms}. */
    String batchWait() default "200ms";

    /**
     * Start with the context (default), or only through {@link StargazerListeners#start(String)} with this listener's
     * {@link #id()}.
     */
    boolean autoStartup() default true;

    /**
     * The listener's id for {@link StargazerListeners#start(String)}, {@link StargazerListeners#stop(String)} and
     * {@link StargazerListeners#isRunning(String)}; resolves {@code ${...}}. Empty: {@code beanName.methodName}. Two
     * listeners with one id fail the start-up.
     */
    String id() default "";
}
