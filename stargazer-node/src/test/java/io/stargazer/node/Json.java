// Test helper: the tests read and write JSON through the node's own NodeJson (Jackson), so what they parse is what a
// client of the node gets.
package io.stargazer.node;

final class Json {
    private Json() {
    }

    static Object parse(String text) {
        return NodeJson.parse(text);
    }

    static String write(Object value) {
        return NodeJson.write(value);
    }
}
