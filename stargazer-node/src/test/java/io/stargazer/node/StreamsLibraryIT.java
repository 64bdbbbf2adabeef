// `stargazer streams` says whether the server has the stargazer functions library at the version this release calls.
package io.stargazer.node;

import static org.assertj.core.api.Assertions.assertThat;

import io.lettuce.core.FlushMode;
import io.lettuce.core.RedisURI;
import io.lettuce.core.ScriptOutputType;
import io.stargazer.embedded.RedisServerProcess;
import io.stargazer.testing.RawRedis;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * Found by testers from outside: after an empty restart or {@code FUNCTION FLUSH} every process runs scripts and WARNs
 * (docs/functions.md), but the operator's view of the system, {@code stargazer streams}, showed nothing of it; under the
 * strict ACL users, which may not run scripts, that is an outage the report did not name.
 */
class StreamsLibraryIT {

    private static String libraryLine(MainCliTest.Result r) {
        return r.out().lines().filter(l -> l.startsWith("library ")).findFirst()
                .orElseThrow(() -> new AssertionError("no library line in\n" + r.out() + r.err()));
    }

    @SuppressWarnings("unchecked")
    private static List<Map<String, Object>> libraryOfEachRow(Map<String, String> env) {
        MainCliTest.Result json = MainCliTest.run(env, "streams", "--json");
        assertThat(json.code()).as(json.err()).isZero();
        List<Map<String, Object>> rows = (List<Map<String, Object>>) Json.parse(json.out());
        assertThat(rows).isNotEmpty();
        return rows.stream().map(r -> (Map<String, Object>) r.get("library")).toList();
    }

    @Test
    void theLibrarysStateIsShownLoadedMissingAndOfAnotherVersion() {
        try (RedisServerProcess server = RedisServerProcess.builder().start();
             RawRedis raw = new RawRedis(RedisURI.create(server.url()))) {
            Map<String, String> env = new HashMap<>(TestEnv.of(TestRedis.topology()));
            env.put("REDIS_URL", server.url());
            MainCliTest.Result provision = MainCliTest.run(env, "provision");
            assertThat(provision.code()).as(provision.err()).isZero();
            long version = raw.sync().<Long>fcallReadOnly("sg_version", ScriptOutputType.INTEGER);

            MainCliTest.Result loaded = MainCliTest.run(env, "streams");
            assertThat(loaded.code()).as(loaded.err()).isZero();
            assertThat(libraryLine(loaded)).isEqualTo("library stargazer: version " + version + " loaded (the version this release calls)");
            assertThat(libraryOfEachRow(env)).allSatisfy(l -> assertThat(l).containsEntry("state", "loaded")
                    .containsEntry("version", version).containsEntry("expected_version", version));

            raw.sync().functionFlush(FlushMode.SYNC);
            MainCliTest.Result missing = MainCliTest.run(env, "streams");
            assertThat(missing.code()).as(missing.err()).isZero();
            assertThat(libraryLine(missing)).startsWith("library stargazer: MISSING: processes with SG_SERVER_CODE=auto run scripts (EVAL) instead")
                    .contains("stargazer provision loads version " + version);
            assertThat(libraryOfEachRow(env)).allSatisfy(l -> assertThat(l).containsEntry("state", "missing").containsEntry("version", null));

            long older = version - 1;
            raw.sync().functionLoad("#!lua name=stargazer\n"
                    + "redis.register_function{function_name='sg_version', callback=function() return " + older + " end, flags={'no-writes'}}");
            MainCliTest.Result other = MainCliTest.run(env, "streams");
            assertThat(libraryLine(other)).startsWith("library stargazer: version " + older + " loaded, OTHER than " + version
                    + ": processes with SG_SERVER_CODE=auto run scripts");
            assertThat(libraryOfEachRow(env)).allSatisfy(l -> assertThat(l).containsEntry("state", "other_version").containsEntry("version", older));

            assertThat(MainCliTest.run(env, "provision").code()).isZero();
            assertThat(libraryLine(MainCliTest.run(env, "streams"))).contains("version " + version + " loaded (");
        }
    }
}
