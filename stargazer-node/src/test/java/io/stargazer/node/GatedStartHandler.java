// Test worker handler (loaded by class name in a node process) whose creation, a step of the node's start, waits
// until the file named by SG_TEST_START_GATE exists: a start the test holds open, to send signals into it.
package io.stargazer.node;

import io.stargazer.bus.Envelope;
import java.nio.file.Files;
import java.nio.file.Path;

public final class GatedStartHandler implements WorkerHandler {
    public GatedStartHandler() throws InterruptedException {
        Path gate = Path.of(System.getenv("SG_TEST_START_GATE"));
        System.out.println("GatedStartHandler: waiting for " + gate);
        System.out.flush();
        long until = System.nanoTime() + 60_000_000_000L; // a test that never opens it does not leave a process behind
        while (!Files.exists(gate)) {
            if (System.nanoTime() > until) throw new IllegalStateException("the gate " + gate + " was never opened");
            Thread.sleep(20);
        }
    }

    @Override
    public void handle(Envelope inbound, Context context) {
        context.reply(inbound.content());
    }
}
