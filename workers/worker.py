"""Channels' `Worker` with back-pressure, recovery sweeps and a graceful stop.

Channels' own worker reads messages off a channel as fast as they come, into an unbounded
queue in front of a consumer that handles one at a time: a busy worker hoards wake-ups that an
idle one could serve, and loses them if killed. This worker takes a message off a channel only
when that channel's consumer asks for one, so every message waits in the layer for whichever
worker is free.
"""

from __future__ import annotations

import asyncio
import logging
import random
import signal
import threading
from dataclasses import dataclass, field
from typing import Any

from asgiref.compatibility import guarantee_single_callable
from channels.worker import Worker as ChannelsWorker
from django.conf import settings

from workers.runner import JobRunner

logger = logging.getLogger(__name__)


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
        runner: JobRunner | None = None,
        handle_signals: bool = True,
    ) -> None:
        super().__init__(application, channels, channel_layer, max_applications)
        self.runner = runner or JobRunner()
        self.handle_signals = (
            handle_signals and threading.current_thread() is threading.main_thread()
        )
        self.stop_requested = asyncio.Event()

    async def handle(self) -> None:
        if self.handle_signals:
            loop = asyncio.get_running_loop()
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(signum, self.request_stop, signum)
        logger.info(
            "worker=%s listening on channels %s", self.runner.worker_id, ", ".join(self.channels)
        )
        tasks = [asyncio.ensure_future(self.listener(channel)) for channel in self.channels]
        tasks.append(asyncio.ensure_future(self.sweeper()))
        await self.stop_requested.wait()
        for task in tasks:
            task.cancel()
        await self.runner.shutdown(settings.JOBS["SHUTDOWN_GRACE"])
        logger.info("worker=%s stopped", self.runner.worker_id)

    def request_stop(self, signum: int | None = None) -> None:
        logger.info(
            "worker=%s got signal %s: finishing the running job, taking no new ones",
            self.runner.worker_id,
            signum,
        )
        self.runner.stopping = True
        self.stop_requested.set()

    def start_consumer(self, channel: str) -> ChannelConsumer:
        consumer = ChannelConsumer()

        async def receive() -> dict[str, Any]:
            consumer.free.release()
            return await consumer.queue.get()

        scope = {"type": "channel", "channel": channel, "runner": self.runner}
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
            except Exception:
                # Redis restarting: keep the worker alive and try again; the sweep re-sends
                # any wake-up lost meanwhile.
                failures += 1
                delay = min(30.0, 0.5 * 2**failures)
                logger.warning(
                    "channel=%s receive failed; retrying in %.1f s", channel, delay, exc_info=True
                )
                consumer.free.release()
                await asyncio.sleep(delay)
                continue
            failures = 0
            consumer.queue.put_nowait(message)

    async def sweeper(self) -> None:
        interval: float = settings.JOBS["SWEEP_INTERVAL"]
        while True:
            await self.runner.sweep()
            # Jitter keeps several workers from sweeping in lockstep.
            await asyncio.sleep(interval * random.uniform(0.8, 1.2))  # noqa: S311

    async def application_send(self, scope: dict[str, Any], message: dict[str, Any]) -> None:
        raise ValueError(f"channel consumers cannot send; got {message.get('type')!r}")
