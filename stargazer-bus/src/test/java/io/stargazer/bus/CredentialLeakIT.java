package io.stargazer.bus;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowable;

import io.stargazer.bus.testing.RawRedis;
import io.stargazer.bus.testing.RefusedPort;
import io.stargazer.bus.testing.TestRedis;
import io.stargazer.embedded.RedisServerProcess;
import io.stargazer.testing.CapturedStderr;
import io.stargazer.testing.Certificates;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

// A password never shows in an exception message, a stack trace or a log line: not when the login is refused,
// not when the host cannot be reached, not when TLS fails, not when the URL does not parse, not when all goes well.
class CredentialLeakIT {
    private static final String SECRET = "Canary-pw-7f3a9c";

    /** Everything a user could see of a failure: its toString and the full stack trace with every cause. */
    private static String everything(Throwable t) {
        StringWriter w = new StringWriter();
        t.printStackTrace(new PrintWriter(w));
        return t + "\n" + w;
    }

    private static Throwable connect(RedisUrl url) {
        return catchThrowable(() -> EventBus.connect(url, TestRedis.config(NodeRole.WORKER).build()).close());
    }

    @Test
    void aRefusedLoginNamesTheUserButNotThePassword() {
        // The default user has a password too, so the old single-password URL form is checked, not waved through.
        try (RedisServerProcess server = RedisServerProcess.builder().arg("--requirepass", "default-pw").start();
             RawRedis admin = new RawRedis(RedisUrl.parse(server.url()).withCredentials(null, "default-pw"))) {
            admin.sync().aclSetuser("app", io.lettuce.core.AclSetuserArgs.Builder.on().addPassword("the-right-one")
                    .allCommands().allKeys());
            try (CapturedStderr err = new CapturedStderr()) {
                Throwable wrongPassword = connect(RedisUrl.parse(server.url()).withCredentials("app", SECRET));
                assertThat(wrongPassword).isInstanceOf(RedisServerException.AccessDenied.class);
                assertThat(((RedisServerException) wrongPassword).code()).isEqualTo("WRONGPASS");
                assertThat(everything(wrongPassword)).contains("app").doesNotContain(SECRET);
                Throwable oldForm = connect(RedisUrl.parse("redis://" + SECRET + "@127.0.0.1:" + server.port()));
                assertThat(oldForm).isInstanceOf(RedisServerException.AccessDenied.class);
                assertThat(everything(oldForm)).doesNotContain(SECRET);
                // And a login that works logs nothing secret either.
                try (EventBus bus = EventBus.connect(RedisUrl.parse(server.url()).withCredentials("app", "the-right-one"),
                        TestRedis.config(NodeRole.STANDALONE).build())) {
                    bus.ensureStreams();
                    bus.publishInbound(Envelope.of("channel_id", "c", "content", "x"));
                    assertThat(bus.toString() + bus.config()).doesNotContain("the-right-one");
                }
                assertThat(err.text()).contains("Connected to Redis").doesNotContain(SECRET).doesNotContain("the-right-one");
            }
        }
    }

    @Test
    void anUnreachableHostOrABadUrlDoesNotShowThePassword() throws Exception {
        try (RefusedPort refused = new RefusedPort(); CapturedStderr err = new CapturedStderr()) {
            int closed = refused.port();
            Throwable unreachable = connect(RedisUrl.parse("redis://app:" + SECRET + "@127.0.0.1:" + closed));
            assertThat(unreachable).isInstanceOf(BusConnectionException.class).hasMessageContaining("redis://app:***@127.0.0.1");
            assertThat(everything(unreachable)).doesNotContain(SECRET);
            Throwable badPort = catchThrowable(() -> RedisUrl.parse("redis://app:" + SECRET + "@127.0.0.1:99999"));
            assertThat(badPort).isInstanceOf(ConfigException.class);
            assertThat(everything(badPort)).doesNotContain(SECRET);
            Throwable badDb = catchThrowable(() -> RedisUrl.fromEnvironment(Map.of(RedisUrl.ENV_REDIS_URL,
                    "rediss://app:" + SECRET + "@h/x", RedisUrl.ENV_TLS_VERIFY, "none")));
            assertThat(everything(badDb)).doesNotContain(SECRET);
            assertThat(err.text()).doesNotContain(SECRET);
        }
    }

    @Test
    void aTlsFailureDoesNotShowThePassword(@TempDir Path dir) {
        Certificates certs = new Certificates(dir);
        certs.ca("ca");
        certs.ca("other");
        certs.server("server", "ca", "IP:127.0.0.1");
        try (RedisServerProcess server = RedisServerProcess.builder().tls(certs.crt("server"), certs.key("server"), certs.crt("ca")).start();
             CapturedStderr err = new CapturedStderr()) {
            RedisUrl url = RedisUrl.fromEnvironment(Map.of(RedisUrl.ENV_REDIS_URL,
                    "rediss://app:" + SECRET + "@127.0.0.1:" + server.tlsPort(), RedisUrl.ENV_CA_FILE, certs.crt("other").toString()));
            Throwable refused = connect(url);
            assertThat(refused).isInstanceOf(BusConnectionException.class);
            assertThat(everything(refused)).doesNotContain(SECRET);
            Throwable insecure = connect(url.withInsecureTls());
            assertThat(insecure).isInstanceOf(RedisServerException.AccessDenied.class);
            assertThat(everything(insecure)).doesNotContain(SECRET);
            assertThat(err.text()).contains("verification is OFF").doesNotContain(SECRET);
        }
    }
}
