"""Claiming: a worker's channel takes its ready jobs in batches, runs them one at a time on the
channel's own thread, and settles each batch.

A batch is sized so that it takes about JOBS["BATCH_WINDOW"] seconds by the channel's recent
job durations: a slow job is claimed alone, trivial ones many at a time in one statement, and
their successes are recorded in one statement too. A batch never holds jobs back from other
workers for long: when its running job outlasts the window, the watchdog settles it (records
what already succeeded, hands the unstarted jobs back).
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import DatabaseError, close_old_connections, connection
from django.tasks.signals import task_finished

from wire.outage import Outage
from workers import chains, events
from workers.attempt import Attempt
from workers.models import Job
from workers.results import send_task_signal
from workers.wakeups import wake_soon

logger = logging.getLogger(__name__)

# A channel's thread checks its database connection before a drain after this long idle.
CONNECTION_CHECK_AFTER = 1.0
# Weight of the newest job in a channel's running average of job durations.
DURATION_WEIGHT = 0.2
# How often the loop looks whether the channel's thread finished or was abandoned.
THREAD_POLL = 0.2


class ChannelThread:
    """The one thread a channel's jobs run on, as a one-thread executor. A daemon thread,
    unlike ThreadPoolExecutor's: a task stuck in a long C call (a sleep, a decode) when the
    worker stops does not keep the process from exiting (its job is handed back first)."""

    def __init__(self, name: str) -> None:
        self.work: queue.SimpleQueue[tuple[Future[Any], Callable[..., Any], tuple[Any, ...]] | None]
        self.work = queue.SimpleQueue()
        self.thread = threading.Thread(target=self.serve, name=name, daemon=True)
        self.thread.start()

    def submit(self, function: Callable[..., Any], *args: Any) -> Future[Any]:
        future: Future[Any] = Future()
        self.work.put((future, function, args))
        return future

    def serve(self) -> None:
        while (item := self.work.get()) is not None:
            future, function, args = item
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(function(*args))
            except BaseException as error:  # handed to the waiting side
                future.set_exception(error)

    def shutdown(self, wait: bool = True) -> None:
        self.work.put(None)
        if wait:
            self.thread.join()


@dataclass
class Batch:
    """The jobs one claim gave a channel's thread, shared with the watchdog under `lock`."""

    channel: str
    lock: threading.Lock = field(default_factory=threading.Lock)
    # Claimed, not started yet.
    waiting: deque[Job] = field(default_factory=deque)
    # Ran and succeeded, not recorded yet.
    succeeded: list[tuple[Job, Any]] = field(default_factory=list)
    current: Attempt | None = None
    # The watchdog gave up on the thread (stuck past a time limit): it must stop.
    abandoned: bool = False

    def start_next(self, publish: events.Publish) -> Attempt | None:
        with self.lock:
            if self.abandoned or not self.waiting:
                self.current = None
            else:
                self.current = Attempt(self.waiting.popleft(), publish)
            return self.current

    def notice(self, attempt: Attempt) -> None:
        # Under the lock: once the thread moved on, the job's outcome may be on its way, and a
        # "running" event must not overtake it.
        with self.lock:
            if self.current is attempt:
                attempt.notice()

    def add_success(self, job: Job, value: Any) -> None:
        with self.lock:
            self.succeeded.append((job, value))

    def take(self) -> tuple[list[tuple[Job, Any]], list[Job]]:
        """What is left to settle: successes to record, and jobs to hand back."""
        with self.lock:
            succeeded, self.succeeded = self.succeeded, []
            waiting = list(self.waiting)
            self.waiting.clear()
            return succeeded, waiting


class ChannelDrain:
    """One named channel of a worker: its thread, the batch it runs, its recent durations."""

    def __init__(
        self,
        channel: str,
        *,
        worker_id: str,
        publish: events.Publish,
        stopping: Callable[[], bool],
        started: Callable[[], None],
    ) -> None:
        self.channel = channel
        self.worker_id = worker_id
        self.publish = publish
        self.stopping = stopping
        self.started = started
        # One long-lived thread keeps the channel's database connection between jobs.
        self.thread = self.new_thread()
        self.batch: Batch | None = None
        # The running average of the channel's job durations, which sizes its batches.
        self.duration: float | None = None
        # When the thread last finished a drain.
        self.idle_since = 0.0
        self.batch_window: float = settings.JOBS["BATCH_WINDOW"]
        self.max_batch = int(settings.JOBS["MAX_BATCH"])
        # The database away: one line when a drain first fails on it, one when one works.
        self.database = Outage(f"channel={channel} drain database", logger)

    def new_thread(self) -> ChannelThread:
        return ChannelThread(f"job-{self.channel}")

    async def drain(self) -> None:
        """Run ready jobs of the channel until there are none (or the worker is stopping)."""
        try:
            await self.run()
        except DatabaseError as error:
            # Most likely a connection the database dropped while the thread was idle (a
            # restart): the thread has closed it, and a second drain reconnects. If that
            # fails too, the database is away: the recovery sweep wakes the channel again.
            self.database.failed(error)
            try:
                await self.run()
            except DatabaseError as again:
                self.database.failed(again)
                return
        self.database.answered()

    async def run(self) -> None:
        batch = self.batch = Batch(self.channel)
        self.started()
        on_thread = asyncio.wrap_future(self.thread.submit(self.run_batches, batch))
        try:
            while not on_thread.done() and not batch.abandoned:
                await asyncio.wait([on_thread], timeout=THREAD_POLL)
            if on_thread.done():
                on_thread.result()
        finally:
            self.batch = None

    def batch_size(self) -> int:
        if self.duration is None:
            return 1  # nothing known yet: it may be slow
        return max(1, min(self.max_batch, int(self.batch_window / max(self.duration, 1e-6))))

    def run_batches(self, batch: Batch) -> None:
        """On the channel's thread: claim a batch, run it, settle it, until none is left."""
        if time.monotonic() - self.idle_since > CONNECTION_CHECK_AFTER:
            # As Django does per request: drop a connection past its age or found broken.
            # Not per drain: under load that is a SELECT 1 for every few jobs.
            close_old_connections()
        try:
            while not self.stopping() and not batch.abandoned:
                size = self.batch_size()
                jobs = self.claim(size)
                if not jobs:
                    return
                # A short batch emptied the channel: a job enqueued since brings a wake-up.
                last = len(jobs) < size
                if not last:
                    # More work than one batch: wake another worker to share it.
                    wake_soon(jobs[-1])
                with batch.lock:
                    batch.waiting.extend(jobs)
                while not self.stopping() and (attempt := batch.start_next(self.publish)):
                    succeeded, value = attempt.run()
                    took = time.monotonic() - attempt.started
                    average = took if self.duration is None else self.duration
                    self.duration = average + DURATION_WEIGHT * (took - average)
                    if succeeded:
                        batch.add_success(attempt.job, value)
                self.settle(batch)
                if last:
                    return
        except DatabaseError:
            close_old_connections()  # a broken connection is replaced on the next drain
            raise
        finally:
            with batch.lock:
                batch.current = None
            if batch.abandoned:
                connection.close()  # this thread is retired; its connection goes with it
            else:
                self.settle(batch)
            self.idle_since = time.monotonic()

    def claim(self, size: int) -> list[Job]:
        """A batch: the jobs with a limit that may start now first (one key at a time), then
        the others (one statement)."""
        limited = Job.objects.claim_limited(
            channel=self.channel, worker_id=self.worker_id, size=size
        )
        if len(limited) >= size:
            return limited
        rest = Job.objects.claim(
            channel=self.channel, worker_id=self.worker_id, size=size - len(limited)
        )
        if not limited:
            return rest
        return sorted([*limited, *rest], key=lambda job: (-job.priority, job.fair_rank, job.pk))

    def settle(self, batch: Batch) -> None:
        """Record the batch's successes so far and hand back the jobs it has not started."""
        succeeded, waiting = batch.take()
        if succeeded:
            recorded = Job.objects.record_successes(succeeded)
            for job in recorded:
                logger.info(
                    "job=%s task=%s succeeded attempt=%s", job.pk, job.task_path, job.attempts
                )
                self.publish(job, events.JOB_DONE)
                send_task_signal(task_finished, job)
                if job.limit_key:
                    # Its key has room again: jobs of it may be waiting.
                    wake_soon(job)
            chains.dependents_settle(job for job in recorded if job.dependents)
        if waiting and Job.objects.hand_back(waiting):
            logger.info("channel=%s %d jobs handed back unstarted", self.channel, len(waiting))
            wake_soon(waiting[0])

    def abandon(self, batch: Batch) -> None:
        """Give up on the thread, stuck in a task past its time limit: whatever it records
        later is refused, since its job is no longer running; the channel gets a new thread."""
        with batch.lock:
            batch.abandoned = True
        old, self.thread = self.thread, self.new_thread()
        old.shutdown(wait=False)

    def close(self) -> None:
        """Let the thread close its own database connection, then end it."""
        # Looked up on the thread: `connection` is a proxy to the calling thread's connection.
        self.thread.submit(lambda: connection.close())
        self.thread.shutdown(wait=False)
