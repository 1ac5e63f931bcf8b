"""The process's long-lived event loop for calls on a channel layer that crosses processes
(Redis) from sync code: a task's thread, a view, the recovery sweep.

`async_to_sync(layer.group_send)` from a thread with no loop starts a thread and a loop for
the call, and channels-redis a Redis connection for that loop (a quarter of a chat
broadcast's time); `call_from_sync` runs the call on this one loop instead, whose connections
live on. Wake-ups (workers/wakeups.py) leave from it too.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import InMemoryChannelLayer

_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None


def sender_loop() -> asyncio.AbstractEventLoop:
    """The loop, running on a thread of its own from the first call (again after it closed)."""
    global _loop
    with _lock:
        if _loop is None or _loop.is_closed():
            _loop = asyncio.new_event_loop()
            threading.Thread(target=_loop.run_forever, name="layer-sender", daemon=True).start()
        return _loop


def call_from_sync[T](method: Callable[..., Coroutine[Any, Any, T]], *args: Any) -> T:
    """`async_to_sync(method)(*args)` for a method of the channel layer, from a thread with no
    loop of its own: on the sender loop for a layer that crosses processes; as before for the
    in-memory layer, which lives on the loop of whoever uses it."""
    layer = getattr(method, "__self__", None)
    if layer is None or isinstance(layer, InMemoryChannelLayer):
        return async_to_sync(method)(*args)
    return asyncio.run_coroutine_threadsafe(method(*args), sender_loop()).result()
