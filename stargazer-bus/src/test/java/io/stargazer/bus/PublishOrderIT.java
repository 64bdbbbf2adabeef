package io.stargazer.bus;

import static org.assertj.core.api.Assertions.assertThat;

import io.stargazer.bus.testing.TestRedis;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import org.junit.jupiter.api.Test;

// Entries published by one thread reach the stream in the order they were published, also while batches complete
// on the Redis I/O thread and the next batch is sent from there.
class PublishOrderIT {
    @Test
    void eachThreadsEntriesKeepTheirOrderInTheStream() throws Exception {
        try (EventBus bus = TestRedis.bus(NodeRole.GATEWAY)) {
            String stream = bus.topology().inboundStream();
            int perThread = 3000;
            int threadCount = 4;
            List<Thread> threads = new ArrayList<>();
            List<CompletableFuture<String>> all = java.util.Collections.synchronizedList(new ArrayList<>());
            for (int t = 0; t < threadCount; t++) {
                String name = "t" + t;
                threads.add(new Thread(() -> {
                    for (int i = 0; i < perThread; i++) {
                        all.add(bus.publishAsync(stream, Envelope.of("channel_id", name, "n", i)));
                        // Pace the publishes a little, as requests arriving over a network do, so that batches
                        // often complete (and the next is sent) on the Redis I/O thread between two publishes.
                        if (i % 8 == 0) all.get(all.size() - 1).join();
                    }
                }));
            }
            threads.forEach(Thread::start);
            for (Thread t : threads) t.join();
            CompletableFuture.allOf(all.toArray(CompletableFuture[]::new)).join();
            long[] last = new long[threadCount];
            java.util.Arrays.fill(last, -1);
            String after = "0";
            int seen = 0;
            // Every publish completed above, so the stream holds them all: an empty page ends the read.
            for (List<StreamEntry> page = bus.read(stream, after, 1000); !page.isEmpty(); page = bus.read(stream, after, 1000)) {
                for (StreamEntry e : page) {
                    int t = Integer.parseInt(e.envelope().channelId().substring(1));
                    long n = e.envelope().longValue("n", -1);
                    assertThat(n).as("entry %s of %s", n, e.envelope().channelId()).isEqualTo(last[t] + 1);
                    last[t] = n;
                    after = e.id();
                    seen++;
                }
            }
            assertThat(seen).isEqualTo(threadCount * perThread);
        }
    }
}
