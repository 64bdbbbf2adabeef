package io.stargazer.testing;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.math.BigInteger;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.spec.ECGenParameterSpec;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Base64;
import java.util.Date;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicLong;
import org.bouncycastle.asn1.x500.X500Name;
import org.bouncycastle.asn1.x509.BasicConstraints;
import org.bouncycastle.asn1.x509.ExtendedKeyUsage;
import org.bouncycastle.asn1.x509.Extension;
import org.bouncycastle.asn1.x509.GeneralName;
import org.bouncycastle.asn1.x509.GeneralNames;
import org.bouncycastle.asn1.x509.KeyPurposeId;
import org.bouncycastle.asn1.x509.KeyUsage;
import org.bouncycastle.cert.X509CertificateHolder;
import org.bouncycastle.cert.X509v3CertificateBuilder;
import org.bouncycastle.cert.jcajce.JcaX509ExtensionUtils;
import org.bouncycastle.cert.jcajce.JcaX509v3CertificateBuilder;
import org.bouncycastle.operator.OperatorCreationException;
import org.bouncycastle.operator.jcajce.JcaContentSignerBuilder;

/**
 * Test CAs and server certificates, made in the test's JVM with BouncyCastle (the JDK has no public API to issue
 * certificates), so the TLS tests need no {@code openssl} command. EC P-256 keys, valid for one day, written as PEM
 * files the way a server and a client read them: {@code name.crt} (the certificate) and {@code name.key} (its
 * PKCS#8 private key).
 */
public final class Certificates {
    private static final AtomicLong SERIAL = new AtomicLong(System.currentTimeMillis());
    private final Path dir;
    private final Map<String, Issued> issued = new HashMap<>();

    private record Issued(KeyPair keys, X509CertificateHolder cert) {
    }

    public Certificates(Path dir) {
        this.dir = dir;
    }

    /** A self-signed CA: {@code name.crt} and {@code name.key}; returns the certificate. */
    public Path ca(String name) {
        KeyPair keys = newKeyPair();
        X500Name subject = new X500Name("CN=" + name);
        return write(name, keys, sign(subject, keys, subject, keys, builder -> {
            builder.addExtension(Extension.basicConstraints, true, new BasicConstraints(true));
            builder.addExtension(Extension.keyUsage, true, new KeyUsage(KeyUsage.keyCertSign | KeyUsage.cRLSign));
        }));
    }

    /**
     * A server certificate signed by CA {@code ca} (made by {@link #ca} of this instance) for these subject
     * alternative names, written as openssl takes them (e.g. {@code IP:127.0.0.1}, {@code DNS:localhost}):
     * {@code name.crt} and {@code name.key}.
     */
    public Path server(String name, String ca, String... altNames) {
        Issued issuer = issued.get(ca);
        if (issuer == null) {
            throw new IllegalArgumentException("no CA named " + ca + " was made here");
        }
        List<GeneralName> names = new ArrayList<>();
        for (String alt : altNames) {
            if (alt.startsWith("IP:")) names.add(new GeneralName(GeneralName.iPAddress, alt.substring(3)));
            else if (alt.startsWith("DNS:")) names.add(new GeneralName(GeneralName.dNSName, alt.substring(4)));
            else throw new IllegalArgumentException("subject alternative name " + alt + " is neither IP: nor DNS:");
        }
        KeyPair keys = newKeyPair();
        return write(name, keys, sign(new X500Name("CN=" + name), keys, issuer.cert().getSubject(), issuer.keys(), builder -> {
            builder.addExtension(Extension.basicConstraints, true, new BasicConstraints(false));
            builder.addExtension(Extension.keyUsage, true, new KeyUsage(KeyUsage.digitalSignature));
            builder.addExtension(Extension.extendedKeyUsage, false, new ExtendedKeyUsage(KeyPurposeId.id_kp_serverAuth));
            builder.addExtension(Extension.subjectAlternativeName, false, new GeneralNames(names.toArray(GeneralName[]::new)));
            builder.addExtension(Extension.authorityKeyIdentifier, false,
                    new JcaX509ExtensionUtils().createAuthorityKeyIdentifier(issuer.keys().getPublic()));
        }));
    }

    public Path key(String name) {
        return dir.resolve(name + ".key");
    }

    public Path crt(String name) {
        return dir.resolve(name + ".crt");
    }

    private interface Extensions {
        void add(X509v3CertificateBuilder builder) throws IOException, GeneralSecurityException;
    }

    private static X509CertificateHolder sign(X500Name subject, KeyPair keys, X500Name issuer, KeyPair issuerKeys,
            Extensions extensions) {
        Instant now = Instant.now();
        try {
            X509v3CertificateBuilder builder = new JcaX509v3CertificateBuilder(issuer, BigInteger.valueOf(SERIAL.incrementAndGet()),
                    Date.from(now.minus(Duration.ofMinutes(5))), Date.from(now.plus(Duration.ofDays(1))), subject, keys.getPublic());
            builder.addExtension(Extension.subjectKeyIdentifier, false,
                    new JcaX509ExtensionUtils().createSubjectKeyIdentifier(keys.getPublic()));
            extensions.add(builder);
            return builder.build(new JcaContentSignerBuilder("SHA256withECDSA").build(issuerKeys.getPrivate()));
        } catch (IOException | GeneralSecurityException | OperatorCreationException e) {
            throw new IllegalStateException("cannot issue a certificate for " + subject, e);
        }
    }

    private Path write(String name, KeyPair keys, X509CertificateHolder cert) {
        issued.put(name, new Issued(keys, cert));
        try {
            Files.writeString(key(name), pem("PRIVATE KEY", keys.getPrivate().getEncoded()));
            Files.writeString(crt(name), pem("CERTIFICATE", cert.getEncoded()));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return crt(name);
    }

    private static String pem(String type, byte[] der) {
        return "-----BEGIN " + type + "-----\n" + Base64.getMimeEncoder(64, new byte[] {'\n'}).encodeToString(der)
                + "\n-----END " + type + "-----\n";
    }

    private static KeyPair newKeyPair() {
        try {
            KeyPairGenerator g = KeyPairGenerator.getInstance("EC");
            g.initialize(new ECGenParameterSpec("secp256r1"));
            return g.generateKeyPair();
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException("EC P-256 keys are not available in this JVM", e);
        }
    }
}
