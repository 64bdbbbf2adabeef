package io.stargazer.bus;

import static org.assertj.core.api.Assertions.assertThat;

import java.lang.module.ModuleDescriptor;
import java.lang.reflect.Constructor;
import java.lang.reflect.Field;
import java.lang.reflect.Method;
import java.lang.reflect.Modifier;
import java.lang.reflect.Type;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

/**
 * The public API names only its own types, the JDK's and the chosen libraries' it is built on (Micrometer): a public or
 * protected signature of a type in an exported package never names a type of {@code io.stargazer.bus.internal}, which
 * the module keeps to itself, nor Lettuce's or Netty's, which it may replace. Found by the review of the API's shape:
 * {@code micrometer.BusObservations} implemented the internal tracing hooks and returned their types.
 */
class ApiShapeTest {
    private static boolean leaks(Type t) {
        String s = t.getTypeName();
        return s.contains("io.stargazer.bus.internal") || s.contains("io.lettuce") || s.contains("io.netty");
    }

    @Test
    void noExportedSignatureNamesAnInternalLettuceOrNettyType() throws Exception {
        ModuleDescriptor module = EventBus.class.getModule().getDescriptor();
        assertThat(module).as("the tests run on the module path").isNotNull();
        List<String> exported = module.exports().stream().filter(e -> !e.isQualified()).map(ModuleDescriptor.Exports::source).toList();
        assertThat(exported).contains("io.stargazer.bus", "io.stargazer.bus.micrometer").doesNotContain("io.stargazer.bus.internal");
        Path classes = Path.of(EventBus.class.getProtectionDomain().getCodeSource().getLocation().toURI());
        List<String> problems = new ArrayList<>();
        for (String pkg : exported) {
            try (Stream<Path> files = Files.list(classes.resolve(pkg.replace('.', '/')))) {
                for (Path f : files.filter(p -> p.toString().endsWith(".class")).toList()) {
                    String name = pkg + "." + f.getFileName().toString().replace(".class", "");
                    Class<?> c = Class.forName(name, false, EventBus.class.getClassLoader());
                    if (isApi(c)) problems.addAll(leaksOf(c));
                }
            }
        }
        assertThat(problems).isEmpty();
    }

    private static List<String> leaksOf(Class<?> c) {
        List<String> out = new ArrayList<>();
        String name = c.getName();
        if (c.getGenericSuperclass() != null && leaks(c.getGenericSuperclass())) out.add(name + " extends " + c.getGenericSuperclass());
        for (Type i : c.getGenericInterfaces()) if (leaks(i)) out.add(name + " implements " + i.getTypeName());
        for (Method m : c.getDeclaredMethods()) {
            if (!visible(m.getModifiers()) || m.isSynthetic()) continue;
            if (leaks(m.getGenericReturnType())) out.add(name + "." + m.getName() + " returns " + m.getGenericReturnType().getTypeName());
            for (Type p : m.getGenericParameterTypes()) if (leaks(p)) out.add(name + "." + m.getName() + " takes " + p.getTypeName());
        }
        for (Constructor<?> k : c.getDeclaredConstructors()) {
            if (!visible(k.getModifiers())) continue;
            for (Type p : k.getGenericParameterTypes()) if (leaks(p)) out.add(name + "(<init>) takes " + p.getTypeName());
        }
        for (Field fl : c.getDeclaredFields()) {
            if (visible(fl.getModifiers()) && leaks(fl.getGenericType())) out.add(name + "." + fl.getName() + " is " + fl.getGenericType().getTypeName());
        }
        return out;
    }

    private static boolean visible(int mod) {
        return Modifier.isPublic(mod) || Modifier.isProtected(mod);
    }

    /** Reachable by a user: public, and every class it is nested in public too. */
    private static boolean isApi(Class<?> c) {
        for (Class<?> x = c; x != null; x = x.getEnclosingClass()) {
            if (!Modifier.isPublic(x.getModifiers())) return false;
        }
        return true;
    }
}
