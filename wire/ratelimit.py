"""Fixed-window counters: in Redis when REDIS_URL is set (the Sentinels' primary with
REDIS_SENTINELS), so that every process counts against the same limit; in this process
otherwise (the embedded default runs one process), and while Redis does not answer: a limit
never lets everything through because Redis is away (each process then allows `limit` on its
own), and a Redis that is away costs a caller at most one short wait per RETRY_REDIS_AFTER.

`hit` is for async code (websockets), `hit_sync` for views; they count the same keys."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
import weakref
from typing import Any

import redis
import redis.asyncio as aioredis
import redis.asyncio.sentinel
import redis.sentinel
from django.conf import settings
from redis.exceptions import RedisError

from wire.batching import Batched, per_loop
from wire.outage import Outage

logger = logging.getLogger(__name__)

# A limiter must not hold anything up: a Redis slower than this is taken for away.
REDIS_TIMEOUT = 0.5
# Once Redis failed, count in this process for this long before asking it again.
RETRY_REDIS_AFTER = 5.0

# The counts of one event loop asked of Redis in one command at most. A loop asks for one
# such command at a time: a reconnect storm's thousand connects, each counted on a
# connection of its own, opened past the pool's 100 and failed with MaxConnectionsError.
COUNTS_AT_ONCE = 500

# redis.asyncio clients belong to the event loop that created them.
_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, aioredis.Redis] = (
    weakref.WeakKeyDictionary()
)
# One pool for the sync callers of each Redis (REDIS_URL, or the Sentinels'); thread-safe,
# unlike the async clients.
_sync_clients: dict[str, redis.Redis] = {}
# key -> (window number, count), for processes without Redis (or while it is away).
_local: dict[str, tuple[int, int]] = {}
# Each key's count, and a new key's expiry (ARGV: each key's), in one command: as a
# transaction (MULTI, INCR, EXPIRE, EXEC), its building and four replies cost 0.18 ms of the
# caller's CPU, the script 0.09 ms (every websocket connect and every chat message counts),
# and the counts of an event loop's callers that come together are one command. redis-py's
# Script sends it by its SHA-1 (EVALSHA), and loads it into a Redis that does not know it
# (restarted, failed over).
COUNT_SCRIPT = """
local counts = {}
for i, key in ipairs(KEYS) do
  counts[i] = redis.call('INCR', key)
  if counts[i] == 1 then redis.call('EXPIRE', key, ARGV[i]) end
end
return counts
"""
# time.monotonic() until which Redis is not asked.
_redis_away_until = 0.0
# Its going away and coming back, one line each (not one per RETRY_REDIS_AFTER).
_redis = Outage("Redis for the rate limits", logger)


async def hit(key: str, *, limit: int, window: float) -> float | None:
    """Count one event for `key`; None if within `limit` per `window` seconds, else the
    seconds until the window ends."""
    now = time.time()
    number = int(now // window)
    count = None
    if _ask_redis():
        try:
            count = await _redis_count(f"{key}:{number}", window)
        except (RedisError, OSError, TimeoutError) as error:
            _redis_away(error)
        else:
            if _redis.failing:
                _redis.answered(_address(await _primary_address(_client())))
    if count is None:
        count = _local_count(key, number)
    return _verdict(count, limit=limit, now=now, number=number, window=window)


def hit_sync(key: str, *, limit: int, window: float) -> float | None:
    """`hit` for synchronous code (views): the same keys, counts and answers."""
    now = time.time()
    number = int(now // window)
    count = None
    if _ask_redis():
        try:
            count_script = _sync_client().register_script(COUNT_SCRIPT)
            [count] = count_script(keys=[f"{key}:{number}"], args=[_ttl(window)])
        except (RedisError, OSError, TimeoutError) as error:
            _redis_away(error)
        else:
            if _redis.failing:
                _redis.answered(_address(_sync_primary_address(_sync_client())))
    if count is None:
        count = _local_count(key, number)
    return _verdict(count, limit=limit, now=now, number=number, window=window)


def _ask_redis() -> bool:
    return bool(settings.REDIS_URL) and time.monotonic() >= _redis_away_until


def _redis_away(error: BaseException) -> None:
    global _redis_away_until
    _redis_away_until = time.monotonic() + RETRY_REDIS_AFTER
    _redis.failed(error)


async def _primary_address(client: aioredis.Redis) -> Any:
    """The Sentinels' primary the client now uses (None without Sentinels, or if they do
    not say): asked once, when Redis answers again, for the log."""
    pool = client.connection_pool
    if not isinstance(pool, aioredis.sentinel.SentinelConnectionPool):
        return None
    with contextlib.suppress(RedisError, OSError, TimeoutError):
        return await pool.get_master_address()  # type: ignore[no-untyped-call]
    return None


def _sync_primary_address(client: redis.Redis) -> Any:
    """`_primary_address` for the synchronous client."""
    pool = client.connection_pool
    if not isinstance(pool, redis.sentinel.SentinelConnectionPool):
        return None
    with contextlib.suppress(RedisError, OSError, TimeoutError):
        return pool.get_master_address()  # type: ignore[no-untyped-call]
    return None


def _address(address: Any) -> str:
    return f"{address[0]}:{address[1]}" if address else ""


def _verdict(count: int, *, limit: int, now: float, number: int, window: float) -> float | None:
    return None if count <= limit else (number + 1) * window - now


def _client() -> aioredis.Redis:
    loop = asyncio.get_running_loop()
    client = _clients.get(loop)
    if client is None:
        client = _clients[loop] = _connect(aioredis)
    return client


def _sync_client() -> redis.Redis:
    sentinel = settings.REDIS_SENTINEL
    # Settings may change under tests: one client per place Redis is found at.
    where = repr(sentinel) if sentinel else settings.REDIS_URL
    client = _sync_clients.get(where)
    if client is None:
        client = _sync_clients[where] = _connect(redis)
    return client


def _connect(module: Any) -> Any:
    """A client of `module` (redis, or redis.asyncio: the same API) for the limiter's Redis:
    the Sentinel-managed primary where settings name Sentinels, else REDIS_URL."""
    sentinel = settings.REDIS_SENTINEL
    if sentinel:
        return module.Sentinel(
            sentinel["sentinels"], sentinel_kwargs=sentinel["sentinel_kwargs"]
        ).master_for(sentinel["master_name"], **_primary_options(sentinel))
    return module.Redis.from_url(
        settings.REDIS_URL,
        socket_timeout=REDIS_TIMEOUT,
        socket_connect_timeout=REDIS_TIMEOUT,
        driver_info=settings.REDIS_DRIVER_INFO,
    )


def _primary_options(sentinel: dict[str, Any]) -> dict[str, Any]:
    """The connection options of a Sentinel-managed primary (project/settings.py
    redis_sentinel()): its database and credentials, and the limiter's short timeouts. Its
    client asks the Sentinels where the primary is on every new connection, so after a
    failover the first failed count (RETRY_REDIS_AFTER) is the only one counted locally."""
    return {
        "db": sentinel["db"],
        "username": sentinel["username"],
        "password": sentinel["password"],
        "socket_timeout": REDIS_TIMEOUT,
        "socket_connect_timeout": REDIS_TIMEOUT,
        "driver_info": settings.REDIS_DRIVER_INFO,
    }


async def _redis_count(key: str, window: float) -> int:
    count: int = await _counting().add_one((key, _ttl(window)))
    return count


async def _redis_counts(counting: list[tuple[str, int]]) -> list[int]:
    """Count each (key, expiry) in Redis, in one command."""
    count_script = _client().register_script(COUNT_SCRIPT)
    counts = await count_script(keys=[key for key, _ in counting], args=[t for _, t in counting])
    return [int(count) for count in counts]


def _batched_counts() -> Batched[tuple[str, int], list[int]]:
    return Batched(_redis_counts, most=COUNTS_AT_ONCE)


_counting = per_loop(_batched_counts)


def _ttl(window: float) -> int:
    """A window's counter's expiry: past the window's end."""
    return math.ceil(window) + 1


def _local_count(key: str, number: int) -> int:
    seen, count = _local.get(key, (number, 0))
    count = count + 1 if seen == number else 1
    _local[key] = (number, count)
    if len(_local) > 10_000:
        # Forget finished windows, so the table stays the size of the active users.
        for stale in [k for k, (n, _) in _local.items() if n < number]:
            del _local[stale]
    return count
