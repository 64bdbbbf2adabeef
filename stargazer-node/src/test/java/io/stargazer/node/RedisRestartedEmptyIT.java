// Promise (never stall): a node whose Redis restarts empty answers its chat tabs again without a restart of its own.
package io.stargazer.node;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import ch.qos.logback.classic.Level;
import ch.qos.logback.classic.Logger;
import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.core.read.ListAppender;
import io.stargazer.bus.NodeRole;
import io.stargazer.bus.RedisUrl;
import io.stargazer.bus.Topology;
import io.stargazer.embedded.RedisServerProcess;
import io.stargazer.testing.TestServers;
import java.time.Duration;
import java.util.HashMap;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.slf4j.LoggerFactory;

/**
 * A standalone node whose Redis restarts with nothing (every stream, group and key gone, the connections cut) re-creates
 * the groups it reads with, says so at WARN, and a tab open across the restart gets its echoes and tool answers again.
 */
@Timeout(240)
class RedisRestartedEmptyIT {

    @Test
    void aTabGetsAnswersAgainAfterRedisRestartedEmpty() throws Exception {
        Topology t = TestRedis.topology();
        Logger root = (Logger) LoggerFactory.getLogger(org.slf4j.Logger.ROOT_LOGGER_NAME);
        ListAppender<ILoggingEvent> log = new ListAppender<>();
        log.start();
        root.addAppender(log);
        // No append-only file: a restart comes back empty.
        try (RedisServerProcess server = TestServers.server().appendOnly(false).arg("--save", "").start()) {
            Map<String, String> env = new HashMap<>(TestEnv.of(t));
            env.put("REDIS_URL", server.url());
            Node node = Node.start(new Node.Settings(NodeRole.STANDALONE, new Node.Parts(true, true, true), RedisUrl.parse(server.url()),
                    "node-restarted-empty", null, 0, "127.0.0.1", 0, "tools", Duration.ofSeconds(10), env, Node.Dashboard.ON_MAIN_SERVER));
            try (ChatSocket tab = new ChatSocket(node.httpPort())) {
                tab.say("before");
                tab.say("/calc 1+1");
                await().atMost(Duration.ofSeconds(30)).until(() -> tab.answers().size() >= 2);

                server.restart();

                // A message said while the node reconnects may be refused (the tab is told); one is answered in the end.
                await().atMost(Duration.ofSeconds(90)).pollInterval(Duration.ofSeconds(3)).until(() -> {
                    tab.say("after");
                    return tab.answers().contains("after");
                });
                tab.say("/calc 2+3");
                await().atMost(Duration.ofSeconds(60)).alias("the tool answer after the restart")
                        .until(() -> tab.answers().contains("5"));
            } finally {
                node.close();
            }
            assertThat(log.list.stream().filter(e -> e.getLevel() == Level.WARN).map(ILoggingEvent::getFormattedMessage))
                    .as("the WARN lines").anyMatch(m -> m.contains("Consumer group was lost and re-created"));
        } finally {
            root.detachAppender(log);
        }
    }
}
