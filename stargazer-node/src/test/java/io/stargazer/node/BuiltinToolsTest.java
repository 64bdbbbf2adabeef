package io.stargazer.node;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.stargazer.bus.tools.ToolRegistry;
import java.time.Clock;
import java.time.Instant;
import java.time.ZoneOffset;
import java.util.Map;
import org.junit.jupiter.api.Test;

// The built-in tools without Redis: the calculator's grammar and errors, the clock's zones.
class BuiltinToolsTest {
    @Test
    void calcEvaluatesWithPrecedenceParenthesesSignsAndDecimals() {
        assertThat(BuiltinTools.calc("1 + 2 * 3")).isEqualTo(7L);
        assertThat(BuiltinTools.calc("(1 + 2) * 3")).isEqualTo(9L);
        assertThat(BuiltinTools.calc("10 - 4 - 3")).isEqualTo(3L);
        assertThat(BuiltinTools.calc("8 / 4 / 2")).isEqualTo(1L);
        assertThat(BuiltinTools.calc("-(2.5 * -2)")).isEqualTo(5L);
        assertThat(BuiltinTools.calc("0.1 + 0.2")).isEqualTo(0.3);
        assertThat(BuiltinTools.calc("1 / 3")).isEqualTo(1.0 / 3);
        assertThat(BuiltinTools.calc(" 2.50 ")).isEqualTo(2.5);
        assertThat(BuiltinTools.calc("99999999999999999999 * 10")).isEqualTo(1e21);
    }

    @Test
    void calcRefusesWhatIsNotAnExpression() {
        for (String bad : new String[] {"", "1 +", "2 ** 3", "(1", "1)", "1.2.3", "abc", "1e5", "2 (3)"}) {
            assertThatThrownBy(() -> BuiltinTools.calc(bad)).as(bad).isInstanceOf(IllegalArgumentException.class)
                    .hasMessageContaining("position");
        }
        assertThatThrownBy(() -> BuiltinTools.calc("1 / (3 - 3)")).hasMessageContaining("division by zero");
        assertThatThrownBy(() -> BuiltinTools.calc("(".repeat(500) + "1" + ")".repeat(500)))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("deeper");
    }

    @Test
    void toolsCheckTheirArguments() throws Exception {
        ToolRegistry r = BuiltinTools.register(ToolRegistry.builder(), Clock.fixed(Instant.parse("2024-01-02T03:04:05.678Z"), ZoneOffset.UTC)).build();
        ToolRegistry.Tool calc = r.find("calc").orElseThrow();
        assertThatThrownBy(() -> calc.check().check(Map.of())).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> calc.check().check(Map.of("expression", 5L))).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> calc.check().check(Map.of("expression", "1+".repeat(600)))).hasMessageContaining("longer");
        ToolRegistry.Tool clock = r.find("clock").orElseThrow();
        assertThat(clock.function().apply(Map.of())).isEqualTo("2024-01-02T03:04:05.678Z");
        assertThat(clock.function().apply(Map.of("zone", "+05:30"))).isEqualTo("2024-01-02T08:34:05.678+05:30");
        assertThatThrownBy(() -> clock.check().check(Map.of("zone", "Nowhere/Land"))).hasMessageContaining("unknown zone");
    }
}
