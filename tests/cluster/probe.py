"""A long-lived Django process for the failover tests: each line on stdin names a check, each
answer is one JSON line on stdout. Long-lived, since what a failover tests is whether clients
made before it follow the new primary.

    layer     a message sent to a new channel of the channel layer comes back
    idle N    the same, but the message is sent only after N seconds, while the receiver
              waits in Redis (BZPOPMIN) on an idle connection
    limit KEY a count for KEY, by the rate limiter's sync and async entry points
"""

from __future__ import annotations

import asyncio
import json
import sys

import django


async def layer_round_trip(delay: float = 0) -> dict[str, object]:
    from channels.layers import get_channel_layer

    layer = get_channel_layer()
    channel = await layer.new_channel("probe.")

    async def send_later() -> None:
        await asyncio.sleep(delay)
        await layer.send(channel, {"type": "probe.ping"})

    sending = asyncio.ensure_future(send_later())
    message = await asyncio.wait_for(layer.receive(channel), delay + 10)
    await sending
    return {"ok": message == {"type": "probe.ping"}}


def limit(key: str, loop: asyncio.AbstractEventLoop) -> dict[str, object]:
    """Two hits on KEY (where they were counted, the test asks Redis)."""
    from wire import ratelimit

    # A limit of 0 refuses every hit: a verdict of None would mean nothing was counted.
    sync_wait = ratelimit.hit_sync(key, limit=0, window=3600)
    async_wait = loop.run_until_complete(ratelimit.hit(key, limit=0, window=3600))
    return {"ok": sync_wait is not None and async_wait is not None}


def main() -> None:
    django.setup()
    loop = asyncio.new_event_loop()
    for line in sys.stdin:
        command, *args = line.split()
        try:
            if command == "layer":
                answer = loop.run_until_complete(layer_round_trip())
            elif command == "idle":
                answer = loop.run_until_complete(layer_round_trip(float(args[0])))
            elif command == "limit":
                answer = limit(args[0], loop)
            else:
                answer = {"ok": False, "error": f"unknown command {command!r}"}
        except Exception as error:
            answer = {"ok": False, "error": f"{type(error).__name__}: {error}"}
        print(json.dumps(answer), flush=True)


if __name__ == "__main__":
    main()
