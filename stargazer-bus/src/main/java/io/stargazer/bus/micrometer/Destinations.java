package io.stargazer.bus.micrometer;

import io.stargazer.bus.Topology;

/**
 * The bounded {@code messaging.destination.name} of meters and of the observations' low-cardinality key values: a
 * stream's name, except for the tools reply streams, one per worker process ({@code {prefix}:{worker node id}}, by
 * default host and pid), which share the template {@code {prefix}:{worker_id}}. Tagged each by name, every worker (and
 * every restart of one) would add series that stay for the tools service's lifetime.
 */
final class Destinations {
    private final String replyPrefix;
    private final String replyTemplate;

    Destinations(Topology topology) {
        this.replyPrefix = topology.toolsReplyStreamPrefix() + ":";
        this.replyTemplate = replyPrefix + "{worker_id}";
    }

    String of(String stream) {
        return stream.startsWith(replyPrefix) ? replyTemplate : stream;
    }
}
