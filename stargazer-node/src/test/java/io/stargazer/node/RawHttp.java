// Test helper: HTTP/1.1 on a plain socket, so that the Host header and the raw path are exactly what a test says
// (java.net.http sets Host itself and normalizes paths).
package io.stargazer.node;

import java.io.ByteArrayOutputStream;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

final class RawHttp {
    private static final Pattern DROPPED = Pattern.compile("(?m)^stargazer_webchat_tabs_dropped_total\\S* (\\S+)");

    private RawHttp() {
    }

    /** One request; the whole response (status line, headers, body). Host is 127.0.0.1:port unless given. */
    static String request(int port, String method, String path, Map<String, String> headers, String body) throws Exception {
        try (Socket s = new Socket()) {
            s.setSoTimeout(15_000);
            s.connect(new InetSocketAddress("127.0.0.1", port), 5_000);
            StringBuilder req = new StringBuilder(method + " " + path + " HTTP/1.1\r\n");
            if (!headers.containsKey("Host")) req.append("Host: 127.0.0.1:").append(port).append("\r\n");
            headers.forEach((k, v) -> req.append(k).append(": ").append(v).append("\r\n"));
            byte[] b = body == null ? new byte[0] : body.getBytes(StandardCharsets.UTF_8);
            if (body != null) req.append("Content-Type: application/json\r\nContent-Length: ").append(b.length).append("\r\n");
            req.append("Connection: close\r\n\r\n");
            OutputStream out = s.getOutputStream();
            out.write(req.toString().getBytes(StandardCharsets.UTF_8));
            out.write(b);
            out.flush();
            InputStream in = s.getInputStream();
            ByteArrayOutputStream all = new ByteArrayOutputStream();
            in.transferTo(all);
            return all.toString(StandardCharsets.UTF_8);
        }
    }

    /**
     * The status of a WebSocket handshake for {@code path} with {@code headers} (and Host 127.0.0.1:port unless given):
     * 101 when the node upgrades. Reads only the status line (an upgraded connection stays open).
     */
    static int upgradeStatus(int port, String path, Map<String, String> headers) throws Exception {
        try (Socket s = new Socket()) {
            s.setSoTimeout(15_000);
            s.connect(new InetSocketAddress("127.0.0.1", port), 5_000);
            StringBuilder req = new StringBuilder("GET " + path + " HTTP/1.1\r\n");
            if (!headers.containsKey("Host")) req.append("Host: 127.0.0.1:").append(port).append("\r\n");
            headers.forEach((k, v) -> req.append(k).append(": ").append(v).append("\r\n"));
            req.append("Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n")
                    .append("Sec-WebSocket-Version: 13\r\n\r\n");
            s.getOutputStream().write(req.toString().getBytes(StandardCharsets.UTF_8));
            s.getOutputStream().flush();
            InputStream in = s.getInputStream();
            ByteArrayOutputStream line = new ByteArrayOutputStream();
            for (int b = in.read(); b >= 0 && b != '\n'; b = in.read()) line.write(b);
            return status(line.toString(StandardCharsets.US_ASCII));
        }
    }

    static int status(String response) {
        return Integer.parseInt(response.substring(9, 12));
    }

    /** The node's count of web chat tabs dropped for not reading (its /metrics on {@code port}). */
    static long dropped(int port) throws Exception {
        Matcher m = DROPPED.matcher(request(port, "GET", "/metrics", Map.of(), null));
        return m.find() ? (long) Double.parseDouble(m.group(1)) : 0;
    }

    /** The first sample of Prometheus metric {@code name} on the node's /metrics, or -1 when it has none. */
    static double metric(int port, String name) throws Exception {
        Matcher m = Pattern.compile("(?m)^" + Pattern.quote(name) + "(\\{[^}]*\\})? (\\S+)")
                .matcher(request(port, "GET", "/metrics", Map.of(), null));
        return m.find() ? Double.parseDouble(m.group(2)) : -1;
    }

    /** The open web chat tabs the node reports in /api/streams, or -1 when it reports none. */
    static int openTabs(int port) throws Exception {
        Matcher m = Pattern.compile("\"open_tabs\":(\\d+)").matcher(request(port, "GET", "/api/streams", Map.of(), null));
        return m.find() ? Integer.parseInt(m.group(1)) : -1;
    }
}
