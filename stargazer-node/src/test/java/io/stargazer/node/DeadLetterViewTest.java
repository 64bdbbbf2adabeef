// The dead-letter table's cells: cut to their width by code points, so a cut never leaves half a surrogate pair (an
// emoji's first half, which a terminal shows as garbage and `printable` would have had to escape).
package io.stargazer.node;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.Test;

class DeadLetterViewTest {

    @Test
    void aCutErrorNeverEndsInHalfASurrogatePair() {
        String emoji = "\uD83D\uDE00"; // one code point, two chars
        String summary = DeadLetterView.errorSummary(emoji.repeat(100));
        assertThat(summary.codePoints().filter(c -> Character.getType(c) == Character.SURROGATE)).as("lone surrogates").isEmpty();
        assertThat(summary).isEqualTo(emoji.repeat(59) + "…");
        assertThat(DeadLetterView.cut("abc", 3)).isEqualTo("abc");
        assertThat(DeadLetterView.cut("abcd", 3)).isEqualTo("ab…");
    }
}
