package io.stargazer.bus.tools;

import io.stargazer.bus.ConfigException;
import io.stargazer.bus.internal.Settings;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.Set;
import java.util.regex.Pattern;

/**
 * The named tools a tools service runs. Immutable once built; the builder refuses a bad or duplicate name at once.
 *
 * <pre>{@code
 * ToolRegistry tools = ToolRegistry.builder()
 *         .register("echo", args -> args.get("text"))
 *         .register("resize", args -> resize((byte[]) args.get("image")), args -> {
 *             if (!(args.get("image") instanceof byte[])) throw new IllegalArgumentException("image must be bytes");
 *         })
 *         .build();
 * }</pre>
 */
public final class ToolRegistry {
    private static final Pattern NAME = Pattern.compile("[A-Za-z0-9_.:-]{1,128}");

    private final Map<String, Tool> tools;

    private ToolRegistry(Map<String, Tool> tools) {
        this.tools = tools;
    }

    public static Builder builder() {
        return new Builder();
    }

    /** The tool registered under {@code name}, if any. */
    public Optional<Tool> find(String name) {
        return Optional.ofNullable(name == null ? null : tools.get(name));
    }

    /** Every registered name, in registration order. */
    public Set<String> names() {
        return tools.keySet();
    }

    /**
     * One registered tool.
     *
     * @param name     the name callers use
     * @param function the tool's body
     * @param check    the argument check run before it; never null (a no-op when none was given)
     */
    public record Tool(String name, ToolFunction function, ArgumentCheck check) {
        public Tool {
            Objects.requireNonNull(name, "name");
            Objects.requireNonNull(function, "function");
            Objects.requireNonNull(check, "check");
        }
    }

    /** Collects tools; each registration is checked at once. */
    public static final class Builder {
        private final LinkedHashMap<String, Tool> tools = new LinkedHashMap<>();

        private Builder() {
        }

        public Builder register(String name, ToolFunction fn) {
            return register(name, fn, args -> { });
        }

        /** Registers {@code fn} under {@code name}; {@code check} runs first and may refuse the arguments. */
        public Builder register(String name, ToolFunction fn, ArgumentCheck check) {
            if (name == null || !NAME.matcher(name).matches()) {
                throw new ConfigException("tool name", "'" + (name == null ? "null" : Settings.printable(name))
                        + "' is not a tool name (1 to 128 letters, digits, '_', '.', ':' or '-')");
            }
            if (fn == null) throw new ConfigException("tool " + name, "function must not be null");
            if (check == null) throw new ConfigException("tool " + name, "argument check must not be null");
            if (tools.containsKey(name)) throw new ConfigException("tool " + name, "is registered twice");
            tools.put(name, new Tool(name, fn, check));
            return this;
        }

        public ToolRegistry build() {
            return new ToolRegistry(Collections.unmodifiableMap(new LinkedHashMap<>(tools)));
        }
    }
}
