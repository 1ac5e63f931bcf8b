"""Sending on the channel layer from sync code, cheaply.

`async_to_sync(layer.send)` called from a thread with no event loop above it (a management
command, a script, a Celery-style producer) starts a new event loop per call, and
channels-redis opens a new Redis connection per loop: most of an enqueue's time. For a layer
that crosses processes, sync code here sends through one long-lived loop thread per process
instead. The in-memory layer only works on its own loop, so it keeps async_to_sync.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import InMemoryChannelLayer, get_channel_layer

SEND_TIMEOUT = 5.0

_loop: asyncio.AbstractEventLoop | None = None
_lock = threading.Lock()


def _sender_loop() -> asyncio.AbstractEventLoop:
    global _loop
    with _lock:
        if _loop is None or _loop.is_closed():
            _loop = asyncio.new_event_loop()
            threading.Thread(target=_loop.run_forever, name="layer-sender", daemon=True).start()
        return _loop


def layer_send(channel: str, message: dict[str, Any]) -> None:
    """Send `message` on `channel` from sync code; raises what the layer raises."""
    layer = get_channel_layer()
    if isinstance(layer, InMemoryChannelLayer):
        async_to_sync(layer.send)(channel, message)
        return
    future = asyncio.run_coroutine_threadsafe(layer.send(channel, message), _sender_loop())
    future.result(SEND_TIMEOUT)
