// Promise: certificates made in Java (no openssl command) are served by a TLS redis-server and verified by a client
// that trusts their CA, on the embedded Redis 7.0.15 (the fallback: TLS compiled in) and on the default server.
package io.stargazer.testing;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.lettuce.core.ClientOptions;
import io.lettuce.core.RedisClient;
import io.lettuce.core.RedisConnectionException;
import io.lettuce.core.RedisURI;
import io.lettuce.core.SslOptions;
import io.lettuce.core.api.StatefulRedisConnection;
import io.stargazer.embedded.RedisServerProcess;
import java.nio.file.Path;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

class CertificatesTest {
    @TempDir
    Path dir;

    @ParameterizedTest(name = "embeddedOnly={0}")
    @ValueSource(booleans = {true, false})
    void aServerCertificateFromTheTestCaIsServedAndVerified(boolean embeddedOnly) {
        Certificates certs = new Certificates(dir);
        certs.ca("ca");
        certs.ca("other");
        certs.server("server", "ca", "IP:127.0.0.1", "DNS:localhost");
        RedisServerProcess.Builder builder = embeddedOnly ? RedisServerProcess.builder().embeddedBinaryOnly() : TestServers.server();
        try (RedisServerProcess server = builder.tls(certs.crt("server"), certs.key("server"), certs.crt("ca")).start()) {
            assertThat(ping(server, certs.crt("ca"))).isEqualTo("PONG");
            assertThatThrownBy(() -> ping(server, certs.crt("other"))).isInstanceOf(RedisConnectionException.class);
        }
    }

    private static String ping(RedisServerProcess server, Path trustedCa) {
        RedisClient client = RedisClient.create(RedisURI.builder().withHost("127.0.0.1").withPort(server.tlsPort())
                .withSsl(true).withVerifyPeer(true).build());
        try {
            client.setOptions(ClientOptions.builder().sslOptions(SslOptions.builder().trustManager(trustedCa.toFile()).build()).build());
            try (StatefulRedisConnection<String, String> c = client.connect()) {
                return c.sync().ping();
            }
        } finally {
            client.shutdown();
        }
    }
}
