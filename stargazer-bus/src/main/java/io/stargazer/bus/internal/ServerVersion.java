package io.stargazer.bus.internal;

import io.lettuce.core.RedisException;
import io.lettuce.core.cluster.api.sync.RedisClusterCommands;
import io.lettuce.core.output.NestedMultiOutput;
import io.lettuce.core.protocol.CommandArgs;
import io.lettuce.core.protocol.CommandType;
import java.nio.charset.StandardCharsets;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The server's version (for logs and display) and the optional features it was found to have, asked once at connect.
 * A feature is detected from what the server answers ({@code COMMAND DOCS}), never from the version number alone:
 * Valkey 8 reports {@code redis_version:7.2.4}, and Redis and Valkey add features in different versions. Features
 * the library reads from replies (a group's lag, XAUTOCLAIM's deleted ids) are taken from each reply's shape instead.
 *
 * @param ackedTrimming XADD takes {@code ACKED} (trim only entries every group has acknowledged; Redis 8.2)
 */
public record ServerVersion(int major, int minor, int patch, String text, boolean ackedTrimming) {
    private static final Logger log = LoggerFactory.getLogger(ServerVersion.class);

    /** INFO server for the version; COMMAND DOCS XADD for the XADD options this server takes. */
    static ServerVersion detect(RedisClusterCommands<String, byte[]> redis) {
        ServerVersion v = fromInfo(redis.info("server"));
        return new ServerVersion(v.major, v.minor, v.patch, v.text, xaddTokens(redis, v).contains("ACKED"));
    }

    static ServerVersion fromInfo(String info) {
        for (String line : info.split("\r?\n")) {
            if (line.startsWith("redis_version:")) {
                return parse(line.substring("redis_version:".length()).trim());
            }
        }
        return new ServerVersion(0, 0, 0, "unknown", false);
    }

    /** Lenient: a part without a leading number counts as 0 (what a server reports is used as well as it can be). */
    static ServerVersion parse(String text) {
        ServerVersion v = parseOrNull(text);
        return v != null ? v : new ServerVersion(0, 0, 0, text, false);
    }

    /**
     * {@code 7.0.15}, {@code 7.2-rc1}, {@code 8}: major, minor and patch as the leading digits of the first three
     * dot-separated parts (missing ones are 0); null when a part that is there does not start with a digit.
     */
    public static ServerVersion parseOrNull(String text) {
        String[] parts = text.trim().split("\\.");
        int[] n = new int[3];
        for (int i = 0; i < 3 && i < parts.length; i++) {
            String digits = parts[i].replaceAll("[^0-9].*", "");
            if (digits.isEmpty()) {
                return null;
            }
            try {
                n[i] = Integer.parseInt(digits);
            } catch (NumberFormatException e) {
                return null; // more digits than an int holds
            }
        }
        return new ServerVersion(n[0], n[1], n[2], text, false);
    }

    public boolean atLeast(int major, int minor) {
        return this.major > major || (this.major == major && this.minor >= minor);
    }

    /** XADD/XTRIM take KEEPREF/DELREF/ACKED, as the server's own COMMAND DOCS says. */
    public boolean hasAckedTrimming() {
        return ackedTrimming;
    }

    /** Every option token in the server's COMMAND DOCS XADD; empty where it has no COMMAND DOCS (Redis 6.2). */
    private static Set<String> xaddTokens(RedisClusterCommands<String, byte[]> redis, ServerVersion v) {
        try {
            List<Object> docs = redis.dispatch(CommandType.COMMAND, new NestedMultiOutput<>(Redis.CODEC),
                    new CommandArgs<>(Redis.CODEC).add("DOCS").add("XADD"));
            return tokens(docs);
        } catch (RedisException e) {
            log.atDebug().addKeyValue("server_version", v.text).addKeyValue("error", e.getMessage())
                    .log("COMMAND DOCS XADD refused: optional XADD features taken as absent");
            return Set.of();
        }
    }

    /** The values of every {@code token} field at any depth of a COMMAND DOCS reply (RESP2 or RESP3, flattened). */
    static Set<String> tokens(List<?> reply) {
        Set<String> out = new HashSet<>();
        for (int i = 0; i < reply.size(); i++) {
            Object o = reply.get(i);
            if (o instanceof List<?> nested) {
                out.addAll(tokens(nested));
            } else if ("token".equals(text(o)) && i + 1 < reply.size() && text(reply.get(i + 1)) != null) {
                out.add(text(reply.get(i + 1)).toUpperCase(java.util.Locale.ROOT));
            }
        }
        return out;
    }

    private static String text(Object o) {
        return o instanceof byte[] b ? new String(b, StandardCharsets.UTF_8) : o instanceof String s ? s : null;
    }

    @Override
    public String toString() {
        return text;
    }
}
