"""Times the original Python module's publish path (../shared/seed/000_2069c7f9441e9aac.txt, core/event_bus.py).

The class below is the seed's RedisEventBus publish path restored with its indentation: the logging calls,
serialize_stream_payload (msgpack with use_bin_type=True, plus the trace_id field of the wire format), then
_check_stream_backlog (XPENDING and XLEN, two awaited round trips) and XADD with approximate MAXLEN, one
awaited round trip: three per publish, as in the original. Docstrings are left out; the logic is unchanged.

Usage: /usr/bin/python3 bench/seed_publish.py HOST PORT STREAM GROUP COUNT WARMUP MAXLEN
Prints one JSON line: {"count": N, "seconds": S, "payload_bytes": B}.
"""
import asyncio
import json
import logging
import os
import sys
import time
import uuid
from typing import Any

import msgpack
from redis.asyncio import Redis

logger = logging.getLogger("stargazer.event_bus")


def serialize_stream_payload(envelope: dict[str, Any]) -> dict[str, bytes]:
    # core.serialization is not part of the seed; the wire format (shared/wire-format.md) fixes what it writes.
    trace_id = envelope.get("trace_id")
    if not isinstance(trace_id, str) or not trace_id:
        trace_id = uuid.uuid4().hex
    return {"payload": msgpack.packb(envelope, use_bin_type=True), "trace_id": trace_id.encode()}


class RedisEventBus:
    def __init__(self, redis: Redis, node_role: str, node_id: str, *, stream_maxlen: int = 100_000,
                 inbound_stream: str, worker_group: str) -> None:
        self._redis = redis
        self._node_role = node_role
        self._node_id = node_id
        self._stream_maxlen = max(1000, int(stream_maxlen))
        # The seed reads these from SG_INBOUND_STREAM / SG_WORKER_GROUP at import time.
        self._inbound_stream = inbound_stream
        self._worker_group = worker_group

    async def ensure_streams(self) -> None:
        try:
            await self._redis.xgroup_create(self._inbound_stream, self._worker_group, id="$", mkstream=True)
        except Exception:
            logger.debug("Consumer group already exists: %s/%s", self._inbound_stream, self._worker_group)

    async def publish_inbound(self, envelope: dict[str, Any]) -> str:
        logger.debug(
            "Publishing inbound payload envelope",
            extra={
                "channel_id": envelope.get("channel_id"),
                "platform": envelope.get("platform"),
                "content_len": len(envelope.get("content", "") or ""),
            },
        )
        raw = serialize_stream_payload(envelope)
        await self._check_stream_backlog(self._inbound_stream, self._worker_group)
        res = await self._redis.xadd(
            self._inbound_stream, raw, maxlen=self._stream_maxlen, approximate=True,
        )
        msg_id = res.decode() if isinstance(res, bytes) else str(res)
        logger.info(
            "Published inbound event",
            extra={
                "stream_msg_id": msg_id,
                "channel_id": envelope.get("channel_id"),
                "platform": envelope.get("platform"),
                "trace_id": raw.get("trace_id", b"").decode(),
            },
        )
        return msg_id

    async def get_pending_count(self, stream: str, group: str) -> int:
        try:
            info = await self._redis.xpending(stream, group)
            return info.get("pending", 0) if isinstance(info, dict) else 0
        except Exception:
            return 0

    async def _check_stream_backlog(self, stream: str, group: str) -> None:
        try:
            pending = await self.get_pending_count(stream, group)
            length = await self._redis.xlen(stream)
            if length > int(self._stream_maxlen * 0.8) or pending > 1000:
                logger.warning(
                    "Stream backlog high — eviction risk",
                    extra={
                        "stream": stream,
                        "group": group,
                        "length": length,
                        "pending": pending,
                        "maxlen": self._stream_maxlen,
                    },
                )
        except Exception:
            logger.debug("Stream backlog check failed for %s", stream, exc_info=True)


def envelope(i: int) -> dict[str, Any]:
    # The Java harness's envelope, in the same key order: 200 bytes of msgpack.
    return {
        "platform": "webchat",
        "channel_id": "c-%03d" % (i % 64),
        "content": "x" * 99,
        "type": "message",
        "trace_id": "5f2b8c0d9e7a41b3a6c4d2e1f0b9a8c7",
    }


async def main() -> None:
    host, port, stream, group = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    count, warmup, maxlen = int(sys.argv[5]), int(sys.argv[6]), int(sys.argv[7])
    password = os.environ.get("BENCH_REDIS_PASSWORD") or None
    redis = Redis(host=host, port=port, password=password)
    bus = RedisEventBus(redis, "gateway", "bench-seed", stream_maxlen=maxlen, inbound_stream=stream, worker_group=group)
    await bus.ensure_streams()
    envelopes = [envelope(i) for i in range(64)]
    for i in range(warmup):
        await bus.publish_inbound(envelopes[i % 64])
    t0 = time.perf_counter()
    for i in range(count):
        await bus.publish_inbound(envelopes[i % 64])
    seconds = time.perf_counter() - t0
    await redis.close()
    size = len(msgpack.packb(envelopes[0], use_bin_type=True))
    print(json.dumps({"count": count, "seconds": seconds, "payload_bytes": size}))


if __name__ == "__main__":
    asyncio.run(main())
