"""Waking workers: the one way a wake-up goes onto a named channel.

A wake-up `{"type": "job.wakeup", "job": id}` tells a worker of that channel that a job may be
ready; the worker then claims whatever is ready from the database, so a wake-up is only ever
the fast path. What a wake-up must do is reach its channel after its job committed. A full
channel is therefore no failure: the wake-up waiting there is taken after this one was asked
for, and wakes a worker for this job too.

Three ways to send one, all through `wake_channel`:
- `wake_soon(job)` from sync code without waiting (the enqueue after its commit, a worker
  recruiting another). One send per channel is in flight per process, the next no sooner than
  JOBS["WAKEUP_SPACING"] later, and a wake-up waiting meanwhile is replaced by the newer one:
  a burst of enqueues costs a few sends and wakes a worker to claim its jobs together.
- `wake(job)` from sync code, waiting (the recovery sweep, an operator's retry, a hand-back).
- `await wake_channel(layer, channel, job_id)` from async code.
A wake-up that cannot be sent is logged and the job's `woken_at` cleared, so that the
recovery sweep sends it again.

Sends leave from an event loop of this process: for a layer that crosses processes (Redis),
the process's long-lived sender loop (workers/sender.py), since `async_to_sync` from a thread
without a loop would start a loop, and channels-redis a Redis connection, per call; for the
in-memory layer, which lives on one loop, the loop of the worker that runs in this process
(`serving`).
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import contextlib
import logging
import threading
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass, field
from typing import Any

from asgiref.sync import async_to_sync
from channels.exceptions import ChannelFull
from channels.layers import InMemoryChannelLayer, get_channel_layer
from django.conf import settings
from django.db import connection

from workers import events
from workers.models import Job
from workers.sender import sender_loop

logger = logging.getLogger(__name__)

SEND_TIMEOUT = 5.0

_lock = threading.Lock()
# The sender loop (workers/sender.py) the state below was made on.
_sender_seen: asyncio.AbstractEventLoop | None = None
# The loops of this process's workers: where the in-memory layer's consumers are.
_worker_loops: list[asyncio.AbstractEventLoop] = []


@dataclass
class _Waiting:
    """A wake_soon() wake-up waiting for its channel's previous send to finish."""

    job_id: int
    # The jobs whose wake-up this one stands for: each is told if it is not sent.
    jobs: list[Job] = field(default_factory=list)


# Per loop and channel: its one send in flight (a lock) and the wake-up waiting behind it.
_channel_locks: dict[tuple[int, str], asyncio.Lock] = {}
_waiting: dict[tuple[int, str], _Waiting] = {}
# Sends started by wake_soon() and not finished yet.
_in_flight: set[concurrent.futures.Future[None]] = set()


async def wake_channel(layer: Any, channel: str, job_id: int) -> None:
    """Put a wake-up for `job_id` on `channel`; raises what the layer raises, but for a full
    channel, whose waiting wake-up does the job."""
    wakeup: events.WakeUp = {"type": events.JOB_WAKEUP, "job": job_id}
    with contextlib.suppress(ChannelFull):
        await layer.send(channel, dict(wakeup))


def wake(job: Job) -> bool:
    """Record a new wake-up for the job and send it, waiting for the layer; False if it
    could not be sent (the recovery sweep sends it later)."""
    job.mark_woken()
    layer = get_channel_layer()
    loop = _loop_for(layer)
    try:
        if loop is None:
            async_to_sync(wake_channel)(layer, job.channel, job.pk)
        else:
            future = asyncio.run_coroutine_threadsafe(
                wake_channel(layer, job.channel, job.pk), loop
            )
            if not _on_loop_thread(loop):
                future.result(SEND_TIMEOUT)
    except Exception as error:
        _not_sent([job], error)
        return False
    return True


def wake_soon(job: Job) -> None:
    """Send a wake-up for the job without waiting for the layer (its `woken_at` is the
    caller's to record); one that fails is logged and left to the recovery sweep."""
    layer = get_channel_layer()
    loop = _loop_for(layer)
    if loop is None:
        try:
            async_to_sync(wake_channel)(layer, job.channel, job.pk)
        except Exception as error:
            _not_sent([job], error)
        return
    key = (id(loop), job.channel)
    with _lock:
        waiting = _waiting.get(key)
        if waiting is not None:
            # The send waiting goes out after this job committed: let it name this job.
            waiting.job_id = job.pk
            waiting.jobs.append(job)
            return
        waiting = _waiting[key] = _Waiting(job.pk, [job])
    spacing: float = settings.JOBS["WAKEUP_SPACING"]

    async def send() -> None:
        lock = _channel_locks.setdefault(key, asyncio.Lock())
        async with lock:
            with _lock:
                # From here on, a newer wake-up waits for the next send.
                del _waiting[key]
            try:
                await asyncio.wait_for(
                    wake_channel(layer, job.channel, waiting.job_id), SEND_TIMEOUT
                )
            except Exception as error:
                # Off the loop: recording the failure writes to the database.
                await asyncio.get_running_loop().run_in_executor(
                    None, _not_sent_in_thread, waiting.jobs, error
                )
            await asyncio.sleep(spacing)

    _start(send(), loop)


def wake_channel_soon(channel: str) -> None:
    """wake_soon() for whatever job of `channel` is ready (a channel resumed)."""
    job = Job.objects.ready(channel).first()
    if job is not None:
        job.mark_woken()
        wake_soon(job)


@contextlib.contextmanager
def serving(loop: asyncio.AbstractEventLoop) -> Iterator[None]:
    """Inside, in-memory wake-ups are sent on `loop`, the loop of a worker of this process:
    the in-memory layer reaches consumers on its own loop only."""
    with _lock:
        _worker_loops.append(loop)
    try:
        yield
    finally:
        with _lock:
            _worker_loops.remove(loop)
            if loop not in _worker_loops:
                # What belonged to the loop never runs now (a later loop may get its id).
                for key in [key for key in _waiting if key[0] == id(loop)]:
                    del _waiting[key]
                for key in [key for key in _channel_locks if key[0] == id(loop)]:
                    del _channel_locks[key]


def _loop_for(layer: Any) -> asyncio.AbstractEventLoop | None:
    """The loop to send on; None to send from the calling thread (an in-memory layer with no
    worker in this process: a test, or a script whose wake-ups nobody here would take)."""
    global _sender_seen
    if isinstance(layer, InMemoryChannelLayer):
        with _lock:
            return _worker_loops[-1] if _worker_loops else None
    loop = sender_loop()
    with _lock:
        if loop is not _sender_seen:
            # A new loop: what belonged to the one before never runs now.
            _sender_seen = loop
            _channel_locks.clear()
            _waiting.clear()
    return loop


def _on_loop_thread(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False


def _start(coroutine: Coroutine[Any, Any, None], loop: asyncio.AbstractEventLoop) -> None:
    future = asyncio.run_coroutine_threadsafe(coroutine, loop)
    with _lock:
        _in_flight.add(future)
    future.add_done_callback(_in_flight.discard)


def _not_sent(jobs: list[Job], error: BaseException) -> None:
    for job in jobs:
        job.woken_at = None
        logger.warning(
            "job=%s channel=%s wake-up not sent; recovery will retry",
            job.pk,
            job.channel,
            exc_info=error,
        )
    Job.objects.filter(pk__in=[job.pk for job in jobs]).update(woken_at=None)


def _not_sent_in_thread(jobs: list[Job], error: BaseException) -> None:
    try:
        _not_sent(jobs, error)
    finally:
        connection.close()  # a thread of the loop's executor, not a request's


@atexit.register
def finish_sends() -> None:
    """Wait for the sends wake_soon() started (a script that enqueues and exits still gets
    its wake-ups out)."""
    with _lock:
        pending = list(_in_flight)
    if pending:
        concurrent.futures.wait(pending, timeout=SEND_TIMEOUT + 1)
