// Promise (bad input gets a clear error naming the bad value): an HTTP or dashboard address that is no address, and a
// dashboard listener on the HTTP server's own address and port, are refused before the node starts anything, naming the
// flags or variables and the value, exit code 2. Before, every part started (the worker consuming), then the second bind
// failed: "cannot serve HTTP on no such host:0: null", or "... Address already in use", exit code 1.
package io.stargazer.node;

import static org.assertj.core.api.Assertions.assertThat;

import io.lettuce.core.RedisURI;
import io.stargazer.bus.Topology;
import io.stargazer.node.MainCliTest.Result;
import io.stargazer.testing.RawRedis;
import java.nio.charset.StandardCharsets;
import java.util.HashMap;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

@Timeout(120)
class HttpHostRefusedIT {

    @ParameterizedTest
    @CsvSource(delimiter = '|', value = {
            "flag|--http-host|no such host|--http-port",
            "variable|SG_HTTP_HOST|no such host|--http-port",
            "flag|--http-host|''|--http-port",
            "flag|--dashboard-host|no such host|--dashboard-port",
            "variable|SG_DASHBOARD_HOST|bad/host|--dashboard-port"})
    void anAddressThatIsNoneIsRefusedNamingItBeforeAnythingStarts(String how, String name, String value, String portFlag) {
        Topology t = TestRedis.topology();
        Map<String, String> env = new HashMap<>(TestEnv.of(t));
        Result r;
        if (how.equals("flag")) {
            r = MainCliTest.run(env, "standalone", name, value, portFlag, "0");
        } else {
            env.put(name, value);
            r = MainCliTest.run(env, "standalone", portFlag, "0");
        }
        assertThat(r.code()).as(r.err()).isEqualTo(2);
        assertThat(r.err().strip()).doesNotContain("\n").startsWith("stargazer: " + name + ": '" + value + "'");
        try (RawRedis raw = new RawRedis(RedisURI.create(TestRedis.url().toString()))) {
            assertThat(raw.sync().exists(t.inboundStream().getBytes(StandardCharsets.UTF_8))).as("streams created").isZero();
        }
    }

    @Test
    void aDashboardListenerOnTheHttpServersOwnPortIsRefusedNamingBoth() throws Exception {
        Topology t = TestRedis.topology();
        Map<String, String> env = new HashMap<>(TestEnv.of(t));
        int port;
        try (java.net.ServerSocket free = new java.net.ServerSocket(0)) {
            port = free.getLocalPort();
        }
        env.put("SG_DASHBOARD_PORT", Integer.toString(port));
        Result r = MainCliTest.run(env, "standalone", "--http-port", Integer.toString(port));
        assertThat(r.code()).as(r.err()).isEqualTo(2);
        assertThat(r.err().strip()).doesNotContain("\n").startsWith("stargazer: SG_DASHBOARD_PORT: '" + port + "'").contains("--http-port");
        try (RawRedis raw = new RawRedis(RedisURI.create(TestRedis.url().toString()))) {
            assertThat(raw.sync().exists(t.inboundStream().getBytes(StandardCharsets.UTF_8))).as("streams created").isZero();
        }
    }
}
