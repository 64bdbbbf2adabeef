package io.stargazer.bus;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;

import io.stargazer.bus.testing.CapturedStderr;
import io.stargazer.bus.testing.Certificates;
import io.stargazer.bus.testing.TestRedis;
import io.stargazer.embedded.RedisServerProcess;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import javax.net.ssl.SSLHandshakeException;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

// rediss:// against a TLS redis-server (the PATH binary: Debian's is built with TLS, the embedded 6.2 is not) with a
// CA and certificates made at test time: verified by default, refused when the chain or the host name does not
// verify, and unverified only when asked for explicitly, with a warning.
class TlsIT {
    @TempDir
    static Path dir;
    private static Certificates certs;
    private static RedisServerProcess server;
    private static RedisServerProcess wrongName;

    @BeforeAll
    static void start() {
        certs = new Certificates(dir);
        certs.ca("ca");
        certs.ca("other-ca");
        certs.server("server", "ca", "IP:127.0.0.1", "DNS:localhost");
        certs.server("elsewhere", "ca", "DNS:elsewhere.example");
        server = RedisServerProcess.builder().tls(certs.crt("server"), certs.key("server"), certs.crt("ca")).start();
        wrongName = RedisServerProcess.builder().tls(certs.crt("elsewhere"), certs.key("elsewhere"), certs.crt("ca")).start();
    }

    @AfterAll
    static void stop() {
        server.stop();
        wrongName.stop();
    }

    private static RedisUrl url(RedisServerProcess s, String... settings) {
        Map<String, String> env = new java.util.HashMap<>();
        env.put(RedisUrl.ENV_REDIS_URL, s.tlsUrl());
        for (int i = 0; i < settings.length; i += 2) env.put(settings[i], settings[i + 1]);
        return RedisUrl.fromEnvironment(env);
    }

    private static void roundTrip(RedisUrl url) {
        try (EventBus bus = EventBus.connect(url, TestRedis.config(NodeRole.STANDALONE).build())) {
            Set<String> got = ConcurrentHashMap.newKeySet();
            bus.subscribe(bus.consumer(bus.topology().inboundStream(), bus.topology().workerGroup())
                    .blockTimeout(Duration.ofMillis(200)).build(), d -> got.add(d.envelope().content()));
            for (int i = 0; i < 20; i++) bus.publishInbound(Envelope.of("channel_id", "c", "content", "m" + i));
            await().atMost(Duration.ofSeconds(20)).until(() -> got.size() == 20);
        }
    }

    @Test
    void publishAndConsumeOverTlsVerifiedAgainstTheCaFile() {
        RedisUrl url = url(server, RedisUrl.ENV_CA_FILE, certs.crt("ca").toString());
        assertThat(url.tls()).isTrue();
        assertThat(url.verifyPeer()).isTrue();
        try (CapturedStderr err = new CapturedStderr()) {
            roundTrip(url);
            assertThat(err.text()).doesNotContain("verification is OFF");
        }
    }

    @Test
    void aServerCertificateFromAnotherCaIsRefused() {
        RedisUrl url = url(server, RedisUrl.ENV_CA_FILE, certs.crt("other-ca").toString());
        assertRefused(url);
    }

    @Test
    void withoutACaFileTheJvmTrustStoreDecidesAndDoesNotKnowTheTestCa() {
        assertRefused(url(server));
    }

    @Test
    void aCertificateForAnotherHostNameIsRefusedEvenFromTheRightCa() {
        assertRefused(url(wrongName, RedisUrl.ENV_CA_FILE, certs.crt("ca").toString()));
    }

    @Test
    void verificationOffMustBeAskedForAndIsLoggedAsAWarning() {
        RedisUrl url = url(wrongName, RedisUrl.ENV_TLS_VERIFY, "none");
        assertThat(url.verifyPeer()).isFalse();
        try (CapturedStderr err = new CapturedStderr()) {
            roundTrip(url);
            assertThat(err.text()).contains("WARN").contains("TLS certificate verification is OFF")
                    .contains(RedisUrl.ENV_TLS_VERIFY + "=none");
        }
    }

    @Test
    void tlsSettingsAreCheckedWhenRead() {
        assertThatThrownBy(() -> url(server, RedisUrl.ENV_TLS_VERIFY, "maybe")).isInstanceOf(ConfigException.class)
                .hasMessageContaining(RedisUrl.ENV_TLS_VERIFY).hasMessageContaining("maybe");
        assertThatThrownBy(() -> url(server, RedisUrl.ENV_CA_FILE, dir.resolve("missing.pem").toString()))
                .isInstanceOf(ConfigException.class).hasMessageContaining(RedisUrl.ENV_CA_FILE);
        assertThatThrownBy(() -> RedisUrl.fromEnvironment(Map.of(RedisUrl.ENV_REDIS_URL, server.url(),
                RedisUrl.ENV_TLS_VERIFY, "none"))).isInstanceOf(ConfigException.class).hasMessageContaining("rediss://");
        assertThat(url(server, RedisUrl.ENV_TLS_VERIFY, "FULL").verifyPeer()).isTrue();
    }

    private static void assertRefused(RedisUrl url) {
        assertThatThrownBy(() -> EventBus.connect(url, TestRedis.config(NodeRole.WORKER).build()))
                .isInstanceOf(BusConnectionException.class)
                .hasMessageContaining("connecting to " + url)
                .satisfies(e -> assertThat(causes(e)).anyMatch(c -> c instanceof SSLHandshakeException));
    }

    private static java.util.List<Throwable> causes(Throwable e) {
        java.util.List<Throwable> out = new java.util.ArrayList<>();
        for (Throwable c = e; c != null; c = c.getCause()) out.add(c);
        return out;
    }
}
