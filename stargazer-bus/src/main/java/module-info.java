/**
 * The Stargazer bus library: an event bus on Redis Streams. Exports the API packages only; the implementation,
 * {@code io.stargazer.bus.internal}, is not exported, so on the module path nothing outside this module can reach it.
 * (On the class path the JVM does not enforce this; there, the implementation classes are package-private behind one
 * factory, and the package says it is not API.)
 *
 * <p>Micrometer is optional ({@code requires static}): the bus never loads a Micrometer class unless the application
 * calls {@code io.stargazer.bus.micrometer}, which is the only package that names one.
 *
 * <p>Lettuce (with its Netty) and msgpack-core are read as automatic modules: Lettuce names itself
 * {@code lettuce.core}; msgpack-core 0.9 has no module name of its own, so its name comes from its file name.
 */
@SuppressWarnings("requires-automatic") // see above: no module descriptor of their own
module io.stargazer.bus {
    requires lettuce.core;
    requires io.netty.common;
    requires io.netty.transport;
    requires io.netty.buffer;
    requires msgpack.core;
    requires org.slf4j;
    // Optional: only io.stargazer.bus.micrometer uses them, and only an application that has them calls it.
    requires static micrometer.core;
    requires static micrometer.observation;
    requires static micrometer.tracing;
    requires static micrometer.commons;

    exports io.stargazer.bus;
    exports io.stargazer.bus.tools;
    exports io.stargazer.bus.acl;
    exports io.stargazer.bus.wire;
    exports io.stargazer.bus.micrometer;
}
