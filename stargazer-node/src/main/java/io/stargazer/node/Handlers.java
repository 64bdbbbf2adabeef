// Chooses the worker handler named by --handler / SG_WORKER_HANDLER: a built-in or a class on the classpath.
package io.stargazer.node;

import io.stargazer.bus.ConfigException;
import java.lang.reflect.InvocationTargetException;
import java.time.Duration;

final class Handlers {
    static final String SETTING = "--handler/SG_WORKER_HANDLER";

    private Handlers() {
    }

    /** {@code echo}, {@code tools}, or the class name of a {@link WorkerHandler} with a public no-argument constructor. */
    static WorkerHandler create(String name, NodeMetrics metrics, Duration toolTimeout) {
        switch (name) {
            case "echo":
                return new EchoHandler();
            case "tools":
                return new ToolsCommandHandler(metrics, toolTimeout);
            default:
                try {
                    return constructor(name).newInstance();
                } catch (IllegalAccessException e) {
                    throw new ConfigException(SETTING, "'" + name + "' has no public no-argument constructor");
                } catch (InstantiationException | InvocationTargetException e) {
                    Throwable cause = e.getCause() == null ? e : e.getCause();
                    throw new ConfigException(SETTING, "'" + name + "' could not be created: " + cause);
                }
        }
    }

    /**
     * Refuses a name that is neither built in nor a usable handler class, before the node starts anything: the class is
     * looked at, not created (a handler's constructor may take its time, or start things of its own).
     */
    static void check(String name) {
        if (!name.equals("echo") && !name.equals("tools")) constructor(name);
    }

    private static java.lang.reflect.Constructor<? extends WorkerHandler> constructor(String className) {
        Class<?> c;
        try {
            c = Class.forName(className);
        } catch (ClassNotFoundException | LinkageError e) {
            throw new ConfigException(SETTING, "'" + className + "' is neither a built-in handler (echo, tools) nor a class on the classpath");
        }
        if (!WorkerHandler.class.isAssignableFrom(c)) {
            throw new ConfigException(SETTING, "'" + className + "' does not implement " + WorkerHandler.class.getName());
        }
        try {
            return c.asSubclass(WorkerHandler.class).getConstructor();
        } catch (NoSuchMethodException e) {
            throw new ConfigException(SETTING, "'" + className + "' has no public no-argument constructor");
        }
    }
}
