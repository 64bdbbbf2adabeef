/**
 * Request/reply over the bus: a worker's {@link io.stargazer.bus.tools.ToolClient} asks, a
 * {@link io.stargazer.bus.tools.ToolService} runs the {@link io.stargazer.bus.tools.ToolRegistry}'s tools and answers,
 * as the wire contract's "Tools request / reply" section specifies (docs/tools.md). Both run on any
 * {@link io.stargazer.bus.EventBus} made by {@link io.stargazer.bus.EventBus#connect}; their configs and the
 * exceptions a caller catches ({@link io.stargazer.bus.tools.ToolException},
 * {@link io.stargazer.bus.tools.ToolTimeoutException}) live here too.
 */
package io.stargazer.bus.tools;
