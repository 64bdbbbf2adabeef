// Nanoseconds per WireFormat.decodeEntry of the inbound row's envelope with an entry trace_id field (the consumer's
// reader thread decodes every entry so). Run against two builds' jars alternately, e.g.
//   for j in A.jar B.jar A.jar B.jar; do java -cp $j bench/micro/DecodeEntry.java; done
// Prints rounds 5-10 (the first four are the JIT's).
import io.stargazer.bus.Envelope;
import io.stargazer.bus.wire.WireFormat;

public class DecodeEntry {
    public static void main(String[] args) {
        byte[] payload = WireFormat.encode(Envelope.of("platform", "webchat", "channel_id", "ch-17", "content",
                "message number 12345 with some text to make it a typical chat line", "seq", 12345));
        byte[] trace = "0123456789abcdef0123456789abcdef".getBytes(java.nio.charset.StandardCharsets.US_ASCII);
        long sink = 0;
        StringBuilder out = new StringBuilder("ns per decodeEntry:");
        for (int round = 0; round < 10; round++) {
            int n = 2_000_000;
            long t0 = System.nanoTime();
            for (int i = 0; i < n; i++) sink += WireFormat.decodeEntry(payload, trace).keys().size();
            if (round >= 4) out.append(String.format(java.util.Locale.ROOT, " %.1f", (System.nanoTime() - t0) / (double) n));
        }
        System.out.println(out + (sink == 42 ? "" : ""));
    }
}
