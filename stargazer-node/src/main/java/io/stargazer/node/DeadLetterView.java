// How a dead letter is shown to operators, by the command line (stargazer dead) and the dashboard's dead-letter page:
// one JSON-ready map per entry, and a parser for the durations and rates operators type.
package io.stargazer.node;

import io.stargazer.bus.ConfigException;
import io.stargazer.bus.DeadLetter;
import io.stargazer.bus.DeadLetterFilter;
import io.stargazer.bus.EventBus;
import io.stargazer.bus.Topology;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

public final class DeadLetterView {
    private static final Pattern DURATION = Pattern.compile("(\\d+)(ms|s|m|h|d)");
    private static final Pattern RATE = Pattern.compile("(\\d+)(/s)?");
    static final int PREVIEW = 60;
    /** Ids looked up by one list (lookUp). */
    static final int LOOKUP_CHUNK = 1_000;
    /** Width of the table's ERROR column. */
    static final int ERROR_WIDTH = 60;
    /** The bus's own prefix of a handler's failure (StreamConsumer); the DELIVERIES column says the count. */
    private static final Pattern HANDLER_FAILED = Pattern.compile("^handler failed on delivery \\d+ of \\d+: ");
    private static final Pattern NOT_RETRYABLE = Pattern.compile("^not retryable, on delivery \\d+: ");
    /** A Java exception's class name before its message, qualified or not ("java.net.SocketTimeoutException: "). */
    private static final Pattern EXCEPTION_CLASS = Pattern.compile("\\b(?:[a-z_$][\\w$]*\\.)*([A-Z][\\w$]*(?:Exception|Error|Throwable))(: |$)");

    private DeadLetterView() {
    }

    /**
     * What ids given by an operator name, looked up before a show, replay or purge acts: {@code byId} the one dead letter
     * each names (null for none); {@code selected} the filter a replay or purge is to act on, those found by
     * {@code id@stream}, once each (so it removes what was looked at, not whatever holds the id by then), or empty when
     * the ids name none (a filter without ids would select every one); {@code missing} the ids that name none.
     */
    public record Named(Map<String, DeadLetter> byId, Optional<DeadLetterFilter> selected, List<String> missing) {
    }

    /**
     * Looks up the dead letter each of {@code ids} names within {@code f}'s streams ({@code f} has no ids of its own). An
     * operator names one dead letter by an id copied from one row; two streams can hold an entry of that id (stored in
     * the same millisecond), and acting on both would replay or delete one nobody chose. So an id alone that more than one
     * stream holds is refused, naming each as {@code ID@STREAM} ({@link DeadLetter#ref()}), and so is an
     * {@code ID@STREAM} of a stream not searched (it could name nothing), before anything is done: a
     * {@link ConfigException} for {@code setting}. One list per {@value #LOOKUP_CHUNK} ids at most, not one per id.
     */
    public static Named lookUp(EventBus bus, DeadLetterFilter f, Collection<String> ids, String setting) {
        if (!f.ids().isEmpty()) throw new IllegalArgumentException("the filter to look ids up in has ids of its own: " + f.ids());
        List<String> searched = f.streams().isEmpty() ? bus.deadLetters().streams() : f.streams();
        List<String> distinct = List.copyOf(new LinkedHashSet<>(ids));
        List<String> refused = new ArrayList<>();
        try {
            DeadLetterFilter.builder().ids(distinct); // each id's form, named as the operator gave it
        } catch (ConfigException e) {
            throw new ConfigException(setting, e.reason());
        }
        for (String id : distinct) {
            int at = id.indexOf('@');
            if (at >= 0 && !searched.contains(id.substring(at + 1))) {
                refused.add("'" + id + "' names a stream that is not one of the dead-letter streams searched (" + String.join(", ", searched) + ")");
            }
        }
        if (!refused.isEmpty()) throw new ConfigException(setting, String.join("; ", refused) + " (nothing was done)");
        Map<String, List<DeadLetter>> named = new LinkedHashMap<>();
        for (String id : distinct) named.put(id, new ArrayList<>());
        // An id names at most one entry in each stream: a chunk's matches fit in one page.
        int chunk = Math.max(1, Math.min(LOOKUP_CHUNK, DeadLetterFilter.MAX_LIMIT / Math.max(1, searched.size())));
        for (int from = 0; from < distinct.size(); from += chunk) {
            List<String> part = distinct.subList(from, Math.min(distinct.size(), from + chunk));
            for (DeadLetter d : bus.deadLetters().list(f.toBuilder().ids(part).limit(DeadLetterFilter.MAX_LIMIT).build()).entries()) {
                for (String key : List.of(d.id(), d.ref())) { // never equal: a ref has its stream
                    List<DeadLetter> to = named.get(key);
                    if (to != null) to.add(d);
                }
            }
        }
        Map<String, DeadLetter> byId = new LinkedHashMap<>();
        Set<String> refs = new LinkedHashSet<>();
        List<String> missing = new ArrayList<>();
        named.forEach((id, found) -> {
            if (found.size() > 1) {
                refused.add("'" + id + "' is in " + found.size() + " dead-letter streams, name one: "
                        + String.join(", ", found.stream().map(DeadLetter::ref).toList()));
            }
            byId.put(id, found.isEmpty() ? null : found.get(0));
            if (found.isEmpty()) missing.add(id);
            else refs.add(found.get(0).ref());
        });
        if (!refused.isEmpty()) throw new ConfigException(setting, String.join("; ", refused) + " (nothing was done)");
        return new Named(byId, refs.isEmpty() ? Optional.empty() : Optional.of(f.toBuilder().ids(refs).build()), missing);
    }

    /** The whole entry: where from, why, how often, when, and its envelope (bytes as {"$bytes": base64}). */
    public static Map<String, Object> full(DeadLetter d, long nowMs) {
        Map<String, Object> m = summary(d, nowMs);
        m.put("source_id", d.sourceId());
        m.put("group", d.group());
        m.put("replay_of", d.replayOf());
        m.put("envelope", d.envelope());
        m.put("malformed", d.malformed());
        return m;
    }

    /** What a list shows: id, stream, age, deliveries, error, channel and a preview of the content. */
    public static Map<String, Object> summary(DeadLetter d, long nowMs) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("id", d.id());
        m.put("dead_letter_stream", d.deadStream());
        m.put("source_stream", d.sourceStream());
        m.put("dead_at_ms", d.deadAtMs());
        m.put("age_ms", Math.max(0, nowMs - d.deadAtMs()));
        m.put("deliveries", d.deliveries());
        m.put("error", d.error());
        m.put("channel_id", d.envelope() == null ? null : d.envelope().channelId());
        m.put("preview", preview(d));
        return m;
    }

    static String preview(DeadLetter d) {
        if (d.envelope() == null) return "(malformed: " + d.malformed() + ")";
        String c = d.envelope().content();
        if (c == null) return "";
        c = c.replaceAll("\\s+", " ");
        return cut(c, PREVIEW);
    }

    /** {@code text} in at most {@code width} code points, the last an ellipsis when cut: never half a surrogate pair. */
    static String cut(String text, int width) {
        if (text.codePointCount(0, text.length()) <= width) return text;
        return text.substring(0, text.offsetByCodePoints(0, width - 1)) + "…";
    }

    /**
     * {@code text} with every character a terminal would act on or not show (C0 and C1 controls such as ESC, BEL and
     * NUL, DEL, format characters such as the bidirectional overrides, line separators, lone surrogates) written as a
     * visible {@code \\uXXXX}: a message's sender must not be able to move the cursor, retitle or clear the operator's
     * terminal, or make one text look like another, through a table the operator prints (docs/security.md).
     */
    static String printable(String text) {
        if (text == null) return "";
        StringBuilder b = new StringBuilder(text.length());
        text.codePoints().forEach(c -> {
            switch (Character.getType(c)) {
                case Character.CONTROL, Character.FORMAT, Character.LINE_SEPARATOR, Character.PARAGRAPH_SEPARATOR, Character.SURROGATE ->
                        b.append(String.format(Locale.ROOT, c > 0xffff ? "\\u{%x}" : "\\u%04x", c));
                default -> b.appendCodePoint(c);
            }
        });
        return b.toString();
    }

    /**
     * An error as the table shows it: the reason, which would otherwise be cut off behind the bus's "handler failed on
     * delivery 5 of 5: " and a Java class name the operator has no use for; a class name without a message stays, as
     * the only clue, without its package. Printable, at most {@value #ERROR_WIDTH} characters. {@code show} and
     * {@code --json} keep the whole text.
     */
    static String errorSummary(String error) {
        if (error == null) return "";
        String e = error.replaceAll("\\s+", " ").strip();
        e = HANDLER_FAILED.matcher(e).replaceFirst("");
        e = NOT_RETRYABLE.matcher(e).replaceFirst("not retryable: ");
        e = EXCEPTION_CLASS.matcher(e).replaceAll(m -> m.group(2).isEmpty() ? Matcher.quoteReplacement(m.group(1)) : "");
        e = printable(e);
        return cut(e, ERROR_WIDTH);
    }

    /** The dead-letter streams a name means: a dead-letter stream as is, else the dead-letter streams of what it names. */
    static List<String> deadStreams(Topology t, List<String> resolved) {
        return resolved.stream().map(s -> s.endsWith(t.deadLetterSuffix()) ? s : t.deadLetterStream(s)).toList();
    }

    static String age(long ms) {
        if (ms < 60_000) return (ms / 1000) + "s";
        if (ms < 3_600_000) return (ms / 60_000) + "m";
        if (ms < 172_800_000) return (ms / 3_600_000) + "h";
        return (ms / 86_400_000) + "d";
    }

    /** {@code 90s}, {@code 30m}, {@code 12h}, {@code 7d}, {@code 500ms}, or ISO-8601 ({@code PT1H}). */
    static Duration duration(String setting, String text) {
        Matcher m = DURATION.matcher(text.trim().toLowerCase(Locale.ROOT));
        if (m.matches()) {
            try {
                long n = Long.parseLong(m.group(1));
                return switch (m.group(2)) {
                    case "ms" -> Duration.ofMillis(n);
                    case "s" -> Duration.ofSeconds(n);
                    case "m" -> Duration.ofMinutes(n);
                    case "h" -> Duration.ofHours(n);
                    default -> Duration.ofDays(n);
                };
            } catch (ArithmeticException | NumberFormatException e) {
                // Digits past a long, or a count of days or hours past Duration's seconds: a usage error, not a crash.
                throw new ConfigException(setting, "'" + text + "' is too long a duration");
            }
        }
        try {
            return Duration.parse(text.trim());
        } catch (RuntimeException e) {
            throw new ConfigException(setting, "'" + text + "' is not a duration (for example 90s, 30m, 12h, 7d)");
        }
    }

    /** {@code 100/s} or {@code 100}: entries per second. */
    static int rate(String setting, String text) {
        Matcher m = RATE.matcher(text.trim());
        if (!m.matches() || m.group(1).length() > 9 || Integer.parseInt(m.group(1)) == 0) {
            throw new ConfigException(setting, "'" + text + "' is not a rate (entries per second, for example 100/s)");
        }
        return Integer.parseInt(m.group(1));
    }
}
