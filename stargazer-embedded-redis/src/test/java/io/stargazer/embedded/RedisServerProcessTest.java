// Exercises RedisServerProcess against real redis-server processes (PATH binary and the embedded 7.0.15), no mocks.
package io.stargazer.embedded;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

class RedisServerProcessTest {

    private static String send(RedisServerProcess server, String... command) throws IOException {
        return RedisServerProcess.call(server.host(), server.port(), List.of((Object[]) command)).get(0);
    }

    private static RedisServerProcess.Builder builder(boolean embeddedOnly) {
        RedisServerProcess.Builder b = RedisServerProcess.builder();
        return embeddedOnly ? b.embeddedBinaryOnly() : b;
    }

    @Test
    void defaultBinaryStartsAndAnswersPing() throws IOException {
        try (RedisServerProcess server = RedisServerProcess.builder().start()) {
            // PATH redis-server here; the embedded binary on a machine without Redis installed.
            assertThat(server.binary()).isEqualTo(RedisServerProcess.resolveBinary());
            assertThat(server.isAlive()).isTrue();
            assertThat(server.port()).isPositive().isNotEqualTo(6379);
            assertThat(server.url()).isEqualTo("redis://127.0.0.1:" + server.port());
            assertThat(server.version()).matches("\\d+\\.\\d+\\.\\d+.*");
            assertThat(send(server, "PING")).isEqualTo("+PONG");
        }
    }

    @Test
    void embeddedBinaryIsRedis7OfTheSignalJar() throws IOException {
        try (RedisServerProcess server = RedisServerProcess.builder().embeddedBinaryOnly().start()) {
            assertThat(server.binary().getFileName().toString())
                    .isEqualTo(RedisServerProcess.embeddedResourceName()).startsWith("redis-server-7.0.15-");
            assertThat(server.version()).isEqualTo("7.0.15");
            assertThat(send(server, "PING")).isEqualTo("+PONG");
            assertThat(RedisServerProcess.describe(server.binary()))
                    .isEqualTo("redis-server 7.0.15 (" + server.binary() + ", extracted from the " + server.binary().getFileName()
                            + " resource of org.signal:embedded-redis)");
        }
    }

    @Test
    void describeNamesTheServerItsVersionAndWhereItWasFound() {
        Path binary = RedisServerProcess.resolveBinary();
        assertThat(RedisServerProcess.describe(binary)).contains(RedisServerProcess.version(binary)).contains(binary.toString())
                .containsAnyOf("STARGAZER_REDIS_SERVER", "redis-server on PATH", "org.signal:embedded-redis");
    }

    @Test
    void twoServersRunSideBySide() throws IOException {
        try (RedisServerProcess a = RedisServerProcess.builder().start();
             RedisServerProcess b = RedisServerProcess.builder().start()) {
            assertThat(a.port()).isNotEqualTo(b.port());
            assertThat(a.pid()).isNotEqualTo(b.pid());
            assertThat(send(a, "SET", "k", "a")).isEqualTo("+OK");
            assertThat(send(b, "SET", "k", "b")).isEqualTo("+OK");
            assertThat(send(a, "GET", "k")).isEqualTo("a");
            assertThat(send(b, "GET", "k")).isEqualTo("b");
        }
    }

    @ParameterizedTest(name = "embeddedOnly={0}")
    @ValueSource(booleans = {false, true})
    void restartWithAppendOnlyKeepsAcknowledgedWrites(boolean embeddedOnly) throws IOException {
        try (RedisServerProcess server = builder(embeddedOnly).appendOnly(true).start()) {
            int port = server.port();
            long pid = server.pid();
            assertThat(send(server, "SET", "survivor", "v1")).isEqualTo("+OK");

            server.restart();

            assertThat(server.port()).isEqualTo(port);
            assertThat(server.pid()).isNotEqualTo(pid);
            assertThat(send(server, "GET", "survivor")).isEqualTo("v1");
        }
    }

    @ParameterizedTest(name = "embeddedOnly={0}")
    @ValueSource(booleans = {false, true})
    void killThenRestartLosesNothingAcknowledged(boolean embeddedOnly) throws IOException {
        try (RedisServerProcess server = builder(embeddedOnly).appendOnly(true).start()) {
            for (int i = 0; i < 100; i++) {
                assertThat(send(server, "RPUSH", "log", Integer.toString(i))).isEqualTo(":" + (i + 1));
            }
            server.kill();
            assertThat(server.isAlive()).isFalse();

            server.restart();

            assertThat(send(server, "LLEN", "log")).isEqualTo(":100");
        }
    }

    @Test
    void killMakesTheServerDead() {
        try (RedisServerProcess server = RedisServerProcess.builder().start()) {
            assertThat(server.isAlive()).isTrue();
            server.kill();
            assertThat(server.isAlive()).isFalse();
            assertThatThrownBy(() -> send(server, "PING")).isInstanceOf(IOException.class);
        }
    }

    @Test
    void badDirectiveFailsStartWithTheServersComplaint() {
        assertThatThrownBy(() -> RedisServerProcess.builder().arg("--no-such-directive", "x").start())
                .isInstanceOf(IllegalStateException.class)
                .hasMessageContaining("no-such-directive")
                .hasMessageContaining("Bad directive");
    }

    @ParameterizedTest(name = "embeddedOnly={0}")
    @ValueSource(booleans = {false, true})
    void portTakenByAnotherServerFailsStartInsteadOfTalkingToThatServer(boolean embeddedOnly) {
        try (RedisServerProcess other = RedisServerProcess.builder().start()) {
            // Known as a taken port (which start-up on a free port retries) in glibc's and in musl's wording.
            assertThatThrownBy(() -> builder(embeddedOnly)
                    .port(other.port())
                    .startTimeout(java.time.Duration.ofSeconds(5))
                    .start())
                    .isInstanceOf(RedisServerProcess.AddressInUse.class)
                    .hasMessageContaining("port " + other.port());
            assertThat(other.isAlive()).isTrue();
        }
    }

    @Test
    void requirepassServerIsUpAndStopsCleanly() throws IOException {
        RedisServerProcess server = RedisServerProcess.builder().arg("--requirepass", "s3cret").start();
        try {
            assertThat(send(server, "PING")).startsWith("-NOAUTH");
        } finally {
            server.stop();
        }
        assertThat(server.isAlive()).isFalse();
    }

    @Test
    void stopDeletesTempDataDirButKeepsAGivenOne(@TempDir Path given) {
        RedisServerProcess temp = RedisServerProcess.builder().start();
        Path tempDir = temp.dataDir();
        temp.stop();
        assertThat(tempDir).doesNotExist();

        RedisServerProcess kept = RedisServerProcess.builder().dataDir(given).appendOnly(true).start();
        kept.stop();
        assertThat(kept.isAlive()).isFalse();
        assertThat(given.resolve("redis.log")).exists();
        assertThat(Files.exists(given)).isTrue();
    }

    @Test
    void redisUrlFromEnvIgnoresUnsetOrBlank() {
        String env = System.getenv("REDIS_URL");
        if (env == null || env.isBlank()) {
            assertThat(RedisServerProcess.redisUrlFromEnv()).isEmpty();
        } else {
            assertThat(RedisServerProcess.redisUrlFromEnv()).contains(env.trim());
        }
    }
}
