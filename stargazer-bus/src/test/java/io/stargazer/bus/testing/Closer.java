package io.stargazer.bus.testing;

import java.util.ArrayList;
import java.util.List;

/**
 * What a test opened (servers, proxies, buses, subscriptions), closed in reverse order when the test ends, every
 * one of them even when one fails to close; the first failure is thrown with the others suppressed.
 */
public final class Closer implements AutoCloseable {
    private final List<AutoCloseable> open = new ArrayList<>();

    /** Registers {@code c}; it is closed before everything registered earlier. */
    public synchronized <T extends AutoCloseable> T add(T c) {
        open.add(c);
        return c;
    }

    @Override
    public synchronized void close() throws Exception {
        Exception first = null;
        for (int i = open.size() - 1; i >= 0; i--) {
            try {
                open.get(i).close();
            } catch (Exception e) {
                if (first == null) first = e;
                else first.addSuppressed(e);
            }
        }
        open.clear();
        if (first != null) throw first;
    }
}
