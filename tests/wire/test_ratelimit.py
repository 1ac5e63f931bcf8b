"""The fixed-window limiter: per key, shared through Redis when it is configured."""

import uuid
from typing import Any

import pytest

from tests.conftest import REDIS_URL
from wire import ratelimit


@pytest.fixture(autouse=True)
def redis_asked_again(monkeypatch: Any) -> None:
    """An earlier test that cut Redis off leaves the limiter counting in the process for
    RETRY_REDIS_AFTER seconds: these tests' limiter asks Redis from the start."""
    monkeypatch.setattr(ratelimit, "_redis_away_until", 0.0)


async def test_the_limit_counts_per_key_and_says_how_long_to_wait() -> None:
    # Keys of their own: Redis keeps a window's count for an hour, past this run.
    k1, k2 = f"k1-{uuid.uuid4().hex}", f"k2-{uuid.uuid4().hex}"
    results = [await ratelimit.hit(k1, limit=3, window=3600) for _ in range(5)]
    assert results[:3] == [None, None, None]
    assert all(0 < wait <= 3600 for wait in results[3:] if wait is not None)
    assert None not in results[3:]
    assert await ratelimit.hit(k2, limit=3, window=3600) is None


@pytest.mark.redis
async def test_with_redis_the_count_lives_in_redis(settings: Any) -> None:
    import redis.asyncio as aioredis

    key = f"shared-{uuid.uuid4().hex}"
    for _ in range(2):
        await ratelimit.hit(key, limit=5, window=3600)
    client = aioredis.Redis.from_url(REDIS_URL)
    keys = await client.keys(f"{key}:*")
    assert len(keys) == 1
    assert int(await client.get(keys[0])) == 2
    assert 0 < await client.ttl(keys[0]) <= 3601
    await client.aclose()


@pytest.mark.redis
async def test_a_thousand_hits_at_once_are_all_counted_in_redis(settings: Any) -> None:
    # A reconnect storm: more counts at once than the client's pool has connections. They
    # wait for one instead of failing, and none is counted in the process instead.
    import asyncio

    import redis.asyncio as aioredis

    key = f"storm-{uuid.uuid4().hex}"
    results = await asyncio.gather(
        *(ratelimit.hit(key, limit=5000, window=3600) for _ in range(1000))
    )
    assert results == [None] * 1000
    client = aioredis.Redis.from_url(REDIS_URL)
    keys = await client.keys(f"{key}:*")
    assert [int(await client.get(key)) for key in keys] == [1000]
    await client.aclose()
    assert not [k for k in ratelimit._local if k.startswith(key)]


@pytest.mark.redis
async def test_counts_that_come_together_are_one_command_each_key_its_own_expiry(
    settings: Any,
) -> None:
    import asyncio

    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(REDIS_URL)
    await ratelimit.hit(f"warm-{uuid.uuid4().hex}", limit=5, window=60)  # the script loaded
    short, long = f"short-{uuid.uuid4().hex}", f"long-{uuid.uuid4().hex}"
    await client.config_resetstat()
    results = await asyncio.gather(
        *(ratelimit.hit(short, limit=300, window=60) for _ in range(300)),
        *(ratelimit.hit(long, limit=3, window=3600) for _ in range(5)),
    )
    stats = await client.info("commandstats")
    assert results[:303] == [None] * 303
    assert all(wait is not None and 0 < wait <= 3600 for wait in results[303:])
    # 305 counts: a command for each COUNTS_AT_ONCE of them, not one each.
    assert stats["cmdstat_evalsha"]["calls"] == 1
    [short_key], [long_key] = await client.keys(f"{short}:*"), await client.keys(f"{long}:*")
    assert (int(await client.get(short_key)), int(await client.get(long_key))) == (300, 5)
    assert 0 < await client.ttl(short_key) <= 61
    assert 61 < await client.ttl(long_key) <= 3601
    await client.aclose()


@pytest.mark.redis
async def test_a_redis_that_forgot_the_count_script_still_counts_in_redis(settings: Any) -> None:
    # A Redis restarted or failed over since the last count no longer knows the script.
    import redis.asyncio as aioredis
    from asgiref.sync import sync_to_async

    key = f"forgot-{uuid.uuid4().hex}"
    client = aioredis.Redis.from_url(REDIS_URL)
    for count in (ratelimit.hit, sync_to_async(ratelimit.hit_sync)):
        await client.script_flush()
        assert await count(key, limit=5, window=3600) is None
    keys = await client.keys(f"{key}:*")
    # Both ways counted the one key, and gave it its expiry once.
    assert len(keys) == 1
    assert int(await client.get(keys[0])) == 2
    assert 0 < await client.ttl(keys[0]) <= 3601
    await client.aclose()
    assert not [k for k in ratelimit._local if k.startswith(key)]
