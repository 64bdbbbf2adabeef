// The node's JSON (Jackson): JSON values map to Java values and back, envelopes keep their bytes, and text that is
// not JSON is refused with the character where it goes wrong (the hand-written parser it replaces accepted some).
package io.stargazer.node;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.stargazer.bus.Envelope;
import java.math.BigInteger;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

class NodeJsonTest {

    @Test
    void jsonValuesMapToJavaValuesInOrder() {
        Object v = NodeJson.parse(" {\"b\": 1, \"a\": [true, null, -2.5, \"x\\u00e9\\n\"], \"big\": 123456789012345678901234567890,"
                + " \"o\": {}} ");
        assertThat(v).isInstanceOf(Map.class);
        @SuppressWarnings("unchecked")
        Map<String, Object> m = (Map<String, Object>) v;
        assertThat(m.keySet()).containsExactly("b", "a", "big", "o");
        assertThat(m.get("b")).isEqualTo(1L);
        assertThat(m.get("a")).isEqualTo(Arrays.asList(true, null, -2.5, "xé\n"));
        assertThat(m.get("big")).isEqualTo(new BigInteger("123456789012345678901234567890"));
        assertThat(m.get("o")).isEqualTo(Map.of());
    }

    @ParameterizedTest
    @ValueSource(strings = {
        "{\"content\": 01}",                       // leading zero
        "{\"content\": 1.}",                       // a point with no digits after it
        "{\"content\": \"a\", \"content\": \"b\"}", // one member twice: which one is meant?
        "{\"content\": \"a\"} trailing",
        "{\"content\": \"a\"}}",
        "{'content': 'a'}",
        "{\"content\": \"a\",}",
        "{\"content\": NaN}",
        "{\"content\": \"a\" /* comment */}",
        "",
        "not json"})
    void textThatIsNotJsonIsRefusedSayingWhere(String text) {
        assertThatThrownBy(() -> NodeJson.parse(text)).isInstanceOf(IllegalArgumentException.class)
                .hasMessageStartingWith("invalid JSON at character ")
                .satisfies(e -> assertThat(e.getMessage()).doesNotContain("\n").doesNotContain("Source:"));
    }

    @Test
    void nestingIsBounded() {
        String deep = "[".repeat(NodeJson.MAX_DEPTH + 1) + "]".repeat(NodeJson.MAX_DEPTH + 1);
        assertThatThrownBy(() -> NodeJson.parse(deep)).hasMessageStartingWith("invalid JSON at character");
        String fine = "[".repeat(NodeJson.MAX_DEPTH) + "]".repeat(NodeJson.MAX_DEPTH);
        assertThat(NodeJson.parse(fine)).isInstanceOf(List.class);
    }

    @Test
    void envelopesKeepTheirBytesBothWays() {
        Envelope e = NodeJson.toEnvelope("{\"content\": \"hi\", \"blob\": {\"$bytes\": \"AP8Q\"}, \"n\": -1}");
        assertThat(e.bytes("blob")).containsExactly(0x00, 0xff, 0x10);
        assertThat(e.get("n")).isEqualTo(-1L);
        assertThat(NodeJson.write(e)).isEqualTo("{\"content\":\"hi\",\"blob\":{\"$bytes\":\"AP8Q\"},\"n\":-1}");
        assertThatThrownBy(() -> NodeJson.toEnvelope("[1]")).hasMessage("an envelope must be a JSON object, not an array");
        assertThatThrownBy(() -> NodeJson.toEnvelope("{\"b\": {\"$bytes\": \"***\"}}")).hasMessageContaining("not valid base64");
    }

    @Test
    void writtenTextIsSafeInAPageAndHasNoNumbersJsonLacks() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("html", "</script><b>\u2028\u2029");
        m.put("nan", Double.NaN);
        m.put("inf", Float.POSITIVE_INFINITY);
        m.put("d", 0.5);
        String text = NodeJson.write(m);
        assertThat(text).doesNotContain("<").doesNotContain("\u2028").doesNotContain("\u2029")
                .contains("\"nan\":null").contains("\"inf\":null").contains("\"d\":0.5");
        @SuppressWarnings("unchecked")
        Map<String, Object> back = (Map<String, Object>) NodeJson.parse(text);
        assertThat(back).containsEntry("html", "</script><b>\u2028\u2029")
                .containsEntry("nan", null).containsEntry("inf", null).containsEntry("d", 0.5);
    }

    /**
     * What `dead show`, `dead list --json` and `tail` print goes to an operator's terminal: DEL, the C1 controls (U+009B
     * is a CSI: "\u009b2J" clears the screen in a terminal that takes it) and the format characters (a right-to-left
     * override shows "exe.txt" for "txt.exe") are escaped, as JSON escapes the C0 ones; non-Latin text is not. Before, all
     * of these were printed raw (found by the review of the command line's fixes).
     */
    @Test
    void writtenTextEscapesTheControlsAndFormatCharactersATerminalWouldActOn() {
        String hostile = "a\u007fb\u009b2J\u0085c\u202etxt.exe\u2066d\u200be\ufeff";
        String text = NodeJson.write(Map.of("content", hostile, "plain", "héllo 你好 ✓"));
        assertThat(text).contains("\\u007F", "\\u009B", "\\u0085", "\\u202E", "\\u2066", "\\u200B", "\\uFEFF")
                .contains("héllo 你好 ✓");
        assertThat(text.codePoints().filter(c -> c == 0x7f || Character.getType(c) == Character.CONTROL
                || Character.getType(c) == Character.FORMAT)).as("raw controls or format characters").isEmpty();
        assertThat(NodeJson.parse(text)).isEqualTo(Map.of("content", hostile, "plain", "héllo 你好 ✓"));
    }
}
