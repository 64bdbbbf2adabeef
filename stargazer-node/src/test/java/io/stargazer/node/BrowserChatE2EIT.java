// End to end in a real browser: a standalone node, headless Chromium (driven by Playwright) typing in the chat page,
// the echo and tool answers coming back, and the streams showing on the dashboard; the dashboard's charts, pause
// button and dead-letter page. Saves the README's screenshots.
package io.stargazer.node;

import static org.assertj.core.api.Assertions.assertThat;

import com.microsoft.playwright.Browser;
import com.microsoft.playwright.BrowserType;
import com.microsoft.playwright.Page;
import com.microsoft.playwright.Playwright;
import io.lettuce.core.RedisURI;
import io.stargazer.bus.Envelope;
import io.stargazer.bus.EventBus;
import io.stargazer.bus.NodeRole;
import io.stargazer.bus.wire.WireFormat;
import io.stargazer.testing.RawRedis;
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
        try (Node node = Node.start(settings); Playwright playwright = Playwright.create(playwrightOptions());
                Browser chromium = launch(playwright)) {
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
        }
    }

    @Test
    void theDeadLetterPageListsShowsAndReplaysAndTheDashboardChartsTheStreamsAndPausesAGroup() throws Exception {
        Topology topology = TestRedis.topology();
        Map<String, String> env = new java.util.HashMap<>(TestEnv.of(topology));
        // The dead letters are Discord messages: a deployment with a Discord gateway too, whose replayed message the
        // worker answers (it answers only the configured platforms and dead-letters the rest again).
        env.put("SG_PLATFORMS", "webchat,discord");
        Node.Settings settings = new Node.Settings(NodeRole.STANDALONE, new Node.Parts(true, true, true), TestRedis.url(),
                "node-e2e-ops", null, 0, "127.0.0.1", 0, "echo", Duration.ofSeconds(10), env, Node.Dashboard.ON_MAIN_SERVER);
        String inbound = topology.inboundStream();
        String dead = topology.deadLetterStream(inbound);
        try (Node node = Node.start(settings); Playwright playwright = Playwright.create(playwrightOptions());
                Browser chromium = launch(playwright);
                RawRedis raw = new RawRedis(RedisURI.create(TestRedis.url().toString()));
                EventBus bus = TestRedis.bus(io.stargazer.bus.BusConfig.builder().topology(topology).role(NodeRole.GATEWAY).nodeId("e2e-publisher").build())) {
            String[] contents = {"Can you summarise the meeting notes?", "What's the weather in Lisbon tomorrow?", "Translate 'good night' to Japanese"};
            String[] errors = {"handler failed on delivery 5 of 5: provider returned 503 (model overloaded)",
                    "handler failed on delivery 5 of 5: provider timed out after 30 s", "malformed: payload is not a MessagePack map"};
            List<String> ids = new java.util.ArrayList<>();
            for (int i = 0; i < contents.length; i++) {
                ids.add(raw.xadd(dead, "payload", WireFormat.encode(Envelope.of("platform", "discord", "channel_id", "discord:" + (4711 + i),
                        "content", contents[i])), "trace_id", "tr" + i, "error", errors[i], "source_stream", inbound, "source_id", "1-" + i,
                        "group", topology.workerGroup(), "deliveries", "5", "dead_at_ms", Long.toString(System.currentTimeMillis() - 60_000L * (i + 3))));
            }
            // A Discord answer dead-lettered in the same millisecond as the third: the same id, in another stream. Its row
            // is its own: selecting the third must not purge it too. (Replayed, it waits on the outbound stream: no
            // Discord gateway runs here.)
            String outbound = topology.outboundStream("discord");
            String outDead = topology.deadLetterStream(outbound);
            raw.xaddWithId(outDead, ids.get(2), "payload", WireFormat.encode(Envelope.of("platform", "discord", "channel_id", "discord:4713",
                    "content", "Oyasumi nasai")), "error", "gateway down", "source_stream", outbound, "source_id", "1-9", "group", "gateways",
                    "deliveries", "5");
            Page browser = chromium.newPage(new Browser.NewPageOptions().setViewportSize(1366, 768));
            browser.onDialog(d -> d.accept());
            String base = "http://127.0.0.1:" + node.httpPort();

            // The charts: traffic over a few seconds so the lines have points (the page keeps what it polled since it opened).
            browser.navigate(base + "/dashboard");
            await().until(() -> text(browser, "#streams tbody").contains(inbound));
            for (int second = 0; second < 8; second++) {
                for (int i = 0; i < 5 + 3 * second; i++) bus.publishInbound(Envelope.of("platform", "webchat", "channel_id", "c-" + i, "content", "hi"));
                browser.waitForTimeout(1000); // a second of traffic per point on the chart
            }
            await().until(() -> ((Number) browser.evaluate("document.querySelectorAll('#charts .uplot canvas').length")).intValue() >= 3);
            assertThat(text(browser, "#charts")).contains(inbound).contains("added/s").contains("lag " + topology.workerGroup());
            assertThat((Boolean) browser.evaluate("document.documentElement.scrollWidth <= document.documentElement.clientWidth"))
                    .as("no horizontal scroll bar at 1366 px").isTrue();
            browser.screenshot(new Page.ScreenshotOptions().setPath(screenshots().resolve("dashboard.png")).setFullPage(true));

            // Pause and resume the worker group from the dashboard: the flag in Redis, the badge, the button.
            browser.locator("button[data-stream='" + inbound + "'][data-group='" + topology.workerGroup() + "']").click();
            await().until(() -> bus.paused(inbound, topology.workerGroup()));
            await().until(() -> text(browser, "#streams tbody").contains("PAUSED"));
            browser.locator("button[data-stream='" + inbound + "'][data-group='" + topology.workerGroup() + "']").click();
            await().until(() -> !bus.paused(inbound, topology.workerGroup()));
            await().until(() -> !text(browser, "#streams tbody").contains("PAUSED"));

            // The dead-letter page: list, filter, one entry's envelope, replay it.
            browser.navigate(base + "/dashboard/dead");
            await().until(() -> browser.locator("#dead tbody tr").count() == 4);
            assertThat(text(browser, "#dead tbody")).contains("model overloaded").contains("discord:4711").contains("Lisbon");
            browser.locator("#error").fill("timed out");
            browser.locator("#filter button[type=submit]").click();
            await().until(() -> browser.locator("#dead tbody tr").count() == 1);
            browser.locator("#error").fill("");
            browser.locator("#filter button[type=submit]").click();
            await().until(() -> browser.locator("#dead tbody tr").count() == 4);
            browser.locator("#dead tbody tr[data-id='" + ids.get(0) + "']").click();
            await().until(() -> browser.locator("#envelope").isVisible() && text(browser, "#envelope").contains("summarise the meeting notes"));
            assertThat(text(browser, "#envelope")).contains("\"source_stream\": \"" + inbound + "\"").contains("\"deliveries\": 5");
            browser.screenshot(new Page.ScreenshotOptions().setPath(screenshots().resolve("dead-letters.png")).setFullPage(true));
            assertThat((Boolean) browser.evaluate("document.documentElement.scrollWidth <= document.documentElement.clientWidth")).isTrue();

            browser.locator("#replay-one").click();
            await().until(() -> text(browser, "#result").contains("Replayed 1"));
            await().until(() -> browser.locator("#dead tbody tr").count() == 3);
            assertThat(raw.xrange(inbound)).anySatisfy(m -> assertThat(RawRedis.s(RawRedis.fields(m).get("replay_of"))).isEqualTo(ids.get(0)));

            browser.locator("#dead tbody tr[data-id='" + ids.get(2) + "'] input[value='" + ids.get(2) + "@" + dead + "']").check();
            browser.locator("#purge-selected").click();
            await().until(() -> text(browser, "#result").contains("Purged 1"));
            await().until(() -> browser.locator("#dead tbody tr").count() == 2);
            assertThat(raw.xlen(outDead)).as("the outbound dead letter of the same id, left").isEqualTo(1);
            browser.locator("#replay-all").click();
            await().until(() -> text(browser, "#result").contains("Replayed 2"));
            await().until(() -> raw.xlen(dead) == 0 && raw.xlen(outDead) == 0);
            assertThat(raw.xrange(outbound)).anySatisfy(m -> assertThat(RawRedis.s(RawRedis.fields(m).get("replay_of"))).isEqualTo(ids.get(2)));
        }
    }

    /** With a system Chromium, Playwright must not try to download its own (this machine may have no way out). */
    private static Playwright.CreateOptions playwrightOptions() {
        return new Playwright.CreateOptions()
                .setEnv(Files.isExecutable(SYSTEM_CHROMIUM) ? Map.of("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1") : Map.of());
    }

    /** Headless Chromium: the system's where there is one, else Playwright's own. */
    private static Browser launch(Playwright playwright) {
        BrowserType.LaunchOptions launch = new BrowserType.LaunchOptions().setHeadless(true).setArgs(CHROMIUM_ARGS);
        if (Files.isExecutable(SYSTEM_CHROMIUM)) {
            launch.setExecutablePath(SYSTEM_CHROMIUM);
        }
        return playwright.chromium().launch(launch);
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
