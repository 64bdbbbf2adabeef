package io.stargazer.bus;

import java.util.Locale;

/**
 * An error reply from the Redis server. {@link #code()} is the reply's exact first word ({@code NOGROUP},
 * {@code WRONGTYPE}, {@code NOPERM}, ...): errors are classified by that word, never by a substring.
 * The common ones have subtypes of their own.
 */
public class RedisServerException extends StargazerException {
    private final String code;

    public RedisServerException(String code, String message, Throwable cause) {
        super(message, cause);
        this.code = code;
    }

    /** The first word of the server's error reply, upper case; empty when the reply had none. */
    public String code() {
        return code;
    }

    /** The first word of a Redis error reply: everything before the first space. */
    public static String codeOf(String reply) {
        if (reply == null || reply.isEmpty()) {
            return "";
        }
        int space = reply.indexOf(' ');
        return (space < 0 ? reply : reply.substring(0, space)).toUpperCase(Locale.ROOT);
    }

    /** Builds the subtype that matches the reply's first word. */
    public static RedisServerException of(String reply, String context, Throwable cause) {
        String code = codeOf(reply);
        String message = context == null || context.isEmpty() ? reply : context + ": " + reply;
        return switch (code) {
            case "NOGROUP" -> new NoGroup(code, message, cause);
            case "WRONGTYPE" -> new WrongType(code, message, cause);
            case "NOPERM", "NOAUTH", "WRONGPASS" -> new AccessDenied(code, message, cause);
            default -> new RedisServerException(code, message, cause);
        };
    }

    /** The consumer group (or the stream it belongs to) does not exist. */
    public static class NoGroup extends RedisServerException {
        public NoGroup(String code, String message, Throwable cause) {
            super(code, message, cause);
        }
    }

    /** The key exists but holds another type than a stream. */
    public static class WrongType extends RedisServerException {
        public WrongType(String code, String message, Throwable cause) {
            super(code, message, cause);
        }
    }

    /** Authentication failed or the ACL user may not run this command or touch this key. */
    public static class AccessDenied extends RedisServerException {
        public AccessDenied(String code, String message, Throwable cause) {
            super(code, message, cause);
        }
    }
}
