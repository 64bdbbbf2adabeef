/**
 * The Stargazer bus: publishing and consuming {@link io.stargazer.bus.Envelope}s on Redis Streams.
 *
 * <p>Start at {@link io.stargazer.bus.EventBus} ({@code EventBus.connect(url, config)}): it publishes, provisions
 * groups and starts {@link io.stargazer.bus.Subscription}s that hand each entry to a
 * {@link io.stargazer.bus.MessageHandler} as a {@link io.stargazer.bus.Delivery}. Here too: the configs
 * ({@link io.stargazer.bus.BusConfig}, {@link io.stargazer.bus.ConsumerConfig}, {@link io.stargazer.bus.Topology},
 * {@link io.stargazer.bus.RedisUrl}), the diagnostics records, and the exceptions a bus user catches (all
 * {@link io.stargazer.bus.StargazerException}s).
 *
 * <p>{@link io.stargazer.bus.EventBus#setAlive} / {@link io.stargazer.bus.EventBus#isAlive} (presence keys) stay in
 * the bus for applications that give each process a group of its own: see {@code setAlive} for why they need it.
 *
 * <p>Elsewhere: tool calls over the bus in {@link io.stargazer.bus.tools}, the ACL rules of each role in
 * {@link io.stargazer.bus.acl}, the wire codec in {@link io.stargazer.bus.wire}. {@code io.stargazer.bus.internal}
 * is the implementation and not API.
 */
package io.stargazer.bus;
