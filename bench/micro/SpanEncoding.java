// Nanoseconds per entry for Lettuce to build and encode a span's EVALSHA of 300 entries over 6 partition streams, in
// the layout of before d40a806 (each entry: its stream's index, payload, trace_id) and the grouped one of StreamPublisher's
// SPAN_SCRIPT now (per stream: a count, then payload and trace_id per entry), alternated in one JVM:
//   java -cp stargazer-bench/target/stargazer-bench.jar bench/micro/SpanEncoding.java
import io.lettuce.core.codec.ByteArrayCodec;
import io.lettuce.core.codec.RedisCodec;
import io.lettuce.core.codec.StringCodec;
import io.lettuce.core.protocol.Command;
import io.lettuce.core.protocol.CommandArgs;
import io.lettuce.core.protocol.CommandType;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.PooledByteBufAllocator;
import java.nio.charset.StandardCharsets;

public class SpanEncoding {
    private static final RedisCodec<String, byte[]> CODEC = RedisCodec.of(StringCodec.UTF8, ByteArrayCodec.INSTANCE);

    public static void main(String[] a) {
        int n = 300;
        int streams = 6;
        byte[] payload = new byte[160];
        byte[] trace = "0123456789abcdef0123456789abcdef".getBytes(StandardCharsets.US_ASCII);
        java.util.Random rnd = new java.util.Random(1);
        int[] part = new int[n];
        int[] count = new int[streams];
        for (int i = 0; i < n; i++) count[part[i] = rnd.nextInt(streams)]++;
        String[] keys = new String[streams];
        for (int i = 0; i < streams; i++) keys[i] = "sg:stream:inbound:{part-" + i + "-of-6}";
        ByteBuf buf = PooledByteBufAllocator.DEFAULT.directBuffer(1 << 20);
        StringBuilder[] out = {new StringBuilder("index per entry (before):"), new StringBuilder("count per stream (now):  ")};
        for (int round = 0; round < 12; round++) {
            for (int grouped = 0; grouped < 2; grouped++) {
                int iterations = 20_000;
                long t0 = System.nanoTime();
                for (int it = 0; it < iterations; it++) {
                    CommandArgs<String, byte[]> args = new CommandArgs<>(CODEC).add("0123456789012345678901234567890123456789").add(streams);
                    for (String k : keys) args.addKey(k);
                    args.addValue("0".getBytes(StandardCharsets.US_ASCII));
                    if (grouped == 0) {
                        for (int i = 0; i < n; i++) {
                            args.addValue(Integer.toString(part[i] + 1).getBytes(StandardCharsets.US_ASCII)).addValue(payload).addValue(trace);
                        }
                    } else {
                        for (int s = 0; s < streams; s++) {
                            args.addValue(Integer.toString(count[s]).getBytes(StandardCharsets.US_ASCII));
                            for (int i = 0; i < count[s]; i++) args.addValue(payload).addValue(trace);
                        }
                    }
                    buf.clear();
                    new Command<String, byte[], Object>(CommandType.EVALSHA, null, args).encode(buf);
                }
                if (round >= 4) out[grouped].append(String.format(java.util.Locale.ROOT, " %.1f", (System.nanoTime() - t0) / (double) iterations / n));
            }
        }
        System.out.println(out[0] + " ns per entry\n" + out[1] + " ns per entry");
    }
}
