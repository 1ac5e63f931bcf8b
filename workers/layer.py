"""Sending on the channel layer from sync code, cheaply.

`async_to_sync(layer.send)` called from a thread with no event loop above it (a management
command, a script, a Celery-style producer) starts a new event loop per call, and
channels-redis opens a new Redis connection per loop: most of an enqueue's time. For a layer
that crosses processes, sync code here sends through one long-lived loop thread per process
instead. The in-memory layer only works on its own loop, so it keeps async_to_sync.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import logging
import threading
from collections.abc import Callable
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import InMemoryChannelLayer, get_channel_layer

logger = logging.getLogger(__name__)

SEND_TIMEOUT = 5.0

_loop: asyncio.AbstractEventLoop | None = None
_lock = threading.Lock()
# Sends started by layer_send_soon() and not finished yet.
_in_flight: set[concurrent.futures.Future[None]] = set()


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


def layer_send_soon(
    channel: str, message: dict[str, Any], on_failure: Callable[[BaseException], None]
) -> None:
    """Send `message` on `channel` without waiting for the layer; if the send fails,
    `on_failure(error)` runs later in a thread of its own (it may use the database)."""
    layer = get_channel_layer()
    if isinstance(layer, InMemoryChannelLayer):
        try:
            async_to_sync(layer.send)(channel, message)
        except Exception as error:
            on_failure(error)
        return

    async def send() -> None:
        try:
            await asyncio.wait_for(layer.send(channel, message), SEND_TIMEOUT)
        except Exception as error:
            await asyncio.get_running_loop().run_in_executor(None, on_failure, error)

    future = asyncio.run_coroutine_threadsafe(send(), _sender_loop())
    with _lock:
        _in_flight.add(future)
    future.add_done_callback(_in_flight.discard)


@atexit.register
def _finish_sends() -> None:
    # A script that enqueues and exits still gets its wake-ups out.
    with _lock:
        pending = list(_in_flight)
    if pending:
        concurrent.futures.wait(pending, timeout=SEND_TIMEOUT + 1)
