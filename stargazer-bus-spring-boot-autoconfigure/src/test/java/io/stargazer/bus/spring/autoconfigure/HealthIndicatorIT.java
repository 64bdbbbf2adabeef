package io.stargazer.bus.spring.autoconfigure;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.lettuce.core.AclSetuserArgs;
import io.lettuce.core.RedisURI;
import io.stargazer.bus.EventBus;
import io.stargazer.bus.Subscription;
import io.stargazer.bus.tools.ToolRegistry;
import io.stargazer.bus.tools.ToolService;
import io.stargazer.testing.RawRedis;
import io.stargazer.testing.TestServers;
import java.time.Duration;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.springframework.boot.autoconfigure.AutoConfigurations;
import org.springframework.boot.health.contributor.Health;
import org.springframework.boot.health.contributor.Status;
import org.springframework.boot.jackson.autoconfigure.JacksonAutoConfiguration;
import org.springframework.boot.test.context.runner.ApplicationContextRunner;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;

/** The health indicator counts the tools service's subscription as it counts the listeners'. */
@Timeout(120)
class HealthIndicatorIT {
    private static final Duration WAIT = Duration.ofSeconds(30);

    private final String ns = TestServers.namespace();
    private final ApplicationContextRunner runner = new ApplicationContextRunner()
            .withConfiguration(AutoConfigurations.of(JacksonAutoConfiguration.class, StargazerBusAutoConfiguration.class))
            .withPropertyValues("stargazer.bus.topology.namespace=" + ns, "stargazer.bus.consumer.block-timeout=200ms",
                    "stargazer.bus.role=tools");

    @Configuration(proxyBeanMethods = false)
    static class Tools {
        @Bean
        ToolRegistry registry() {
            return ToolRegistry.builder().register("echo", args -> args).build();
        }
    }

    /** The application's own tools service: the starter's gives way to it. */
    @Configuration(proxyBeanMethods = false)
    static class OwnToolService {
        @Bean(destroyMethod = "close")
        ToolService myTools(EventBus bus) {
            return ToolService.start(bus, ToolRegistry.builder().register("echo", args -> args).build());
        }
    }

    @Test
    void healthIsDownWhenTheStartersToolsServiceSubscriptionFailed() {
        healthIsDownOnceTheToolsSubscriptionFails(Tools.class);
    }

    @Test
    void healthIsDownWhenTheApplicationsOwnToolsServiceSubscriptionFailed() {
        healthIsDownOnceTheToolsSubscriptionFails(OwnToolService.class);
    }

    private void healthIsDownOnceTheToolsSubscriptionFails(Class<?> configuration) {
        String user = "health-" + ns;
        try (RawRedis raw = new RawRedis(RedisURI.create(TestServers.url()))) {
            raw.sync().aclSetuser(user, AclSetuserArgs.Builder.on().addPassword("pw").allCommands().allKeys().allChannels());
            try {
                String url = TestServers.url().replace("redis://", "redis://" + user + ":pw@");
                runner.withUserConfiguration(configuration).withPropertyValues("stargazer.bus.url=" + url).run(ctx -> {
                    assertThat(ctx).hasNotFailed();
                    ToolService service = ctx.getBean(ToolService.class);
                    StargazerHealthIndicator health = ctx.getBean(StargazerHealthIndicator.class);
                    await().atMost(WAIT).until(() -> isRunning(service));
                    Health before = health.health(true);
                    assertThat(before.getStatus()).as("health while the tools service runs: " + before.getDetails()).isEqualTo(Status.UP);
                    assertThat(before.getDetails().get("subscriptions").toString()).contains(service.subscription().stream());
                    // An operator's ACL change takes the application's key permissions: the tools service can no longer
                    // read its stream and stops for good.
                    raw.sync().aclSetuser(user, AclSetuserArgs.Builder.resetKeys());
                    await().atMost(WAIT).until(() -> service.subscription().state() == Subscription.State.FAILED);
                    Health h = health.health(true);
                    assertThat(h.getStatus()).as("health with the tools service FAILED: " + h.getDetails()).isEqualTo(Status.DOWN);
                });
            } finally {
                raw.sync().aclDeluser(user);
            }
        }
    }

    private static boolean isRunning(ToolService service) {
        try {
            return service.subscription().state() == Subscription.State.RUNNING;
        } catch (IllegalStateException notStartedYet) {
            return false;
        }
    }
}
