"""The worker process (`manage.py runworker`, and the workers inside `runserver`): Channels'
`Worker`, which listens on named channels and hands their messages to the channel's consumer,
with back-pressure, the recovery sweep and a graceful stop.

Channels' own worker reads messages off a channel as fast as they come, into an unbounded
queue in front of a consumer that handles one at a time: a busy worker hoards wake-ups that an
idle one could serve, and loses them if killed. This worker takes a message off a channel only
when that channel's consumer asks for one, so every message waits in the layer for whichever
worker is free.

A wake-up makes the consumer (workers/consumers.py) drain its channel (workers/claim.py); the
worker owns what the channels share: the watchdog (workers/watchdog.py) and the sender of job
events (workers/events.py).
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import signal
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from asgiref.compatibility import guarantee_single_callable
from channels.db import database_sync_to_async
from channels.worker import Worker as ChannelsWorker
from django.conf import settings
from django.utils import timezone
from django.utils.crypto import get_random_string

from wire.outage import Outage
from workers import events, wakeups
from workers.claim import ChannelDrain
from workers.exceptions import JobLost
from workers.models import Job, WorkerProcess
from workers.recover import jobs_sweep
from workers.watchdog import Watchdog

logger = logging.getLogger(__name__)


def new_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{get_random_string(6)}"


@dataclass
class ChannelConsumer:
    """The application instance serving one channel, and its free signal."""

    queue: asyncio.Queue[dict[str, Any]] = field(default_factory=asyncio.Queue)
    # Released each time the consumer asks for a message, i.e. when it is free.
    free: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(0))
    future: asyncio.Future[Any] | None = None


class Worker(ChannelsWorker):
    def __init__(
        self,
        application: Any,
        channels: list[str],
        channel_layer: Any,
        max_applications: int = 1000,
        handle_signals: bool = True,
        worker_id: str | None = None,
    ) -> None:
        super().__init__(application, channels, channel_layer, max_applications)
        self.worker_id = worker_id or new_worker_id()
        self.handle_signals = (
            handle_signals and threading.current_thread() is threading.main_thread()
        )
        self.stopping = False
        self.stop_requested = asyncio.Event()
        self.sender: events.EventSender | None = None
        self.drains = {
            channel: ChannelDrain(
                channel,
                worker_id=self.worker_id,
                publish=self.publish,
                stopping=lambda: self.stopping,
                started=self.batch_started,
            )
            for channel in channels
        }
        self.watchdog = Watchdog(self.drains.values())
        self.watching: asyncio.Task[None] | None = None
        # The database away (a restart): one line when the heartbeat and sweep start failing,
        # one when they work again, not one a SWEEP_INTERVAL.
        self.database = Outage(f"worker={self.worker_id} database", logger)

    async def handle(self) -> None:
        loop = asyncio.get_running_loop()
        if self.handle_signals:
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(signum, self.request_stop, signum)
        self.sender = events.EventSender(loop)
        self.watching = asyncio.ensure_future(self.watchdog.watch())
        with wakeups.serving(loop):
            logger.info(
                "worker=%s listening on channels %s", self.worker_id, ", ".join(self.channels)
            )
            tasks = [asyncio.ensure_future(self.listener(channel)) for channel in self.channels]
            tasks.append(asyncio.ensure_future(self.sweeper()))
            await self.stop_requested.wait()
            for task in tasks:
                task.cancel()
            await self.shutdown(settings.JOBS["SHUTDOWN_GRACE"])
        logger.info("worker=%s stopped", self.worker_id)

    def request_stop(self, signum: int | None = None) -> None:
        logger.info(
            "worker=%s got signal %s: finishing the running job, taking no new ones",
            self.worker_id,
            signum,
        )
        self.stopping = True
        self.stop_requested.set()

    # What the channels share.

    async def drain(self, channel: str) -> None:
        """Run the ready jobs of `channel` (a wake-up came) until none is left."""
        await self.drains[channel].drain()

    def publish(self, job: Job, event_type: str) -> None:
        assert self.sender is not None, "the worker is not running"
        self.sender.publish(job, event_type)

    def batch_started(self) -> None:
        self.watchdog.wake()

    # Listening, one message at a time per channel.

    def start_consumer(self, channel: str) -> ChannelConsumer:
        consumer = ChannelConsumer()

        async def receive() -> dict[str, Any]:
            consumer.free.release()
            return await consumer.queue.get()

        scope = {"type": "channel", "channel": channel, "worker": self}
        application = guarantee_single_callable(self.application)  # type: ignore[no-untyped-call]
        consumer.future = asyncio.ensure_future(
            application(scope=scope, receive=receive, send=self.application_send)
        )
        # A consumer that crashed wakes its listener too, which starts a new one.
        consumer.future.add_done_callback(lambda _: consumer.free.release())
        # Registered so that the application checker logs a crash of the consumer.
        self.application_instances[channel] = {
            "input_queue": consumer.queue,
            "future": consumer.future,
            "scope": scope,
            "last_used": 0,
        }
        return consumer

    async def listener(self, channel: str) -> None:
        consumer = self.start_consumer(channel)
        layer = Outage(f"channel={channel} receive", logger)
        failures = 0
        while True:
            await consumer.free.acquire()
            if consumer.future is not None and consumer.future.done():
                error = None if consumer.future.cancelled() else consumer.future.exception()
                logger.error(
                    "channel=%s consumer stopped; starting a new one", channel, exc_info=error
                )
                consumer = self.start_consumer(channel)
                continue
            try:
                message = await self.channel_layer.receive(channel)
            except Exception as error:
                # Redis restarting: keep the worker alive and try again; the sweep re-sends
                # any wake-up lost meanwhile.
                failures += 1
                layer.failed(error)
                consumer.free.release()
                await asyncio.sleep(min(30.0, 0.5 * 2**failures))
                continue
            failures = 0
            layer.answered()
            consumer.queue.put_nowait(message)

    async def application_send(self, scope: dict[str, Any], message: dict[str, Any]) -> None:
        raise ValueError(f"channel consumers cannot send; got {message.get('type')!r}")

    # Recovery and stopping.

    def running_jobs(self) -> dict[str, int]:
        """The job each channel runs now, by channel."""
        running = {}
        for channel, drain in self.drains.items():
            batch = drain.batch
            attempt = batch.current if batch is not None else None
            if attempt is not None:
                running[channel] = attempt.job.pk
        return running

    def beat(self) -> None:
        """Tell the operators' page this worker is alive, and what it runs."""
        WorkerProcess.objects.update_or_create(
            worker_id=self.worker_id,
            defaults={
                "channels": list(self.channels),
                "heartbeat_at": timezone.now(),
                "running": self.running_jobs(),
            },
        )

    async def sweeper(self) -> None:
        interval: float = settings.JOBS["SWEEP_INTERVAL"]
        while True:
            try:
                await database_sync_to_async(self.beat)()
                swept = await database_sync_to_async(jobs_sweep)(holder=self.worker_id)
            except Exception as error:
                self.database.failed(error)
            else:
                self.database.answered()
                if any(swept.values()):
                    counts = " ".join(f"{k}={v}" for k, v in swept.items())
                    logger.info("recovery sweep %s", counts)
            # Jitter keeps several workers from sweeping in lockstep.
            await asyncio.sleep(interval * random.uniform(0.8, 1.2))  # noqa: S311

    async def shutdown(self, grace: float) -> None:
        """Let running jobs finish within `grace` seconds, then hand the rest back."""
        self.stopping = True
        deadline = time.monotonic() + grace
        while any(drain.batch for drain in self.drains.values()) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        for drain in self.drains.values():
            batch = drain.batch
            if batch is None:
                continue
            attempt = batch.current
            drain.abandon(batch)
            if attempt is not None:
                job = attempt.job
                attempt.interrupt(JobLost)
                if await database_sync_to_async(job.hand_back)():
                    logger.warning("job=%s handed back unfinished at shutdown", job.pk)
                    await database_sync_to_async(wakeups.wake)(job)
            await database_sync_to_async(drain.settle)(batch)
        for drain in self.drains.values():
            drain.close()
        try:
            await database_sync_to_async(
                WorkerProcess.objects.filter(worker_id=self.worker_id).delete
            )()
        except Exception:
            logger.warning("worker=%s not taken off the list of workers", self.worker_id)
        if self.watching is not None:
            self.watching.cancel()
        if self.sender is not None:
            # The last events (a job's done) still go out before the process ends.
            await self.sender.flush(timeout=5)
