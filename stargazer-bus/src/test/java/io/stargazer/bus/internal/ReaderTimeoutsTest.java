package io.stargazer.bus.internal;

import static org.assertj.core.api.Assertions.assertThat;

import io.lettuce.core.TimeoutOptions;
import io.lettuce.core.output.NestedMultiOutput;
import io.lettuce.core.output.StatusOutput;
import io.lettuce.core.protocol.AsyncCommand;
import io.lettuce.core.protocol.Command;
import io.lettuce.core.protocol.CommandArgs;
import io.lettuce.core.protocol.CommandType;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * The readers' command timeouts (Redis.readerTimeouts): a blocking read gets its own BLOCK plus the dead-peer timeout;
 * any other command of a reader's connection the dead-peer timeout, as the shared connection's PING. With the longest
 * BLOCK (5 s) plus it for everything, a tools client caught in the upkeep of its reply stream as its flow froze stayed
 * deaf 6 s instead of 1 (ReaderTimeoutIT failed so in CI once its reads had been fixed).
 */
class ReaderTimeoutsTest {
    private final TimeoutOptions.TimeoutSource source = Redis.readerTimeouts(Duration.ofSeconds(1)).getSource();

    @Test
    void aBlockingReadGetsItsBlockPlusTheDeadPeerTimeoutWrappedAsLettuceWrapsIt() {
        var read = new AsyncCommand<>(new Redis.BlockingRead<>(CommandType.XREADGROUP, new NestedMultiOutput<>(Redis.BYTES),
                new CommandArgs<>(Redis.BYTES), 200));
        assertThat(source.getTimeUnit()).isEqualTo(TimeUnit.MILLISECONDS);
        assertThat(source.getTimeout(read)).isEqualTo(1200);
    }

    @Test
    void anyOtherCommandOfAReaderGetsTheDeadPeerTimeout() {
        var other = new AsyncCommand<>(new Command<>(CommandType.XAUTOCLAIM, new StatusOutput<>(Redis.BYTES), new CommandArgs<>(Redis.BYTES)));
        assertThat(source.getTimeout(other)).isEqualTo(1000);
    }
}
