// Promise (bad input gets a clear error naming the bad value): a bad value given to a flag of `stargazer acl` is refused
// naming that flag and the value, exit code 2, printing no rule. Before, `--also-partitions 0` was refused as
// SG_INBOUND_PARTITIONS (a variable the operator had not set), `--platform` as SG_PLATFORMS, `--worker-id` as SG_NODE_ID
// and `--server-version` as "redis version".
package io.stargazer.node;

import static org.assertj.core.api.Assertions.assertThat;

import io.stargazer.node.MainCliTest.Result;
import java.util.Map;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

class AclBadOptionTest {

    @ParameterizedTest
    @CsvSource(delimiter = '|', value = {
            "--also-partitions|0",
            "--also-partitions|1025",
            "--platform|web chat",
            "--worker-id|w 1",
            "--server-version|seven"})
    void aBadFlagValueIsRefusedNamingTheFlagAndTheValue(String flag, String value) {
        Result r = MainCliTest.run(Map.of("SG_PLATFORMS", "webchat"), "acl", flag, value);
        assertThat(r.code()).as(r.err()).isEqualTo(2);
        assertThat(r.err().strip()).doesNotContain("\n").startsWith("stargazer: " + flag + ": '" + value + "'");
        assertThat(r.out()).isEmpty();
    }
}
