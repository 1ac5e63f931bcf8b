"""The sockets' hub in a reconnect storm: every user's group joined and left, on a bounded
number of connections to Redis; a user back within the grace finds their group joined."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
import redis.asyncio as aioredis
from django.conf import settings

from project.layers import RedisChannelLayer
from wire.sockets import LAYER_IN_FLIGHT, SocketHub, user_group

pytestmark = [pytest.mark.redis, pytest.mark.usefixtures("flush_redis")]


class Socket:
    """What the hub keeps of a socket: its user."""

    def __init__(self, user_id: int) -> None:
        self.user = type("User", (), {"pk": user_id})()


async def test_a_storm_of_users_joins_and_leaves_their_groups_on_few_connections() -> None:
    name = f"storm-{uuid.uuid4().hex[:8]}"
    host = {**settings.CHANNEL_LAYERS["default"]["CONFIG"]["hosts"][0], "client_name": name}
    layer = RedisChannelLayer(hosts=[host], prefix="stormtest")
    watcher = aioredis.Redis.from_url(settings.REDIS_URL)
    hub = SocketHub(layer)
    hub.leave_grace = 0
    sockets: list[Any] = [Socket(n) for n in range(1000)]
    most = 0

    async def count_connections() -> None:
        nonlocal most
        while True:
            clients = await watcher.client_list()
            most = max(most, sum(1 for c in clients if c.get("name") == name))
            await asyncio.sleep(0.01)

    counting = asyncio.create_task(count_connections())
    try:
        assert all(hub.join(socket) for socket in sockets)
        await asyncio.gather(*(hub.subscribe(socket.user.pk) for socket in sockets))
        groups = layer.connection(0)
        for n in (0, 499, 999):
            assert await groups.zscore(f"stormtest:group:{user_group(n)}", hub.channel)
        await asyncio.gather(*(hub.leave(socket) for socket in sockets))
        await asyncio.gather(*hub.departures.values())
        assert not await groups.exists(f"stormtest:group:{user_group(999)}")
    finally:
        counting.cancel()
        if hub.receiver is not None:
            hub.receiver.cancel()
        await layer.flush()
        await watcher.aclose()
    # The hub's receiver holds one more, blocked in its read.
    assert 0 < most <= LAYER_IN_FLIGHT + 1


async def test_a_user_back_within_the_grace_finds_the_group_joined_and_it_is_not_asked_again() -> (
    None
):
    layer = RedisChannelLayer(hosts=settings.CHANNEL_LAYERS["default"]["CONFIG"]["hosts"])
    watcher = aioredis.Redis.from_url(settings.REDIS_URL)
    hub = SocketHub(layer)
    hub.leave_grace = 0.5
    group = f"{layer.prefix}:group:{user_group(7)}"
    try:
        tab, again, later = Socket(7), Socket(7), Socket(7)
        hub.join(tab)
        await hub.subscribe(7, renew=False)
        # A join's score is the time it was made: any join or leave since changes it.
        joined_at = await watcher.zscore(group, hub.channel)
        assert joined_at
        # The page reloads: its socket closes and the next one opens within the grace.
        await hub.leave(tab)
        hub.join(again)
        await hub.subscribe(7, renew=False)
        await asyncio.sleep(0.7)
        assert await watcher.zscore(group, hub.channel) == joined_at
        # Gone for longer than the grace: the group is left, and joined again on return.
        await hub.leave(again)
        await asyncio.gather(*hub.departures.values())
        assert await watcher.zscore(group, hub.channel) is None
        hub.join(later)
        await hub.subscribe(7, renew=False)
        rejoined_at = await watcher.zscore(group, hub.channel)
        assert rejoined_at
        assert rejoined_at > joined_at
        # A socket's periodic renewal asks the layer again.
        await hub.subscribe(7)
        assert await watcher.zscore(group, hub.channel) > rejoined_at
    finally:
        if hub.receiver is not None:
            hub.receiver.cancel()
        await layer.flush()
        await watcher.aclose()
