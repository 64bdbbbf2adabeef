// While Redis is down every message a tab sends fails to publish. The gateway says so in the log at most once a second,
// as the bus does for handler failures, with the failures held back counted in the next line: before, it logged one
// WARN per message (a tester saw 310 lines in 40 s), which buried everything else in the log.
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
import io.stargazer.node.web.WebChatGateway;
import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.slf4j.LoggerFactory;

@Timeout(180)
class ChatPublishFailureLogIT {
    private static final String FAILED = "Publishing a web chat message failed: ";
    private static final Pattern MORE = Pattern.compile("\\((\\d+) more failures since the last warning\\)");

    private static List<ILoggingEvent> failureWarnings(ListAppender<ILoggingEvent> log) {
        return List.copyOf(log.list).stream()
                .filter(e -> e.getLevel() == Level.WARN && e.getFormattedMessage().startsWith(FAILED)).toList();
    }

    /** Failures a line stands for: itself and those it says were held back before it. */
    private static long counted(ILoggingEvent e) {
        Matcher m = MORE.matcher(e.getFormattedMessage());
        return 1 + (m.find() ? Long.parseLong(m.group(1)) : 0);
    }

    /**
     * 40 messages over about 4 s while Redis is down, each failing within the publish timeout (1 s): at most one WARN a
     * second, and once one more message fails after the flood, the lines account for every failure.
     */
    @Test
    void publishFailuresDuringAnOutageAreLoggedAtMostOnceASecondWithTheRestCounted() throws Exception {
        Topology t = TestRedis.topology();
        Map<String, String> env = new HashMap<>(TestEnv.of(t));
        env.put("SG_PUBLISH_TIMEOUT_MS", "1000");
        Logger gatewayLog = (Logger) LoggerFactory.getLogger(WebChatGateway.class);
        ListAppender<ILoggingEvent> log = new ListAppender<>();
        log.start();
        gatewayLog.addAppender(log);
        try (RedisServerProcess server = RedisServerProcess.builder().start()) {
            Node node = Node.start(new Node.Settings(NodeRole.GATEWAY, new Node.Parts(true, false, false),
                    RedisUrl.parse(server.url()), "node-publish-failures", null, 0, "127.0.0.1", 0,
                    "echo", Duration.ofSeconds(10), env, Node.Dashboard.ON_MAIN_SERVER));
            try (ChatSocket tab = new ChatSocket(node.httpPort())) {
                tab.say("before the outage");
                await().atMost(Duration.ofSeconds(20)).until(() -> tab.frames().stream().anyMatch(f -> "sent".equals(f.get("kind"))));
                server.kill();

                int flood = 40;
                AtomicInteger said = new AtomicInteger();
                // One message every 100 ms, within the tab's rate (20 a second), so the failures span several seconds.
                await().pollInterval(Duration.ofMillis(100)).atMost(Duration.ofSeconds(30)).until(() -> {
                    tab.say("during the outage " + said.get());
                    return said.incrementAndGet() >= flood;
                });
                await().atMost(Duration.ofSeconds(60)).until(() -> tab.errors().size() == flood);
                int linesAfterFlood = failureWarnings(log).size();
                // Then one message at a time, each after the last one's failure, until the next line comes: it counts
                // the failures held back since the line before.
                await().pollInterval(Duration.ofMillis(200)).atMost(Duration.ofSeconds(30)).until(() -> {
                    int before = tab.errors().size();
                    tab.say("after the flood " + said.incrementAndGet());
                    await().atMost(Duration.ofSeconds(20)).until(() -> tab.errors().size() > before);
                    return failureWarnings(log).size() > linesAfterFlood;
                });

                List<ILoggingEvent> lines = failureWarnings(log);
                assertThat(tab.errors()).hasSize(said.get());
                for (int i = 1; i < lines.size(); i++) {
                    assertThat(lines.get(i).getTimeStamp() - lines.get(i - 1).getTimeStamp())
                            .as("ms between WARN lines %d and %d of %d", i - 1, i, lines.size()).isGreaterThanOrEqualTo(900);
                }
                assertThat(lines.stream().mapToLong(ChatPublishFailureLogIT::counted).sum())
                        .as("failures the lines account for").isEqualTo(said.get());
                // Forty failures in a few seconds cannot each have a line of their own: some line counts held-back ones.
                // (Not necessarily the last: the flood's last failure may have had a line, leaving none held back.)
                assertThat(lines).as("lines counting failures held back").anyMatch(l -> MORE.matcher(l.getFormattedMessage()).find());
            } finally {
                server.restart(); // a node closes at once when it can delete its group
                node.close();
            }
        } finally {
            gatewayLog.detachAppender(log);
        }
    }
}
