// The dashboard's JSON API for dead letters and pausing: list, one entry, replay, purge, pause and resume, each a thin
// layer over the library's DeadLetters and EventBus.pause (the same operations as `stargazer dead`).
package io.stargazer.node.web;

import io.javalin.http.BadRequestResponse;
import io.javalin.http.ContentTooLargeResponse;
import io.javalin.http.Context;
import io.javalin.http.NotFoundResponse;
import io.stargazer.bus.ConfigException;
import io.stargazer.bus.DeadLetter;
import io.stargazer.bus.DeadLetterFilter;
import io.stargazer.bus.DeadLetterPage;
import io.stargazer.bus.EventBus;
import io.stargazer.bus.ReplayOptions;
import io.stargazer.bus.ReplayResult;
import io.stargazer.node.DeadLetterView;
import io.stargazer.node.NodeJson;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/** Runs on Jetty's threads (see {@link WebServer}); every call blocks briefly on Redis. */
final class DeadLetterApi {
    private final EventBus bus;

    DeadLetterApi(EventBus bus) {
        this.bus = bus;
    }

    /** {@code GET /api/dead?stream=&error=&after=&limit=}: a page of summaries, the next cursor and the streams to filter by. */
    Map<String, Object> list(Context ctx) {
        DeadLetterFilter.Builder f = filter(ctx.queryParam("stream"), ctx.queryParam("error"));
        String limit = ctx.queryParam("limit");
        if (limit != null) f.limit(number("limit", limit));
        f.after(blankToNull(ctx.queryParam("after")));
        DeadLetterPage page = bus.deadLetters().list(f.build());
        long now = System.currentTimeMillis();
        List<Map<String, Object>> entries = new ArrayList<>();
        for (DeadLetter d : page.entries()) entries.add(DeadLetterView.summary(d, now));
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("streams", bus.deadLetters().streams());
        m.put("entries", entries);
        m.put("next", page.next());
        // A key of another type at a dead-letter stream's name, skipped: said, so the page does not look complete.
        m.put("not_streams", page.notStreams());
        return m;
    }

    /** {@code GET /api/dead/entry?id=&stream=}: the whole entry. */
    Map<String, Object> entry(Context ctx) {
        String id = ctx.queryParam("id");
        if (id == null) throw new ConfigException("id", "missing");
        DeadLetter d = DeadLetterView.lookUp(bus, filter(ctx.queryParam("stream"), null).build(), List.of(id), "id").byId().get(id);
        if (d == null) throw new NotFoundResponse("no dead letter " + id);
        return DeadLetterView.full(d, System.currentTimeMillis());
    }

    /** {@code POST /api/dead/replay} with {@code {"ids": [...]} } or {@code {"all": true, "stream": .., "error": ..}}. */
    Map<String, Object> replay(Context ctx) {
        ReplayResult r = selection(ctx).map(s -> bus.deadLetters().replay(s, ReplayOptions.DEFAULTS)).orElse(new ReplayResult(0, 0, 0, 0, false));
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("matched", r.matched());
        m.put("replayed", r.replayed());
        m.put("already_replayed", r.alreadyReplayed());
        m.put("skipped", r.skipped());
        m.put("foreign_source", r.foreignSource());
        return m;
    }

    /** {@code POST /api/dead/purge}, selected as for replay. */
    Map<String, Object> purge(Context ctx) {
        return Map.of("purged", selection(ctx).map(bus.deadLetters()::purge).orElse(0L));
    }

    /** {@code POST /api/pause} / {@code /api/resume} with {@code {"stream": .., "group": ..}}. */
    Map<String, Object> pause(Context ctx, boolean pause) {
        Map<?, ?> body = body(ctx);
        String stream = text(body, "stream");
        String group = text(body, "group");
        if (stream == null || group == null) throw new ConfigException("stream", "give stream and group");
        boolean changed = pause ? bus.pause(stream, group) : bus.resume(stream, group);
        return Map.of("stream", stream, "group", group, "paused", pause, "changed", changed);
    }

    /**
     * Which dead letters a replay or purge acts on: those the ids name (looked up first: an id two streams hold is
     * refused, 400; then acted on by id@stream), or every one matching stream and error with "all"; empty when the ids
     * name none.
     */
    private Optional<DeadLetterFilter> selection(Context ctx) {
        Map<?, ?> body = body(ctx);
        DeadLetterFilter.Builder f = filter(filterText(body, "stream"), filterText(body, "error"));
        List<String> ids = new ArrayList<>();
        if (body.get("ids") instanceof List<?> l) for (Object o : l) ids.add(String.valueOf(o));
        boolean all = Boolean.TRUE.equals(body.get("all"));
        if (ids.isEmpty() == !all) throw new ConfigException("ids", "give ids, or all: true (not both)");
        return all ? Optional.of(f.build()) : DeadLetterView.lookUp(bus, f.build(), ids, "ids").selected();
    }

    /** The filter's streams: the one dead-letter stream asked for (one of the topology's), or every one. */
    private DeadLetterFilter.Builder filter(String stream, String error) {
        DeadLetterFilter.Builder f = DeadLetterFilter.builder().errorContains(blankToNull(error));
        stream = blankToNull(stream);
        if (stream != null) {
            if (!bus.deadLetters().streams().contains(stream)) throw new ConfigException("stream", "'" + stream + "' is not a dead-letter stream of this node");
            f.stream(stream);
        }
        return f;
    }

    /**
     * The request's JSON object. Read here, at most {@link WebServer#MAX_REQUEST_BYTES}: Javalin's own limit
     * ({@code maxRequestSize}) looks only at Content-Length, so a chunked body of any size was read whole into memory
     * and acted on.
     */
    private static Map<?, ?> body(Context ctx) {
        byte[] bytes;
        try {
            bytes = ctx.req().getInputStream().readNBytes(WebServer.MAX_REQUEST_BYTES + 1);
        } catch (IOException e) {
            throw new BadRequestResponse("could not read the request body: " + e.getMessage());
        }
        if (bytes.length > WebServer.MAX_REQUEST_BYTES) {
            throw new ContentTooLargeResponse("the request body is over " + (WebServer.MAX_REQUEST_BYTES >> 10) + " KiB");
        }
        Object parsed;
        try {
            parsed = NodeJson.parse(new String(bytes, StandardCharsets.UTF_8));
        } catch (IllegalArgumentException e) {
            throw new ConfigException("body", e.getMessage());
        }
        if (!(parsed instanceof Map<?, ?> m)) throw new ConfigException("body", "must be a JSON object");
        return m;
    }

    /**
     * A filter member of a replay or purge: text, or absent or null for none. Anything else is refused, blank text too:
     * taken as "none", it widened the selection to every dead-letter stream (or every error) of a request meant for one.
     */
    private static String filterText(Map<?, ?> body, String key) {
        Object v = body.get(key);
        if (v != null && !(v instanceof String)) throw new ConfigException(key, "must be text (or null for any)");
        if (v instanceof String s && s.isBlank()) throw new ConfigException(key, "'" + s + "' is empty: give text, or null for any");
        return text(body, key);
    }

    private static String text(Map<?, ?> body, String key) {
        Object v = body.get(key);
        return v instanceof String s && !s.isBlank() ? s : null;
    }

    private static String blankToNull(String s) {
        return s == null || s.isBlank() ? null : s;
    }

    private static int number(String name, String text) {
        try {
            return Integer.parseInt(text);
        } catch (NumberFormatException e) {
            throw new ConfigException(name, "'" + text + "' is not a number");
        }
    }
}
