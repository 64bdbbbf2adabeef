// Test worker handler (loaded by class name in a node process): "sleep <ms> <tag>" answers after <ms>; "hold <tag>"
// answers once the file SG_TEST_HOLD_FILE is gone, deaf to interrupts (a handler stuck in a call that ignores them);
// anything else is echoed at once. Each start is printed, so a test sees what a process holds.
package io.stargazer.node;

import io.stargazer.bus.Envelope;
import java.nio.file.Files;
import java.nio.file.Path;

public final class SlowTestHandler implements WorkerHandler {
    @Override
    public void handle(Envelope inbound, Context context) {
        String content = inbound.content();
        System.out.println("SlowTestHandler: handling " + content);
        System.out.flush();
        String[] words = content.split(" ");
        if (words[0].equals("sleep")) {
            pause(Long.parseLong(words[1]));
        } else if (words[0].equals("hold")) {
            Path hold = Path.of(System.getenv("SG_TEST_HOLD_FILE"));
            long until = System.nanoTime() + 120_000_000_000L; // never longer than a test
            while (Files.exists(hold) && System.nanoTime() < until) pause(20);
        }
        context.reply(content);
    }

    private static void pause(long ms) {
        long until = System.nanoTime() + ms * 1_000_000;
        for (long left; (left = until - System.nanoTime()) > 0; ) {
            try {
                Thread.sleep(Math.max(1, left / 1_000_000));
            } catch (InterruptedException deaf) {
                // keeps going, as a handler in a call that ignores interrupts does
            }
        }
    }
}
