package io.stargazer.bus.internal;

import io.stargazer.bus.StargazerException;

/**
 * A handler's answer of "not mine to settle": the entry is neither acknowledged nor failed. It stays pending in Redis,
 * its delivery count put back (StreamConsumer.giveBack), and it is never dead-lettered for it; another consumer takes
 * it over after the claim time.
 * The tools service gives its requests back this way while it closes (a tool interrupted by close(), a request read
 * as it closes): a failure there says nothing about the request, and on its last allowed delivery a plain failure
 * would dead-letter it.
 */
final class LeavePending extends StargazerException {
    LeavePending(String message) {
        super(message);
    }
}
