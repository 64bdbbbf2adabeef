// Promise: Redis error replies are classified by their exact first word, never by a substring, and the common codes get their own subtypes.
package io.stargazer.bus;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

class RedisServerExceptionTest {

    @ParameterizedTest(name = "codeOf({0}) = {1}")
    @CsvSource({
            "'BUSYGROUP Consumer Group name already exists', BUSYGROUP",
            "'ERR something NOGROUP', ERR",
            "'ERR unknown command ''XAUTOCLAIM''', ERR",
            "'NOGROUP No such key ''s'' or consumer group ''g'' in XREADGROUP with GROUP option', NOGROUP",
            "'WRONGTYPE Operation against a key holding the wrong kind of value', WRONGTYPE",
            "'NOGROUPS are fine', NOGROUPS",
            "'NOPERM', NOPERM",
            "'nogroup lower case', NOGROUP",
            "'', ''",
    })
    void codeOfTakesTheExactFirstWord(String reply, String code) {
        assertThat(RedisServerException.codeOf(reply)).isEqualTo(code);
    }

    @Test
    void codeOfNullIsEmpty() {
        assertThat(RedisServerException.codeOf(null)).isEmpty();
    }

    @ParameterizedTest(name = "{0} -> {1}")
    @CsvSource({
            "'NOGROUP No such key', NoGroup",
            "'WRONGTYPE Operation against a key holding the wrong kind of value', WrongType",
            "'NOPERM User u has no permissions to run the ''xadd'' command', AccessDenied",
            "'NOAUTH Authentication required.', AccessDenied",
            "'WRONGPASS invalid username-password pair or user is disabled.', AccessDenied",
    })
    void ofMapsKnownCodesToSubtypes(String reply, String subtype) {
        Throwable cause = new RuntimeException("from lettuce");
        RedisServerException e = RedisServerException.of(reply, "XREADGROUP s/g", cause);
        assertThat(e.getClass().getSimpleName()).isEqualTo(subtype);
        assertThat(e).isInstanceOf(RedisServerException.class).isInstanceOf(StargazerException.class);
        assertThat(e.code()).isEqualTo(RedisServerException.codeOf(reply));
        assertThat(e.getMessage()).isEqualTo("XREADGROUP s/g: " + reply);
        assertThat(e.getCause()).isSameAs(cause);
    }

    @Test
    void codesInsideTheReplyDoNotCount() {
        RedisServerException e = RedisServerException.of("ERR something NOGROUP", null, null);
        assertThat(e.getClass()).isEqualTo(RedisServerException.class);
        assertThat(e.code()).isEqualTo("ERR");
        assertThat(e.getMessage()).isEqualTo("ERR something NOGROUP");

        assertThat(RedisServerException.of("ERR WRONGTYPE NOPERM NOAUTH WRONGPASS", "", null).getClass())
                .isEqualTo(RedisServerException.class);
        assertThat(RedisServerException.of("NOGROUPS x", "ctx", null).getClass()).isEqualTo(RedisServerException.class);
    }

    @Test
    void otherCodesStayPlain() {
        RedisServerException e = RedisServerException.of("BUSYGROUP Consumer Group name already exists", "XGROUP CREATE", null);
        assertThat(e.getClass()).isEqualTo(RedisServerException.class);
        assertThat(e.code()).isEqualTo("BUSYGROUP");
        assertThat(e.getMessage()).isEqualTo("XGROUP CREATE: BUSYGROUP Consumer Group name already exists");
    }

    @Test
    void emptyReplyHasAnEmptyCode() {
        RedisServerException e = RedisServerException.of("", "ctx", null);
        assertThat(e.code()).isEmpty();
        assertThat(e.getClass()).isEqualTo(RedisServerException.class);
    }
}
