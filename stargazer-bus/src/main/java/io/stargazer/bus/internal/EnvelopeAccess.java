package io.stargazer.bus.internal;

import io.stargazer.bus.Envelope;
import java.util.Map;
import java.util.function.Function;

/**
 * Lets the wire decoder hand over members it has already normalised, so a decoded envelope is not copied and checked
 * a second time, without giving {@link Envelope} a public constructor that skips its checks. {@link Envelope}
 * installs the function when its class is initialised (the JDK's "shared secrets" pattern).
 */
public final class EnvelopeAccess {
    private static volatile Function<Map<String, Object>, Envelope> trusted;

    private EnvelopeAccess() {
    }

    /** Called once, by {@link Envelope}'s static initialiser. */
    public static void install(Function<Map<String, Object>, Envelope> f) {
        if (trusted != null) {
            throw new IllegalStateException("already installed");
        }
        trusted = f;
    }

    /** An envelope over {@code normalisedUnmodifiable} as is: only for maps the decoder built. */
    public static Envelope trusted(Map<String, Object> normalisedUnmodifiable) {
        Function<Map<String, Object>, Envelope> f = trusted;
        if (f == null) {
            Envelope.empty(); // initialises Envelope, which installs the function
            f = trusted;
        }
        return f.apply(normalisedUnmodifiable);
    }
}
