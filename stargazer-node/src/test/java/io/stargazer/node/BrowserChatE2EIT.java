// End to end in a real browser: a standalone node, headless Chromium typing in the chat page, the echo and tool
// answers coming back, and the streams showing on the dashboard. Saves the README's screenshots.
package io.stargazer.node;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.stargazer.bus.NodeRole;
import io.stargazer.bus.Topology;
import io.stargazer.bus.testing.TestRedis;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

class BrowserChatE2EIT {
    /** -DupdateScreenshots=true writes them into docs/screenshots; otherwise they go to target/screenshots. */
    private static Path screenshots() {
        return Boolean.getBoolean("updateScreenshots") ? Path.of("..", "docs", "screenshots") : Path.of("target", "screenshots");
    }

    @Test
    void chatEchoesAndAnswersSlashCommandsAndTheDashboardShowsTheStreams() throws Exception {
        Topology topology = TestRedis.topology();
        Map<String, String> env = TestEnv.of(topology);
        env.put("SG_PLATFORMS", "discord,matrix,webchat");
        Node.Settings settings = new Node.Settings(NodeRole.STANDALONE, new Node.Parts(true, true, true), TestRedis.url(),
                "node-e2e", null, 0, "127.0.0.1", 0, "tools", Duration.ofSeconds(10), env, Node.Dashboard.ON_MAIN_SERVER);
        try (Node node = Node.start(settings); WebDriverClient browser = new WebDriverClient()) {
            String base = "http://127.0.0.1:" + node.httpPort();
            browser.open(base + "/");
            await().atMost(Duration.ofSeconds(15)).until(() -> browser.text("#status").equals("connected"));

            say(browser, "Hello, stargazer! <b>not bold</b>");
            awaitBotAnswers(browser, 1);
            assertThat(botAnswers(browser)).containsExactly("Hello, stargazer! <b>not bold</b>");
            assertThat(browser.script("return document.querySelectorAll('#messages b').length")).isEqualTo(0L);

            say(browser, "/calc 2*(3+4)");
            awaitBotAnswers(browser, 2);
            say(browser, "/clock");
            awaitBotAnswers(browser, 3);
            say(browser, "/calc 1/0");
            awaitBotAnswers(browser, 4);
            say(browser, "/nosuchtool");
            awaitBotAnswers(browser, 5);
            List<String> answers = botAnswers(browser);
            assertThat(answers.get(1)).isEqualTo("14");
            assertThat(answers.get(2)).matches("\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:.*Z");
            assertThat(answers.get(3)).startsWith("/calc failed (bad_arguments): ");
            assertThat(answers.get(4)).startsWith("/nosuchtool failed (unknown_tool): ");
            say(browser, "/calc (1.5 + 2) * 4");
            awaitBotAnswers(browser, 6);
            assertThat(botAnswers(browser).get(5)).isEqualTo("14");
            browser.screenshot(screenshots().resolve("chat.png"));

            browser.windowSize(1400, 700);
            browser.open(base + "/dashboard");
            await().atMost(Duration.ofSeconds(15)).until(() -> browser.text("#streams tbody").contains(topology.inboundStream()));
            String table = browser.text("#streams tbody");
            assertThat(table).contains(topology.outboundStream("webchat")).contains(topology.workerGroup())
                    .contains(topology.toolsStream()).contains(topology.toolsGroup()).contains("node-e2e");
            // From the second poll on, rates are shown (computed from the counters of two polls).
            await().atMost(Duration.ofSeconds(15)).until(() -> browser.text("#streams tbody tr:first-child td:nth-child(3)")
                    .matches("\\d+\\.\\d"));
            browser.screenshot(screenshots().resolve("dashboard.png"));
        }
    }

    private static void say(WebDriverClient browser, String text) {
        browser.type("#input", text);
        browser.click("#send");
    }

    private static void awaitBotAnswers(WebDriverClient browser, int n) {
        await().atMost(Duration.ofSeconds(15)).until(() -> botAnswers(browser).size() >= n);
    }

    @SuppressWarnings("unchecked")
    private static List<String> botAnswers(WebDriverClient browser) {
        return (List<String>) browser.script(
                "return Array.from(document.querySelectorAll('#messages li.bot .body')).map(e => e.textContent)");
    }
}
