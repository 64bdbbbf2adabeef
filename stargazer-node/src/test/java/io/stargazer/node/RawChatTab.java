// Test helper: a chat tab on a plain socket, WebSocket handshake and frames written by hand, so that it can stop
// reading. With a tiny receive buffer that is never read, the node's writes to it stall at once: a tab whose
// browser hangs, or a client that floods and never reads.
package io.stargazer.node;

import java.io.ByteArrayOutputStream;
import java.io.DataInputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.util.Base64;
import java.util.concurrent.ThreadLocalRandom;

final class RawChatTab implements AutoCloseable {
    /** A close frame the node sent: its status code and reason. */
    record Close(int code, String reason) {
    }

    private final Socket socket;
    private final OutputStream out;
    private final DataInputStream in;

    private RawChatTab(Socket socket) throws IOException {
        this.socket = socket;
        this.out = socket.getOutputStream();
        this.in = new DataInputStream(socket.getInputStream());
    }

    /** Connects to {@code /ws/chat} with a receive buffer of {@code receiveBuffer} bytes and completes the handshake. */
    static RawChatTab open(int port, int receiveBuffer) throws IOException {
        Socket s = new Socket();
        s.setReceiveBufferSize(receiveBuffer); // before connect: it sets the window the node may fill
        s.setSoTimeout(30_000); // reads only when the test asks; never hang a test forever
        s.connect(new InetSocketAddress("127.0.0.1", port), 10_000);
        RawChatTab tab = new RawChatTab(s);
        byte[] nonce = new byte[16];
        ThreadLocalRandom.current().nextBytes(nonce);
        String request = "GET /ws/chat HTTP/1.1\r\nHost: 127.0.0.1:" + port + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                + "Sec-WebSocket-Key: " + Base64.getEncoder().encodeToString(nonce) + "\r\nSec-WebSocket-Version: 13\r\n\r\n";
        tab.out.write(request.getBytes(StandardCharsets.US_ASCII));
        tab.out.flush();
        String status = tab.readHeaders();
        if (!status.startsWith("HTTP/1.1 101")) {
            s.close();
            throw new IOException("handshake refused: " + status);
        }
        return tab;
    }

    /** Reads the response head byte by byte, so that no frame after it is consumed. Returns the status line. */
    private String readHeaders() throws IOException {
        ByteArrayOutputStream head = new ByteArrayOutputStream();
        int matched = 0;
        byte[] end = {'\r', '\n', '\r', '\n'};
        while (matched < 4) {
            int b = in.read();
            if (b < 0) throw new IOException("connection closed during the handshake");
            head.write(b);
            matched = b == end[matched] ? matched + 1 : (b == '\r' ? 1 : 0);
        }
        return head.toString(StandardCharsets.US_ASCII).lines().findFirst().orElse("");
    }

    /** Writes one masked text frame (a client must mask); blocks only when the node stops reading. */
    void sendText(String text) throws IOException {
        byte[] payload = text.getBytes(StandardCharsets.UTF_8);
        ByteArrayOutputStream f = new ByteArrayOutputStream(payload.length + 14);
        f.write(0x81); // FIN, text
        if (payload.length < 126) {
            f.write(0x80 | payload.length);
        } else if (payload.length < 65536) {
            f.write(0x80 | 126);
            f.write(payload.length >>> 8);
            f.write(payload.length & 0xff);
        } else {
            throw new IllegalArgumentException("frame too large for this helper");
        }
        byte[] mask = new byte[4];
        ThreadLocalRandom.current().nextBytes(mask);
        f.write(mask);
        for (int i = 0; i < payload.length; i++) f.write(payload[i] ^ mask[i & 3]);
        out.write(f.toByteArray());
        out.flush();
    }

    /** Reads one frame the node sent; returns its opcode and payload. */
    private Frame readFrame() throws IOException {
        int b0 = in.readUnsignedByte();
        int b1 = in.readUnsignedByte();
        long len = b1 & 0x7f;
        if (len == 126) len = in.readUnsignedShort();
        else if (len == 127) len = in.readLong();
        if ((b1 & 0x80) != 0) in.skipNBytes(4); // a server never masks, but be lenient
        return new Frame(b0 & 0x0f, in.readNBytes((int) len));
    }

    private record Frame(int opcode, byte[] payload) {
    }

    /** Reads frames until the first text frame and returns it (the node's hello comes first). */
    String readText() throws IOException {
        while (true) {
            Frame f = readFrame();
            if (f.opcode() == 0x1) return new String(f.payload(), StandardCharsets.UTF_8);
            if (f.opcode() == 0x8) throw new IOException("closed by the node before a text frame");
        }
    }

    /**
     * Reads (and discards) every frame the node sent until its close frame; returns that frame's code and reason.
     * Throws when the connection ends without one.
     */
    Close readUntilClose() throws IOException {
        while (true) {
            Frame f = readFrame();
            if (f.opcode() == 0x8) {
                byte[] p = f.payload();
                int code = p.length >= 2 ? ((p[0] & 0xff) << 8) | (p[1] & 0xff) : 1005;
                String reason = p.length > 2 ? new String(p, 2, p.length - 2, StandardCharsets.UTF_8) : "";
                return new Close(code, reason);
            }
        }
    }

    @Override
    public void close() throws IOException {
        socket.close();
    }
}
