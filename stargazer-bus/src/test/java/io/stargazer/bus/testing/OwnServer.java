package io.stargazer.bus.testing;

import io.stargazer.bus.BusConfig;
import io.stargazer.bus.Provisioning;
import io.stargazer.bus.RedisUrl;
import io.stargazer.embedded.RedisServerProcess;
import org.junit.jupiter.api.extension.AfterAllCallback;
import org.junit.jupiter.api.extension.BeforeAllCallback;
import org.junit.jupiter.api.extension.ExtensionContext;

/**
 * A redis-server of a test class's own, for the tests that pause, restart or reconfigure it or load the library and
 * ACL users into it (the others share {@link TestRedis}'s): {@code @RegisterExtension static final OwnServer redis =
 * new OwnServer();} starts it before the class's tests and stops it after them.
 */
public final class OwnServer implements BeforeAllCallback, AfterAllCallback {
    private final boolean provisioned;
    private RedisServerProcess server;

    public OwnServer() {
        this(false);
    }

    /** {@code provisioned}: the stargazer library loaded and the topology's groups made ({@code stargazer provision}). */
    public OwnServer(boolean provisioned) {
        this.provisioned = provisioned;
    }

    @Override
    public void beforeAll(ExtensionContext context) {
        server = RedisServerProcess.builder().start();
        if (provisioned) Provisioning.provision(url(), BusConfig.builder().topology(TestRedis.topology()).build());
    }

    @Override
    public void afterAll(ExtensionContext context) {
        server.stop();
    }

    public RedisServerProcess process() {
        return server;
    }

    public RedisUrl url() {
        return RedisUrl.parse(server.url());
    }
}
