// Bad input to the dashboard's changing API: a body over the 64 KiB limit is refused (413) however it is framed, and a
// filter member that is not text is refused (400); neither acts on anything.
package io.stargazer.node;

import static org.assertj.core.api.Assertions.assertThat;

import io.lettuce.core.RedisURI;
import io.stargazer.bus.Envelope;
import io.stargazer.bus.NodeRole;
import io.stargazer.bus.Topology;
import io.stargazer.bus.wire.WireFormat;
import io.stargazer.testing.RawRedis;
import java.io.ByteArrayOutputStream;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

@Timeout(120)
class DashboardApiBadInputIT {
    private static final Map<String, String> ACTION = Map.of("X-Stargazer-Action", "1");

    private static Node start(Topology t, String nodeId) {
        // A worker with its HTTP server: the dashboard and its API on the main server, the worker group made.
        return Node.start(new Node.Settings(NodeRole.WORKER, new Node.Parts(false, true, false), TestRedis.url(), nodeId, null, -1,
                "127.0.0.1", 0, "echo", Duration.ofSeconds(10), TestEnv.of(t), Node.Dashboard.ON_MAIN_SERVER));
    }

    /** A POST whose body goes in chunks (Transfer-Encoding: chunked, no Content-Length), as curl -T - or a stream sends it. */
    private static String chunkedPost(int port, String path, String body) throws Exception {
        try (Socket s = new Socket()) {
            s.setSoTimeout(30_000);
            s.connect(new InetSocketAddress("127.0.0.1", port), 5_000);
            OutputStream out = s.getOutputStream();
            out.write(("POST " + path + " HTTP/1.1\r\nHost: 127.0.0.1:" + port + "\r\nX-Stargazer-Action: 1\r\n"
                    + "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n").getBytes(StandardCharsets.US_ASCII));
            byte[] b = body.getBytes(StandardCharsets.UTF_8);
            try {
                for (int i = 0; i < b.length; i += 8192) {
                    int n = Math.min(8192, b.length - i);
                    out.write((Integer.toHexString(n) + "\r\n").getBytes(StandardCharsets.US_ASCII));
                    out.write(b, i, n);
                    out.write("\r\n".getBytes(StandardCharsets.US_ASCII));
                }
                out.write("0\r\n\r\n".getBytes(StandardCharsets.US_ASCII));
                out.flush();
            } catch (java.io.IOException refusedEarly) {
                // The node may answer and close before taking the whole body: read its answer.
            }
            InputStream in = s.getInputStream();
            ByteArrayOutputStream all = new ByteArrayOutputStream();
            try {
                in.transferTo(all);
            } catch (java.net.SocketException reset) {
                // a reset after the answer: keep what came
            }
            return all.toString(StandardCharsets.UTF_8);
        }
    }

    @Test
    void aChunkedBodyOverTheLimitIsRefusedAndActsOnNothing() throws Exception {
        Topology t = TestRedis.topology();
        try (Node node = start(t, "node-chunked-body"); RawRedis raw = new RawRedis(RedisURI.create(TestRedis.url().toString()))) {
            int port = node.httpPort();
            String pausedKey = "{" + t.inboundStream() + "}:paused:" + t.workerGroup();
            String body = "{\"stream\":\"" + t.inboundStream() + "\",\"group\":\"" + t.workerGroup() + "\",\"pad\":\""
                    + "a".repeat(2 << 20) + "\"}";
            // With a Content-Length the limit holds.
            String withLength = RawHttp.request(port, "POST", "/api/pause", ACTION, body);
            assertThat(RawHttp.status(withLength)).as(withLength.lines().findFirst().orElse("")).isEqualTo(413);
            // The same body in chunks must be refused as well, not read whole into memory and acted on.
            String chunked = chunkedPost(port, "/api/pause", body);
            assertThat(chunked).as("the answer to a 2 MiB chunked body").isNotEmpty();
            assertThat(RawHttp.status(chunked)).as(chunked.lines().findFirst().orElse("")).isEqualTo(413);
            assertThat(raw.sync().exists(RawRedis.utf8(pausedKey))).as("the group was paused by an oversized request").isZero();
            // Under the limit, in chunks, it is served.
            String small = chunkedPost(port, "/api/pause", "{\"stream\":\"" + t.inboundStream() + "\",\"group\":\"" + t.workerGroup() + "\"}");
            assertThat(RawHttp.status(small)).as(small).isEqualTo(200);
            assertThat(raw.sync().exists(RawRedis.utf8(pausedKey))).isEqualTo(1);
        }
    }

    @Test
    void aFilterThatIsNotTextIsRefusedNotTakenAsEveryStream() throws Exception {
        Topology t = TestRedis.topology();
        String inboundDead = t.deadLetterStream(t.inboundStream());
        String toolsDead = t.deadLetterStream(t.toolsStream());
        try (Node node = start(t, "node-filter-types"); RawRedis raw = new RawRedis(RedisURI.create(TestRedis.url().toString()))) {
            int port = node.httpPort();
            for (String[] at : List.of(new String[] {inboundDead, t.inboundStream()}, new String[] {toolsDead, t.toolsStream()})) {
                raw.xadd(at[0], "payload", WireFormat.encode(Envelope.of("channel_id", "c-1", "content", "from " + at[1])),
                        "error", "boom", "source_stream", at[1], "source_id", "1-1", "group", "g", "deliveries", "5");
            }
            // A script meant one stream (or one error) and got the type wrong: refused, not "every dead letter".
            for (String body : List.of("{\"all\":true,\"stream\":5}", "{\"all\":true,\"stream\":[\"" + toolsDead + "\"]}",
                    "{\"all\":true,\"error\":{\"contains\":\"timeout\"}}", "{\"all\":true,\"stream\":\"" + toolsDead + "\",\"error\":7}")) {
                for (String kind : List.of("purge", "replay")) {
                    String r = RawHttp.request(port, "POST", "/api/dead/" + kind, ACTION, body);
                    assertThat(RawHttp.status(r)).as(kind + " " + body + ": " + r.substring(r.indexOf("\r\n\r\n") + 4)).isEqualTo(400);
                }
            }
            assertThat(raw.xlen(inboundDead)).isEqualTo(1);
            assertThat(raw.xlen(toolsDead)).isEqualTo(1);
            assertThat(raw.xlen(t.inboundStream())).as("replayed").isZero();
            // The same selection with text works on the one stream.
            String r = RawHttp.request(port, "POST", "/api/dead/purge", ACTION, "{\"all\":true,\"stream\":\"" + toolsDead + "\"}");
            assertThat(r).contains("\"purged\":1");
            assertThat(raw.xlen(inboundDead)).isEqualTo(1);
        }
    }
}
