package io.stargazer.bus.internal;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.Test;

// Version text taken apart in one place: what INFO reports (leniently) and what an operator types (strictly).
class ServerVersionTest {
    @Test
    void versionsAreParsed() {
        assertThat(ServerVersion.parseOrNull("7.0.15")).isEqualTo(new ServerVersion(7, 0, 15, "7.0.15", false));
        assertThat(ServerVersion.parseOrNull("7.2-rc1")).isEqualTo(new ServerVersion(7, 2, 0, "7.2-rc1", false));
        assertThat(ServerVersion.parseOrNull("8")).isEqualTo(new ServerVersion(8, 0, 0, "8", false));
        assertThat(ServerVersion.parseOrNull("x.1")).isNull();
        assertThat(ServerVersion.parseOrNull("7.x")).isNull();
        assertThat(ServerVersion.parseOrNull("99999999999")).isNull();
        assertThat(ServerVersion.parse("garbage").major()).isZero();
        assertThat(ServerVersion.fromInfo("# Server\r\nredis_version:6.2.14\r\nredis_mode:standalone\r\n").atLeast(6, 2)).isTrue();
        assertThat(ServerVersion.fromInfo("nothing here").text()).isEqualTo("unknown");
        // Features come from what the server answers (COMMAND DOCS, ServerVersionIT), never from the number alone.
        assertThat(ServerVersion.parse("8.2.0").hasAckedTrimming()).isFalse();
    }
}
