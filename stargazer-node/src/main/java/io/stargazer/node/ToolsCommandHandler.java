// The `tools` worker handler: a message starting with '/' calls a tool over the tools service and answers with its
// result or its error; any other message is echoed.
package io.stargazer.node;

import io.stargazer.bus.Envelope;
import io.stargazer.bus.EnvelopeTooLargeException;
import io.stargazer.bus.tools.ToolException;
import io.stargazer.bus.tools.ToolTimeoutException;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

/**
 * {@code /name rest} calls tool {@code name}. The arguments: a JSON object when {@code rest} is one; otherwise
 * {@code {"expression": rest}} for {@code calc}, {@code {"zone": rest}} for {@code clock} (none when empty), and
 * {@code {"text": rest}} for other tools. {@code /help} lists the commands. Blocks its handler thread while the tool
 * runs (at most the tool timeout); thread-safe.
 */
public final class ToolsCommandHandler implements WorkerHandler {
    static final String HELP = "Commands: /clock [zone] (the time, e.g. /clock Europe/Paris), /calc <expression> "
            + "(e.g. /calc 2*(3+4)), /<tool> {json args} for any tool of the tools service. Anything else is echoed.";
    private static final int MAX_TAGGED_TOOLS = 32;

    private final NodeMetrics metrics;
    private final Duration timeout;
    /** Tools that answered as existing: their names may tag metrics without letting anyone grow the label set. */
    private final Set<String> knownTools = ConcurrentHashMap.newKeySet();

    public ToolsCommandHandler(NodeMetrics metrics, Duration timeout) {
        this.metrics = metrics;
        this.timeout = timeout;
        knownTools.add(BuiltinTools.CLOCK);
        knownTools.add(BuiltinTools.CALC);
    }

    @Override
    public void handle(Envelope inbound, Context context) {
        String text = inbound.content() == null ? "" : inbound.content().strip();
        if (!text.startsWith("/")) {
            context.reply(inbound.content());
            return;
        }
        int space = text.indexOf(' ');
        String tool = space < 0 ? text.substring(1) : text.substring(1, space);
        String rest = space < 0 ? "" : text.substring(space + 1).strip();
        if (tool.isEmpty() || tool.equals("help")) {
            context.reply(HELP);
            return;
        }
        Map<String, Object> args;
        try {
            args = arguments(tool, rest);
        } catch (IllegalArgumentException e) {
            context.reply("/" + tool + " failed (bad_arguments): " + e.getMessage());
            return;
        }
        long start = System.nanoTime();
        String outcome = "ok";
        String answer;
        try {
            Object result = context.tools().call(tool, args, timeout, inbound.traceId()).join();
            answer = format(result);
        } catch (java.util.concurrent.CompletionException e) {
            Throwable cause = e.getCause() == null ? e : e.getCause();
            if (cause instanceof ToolTimeoutException t) {
                outcome = ToolException.TIMEOUT;
                answer = "/" + tool + " failed (timeout): " + (t.answered() ? t.errorMessage()
                        : "no answer from the tools service within " + timeout.toMillis() + " ms");
            } else if (cause instanceof ToolException t) {
                outcome = t.type();
                answer = "/" + tool + " failed (" + t.type() + "): " + t.errorMessage();
            } else if (cause instanceof EnvelopeTooLargeException big) {
                // Nothing was sent; thrown, the message would be tried again, refused the same way each time, and
                // dead-lettered without a word to the user.
                outcome = ToolException.BAD_ARGUMENTS;
                answer = "/" + tool + " failed (" + outcome + "): the arguments are too large: the tool request encodes to "
                        + big.size() + " bytes, over the limit of " + big.limit() + " bytes (SG_MAX_ENVELOPE_BYTES)";
            } else {
                throw e;
            }
        }
        if (!outcome.equals(ToolException.UNKNOWN_TOOL) && !outcome.equals(ToolException.TIMEOUT)
                && knownTools.size() < MAX_TAGGED_TOOLS) {
            knownTools.add(tool);
        }
        metrics.toolCall(knownTools.contains(tool) ? tool : "other", outcome, Duration.ofNanos(System.nanoTime() - start));
        context.reply(answer);
    }

    static Map<String, Object> arguments(String tool, String rest) {
        if (rest.startsWith("{")) {
            Envelope e = NodeJson.toEnvelope(rest);
            return new LinkedHashMap<>(e.asMap());
        }
        Map<String, Object> args = new LinkedHashMap<>();
        if (rest.isEmpty()) {
            return args;
        }
        switch (tool) {
            case BuiltinTools.CALC -> args.put("expression", rest);
            case BuiltinTools.CLOCK -> args.put("zone", rest);
            default -> args.put("text", rest);
        }
        return args;
    }

    static String format(Object result) {
        if (result == null) return "(no result)";
        if (result instanceof String s) return s;
        if (result instanceof byte[] b) return "(" + b.length + " bytes)";
        if (result instanceof Map || result instanceof java.util.List) return NodeJson.write(result);
        return String.valueOf(result);
    }
}
