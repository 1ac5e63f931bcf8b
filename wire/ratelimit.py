"""Fixed-window counters: in Redis when REDIS_URL is set, so that every process counts against
the same limit; in this process otherwise (the embedded default runs one process), and while
Redis does not answer: a limit never lets everything through because Redis is away, and a
Redis that is away costs a request at most one short wait per RETRY_REDIS_AFTER."""

from __future__ import annotations

import asyncio
import logging
import math
import time
import weakref

import redis.asyncio as aioredis
from django.conf import settings
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)

# A limiter must not hold anything up: a Redis slower than this is taken for away.
REDIS_TIMEOUT = 0.5
# Once Redis failed, count in this process for this long before asking it again.
RETRY_REDIS_AFTER = 5.0

# redis.asyncio clients belong to the event loop that created them.
_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, aioredis.Redis] = (
    weakref.WeakKeyDictionary()
)
# key -> (window number, count), for processes without Redis (or while it is away).
_local: dict[str, tuple[int, int]] = {}
# time.monotonic() until which Redis is not asked.
_redis_away_until = 0.0


def _client() -> aioredis.Redis:
    loop = asyncio.get_running_loop()
    client = _clients.get(loop)
    if client is None:
        client = aioredis.Redis.from_url(
            settings.REDIS_URL,
            socket_timeout=REDIS_TIMEOUT,
            socket_connect_timeout=REDIS_TIMEOUT,
        )
        _clients[loop] = client
    return client


async def hit(key: str, *, limit: int, window: float) -> float | None:
    """Count one event for `key`; None if within `limit` per `window` seconds, else the
    seconds until the window ends."""
    global _redis_away_until
    now = time.time()
    number = int(now // window)
    retry_after = (number + 1) * window - now
    count = None
    if settings.REDIS_URL and time.monotonic() >= _redis_away_until:
        try:
            count = await _redis_count(f"{key}:{number}", ttl=math.ceil(window) + 1)
        except (RedisError, OSError, TimeoutError):
            _redis_away_until = time.monotonic() + RETRY_REDIS_AFTER
            logger.warning(
                "rate limit key=%s counted in this process: Redis unavailable", key, exc_info=True
            )
    if count is None:
        count = _local_count(key, number)
    return None if count <= limit else retry_after


async def _redis_count(key: str, *, ttl: int) -> int:
    async with _client().pipeline(transaction=True) as pipe:
        pipe.incr(key)
        pipe.expire(key, ttl)
        count, _ = await pipe.execute()
    return int(count)


def _local_count(key: str, number: int) -> int:
    seen, count = _local.get(key, (number, 0))
    count = count + 1 if seen == number else 1
    _local[key] = (number, count)
    if len(_local) > 10_000:
        # Forget finished windows, so the table stays the size of the active users.
        for stale in [k for k, (n, _) in _local.items() if n < number]:
            del _local[stale]
    return count
