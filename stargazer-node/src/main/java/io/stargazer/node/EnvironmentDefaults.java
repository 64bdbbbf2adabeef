// Where an option the command line left out gets its value: picocli asks this default provider, which reads the
// option's environment variable (named by @FromEnv on the option); without one, the option's own defaultValue holds.
package io.stargazer.node;

import java.lang.annotation.ElementType;
import java.lang.annotation.Retention;
import java.lang.annotation.RetentionPolicy;
import java.lang.annotation.Target;
import java.lang.reflect.Field;
import java.util.Map;
import picocli.CommandLine;
import picocli.CommandLine.Model.ArgSpec;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Model.OptionSpec;

/**
 * Flag, else variable, else default: picocli applies this provider only to options that were not given, and falls
 * back to the option's {@code defaultValue} when it returns null. A blank variable counts as unset. The environment
 * is the one {@link Main#run} was given, so tests pass their own.
 */
final class EnvironmentDefaults implements CommandLine.IDefaultValueProvider {

    /** The environment variable that gives an option its value when the command line leaves it out. */
    @Retention(RetentionPolicy.RUNTIME)
    @Target(ElementType.FIELD)
    @interface FromEnv {
        String value();
    }

    private final Map<String, String> env;

    EnvironmentDefaults(Map<String, String> env) {
        this.env = env;
    }

    @Override
    public String defaultValue(ArgSpec arg) {
        String variable = variable(arg);
        return variable == null ? null : value(variable);
    }

    /** The variable's value without surrounding blanks, or null when it is unset or blank. */
    String value(String variable) {
        String v = env.get(variable);
        return v == null || v.isBlank() ? null : v.strip();
    }

    /** The variable behind {@code arg}, or null. */
    static String variable(ArgSpec arg) {
        FromEnv from = arg != null && arg.userObject() instanceof Field f ? f.getAnnotation(FromEnv.class) : null;
        return from == null ? null : from.value();
    }

    /**
     * What to name when the value of {@code option} is wrong: the flag when it was given, else its variable (when
     * the value came from neither, it is the built-in default, which is never wrong; the flag names it then).
     */
    static String source(CommandSpec command, String option) {
        OptionSpec o = command.findOption(option);
        if (command.commandLine().getParseResult().hasMatchedOption(o)) {
            return option;
        }
        String variable = variable(o);
        return variable != null ? variable : option;
    }

    /**
     * The one line for a value picocli could not convert when it came from a variable (not given on the command line,
     * and what the variable holds), naming the variable; else null, and picocli's own message names the flag.
     */
    String fromVariable(CommandLine.ParameterException e) {
        ArgSpec arg = e.getArgSpec();
        String variable = variable(arg);
        if (variable == null || !(arg instanceof OptionSpec o) || e.getCommandLine().getParseResult().hasMatchedOption(o)
                || e.getValue() == null || !e.getValue().equals(value(variable))) {
            return null;
        }
        String why = e.getMessage().replaceFirst("^Invalid value for option '[^']*': ", "")
                .replaceFirst("is not an? (int|long)$", "is not a whole number");
        return variable + ": " + why;
    }
}
