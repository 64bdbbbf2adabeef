package io.stargazer.bus.testing;

import java.util.Collection;
import java.util.stream.Collectors;

/** Short listings for assertion messages: a failure names its count and a few examples, not thousands of lines. */
public final class Sample {
    private Sample() {
    }

    /** "[3, 4, 5, ... 297 more]": the first {@code max} items and how many more there are. */
    public static String of(Collection<?> items, int max) {
        String shown = items.stream().limit(max).map(String::valueOf).collect(Collectors.joining(", "));
        return "[" + shown + (items.size() > max ? ", ... " + (items.size() - max) + " more" : "") + "]";
    }

    public static String of(Collection<?> items) {
        return of(items, 10);
    }
}
