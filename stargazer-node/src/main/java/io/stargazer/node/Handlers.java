// Chooses the worker handler named by --handler / SG_WORKER_HANDLER: a built-in or a class on the classpath.
package io.stargazer.node;

import io.stargazer.bus.ConfigException;
import io.stargazer.bus.EventBus;
import java.lang.reflect.InvocationTargetException;
import java.time.Duration;

final class Handlers {
    static final String SETTING = "--handler/SG_WORKER_HANDLER";

    private Handlers() {
    }

    /** {@code echo}, {@code tools}, or the class name of a {@link WorkerHandler} with a public no-argument constructor. */
    static WorkerHandler create(String name, EventBus bus, NodeMetrics metrics, Duration toolTimeout) {
        switch (name) {
            case "echo":
                return new EchoHandler();
            case "tools":
                return new ToolsCommandHandler(metrics, toolTimeout);
            default:
                return load(name);
        }
    }

    private static WorkerHandler load(String className) {
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
            return (WorkerHandler) c.getConstructor().newInstance();
        } catch (NoSuchMethodException | IllegalAccessException e) {
            throw new ConfigException(SETTING, "'" + className + "' has no public no-argument constructor");
        } catch (InstantiationException | InvocationTargetException e) {
            Throwable cause = e.getCause() == null ? e : e.getCause();
            throw new ConfigException(SETTING, "'" + className + "' could not be created: " + cause);
        }
    }
}
