package io.stargazer.bus.internal;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;

/**
 * The text of the stargazer functions library ({@code stargazer.lua} beside this class) and named sections of it, so
 * that the scripts path runs the very Lua the functions run where they share code (the dedupe helpers, and whole
 * functions through {@link #script}): one source.
 * Apart from {@link ServerCode} so that a script constant can be built from a section without a class-init cycle.
 */
final class LibrarySource {
    static final String TEXT = read();

    private LibrarySource() {
    }

    /** The lines between {@code -- BEGIN name ...} and {@code -- END name}. */
    static String section(String name) {
        int begin = TEXT.indexOf("-- BEGIN " + name);
        int end = TEXT.indexOf("-- END " + name);
        if (begin < 0 || end < begin) throw new IllegalStateException("stargazer.lua has no section '" + name + "'");
        return TEXT.substring(TEXT.indexOf('\n', begin) + 1, end);
    }

    /**
     * An EVAL script that runs the library's function {@code sg_<name>} as it is: the key checks (section
     * {@code checks}), the sections named in {@code helpers}, the function's own section, and a call with KEYS and ARGV.
     * So the scripts path and FCALL run the same Lua, checks included.
     */
    static String script(String name, String... helpers) {
        StringBuilder sb = new StringBuilder(section("checks"));
        for (String h : helpers) sb.append(section(h));
        return sb.append(section(name)).append("return sg_").append(name).append("(KEYS, ARGV)\n").toString();
    }

    private static String read() {
        try (InputStream in = LibrarySource.class.getResourceAsStream("stargazer.lua")) {
            if (in == null) throw new IllegalStateException("stargazer.lua is missing from the library's jar");
            return new String(in.readAllBytes(), StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new IllegalStateException("reading stargazer.lua", e);
        }
    }
}
