// The web settings from the environment: defaults, what is accepted, and one line naming the variable otherwise.
package io.stargazer.node.web;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.stargazer.bus.ConfigException;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

class WebSettingsTest {

    @Test
    void defaultsAndAcceptedValues() {
        assertThat(WebSettings.fromEnvironment(Map.of())).isEqualTo(WebSettings.DEFAULTS);
        WebSettings s = WebSettings.fromEnvironment(Map.of("SG_HTTP_ALLOWED_HOSTS", " Chat.Example.com., ,ops.example.com,[::1],*",
                "SG_WEBCHAT_RATE", "0.5", "SG_WEBCHAT_BURST", " 3 ", "SG_WEBCHAT_MAX_TABS", "1"));
        assertThat(s.allowedHosts()).containsExactly("chat.example.com", "ops.example.com", "[::1]", "*");
        assertThat(s.messagesPerSecond()).isEqualTo(0.5);
        assertThat(s.burst()).isEqualTo(3);
        assertThat(s.maxTabs()).isEqualTo(1);
        assertThat(WebSettings.DEFAULTS.maxTabs()).isEqualTo(WebSettings.DEFAULT_MAX_TABS);
    }

    @Test
    void aBadValueNamesItsVariable() {
        for (Map<String, String> env : List.of(Map.of("SG_HTTP_ALLOWED_HOSTS", "chat.example.com:8080"),
                Map.of("SG_HTTP_ALLOWED_HOSTS", "http://chat.example.com"), Map.of("SG_WEBCHAT_RATE", "0"),
                Map.of("SG_WEBCHAT_RATE", "NaN"), Map.of("SG_WEBCHAT_RATE", "fast"), Map.of("SG_WEBCHAT_BURST", "0"),
                Map.of("SG_WEBCHAT_BURST", "1.5"), Map.of("SG_WEBCHAT_MAX_TABS", "0"), Map.of("SG_WEBCHAT_MAX_TABS", "-5"),
                Map.of("SG_WEBCHAT_MAX_TABS", "lots"), Map.of("SG_WEBCHAT_MAX_TABS", "1000001"))) {
            String variable = env.keySet().iterator().next();
            assertThatThrownBy(() -> WebSettings.fromEnvironment(env)).as(env.toString()).isInstanceOf(ConfigException.class)
                    .hasMessageStartingWith(variable + ": '" + env.get(variable) + "'");
        }
    }

    @Test
    void hostNamesAreComparedWithoutPortCaseOrTrailingDot() {
        assertThat(WebServer.hostName("LocalHost.:8080")).isEqualTo("localhost");
        assertThat(WebServer.hostName("[::1]:8080")).isEqualTo("[::1]");
        assertThat(WebServer.hostName("chat.example.com")).isEqualTo("chat.example.com");
        assertThat(WebServer.isIpAddress("127.0.0.1")).isTrue();
        assertThat(WebServer.isIpAddress("[::1]")).isTrue();
        assertThat(WebServer.isIpAddress("127.0.0.1.attacker.example")).isFalse();
        assertThat(WebServer.isIpAddress("256.0.0.1")).isFalse();
    }
}
