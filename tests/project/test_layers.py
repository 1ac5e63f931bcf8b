"""The project's Redis channel layer sends in one round trip what channels-redis sends in four:
what it writes must be what channels-redis writes, and read back by channels-redis itself."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import redis.asyncio
from channels.exceptions import ChannelFull
from channels_redis.core import RedisChannelLayer as LibraryLayer
from django.conf import settings

from project.layers import RedisChannelLayer

pytestmark = [pytest.mark.redis, pytest.mark.usefixtures("flush_redis")]


def layers(**config: Any) -> tuple[RedisChannelLayer, LibraryLayer]:
    """The project's layer and channels-redis' own, on the same Redis and prefix."""
    hosts = [{"address": settings.REDIS_URL, "socket_timeout": 30}]
    options = {"prefix": "layertest", **config}
    return RedisChannelLayer(hosts=hosts, **options), LibraryLayer(hosts=hosts, **options)


async def test_what_one_layer_sends_the_other_receives() -> None:
    ours, library = layers()
    await ours.send("compute", {"type": "job.wakeup", "job": 1})
    assert await library.receive("compute") == {"type": "job.wakeup", "job": 1}
    await library.send("thumbnails", {"type": "job.wakeup", "job": 2})
    assert await ours.receive("thumbnails") == {"type": "job.wakeup", "job": 2}
    # A process-local channel (a websocket consumer's): named in the message, read by name.
    specific = await library.new_channel()
    await ours.send(specific, {"type": "chat.message", "text": "hi"})
    assert await library.receive(specific) == {"type": "chat.message", "text": "hi"}


async def test_a_full_channel_refuses_until_its_message_is_taken() -> None:
    ours, _ = layers(channel_capacity={"compute": 1})
    await ours.send("compute", {"type": "job.wakeup", "job": 1})
    with pytest.raises(ChannelFull):
        await ours.send("compute", {"type": "job.wakeup", "job": 2})
    assert (await ours.receive("compute"))["job"] == 1
    await ours.send("compute", {"type": "job.wakeup", "job": 3})
    assert (await ours.receive("compute"))["job"] == 3


async def test_expired_messages_are_dropped_and_the_channel_expires() -> None:
    ours, _ = layers(channel_capacity={"compute": 1}, expiry=1)
    client = redis.asyncio.Redis.from_url(settings.REDIS_URL)
    try:
        await ours.send("compute", {"type": "job.wakeup", "job": 1})
        key = b"layertestcompute"
        assert 0 < await client.ttl(key) <= 1
        # Kept past its expiry (as a busy Redis might): the next send drops the stale
        # message instead of finding the channel full.
        await client.persist(key)
        await asyncio.sleep(2.1)
        await ours.send("compute", {"type": "job.wakeup", "job": 2})
        assert await client.zcard(key) == 1
        assert (await ours.receive("compute"))["job"] == 2
    finally:
        await client.aclose()


async def test_new_connections_do_not_read_package_metadata(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # redis-py otherwise looks its version up in the installed packages for every new
    # connection, and a reconnect storm grows the pools by hundreds.
    def scan(name: str) -> str:
        raise AssertionError(f"package metadata read for {name}")

    monkeypatch.setattr("redis.utils.metadata.version", scan)
    host = settings.CHANNEL_LAYERS["default"]["CONFIG"]["hosts"][0]
    layer = RedisChannelLayer(hosts=[host], prefix="layertest")
    # A new layer, a new pool: twenty commands at once open connections of their own.
    await asyncio.gather(*(layer.group_add(f"g{n}", "c") for n in range(20)))
    assert await layer.connection(0).zcard("layertest:group:g19") == 1
    await layer.flush()
