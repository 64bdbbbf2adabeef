// Test helper: a TCP proxy to Redis whose answers (server to client) can be held back, as on a stalled connection:
// what the client sends still reaches the server, so a command is carried out but its reply does not come.
package io.stargazer.node;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;

/** Threads: one accepting connections, and two per connection pumping bytes (daemons; all end at {@link #close}). */
final class FreezingProxy implements AutoCloseable {
    private final ServerSocket server;
    private final int redisPort;
    private final List<Socket> sockets = new CopyOnWriteArrayList<>();
    private boolean frozen;

    FreezingProxy(int redisPort) throws IOException {
        this.redisPort = redisPort;
        this.server = new ServerSocket(0, 50, InetAddress.getLoopbackAddress());
        daemon(this::accept, "proxy-accept");
    }

    int port() {
        return server.getLocalPort();
    }

    /** While frozen, answers wait in the proxy (and then in the sockets' buffers); thawed, they flow again. */
    synchronized void freeze(boolean f) {
        frozen = f;
        notifyAll();
    }

    private synchronized void awaitThawed() throws InterruptedException {
        while (frozen) wait();
    }

    private void accept() {
        try {
            while (true) {
                Socket client = server.accept();
                Socket redis = new Socket(InetAddress.getLoopbackAddress(), redisPort);
                sockets.add(client);
                sockets.add(redis);
                daemon(() -> pump(client, redis, false), "proxy-requests");
                daemon(() -> pump(redis, client, true), "proxy-answers");
            }
        } catch (IOException e) {
            // closed
        }
    }

    private void pump(Socket from, Socket to, boolean answers) {
        byte[] buf = new byte[16384];
        try (InputStream in = from.getInputStream(); OutputStream out = to.getOutputStream()) {
            int n;
            while ((n = in.read(buf)) >= 0) {
                if (answers) awaitThawed();
                out.write(buf, 0, n);
                out.flush();
            }
        } catch (IOException | InterruptedException e) {
            // closed
        }
        try {
            from.close();
            to.close();
        } catch (IOException e) {
            // closing anyway
        }
    }

    private static void daemon(Runnable r, String name) {
        Thread t = new Thread(r, name);
        t.setDaemon(true);
        t.start();
    }

    @Override
    public void close() throws IOException {
        freeze(false);
        server.close();
        for (Socket s : sockets) s.close();
    }
}
