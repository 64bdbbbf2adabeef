package io.stargazer.bus.tools;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.stargazer.bus.ConfigException;
import org.junit.jupiter.api.Test;

// The registry refuses a tool name given twice or one that is not a simple token, naming it.
class ToolRegistryTest {
    @Test
    void badOrDuplicateNamesAreRefused() {
        assertThatThrownBy(() -> ToolRegistry.builder().register("calc", a -> 1).register("calc", a -> 2))
                .isInstanceOf(ConfigException.class).hasMessageContaining("twice");
        assertThatThrownBy(() -> ToolRegistry.builder().register("has space", a -> 1)).isInstanceOf(ConfigException.class);
        assertThat(ToolRegistry.builder().register("a.b:c-d_1", a -> 1).build().find("a.b:c-d_1")).isPresent();
    }
}
