package io.stargazer.bus.testing;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * Test CAs and server certificates made at test time with the {@code openssl} command (the JDK has no public API
 * to issue certificates; .ci/run installs openssl when it is missing). EC P-256 keys, valid for one day.
 */
public final class Certificates {
    private final Path dir;

    public Certificates(Path dir) {
        this.dir = dir;
    }

    /** A self-signed CA: {@code name.crt} and {@code name.key}; returns the certificate. */
    public Path ca(String name) {
        openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                "-keyout", name + ".key", "-out", name + ".crt", "-days", "1", "-subj", "/CN=" + name);
        return dir.resolve(name + ".crt");
    }

    /**
     * A server certificate signed by CA {@code ca} for these subject alternative names (e.g. {@code IP:127.0.0.1},
     * {@code DNS:localhost}): {@code name.crt} and {@code name.key}.
     */
    public Path server(String name, String ca, String... altNames) {
        try {
            Files.writeString(dir.resolve(name + ".ext"), "subjectAltName=" + String.join(",", altNames) + "\n");
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", name + ".key",
                "-out", name + ".csr", "-subj", "/CN=" + name);
        openssl("x509", "-req", "-in", name + ".csr", "-CA", ca + ".crt", "-CAkey", ca + ".key", "-CAcreateserial",
                "-out", name + ".crt", "-days", "1", "-extfile", name + ".ext");
        return dir.resolve(name + ".crt");
    }

    public Path key(String name) {
        return dir.resolve(name + ".key");
    }

    public Path crt(String name) {
        return dir.resolve(name + ".crt");
    }

    private void openssl(String... args) {
        List<String> cmd = new ArrayList<>();
        cmd.add("openssl");
        cmd.addAll(List.of(args));
        try {
            Process p = new ProcessBuilder(cmd).directory(dir.toFile()).redirectErrorStream(true).start();
            String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            if (!p.waitFor(60, TimeUnit.SECONDS) || p.exitValue() != 0) {
                throw new IllegalStateException(String.join(" ", cmd) + " failed: " + out);
            }
        } catch (IOException e) {
            throw new UncheckedIOException("cannot run openssl (install it: apt-get install openssl)", e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException(e);
        }
    }
}
