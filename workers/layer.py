"""Sending wake-ups and job events on the channel layer cheaply.

What a wake-up must do is reach its channel after it was asked for. So a full channel is no
failure: the wake-up waiting there is taken after this one was asked for (send_wakeup).

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
import contextlib
import threading
from collections import defaultdict
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

from asgiref.sync import async_to_sync
from channels.exceptions import ChannelFull
from channels.layers import InMemoryChannelLayer, get_channel_layer
from channels_redis.core import RedisChannelLayer

SEND_TIMEOUT = 5.0

_loop: asyncio.AbstractEventLoop | None = None
_lock = threading.Lock()


@dataclass
class _Waiting:
    """A layer_send_soon() message waiting for its channel's previous send to finish."""

    message: dict[str, Any]
    on_failure: list[Callable[[BaseException], None]]


# Per layer and channel: its one send in flight (a lock) and the message waiting behind it.
_channel_locks: dict[tuple[int, str], asyncio.Lock] = {}
_waiting: dict[tuple[int, str], _Waiting] = {}
# Sends started by layer_send_soon() and not finished yet.
_in_flight: set[concurrent.futures.Future[None]] = set()


def _sender_loop() -> asyncio.AbstractEventLoop:
    global _loop
    with _lock:
        if _loop is None or _loop.is_closed():
            _loop = asyncio.new_event_loop()
            _channel_locks.clear()
            _waiting.clear()
            threading.Thread(target=_loop.run_forever, name="layer-sender", daemon=True).start()
        return _loop


async def send_wakeup(layer: Any, channel: str, message: dict[str, Any]) -> None:
    """Send the wake-up `message` on `channel`; raises what the layer raises, but for a full
    channel, whose waiting wake-up does the job."""
    with contextlib.suppress(ChannelFull):
        await layer.send(channel, message)


async def groups_with_members(layer: Any, groups: Collection[str]) -> set[str]:
    """The groups among `groups` that anyone may have joined, asked in one round trip per
    Redis host; other layers answer all of them.

    channels-redis' group_send() asks Redis twice for a group's members before it finds none,
    and most job events go to a group nobody watches (the job's own). A member that joins
    after this answer reads the job's row after the event's change was committed, so it
    misses nothing that group_send() would have given it.
    """
    if not isinstance(layer, RedisChannelLayer):
        return set(groups)
    by_host: defaultdict[int, list[str]] = defaultdict(list)
    for group in groups:
        by_host[layer.consistent_hash(group)].append(group)
    found: set[str] = set()
    for index, names in by_host.items():
        async with layer.connection(index).pipeline(transaction=False) as pipe:
            for name in names:
                # An empty sorted set does not exist in Redis; a group key whose members
                # expired still does, and group_send() clears it.
                pipe.exists(layer._group_key(name))
            answers = await pipe.execute()
            found.update(name for name, exists in zip(names, answers, strict=True) if exists)
    return found


def layer_send(channel: str, message: dict[str, Any]) -> None:
    """send_wakeup() from sync code, waiting for it."""
    layer = get_channel_layer()
    if isinstance(layer, InMemoryChannelLayer):
        async_to_sync(send_wakeup)(layer, channel, message)
        return
    future = asyncio.run_coroutine_threadsafe(send_wakeup(layer, channel, message), _sender_loop())
    future.result(SEND_TIMEOUT)


def layer_send_soon(
    channel: str,
    message: dict[str, Any],
    on_failure: Callable[[BaseException], None],
    *,
    spacing: float = 0.0,
) -> None:
    """send_wakeup() from sync code, without waiting for the layer; if the send fails,
    `on_failure(error)` runs later in a thread of its own (it may use the database).

    One send per channel is in flight at a time, and the next starts `spacing` seconds after
    it at the earliest; a message waiting meanwhile is replaced by a newer one for the same
    channel: the one sent still goes out after both were asked for. A burst of enqueues thus
    costs one send per `spacing`, and wakes a worker to take its jobs together.
    """
    layer = get_channel_layer()
    if isinstance(layer, InMemoryChannelLayer):
        try:
            layer_send(channel, message)
        except Exception as error:
            on_failure(error)
        return
    loop = _sender_loop()
    key = (id(layer), channel)
    with _lock:
        waiting = _waiting.get(key)
        if waiting is not None:
            waiting.message = message
            waiting.on_failure.append(on_failure)
            return
        waiting = _waiting[key] = _Waiting(message, [on_failure])

    async def send() -> None:
        lock = _channel_locks.setdefault(key, asyncio.Lock())
        async with lock:
            with _lock:
                # From here on, a newer message waits for the next send.
                del _waiting[key]
            try:
                await asyncio.wait_for(send_wakeup(layer, channel, waiting.message), SEND_TIMEOUT)
            except Exception as error:
                for callback in waiting.on_failure:
                    await asyncio.get_running_loop().run_in_executor(None, callback, error)
            await asyncio.sleep(spacing)

    future = asyncio.run_coroutine_threadsafe(send(), loop)
    with _lock:
        _in_flight.add(future)
    future.add_done_callback(_in_flight.discard)


@atexit.register
def finish_sends() -> None:
    """Wait for the sends layer_send_soon() started (a script that enqueues and exits still
    gets its wake-ups out)."""
    with _lock:
        pending = list(_in_flight)
    if pending:
        concurrent.futures.wait(pending, timeout=SEND_TIMEOUT + 1)
