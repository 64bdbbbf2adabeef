package io.stargazer.bus;

import io.stargazer.bus.internal.BusFactory;
import io.stargazer.bus.internal.ServerCode;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * The one-time set-up of a Redis server for the bus, run with an administrator's URL ({@code stargazer provision}):
 * loads or upgrades the {@code stargazer} functions library (Redis 7+; docs/functions.md) and creates every stream and
 * consumer group of the topology ({@code XGROUP CREATE ... MKSTREAM}). Running it again changes nothing and says so.
 * Under the strict per-role ACL users (docs/security.md) the roles cannot load functions, so this must run first.
 */
public final class Provisioning {
    /** The name of the functions library ({@code #!lua name=stargazer}). */
    public static final String LIBRARY = ServerCode.LIBRARY;
    /** The library version this release calls and {@link #provision} loads. */
    public static final int LIBRARY_VERSION = ServerCode.VERSION;

    private Provisioning() {
    }

    /**
     * The version of the library loaded on {@code bus}'s server now, 0 when there is none (never provisioned, or gone
     * with an empty restart, {@code FUNCTION FLUSH} or {@code FUNCTION DELETE}; also on a server without functions):
     * the answer of {@code FCALL_RO sg_version}, the call with which a bus chooses functions or scripts at connect and,
     * under {@code SG_SERVER_CODE=auto}, follows the library every 5 s. Every role's ACL user may make it. Throws a
     * {@link StargazerException} when Redis does not answer or refuses.
     */
    public static int libraryVersion(EventBus bus) {
        return BusFactory.libraryVersion(bus);
    }

    /**
     * What one run did, in order; {@code changed} is false when everything was in place already.
     *
     * @param actions one line per step: {@code loaded library stargazer 1} (or {@code replaced library stargazer N with 1}), {@code created group G on S}, ... or
     *                {@code ... already there}
     */
    public record Result(List<String> actions, boolean changed) {
        public Result {
            actions = List.copyOf(actions);
        }
    }

    /**
     * Provisions the server of {@code adminUrl} for {@code config}'s topology and platforms: the library (skipped on a
     * server without functions, Redis 6.2, which keeps the scripts), then the worker group on every inbound stream,
     * each platform's gateway group on its outbound stream (but webchat's, whose gateways read with groups of their own:
     * {@link Topology#hasSharedGatewayGroup}), and the tools group on the tools stream; in relay mode
     * ({@link BusConfig#publishVia()}) also the relay group on every outbox.
     */
    public static Result provision(RedisUrl adminUrl, BusConfig config) {
        Objects.requireNonNull(adminUrl, "adminUrl");
        BusConfig scripts = config.toBuilder().serverCode(ServerCodeMode.SCRIPTS).build();
        try (EventBus bus = EventBus.connect(adminUrl, scripts)) {
            return provision(bus);
        }
    }

    /** {@link #provision(RedisUrl, BusConfig)} over a bus already connected with an administrator's user. */
    public static Result provision(EventBus bus) {
        List<String> actions = new ArrayList<>();
        boolean changed = false;
        String lib = ServerCode.LIBRARY + " " + ServerCode.VERSION;
        if (hasFunctions(bus.serverVersion())) {
            int before = BusFactory.loadLibrary(bus);
            if (before == ServerCode.VERSION) {
                actions.add("library " + lib + " already loaded");
            } else {
                actions.add(before == 0 ? "loaded library " + lib : "replaced library " + ServerCode.LIBRARY + " " + before + " with " + ServerCode.VERSION);
                changed = true;
            }
        } else {
            actions.add("no library: Redis " + bus.serverVersion() + " has no functions (the bus runs scripts)");
        }
        Topology t = bus.topology();
        Map<String, String> groups = new LinkedHashMap<>();
        for (String s : t.inboundStreams()) groups.put(s, t.workerGroup());
        for (String p : bus.config().platforms()) {
            if (Topology.hasSharedGatewayGroup(p)) groups.put(t.outboundStream(p), t.gatewayGroup(p));
        }
        groups.put(t.toolsStream(), t.toolsGroup());
        if (bus.config().publishVia() == PublishVia.RELAY) {
            for (String o : t.outboxes(bus.config().platforms())) groups.put(o, t.relayGroup());
        }
        for (Map.Entry<String, String> g : groups.entrySet()) {
            if (bus.ensureGroup(g.getKey(), g.getValue())) {
                actions.add("created group " + g.getValue() + " on " + g.getKey());
                changed = true;
            } else {
                actions.add("group " + g.getValue() + " on " + g.getKey() + " already there");
            }
        }
        return new Result(actions, changed);
    }

    private static boolean hasFunctions(String version) {
        io.stargazer.bus.internal.ServerVersion v = io.stargazer.bus.internal.ServerVersion.parseOrNull(version);
        return v != null && v.atLeast(7, 0);
    }
}
