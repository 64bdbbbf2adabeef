package io.stargazer.node;

import io.stargazer.bus.tools.ToolRegistry;
import java.math.BigDecimal;
import java.math.MathContext;
import java.time.Clock;
import java.time.DateTimeException;
import java.time.ZoneId;
import java.time.ZoneOffset;
import java.time.ZonedDateTime;
import java.time.format.DateTimeFormatter;
import java.util.Map;

/**
 * Two small tools every Stargazer node offers, for workers and as examples of tools (the node's, not the library's:
 * an application registers its own tools in a {@link ToolRegistry}):
 * <ul>
 *   <li>{@code clock}: the current time as ISO-8601 text with its offset ({@code 2024-05-01T12:00:00.123Z}); optional
 *       argument {@code zone}, an IANA zone or offset ({@code Europe/Paris}, {@code +02:00}; default UTC). An unknown
 *       zone is {@code bad_arguments}.</li>
 *   <li>{@code calc}: argument {@code expression}, text with decimal numbers, {@code + - * /}, unary signs and
 *       parentheses; the result is a Long when it is a whole number that fits, else a Double. Anything else, a
 *       division by zero or an expression longer than {@value #MAX_EXPRESSION} characters is {@code bad_arguments}.</li>
 * </ul>
 */
public final class BuiltinTools {
    public static final String CLOCK = "clock";
    public static final String CALC = "calc";
    static final int MAX_EXPRESSION = 1000;

    private BuiltinTools() {
    }

    /** Registers {@code clock} (on the system clock) and {@code calc}. */
    public static ToolRegistry.Builder register(ToolRegistry.Builder b) {
        return register(b, Clock.systemUTC());
    }

    /** Registers {@code clock} reading {@code clock} (tests pass a fixed one) and {@code calc}. */
    public static ToolRegistry.Builder register(ToolRegistry.Builder b, Clock clock) {
        return b.register(CLOCK, args -> clock(clock, args), args -> zone(args))
                .register(CALC, args -> calc(expression(args)), args -> expression(args));
    }

    static String clock(Clock clock, Map<String, Object> args) {
        return ZonedDateTime.now(clock.withZone(zone(args))).format(DateTimeFormatter.ISO_OFFSET_DATE_TIME);
    }

    private static ZoneId zone(Map<String, Object> args) {
        Object z = args.get("zone");
        if (z == null) return ZoneOffset.UTC;
        if (!(z instanceof String s)) throw new IllegalArgumentException("'zone' must be text, like 'Europe/Paris'");
        try {
            return ZoneId.of(s);
        } catch (DateTimeException e) {
            throw new IllegalArgumentException("unknown zone '" + s + "'");
        }
    }

    private static String expression(Map<String, Object> args) {
        if (!(args.get("expression") instanceof String s)) {
            throw new IllegalArgumentException("'expression' must be text, like '(1.5 + 2) * 4'");
        }
        if (s.length() > MAX_EXPRESSION) {
            throw new IllegalArgumentException("'expression' is longer than " + MAX_EXPRESSION + " characters");
        }
        return s;
    }

    /** Evaluates {@code expression}; throws {@link IllegalArgumentException} naming the position of what is wrong. */
    public static Object calc(String expression) {
        BigDecimal v = new Calculator(expression).evaluate();
        BigDecimal stripped = v.stripTrailingZeros();
        if (stripped.scale() <= 0 && stripped.precision() - stripped.scale() <= 18) {
            return stripped.longValueExact();
        }
        double d = v.doubleValue();
        if (Double.isInfinite(d)) throw new IllegalArgumentException("the result is too large");
        return d;
    }

    /**
     * expression := term (('+' | '-') term)* ; term := factor (('*' | '/') factor)* ;
     * factor := ('+' | '-') factor | number | '(' expression ')'. Exact decimals; division to 34 digits.
     */
    private static final class Calculator {
        private static final int MAX_DEPTH = 100;
        private final String s;
        private int pos;
        private int depth;

        Calculator(String s) {
            this.s = s;
        }

        BigDecimal evaluate() {
            BigDecimal v = expression();
            skipSpaces();
            if (pos < s.length()) throw bad("unexpected '" + s.charAt(pos) + "'");
            return v;
        }

        private BigDecimal expression() {
            BigDecimal v = term();
            for (;;) {
                skipSpaces();
                if (eat('+')) v = v.add(term());
                else if (eat('-')) v = v.subtract(term());
                else return v;
            }
        }

        private BigDecimal term() {
            BigDecimal v = factor();
            for (;;) {
                skipSpaces();
                if (eat('*')) {
                    v = v.multiply(factor());
                } else if (eat('/')) {
                    int at = pos;
                    BigDecimal d = factor();
                    if (d.signum() == 0) throw new IllegalArgumentException("division by zero at position " + (at + 1));
                    v = v.divide(d, MathContext.DECIMAL128);
                } else {
                    return v;
                }
            }
        }

        private BigDecimal factor() {
            if (++depth > MAX_DEPTH) throw bad("nested deeper than " + MAX_DEPTH + " levels");
            try {
                skipSpaces();
                if (eat('+')) return factor();
                if (eat('-')) return factor().negate();
                if (eat('(')) {
                    BigDecimal v = expression();
                    skipSpaces();
                    if (!eat(')')) throw bad("expected ')'");
                    return v;
                }
                return number();
            } finally {
                depth--;
            }
        }

        private BigDecimal number() {
            int start = pos;
            while (pos < s.length() && (Character.isDigit(s.charAt(pos)) || s.charAt(pos) == '.')) pos++;
            if (start == pos) {
                throw bad(pos < s.length() ? "unexpected '" + s.charAt(pos) + "'" : "the expression ends too early");
            }
            try {
                return new BigDecimal(s.substring(start, pos));
            } catch (NumberFormatException e) {
                pos = start;
                throw bad("'" + s.substring(start, Math.min(s.length(), start + 20)) + "' is not a number");
            }
        }

        private void skipSpaces() {
            while (pos < s.length() && Character.isWhitespace(s.charAt(pos))) pos++;
        }

        private boolean eat(char c) {
            if (pos < s.length() && s.charAt(pos) == c) {
                pos++;
                return true;
            }
            return false;
        }

        private IllegalArgumentException bad(String what) {
            return new IllegalArgumentException("bad expression at position " + (pos + 1) + ": " + what);
        }
    }
}
