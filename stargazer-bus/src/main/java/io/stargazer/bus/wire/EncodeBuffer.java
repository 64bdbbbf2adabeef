package io.stargazer.bus.wire;

import java.util.Arrays;
import org.msgpack.core.buffer.MessageBuffer;
import org.msgpack.core.buffer.MessageBufferOutput;

/**
 * Where one thread's {@link WireFormat#encode} packs an envelope: one buffer kept from call to call, and the
 * envelope's bytes copied out of it once. msgpack-core's own {@code ArrayBufferOutput} slices its buffer on every flush
 * (two {@code MessageBuffer}s made per envelope, reflectively) and copies the slices out again: 15 % of the samples
 * of a JVM publishing asynchronously (JFR, bench/profile-notes.md).
 *
 * <p>Not thread-safe: one per thread. An envelope larger than the buffer goes through {@link #spill}, which grows.
 */
final class EncodeBuffer implements MessageBufferOutput {
    static final int BUFFER_SIZE = 8192;
    /** A thread that once encoded an envelope larger than this does not keep the memory (WireFormat drops it). */
    static final int KEEP_LIMIT = 1 << 20;

    private MessageBuffer buffer = MessageBuffer.allocate(BUFFER_SIZE);
    /** Bytes the packer has flushed into {@link #buffer} and not yet moved anywhere: the whole envelope, usually. */
    private int pending;
    /** Bytes of an envelope that did not fit in one buffer, in order; {@code spilled} of them are used. */
    private byte[] spill = new byte[0];
    private int spilled;

    /** Forgets the previous envelope. */
    void reset() {
        pending = 0;
        spilled = 0;
    }

    /** The bytes written since {@link #reset}. */
    byte[] toByteArray() {
        if (spilled == 0) {
            int from = buffer.arrayOffset();
            return Arrays.copyOfRange(buffer.array(), from, from + pending);
        }
        movePending();
        return Arrays.copyOf(spill, spilled);
    }

    /** True when this buffer grew past {@link #KEEP_LIMIT} and should not stay with its thread. */
    boolean oversized() {
        return buffer.size() > KEEP_LIMIT || spill.length > KEEP_LIMIT;
    }

    @Override
    public MessageBuffer next(int minimumSize) {
        // The packer writes from the start of what this returns: what it flushed before must be moved first.
        movePending();
        if (buffer.size() < minimumSize) {
            buffer = MessageBuffer.allocate(minimumSize);
        }
        return buffer;
    }

    @Override
    public void writeBuffer(int length) {
        movePending();
        pending = length;
    }

    @Override
    public void write(byte[] src, int offset, int length) {
        movePending();
        append(src, offset, length);
    }

    @Override
    public void add(byte[] src, int offset, int length) {
        write(src, offset, length);
    }

    @Override
    public void flush() {
    }

    @Override
    public void close() {
    }

    private void movePending() {
        if (pending > 0) {
            int n = pending;
            pending = 0;
            append(buffer.array(), buffer.arrayOffset(), n);
        }
    }

    private void append(byte[] src, int offset, int length) {
        if (spilled + length > spill.length) {
            spill = Arrays.copyOf(spill, Math.max(spilled + length, Math.max(BUFFER_SIZE, spill.length * 2)));
        }
        System.arraycopy(src, offset, spill, spilled, length);
        spilled += length;
    }
}
