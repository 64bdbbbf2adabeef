// How fast one tab may publish: a token bucket that holds up to `burst` messages and refills at `perSecond`.
package io.stargazer.node.web;

final class RateLimit {
    private final double perNano;
    private final double burst;
    private double tokens;
    private long lastNanos;

    RateLimit(double perSecond, int burst, long nowNanos) {
        this.perNano = perSecond / 1e9;
        this.burst = burst;
        this.tokens = burst; // a new tab may say its first messages at once
        this.lastNanos = nowNanos;
    }

    /** Takes one message's token if there is one; false when the tab is over its rate. Any thread. */
    synchronized boolean tryTake(long nowNanos) {
        tokens = Math.min(burst, tokens + Math.max(0, nowNanos - lastNanos) * perNano);
        lastNanos = nowNanos;
        if (tokens < 1) {
            return false;
        }
        tokens -= 1;
        return true;
    }
}
