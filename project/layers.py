"""The project's channel layer on Redis: channels-redis' own, sending in one round trip.

channels-redis' `send()` makes four round trips to Redis (drop expired messages, count, add,
set the expiry), each a command through redis-py's asyncio client: a wake-up sent at enqueue
cost the enqueuing process more CPU than writing the job's row. Here the same four steps run
as one script, atomically; keys, serialization, capacity and expiry stay channels-redis',
so its `receive()` and every other process read what this one sends.
"""

from __future__ import annotations

import time
from typing import Any

from channels.exceptions import ChannelFull
from channels_redis import core

# channels-redis' send(), step for step. KEYS[1]: the channel's sorted set. ARGV: the score
# below which messages have expired, the channel's capacity, the message's score (now), the
# message, the key's expiry in seconds. Returns 0 if the channel is full.
SEND_SCRIPT = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], 0, ARGV[1])
if redis.call('ZCOUNT', KEYS[1], '-inf', '+inf') >= tonumber(ARGV[2]) then
    return 0
end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[4])
redis.call('EXPIRE', KEYS[1], ARGV[5])
return 1
"""


class RedisChannelLayer(core.RedisChannelLayer):  # type: ignore[misc]
    async def send(self, channel: str, message: dict[str, Any]) -> None:
        """Send a message onto a (general or specific) channel; ChannelFull if it is full."""
        assert isinstance(message, dict), "message is not a dict"
        assert self.require_valid_channel_name(channel), "Channel name not valid"
        assert "__asgi_channel__" not in message
        channel_non_local_name = channel
        if "!" in channel:
            # A process-local channel: the full name rides in the message, and the channel
            # always lives on the same host.
            message = {**message, "__asgi_channel__": channel}
            channel_non_local_name = self.non_local_name(channel)
            index = self.consistent_hash(channel)
        else:
            index = next(self._send_index_generator)
        now = time.time()
        expiry = int(self.expiry)
        sent = await self.connection(index).eval(
            SEND_SCRIPT,
            1,
            self.prefix + channel_non_local_name,
            int(now) - expiry,
            self.get_capacity(channel),
            now,
            self.serialize(message),
            expiry,
        )
        if not sent:
            raise ChannelFull()
