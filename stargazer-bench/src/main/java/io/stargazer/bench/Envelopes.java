// The one envelope every row publishes: 200 bytes of MessagePack, the same for the bus, the peers and the seed.
package io.stargazer.bench;

import io.stargazer.bus.Envelope;
import io.stargazer.bus.wire.WireFormat;
import java.nio.charset.StandardCharsets;

/**
 * Builds the benchmark's envelope: {@code platform}, {@code channel_id}, {@code content} (padding) and {@code type},
 * plus a 32-character {@code trace_id}, so that a worker echoing it back sends exactly the same bytes. Channels are
 * spread over {@link #CHANNELS} ids of the same width, as a gateway with many conversations would send them.
 */
final class Envelopes {
    static final int SIZE = 200;
    static final int CHANNELS = 64;
    static final String TRACE_ID = "5f2b8c0d9e7a41b3a6c4d2e1f0b9a8c7";
    static final byte[] TRACE_ID_BYTES = TRACE_ID.getBytes(StandardCharsets.US_ASCII);
    private static final int STAMP_CHARS = 16;
    /** Made once (before the sizes below, which use them): String.format per message was most of the round trip sender's work. */
    private static final String[] CHANNEL_IDS = java.util.stream.IntStream.range(0, CHANNELS)
            .mapToObj(i -> String.format("c-%03d", i)).toArray(String[]::new);
    private static final int CONTENT_LENGTH = contentLength();
    private static final Envelope[] BY_CHANNEL = new Envelope[CHANNELS];
    private static final byte[][] BYTES_BY_CHANNEL = new byte[CHANNELS][];

    static {
        for (int i = 0; i < CHANNELS; i++) {
            BY_CHANNEL[i] = build(channelId(i), "x".repeat(CONTENT_LENGTH));
            BYTES_BY_CHANNEL[i] = WireFormat.encode(BY_CHANNEL[i]);
            if (BYTES_BY_CHANNEL[i].length != SIZE) {
                throw new IllegalStateException("envelope of channel " + i + " is " + BYTES_BY_CHANNEL[i].length + " bytes");
            }
        }
    }

    private Envelopes() {
    }

    static String channelId(int i) {
        return CHANNEL_IDS[Math.floorMod(i, CHANNELS)];
    }

    private static Envelope build(String channel, String content) {
        return Envelope.builder().platform("webchat").channelId(channel).content(content).type("message").traceId(TRACE_ID).build();
    }

    private static int contentLength() {
        for (int n = 0; n < SIZE; n++) {
            if (WireFormat.encode(build(channelId(0), "x".repeat(n))).length == SIZE) {
                return n;
            }
        }
        throw new IllegalStateException("no content length gives a " + SIZE + "-byte envelope");
    }

    /** The envelope of channel {@code i mod CHANNELS}. */
    static Envelope envelope(int i) {
        return BY_CHANNEL[Math.floorMod(i, CHANNELS)];
    }

    /** Its encoded bytes (shared: do not modify). */
    static byte[] bytes(int i) {
        return BYTES_BY_CHANNEL[Math.floorMod(i, CHANNELS)];
    }

    /** The envelope with its content starting with {@code nanos} in 16 hex digits: same size, carries the send time. */
    static Envelope stamped(int i, long nanos) {
        String hex = Long.toHexString(nanos);
        StringBuilder sb = new StringBuilder(CONTENT_LENGTH);
        for (int k = hex.length(); k < STAMP_CHARS; k++) sb.append('0');
        sb.append(hex);
        for (int k = STAMP_CHARS; k < CONTENT_LENGTH; k++) sb.append('x');
        return build(channelId(i), sb.toString());
    }

    static long stamp(Envelope e) {
        return Long.parseUnsignedLong(e.content().substring(0, STAMP_CHARS), 16);
    }

    /** 200 printable bytes for redis-benchmark, whose arguments are text: the same size as the encoded envelope. */
    static String printablePayload() {
        return "p".repeat(SIZE);
    }
}
