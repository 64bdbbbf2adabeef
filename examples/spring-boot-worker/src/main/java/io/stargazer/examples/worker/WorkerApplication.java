// A Stargazer worker as a Spring Boot application: reads every inbound stream with the worker group, answers each
// chat message on its platform's outbound stream. Settings under stargazer.bus.* (application.properties).
package io.stargazer.examples.worker;

import io.stargazer.bus.Envelope;
import io.stargazer.bus.EventBus;
import io.stargazer.bus.spring.StargazerListener;
import org.springframework.boot.SpringApplication;
import org.springframework.boot.autoconfigure.SpringBootApplication;
import org.springframework.stereotype.Component;

@SpringBootApplication
public class WorkerApplication {
    public static void main(String[] args) {
        SpringApplication.run(WorkerApplication.class, args);
    }

    /** The chat message members this worker reads; the rest of the envelope is ignored. */
    public record ChatMessage(String platform, String channel_id, String content, String trace_id) {
    }

    @Component
    public static class EchoWorker {
        private final EventBus bus;

        public EchoWorker(EventBus bus) {
            this.bus = bus;
        }

        /** Throwing here hands the entry back: the bus retries it and dead-letters it after its last delivery. */
        @StargazerListener(inbound = true, concurrency = "${worker.concurrency:4}")
        public void onMessage(ChatMessage m) {
            String answer = "You said: " + (m.content() == null ? "" : m.content());
            bus.publishOutbound(m.platform(), Envelope.of("platform", m.platform(), "channel_id", m.channel_id(),
                    "type", "message", "content", answer, "trace_id", m.trace_id()));
        }
    }
}
