// End to end in a real browser: a standalone node, headless Chromium (driven by Playwright) typing in the chat page,
// the echo and tool answers coming back, and the streams showing on the dashboard. Saves the README's screenshots.
package io.stargazer.node;

import static org.assertj.core.api.Assertions.assertThat;

import com.microsoft.playwright.Browser;
import com.microsoft.playwright.BrowserType;
import com.microsoft.playwright.Page;
import com.microsoft.playwright.Playwright;
import io.stargazer.bus.NodeRole;
import io.stargazer.bus.Topology;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import org.awaitility.core.ConditionFactory;
import org.junit.jupiter.api.Test;

/**
 * Needs a Chromium: the system's {@code /usr/bin/chromium} where there is one (Debian's {@code chromium} package;
 * .ci/run installs it), else the one Playwright downloads and caches on first use (a machine that can reach
 * Playwright's download site).
 */
class BrowserChatE2EIT {
    static final Path SYSTEM_CHROMIUM = Path.of("/usr/bin/chromium");
    /** Without the background-networking flags Chromium keeps calling Google's hosts, which a closed network refuses. */
    private static final List<String> CHROMIUM_ARGS = List.of("--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--no-first-run", "--disable-sync", "--disable-quic", "--disable-dev-shm-usage");

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
        boolean system = Files.isExecutable(SYSTEM_CHROMIUM);
        BrowserType.LaunchOptions launch = new BrowserType.LaunchOptions().setHeadless(true).setArgs(CHROMIUM_ARGS);
        if (system) {
            launch.setExecutablePath(SYSTEM_CHROMIUM);
        }
        // With a system Chromium, Playwright must not try to download its own (this machine may have no way out).
        Playwright.CreateOptions create = new Playwright.CreateOptions()
                .setEnv(system ? Map.of("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1") : Map.of());
        try (Node node = Node.start(settings); Playwright playwright = Playwright.create(create);
                Browser chromium = playwright.chromium().launch(launch)) {
            Page browser = chromium.newPage(new Browser.NewPageOptions().setViewportSize(1100, 760));
            String base = "http://127.0.0.1:" + node.httpPort();
            browser.navigate(base + "/");
            await().until(() -> text(browser, "#status").equals("connected"));

            say(browser, "Hello, stargazer! <b>not bold</b>");
            awaitBotAnswers(browser, 1);
            assertThat(botAnswers(browser)).containsExactly("Hello, stargazer! <b>not bold</b>");
            assertThat(browser.evaluate("document.querySelectorAll('#messages b').length")).isEqualTo(0);

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
            browser.screenshot(new Page.ScreenshotOptions().setPath(screenshots().resolve("chat.png")));

            browser.setViewportSize(1400, 700);
            browser.navigate(base + "/dashboard");
            await().until(() -> text(browser, "#streams tbody").contains(topology.inboundStream()));
            String table = text(browser, "#streams tbody");
            assertThat(table).contains(topology.outboundStream("webchat")).contains(topology.workerGroup())
                    .contains(topology.toolsStream()).contains(topology.toolsGroup()).contains("node-e2e");
            // From the second poll on, rates are shown (computed from the counters of two polls).
            await().until(() -> text(browser, "#streams tbody tr:first-child td:nth-child(3)").matches("\\d+\\.\\d"));
            browser.screenshot(new Page.ScreenshotOptions().setPath(screenshots().resolve("dashboard.png")));
        }
    }

    /** Playwright's objects belong to the thread that made them: conditions are polled on the test's own thread. */
    private static ConditionFactory await() {
        return org.awaitility.Awaitility.await().atMost(Duration.ofSeconds(15)).pollInSameThread();
    }

    /** The element's rendered text, as a person sees it. */
    private static String text(Page browser, String css) {
        return browser.locator(css).innerText();
    }

    private static void say(Page browser, String text) {
        browser.locator("#input").fill(text);
        browser.locator("#send").click();
    }

    private static void awaitBotAnswers(Page browser, int n) {
        await().until(() -> botAnswers(browser).size() >= n);
    }

    @SuppressWarnings("unchecked")
    private static List<String> botAnswers(Page browser) {
        return (List<String>) browser.evaluate(
                "Array.from(document.querySelectorAll('#messages li.bot .body')).map(e => e.textContent)");
    }
}
