package io.stargazer.bus;

import io.stargazer.bus.internal.Settings;
import java.util.Objects;

/**
 * How one publish is made: its dedupe key and how often it may be tried. Immutable; {@link #builder()} checks each
 * value as it is set and names the bad one. {@link #NONE} is a plain publish.
 *
 * <table>
 *   <caption>Options</caption>
 *   <tr><th>builder method</th><th>default</th><th>accepted</th><th>meaning</th></tr>
 *   <tr><td>{@code dedupeKey}</td><td>none</td><td>1 to {@value #MAX_DEDUPE_KEY_LENGTH} characters, no control characters, no lone UTF-16 surrogates</td>
 *       <td>unique per logical message (the platform's own message id, for example {@code discord:1234567}): within
 *       {@link BusConfig#dedupeWindow()} a second publish with the same key to the same stream adds nothing and returns
 *       the first entry's id, also across processes and restarts (docs/once.md)</td></tr>
 *   <tr><td>{@code maxAttempts}</td><td>{@value #DEFAULT_MAX_ATTEMPTS}</td><td>1 to 100; above 1 needs a dedupe key</td>
 *       <td>how often the publish is tried: a failure that may be passing (no answer, lost connection, a server that
 *       cannot serve now, a full queue or stream) is tried again after 100 ms, doubling up to 2 s, within
 *       {@link BusConfig#publishTimeout()} per attempt. A try the client refused because it had no connection at the moment
 *       (Redis restarting; nothing was written) is tried again every 100 ms without using up an attempt, for up to
 *       {@link BusConfig#publishTimeout()} from the call. The dedupe key makes a retry after an unknown outcome safe. While
       it waits to be tried again, this process's later publishes to the stream wait behind it, so that order within the
       stream is kept (docs/once.md).</td></tr>
 * </table>
 */
public final class PublishOptions {
    public static final int DEFAULT_MAX_ATTEMPTS = 1;
    public static final int MAX_ATTEMPTS_LIMIT = 100;
    public static final int MAX_DEDUPE_KEY_LENGTH = 512;
    /** A plain publish: no dedupe key, one attempt. */
    public static final PublishOptions NONE = builder().build();

    private final String dedupeKey;
    private final int maxAttempts;

    private PublishOptions(Builder b) {
        if (b.maxAttempts > 1 && b.dedupeKey == null) {
            throw new ConfigException("maxAttempts", "'" + b.maxAttempts + "' needs a dedupe key: a retry after an unknown outcome "
                    + "could otherwise store the entry twice");
        }
        this.dedupeKey = b.dedupeKey;
        this.maxAttempts = b.maxAttempts;
    }

    /** One attempt with this dedupe key. */
    public static PublishOptions dedupeKey(String key) {
        return builder().dedupeKey(key).build();
    }

    public static Builder builder() {
        return new Builder();
    }

    public Builder toBuilder() {
        Builder b = new Builder();
        b.dedupeKey = dedupeKey;
        b.maxAttempts = maxAttempts;
        return b;
    }

    /** The dedupe key, or null. */
    public String dedupeKey() {
        return dedupeKey;
    }

    public int maxAttempts() {
        return maxAttempts;
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof PublishOptions p && Objects.equals(dedupeKey, p.dedupeKey) && maxAttempts == p.maxAttempts;
    }

    @Override
    public int hashCode() {
        return Objects.hash(dedupeKey, maxAttempts);
    }

    @Override
    public String toString() {
        return "PublishOptions{dedupeKey=" + dedupeKey + ", maxAttempts=" + maxAttempts + "}";
    }

    /** Collects options; each setter refuses a bad value at once, naming it. */
    public static final class Builder {
        private String dedupeKey;
        private int maxAttempts = DEFAULT_MAX_ATTEMPTS;

        private Builder() {
        }

        public Builder dedupeKey(String v) {
            if (v == null || v.isEmpty()) {
                throw new ConfigException("dedupeKey", "must not be empty");
            }
            if (v.length() > MAX_DEDUPE_KEY_LENGTH) {
                throw new ConfigException("dedupeKey", "is " + v.length() + " characters long; at most " + MAX_DEDUPE_KEY_LENGTH);
            }
            for (int i = 0; i < v.length(); i++) {
                if (Character.isISOControl(v.charAt(i))) {
                    throw new ConfigException("dedupeKey", "must not contain control characters (at index " + i + ")");
                }
            }
            int lone = Envelope.loneSurrogateAt(v);
            if (lone >= 0) {
                // UTF-8 has no form for it: encoded, it would become '?', the same key as others that differ only there,
                // and a publish with one of them would be taken for the other's and lost.
                throw new ConfigException("dedupeKey", "'" + Settings.printable(v, 64) + "' has a lone UTF-16 surrogate at index "
                        + lone + " and cannot be encoded as UTF-8");
            }
            this.dedupeKey = v;
            return this;
        }

        public Builder maxAttempts(int v) {
            if (v < 1 || v > MAX_ATTEMPTS_LIMIT) {
                throw new ConfigException("maxAttempts", "'" + v + "' must be between 1 and " + MAX_ATTEMPTS_LIMIT);
            }
            this.maxAttempts = v;
            return this;
        }

        public PublishOptions build() {
            return new PublishOptions(this);
        }
    }
}
