package io.stargazer.examples.worker;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.stargazer.bus.BusConfig;
import io.stargazer.bus.Envelope;
import io.stargazer.bus.EventBus;
import io.stargazer.bus.NodeRole;
import io.stargazer.bus.RedisUrl;
import io.stargazer.bus.StreamEntry;
import io.stargazer.bus.Topology;
import io.stargazer.testing.TestServers;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.springframework.boot.SpringApplication;
import org.springframework.context.ConfigurableApplicationContext;

// The example worker, started as the Spring Boot application it is, answers messages published by a gateway.
class WorkerApplicationIT {
    @Test
    void theExampleWorkerAnswersEveryMessage() {
        String namespace = TestServers.namespace();
        ConfigurableApplicationContext app = SpringApplication.run(WorkerApplication.class,
                "--stargazer.bus.url=" + TestServers.url(), "--stargazer.bus.topology.namespace=" + namespace);
        try (EventBus gateway = EventBus.connect(RedisUrl.parse(TestServers.url()), BusConfig.builder()
                .topology(Topology.builder().namespace(namespace).build()).role(NodeRole.GATEWAY).build())) {
            String outbound = gateway.topology().outboundStream("webchat");
            for (int i = 0; i < 20; i++) {
                gateway.publishInbound(Envelope.of("platform", "webchat", "channel_id", "c-" + (i % 3), "content", "hello " + i));
            }
            List<StreamEntry> answers = new ArrayList<>();
            await().atMost(Duration.ofSeconds(20)).until(() -> {
                answers.clear();
                answers.addAll(gateway.read(outbound, "0", 100));
                return answers.size() >= 20;
            });
            assertThat(answers).hasSize(20);
            assertThat(answers.stream().map(e -> e.envelope().content()).toList())
                    .containsExactlyInAnyOrderElementsOf(java.util.stream.IntStream.range(0, 20).mapToObj(i -> "You said: hello " + i).toList());
        } finally {
            app.close();
        }
        assertThat(app.isActive()).isFalse();
    }
}
