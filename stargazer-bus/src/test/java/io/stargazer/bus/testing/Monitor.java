// What a server runs, command by command and client by client (MONITOR), for tests that must see how commands went out.
package io.stargazer.bus.testing;

import io.stargazer.bus.RedisUrl;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A MONITOR connection to a server of the test's own (plain TCP; logged in when the URL has a password): from
 * {@link #open} on, every command the server runs is kept as a {@link Line}, the client's address with it. A thread of its
 * own reads the feed until {@link #close}. Run only against a server no other test uses: it sees everything.
 */
public final class Monitor implements AutoCloseable {
    /** One command as MONITOR shows it: {@code client} is "ip:port", or "lua" for a command a script ran. */
    public record Line(String client, String command, List<String> args) {
    }

    // +1701234567.123456 [0 127.0.0.1:54321] "XADD" "key" "*" ...  (an IPv4 or Unix-socket peer: the tests use loopback)
    private static final Pattern LINE = Pattern.compile("^\\+\\d+\\.\\d+ \\[\\d+ ([^\\]]+)\\] (.*)$");
    private static final Pattern ARG = Pattern.compile("\"((?:[^\"\\\\]|\\\\.)*)\"");

    private final Socket socket;
    private final List<Line> lines = new CopyOnWriteArrayList<>();
    private final Thread reader;

    private Monitor(Socket socket, BufferedReader in) {
        this.socket = socket;
        this.reader = new Thread(() -> {
            try {
                String l;
                while ((l = in.readLine()) != null) {
                    Line parsed = parse(l);
                    if (parsed != null) lines.add(parsed);
                }
            } catch (IOException closed) {
                // close(): the feed ends
            }
        }, "monitor");
        reader.setDaemon(true);
    }

    public static Monitor open(RedisUrl url) throws IOException {
        Socket s = new Socket();
        try {
            s.connect(new java.net.InetSocketAddress(url.host(), url.port()), 10_000);
            // A server that never answers the login or MONITOR fails the test instead of hanging it; the feed then waits
            // without a bound (a quiet server is no failure).
            s.setSoTimeout(10_000);
            OutputStream out = s.getOutputStream();
            BufferedReader in = new BufferedReader(new InputStreamReader(s.getInputStream(), StandardCharsets.ISO_8859_1));
            if (url.password() != null) {
                List<String> auth = new ArrayList<>(List.of("AUTH"));
                if (url.user() != null) auth.add(url.user());
                auth.add(new String(url.password()));
                out.write(resp(auth));
                expectOk(in.readLine(), "AUTH");
            }
            out.write(resp(List.of("MONITOR")));
            expectOk(in.readLine(), "MONITOR");
            s.setSoTimeout(0);
            Monitor m = new Monitor(s, in);
            m.reader.start();
            return m;
        } catch (IOException | RuntimeException e) {
            s.close();
            throw e;
        }
    }

    /** What the server ran since {@link #open}, in its order. */
    public List<Line> lines() {
        return List.copyOf(lines);
    }

    @Override
    public void close() throws IOException {
        socket.close();
    }

    private static void expectOk(String reply, String command) throws IOException {
        if (!"+OK".equals(reply)) throw new IOException(command + " answered " + reply);
    }

    private static byte[] resp(List<String> args) {
        StringBuilder sb = new StringBuilder("*").append(args.size()).append("\r\n");
        for (String a : args) {
            sb.append('$').append(a.getBytes(StandardCharsets.UTF_8).length).append("\r\n").append(a).append("\r\n");
        }
        return sb.toString().getBytes(StandardCharsets.UTF_8);
    }

    static Line parse(String l) {
        Matcher m = LINE.matcher(l);
        if (!m.matches()) return null;
        List<String> args = new ArrayList<>();
        Matcher a = ARG.matcher(m.group(2));
        while (a.find()) args.add(a.group(1));
        if (args.isEmpty()) return null;
        return new Line(m.group(1), args.get(0).toUpperCase(java.util.Locale.ROOT), args.subList(1, args.size()));
    }
}
