"""The fixed-window limiter: per key, shared through Redis when it is configured."""

from typing import Any

import pytest

from tests.conftest import REDIS_URL
from wire import ratelimit


async def test_the_limit_counts_per_key_and_says_how_long_to_wait() -> None:
    results = [await ratelimit.hit("k1", limit=3, window=3600) for _ in range(5)]
    assert results[:3] == [None, None, None]
    assert all(0 < wait <= 3600 for wait in results[3:] if wait is not None)
    assert None not in results[3:]
    assert await ratelimit.hit("k2", limit=3, window=3600) is None


@pytest.mark.redis
async def test_with_redis_the_count_lives_in_redis(settings: Any) -> None:
    import redis.asyncio as aioredis

    for _ in range(2):
        await ratelimit.hit("shared", limit=5, window=3600)
    client = aioredis.Redis.from_url(REDIS_URL)
    keys = await client.keys("shared:*")
    assert len(keys) == 1
    assert int(await client.get(keys[0])) == 2
    assert 0 < await client.ttl(keys[0]) <= 3601
    await client.aclose()
