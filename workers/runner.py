"""Running claimed jobs: a thread per channel, a watchdog for heartbeats and time limits, and
one sender of job events per process.

A channel's jobs are claimed and run on that channel's own thread, in batches sized so that a
batch takes about JOBS["BATCH_WINDOW"] seconds by the channel's recent job durations: a slow
job is claimed alone, trivial ones many at a time in one statement, their successes recorded
in one statement too. A batch never holds jobs back from other workers for long: when its
running job outlasts the window, the watchdog records what already succeeded and hands the
unstarted jobs back.
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import os
import socket
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import DatabaseError, close_old_connections, connection
from django.tasks import task_backends
from django.utils.crypto import get_random_string
from django.utils.json import normalize_json
from django.utils.module_loading import import_string

from workers import events
from workers.backends import ChannelsBackend, JobContext
from workers.exceptions import JobLost, PermanentFailure, TimeLimitExceeded
from workers.layer import groups_with_members, send_wakeup
from workers.models import Job
from workers.services import job_event, job_event_groups, job_wake, job_wakeup, jobs_sweep

logger = logging.getLogger(__name__)

# After a time limit, how long the task's thread gets to unwind before it is abandoned.
UNWIND_GRACE = 5.0
# How often the watchdog looks at running jobs (time limits, overlong batches).
WATCHDOG_TICK = 0.05
# A channel's thread checks its database connection before a drain after this long idle.
CONNECTION_CHECK_AFTER = 1.0
# Weight of the newest job in a channel's running average of job durations.
DURATION_WEIGHT = 0.2


def new_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{get_random_string(6)}"


def raise_in_thread(thread_id: int, exception: type[BaseException]) -> None:
    """Raise `exception` in another thread at its next Python instruction (as Dramatiq does
    for time limits; C code such as an image decode finishes its call first)."""
    ctypes.pythonapi.PyThreadState_SetAsyncExc(
        ctypes.c_ulong(thread_id), ctypes.py_object(exception)
    )


# Sends a job's event (type) to its groups, without waiting for the layer.
Publish = Callable[[Job, str], None]


class EventSender:
    """Sends job events to their groups from the worker's event loop, in order.

    Any thread publishes without waiting for Redis. A job's event still waiting to go out is
    replaced by its newer one (the row holds the latest state anyway), so a worker running
    jobs faster than Redis takes their events sends only their outcomes.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.lock = threading.Lock()
        self.pending: dict[int, tuple[list[str], dict[str, Any]]] = {}
        self.wake_scheduled = False
        self.wake = asyncio.Event()
        self.sending = False
        self.task = loop.create_task(self.run())

    def publish(self, job: Job, event_type: str) -> None:
        item = (job_event_groups(job), dict(job_event(job, event_type)))
        with self.lock:
            self.pending.pop(job.pk, None)
            self.pending[job.pk] = item
            if self.wake_scheduled:
                return
            self.wake_scheduled = True
        self.loop.call_soon_threadsafe(self.wake.set)

    async def run(self) -> None:
        layer = get_channel_layer()
        while True:
            await self.wake.wait()
            self.wake.clear()
            with self.lock:
                batch, self.pending = self.pending, {}
                self.wake_scheduled = False
            self.sending = True
            wanted = {group for groups, _ in batch.values() for group in groups}
            try:
                listened = await groups_with_members(layer, wanted)
            except Exception:
                listened = wanted  # each send below fails (and logs) on its own
            for groups, event in batch.values():
                try:
                    for group in groups:
                        if group in listened:
                            await layer.group_send(group, event)
                except Exception:
                    logger.warning(
                        "job=%s event=%s not sent", event["job"], event["type"], exc_info=True
                    )
            self.sending = False

    async def flush(self, timeout: float) -> None:
        """Wait until every event published so far is sent (or `timeout` passes)."""
        deadline = time.monotonic() + timeout
        while self.pending or self.sending:
            if time.monotonic() > deadline:
                logger.warning("%d job events not sent at shutdown", len(self.pending))
                break
            await asyncio.sleep(0.01)
        self.task.cancel()


class ProgressReporter:
    """Writes a task's progress to its row and its groups, at most every PROGRESS_MIN_INTERVAL."""

    def __init__(self, job: Job, publish: Publish) -> None:
        self.job = job
        self.publish = publish
        self.min_interval: float = settings.JOBS["PROGRESS_MIN_INTERVAL"]
        self.last_sent = 0.0

    def progress(self, percent: int, message: str = "") -> None:
        now = time.monotonic()
        if percent < 100 and now - self.last_sent < self.min_interval:
            return
        if not self.job.set_progress(percent, message):
            raise JobLost(f"job {self.job.pk} was cancelled or handed to another worker")
        self.last_sent = now
        self.publish(self.job, events.JOB_PROGRESS)


# What a task's call came to: its JSON-safe value, or the exception it raised.
Outcome = BaseException | Any


class Execution:
    """One attempt of one job, run on its channel's thread."""

    def __init__(self, job: Job, publish: Publish) -> None:
        self.job = job
        self.thread_id = threading.get_ident()
        self.started = time.monotonic()
        self.deadline = self.started + job.time_limit
        self.interrupted_at: float | None = None
        self.in_task = False
        self.lock = threading.Lock()
        # Whether the page heard of this attempt yet (any event).
        self.announced = False
        self.noticed = False
        self.send_event = publish

    def publish(self, job: Job, event_type: str) -> None:
        with self.lock:
            self.announced = True
            self.send_event(job, event_type)

    def notice(self) -> None:
        """The job runs longer than a watchdog tick: log it, and tell the page that it runs
        unless an event of the task's own did already. (A quicker job logs only its outcome.)"""
        with self.lock:
            if self.noticed:
                return
            self.noticed = True
            job = self.job
            logger.info("job=%s task=%s running attempt=%s", job.pk, job.task_path, job.attempts)
            if not self.announced:
                self.announced = True
                self.send_event(job, events.JOB_PROGRESS)

    def interrupt(self, exception: type[BaseException]) -> bool:
        """Stop the task's code with `exception`; False if it is not inside the task."""
        with self.lock:
            if not self.in_task:
                return False
            raise_in_thread(self.thread_id, exception)
            self.interrupted_at = time.monotonic()
            return True

    def run(self) -> tuple[bool, Any]:
        """Run the task; (True, value) if it succeeded, else record why not: (False, None)."""
        try:
            outcome = self.call()
            if isinstance(outcome, BaseException):
                self.record_failure(outcome)
                return False, None
            return True, outcome
        except TimeLimitExceeded:
            # Delivered late, after the task returned: the limit still wins.
            self.record_failure(TimeLimitExceeded())
            return False, None

    def call(self) -> Outcome:
        job = self.job
        try:
            task = import_string(job.task_path)
        except ImportError as error:
            return PermanentFailure(f"unknown task {job.task_path!r}: {error}")
        backend = task_backends[task.backend]
        assert isinstance(backend, ChannelsBackend)
        # No "running" event yet: the watchdog announces a job that is still running after a
        # tick, so a job that takes less sends only its outcome.
        with self.lock:
            self.in_task = True
        try:
            if task.takes_context:
                context = JobContext(
                    task_result=backend.to_result(job, task),
                    reporter=ProgressReporter(job, self.publish),
                )
                value = task.call(context, *job.args, **job.kwargs)
            else:
                value = task.call(*job.args, **job.kwargs)
        except Exception as error:
            return error
        finally:
            with self.lock:
                self.in_task = False
        try:
            return normalize_json(value)
        except TypeError as error:
            return PermanentFailure(f"returned a value that is not JSON: {error}")

    def record_failure(self, outcome: BaseException) -> None:
        job = self.job
        if isinstance(outcome, JobLost):
            logger.warning("job=%s %s", job.pk, outcome)
        elif isinstance(outcome, TimeLimitExceeded):
            self.fail(f"took longer than its time limit of {job.time_limit:g} s", retry=False)
        elif isinstance(outcome, PermanentFailure):
            self.fail(str(outcome), retry=False, error=outcome)
        else:
            self.fail(f"{type(outcome).__name__}: {outcome}", retry=True, error=outcome)

    def fail(self, message: str, *, retry: bool, error: BaseException | None = None) -> None:
        job = self.job
        error_class = (
            f"{type(error).__module__}.{type(error).__qualname__}"
            if error is not None
            else f"{TimeLimitExceeded.__module__}.{TimeLimitExceeded.__qualname__}"
        )
        trace = "".join(traceback.format_exception(error)) if error is not None else ""
        if not job.set_failed(error=message, error_class=error_class, traceback=trace, retry=retry):
            return
        if job.status == Job.Status.QUEUED:
            logger.warning(
                "job=%s task=%s attempt=%s/%s failed, retry in %.0f s: %s",
                job.pk,
                job.task_path,
                job.attempts,
                job.max_attempts,
                job.retry_delay(),
                message,
            )
            self.publish(job, events.JOB_PROGRESS)
        else:
            logger.error("job=%s task=%s failed: %s", job.pk, job.task_path, message)
            self.publish(job, events.JOB_FAILED)


@dataclass
class Batch:
    """The jobs one claim gave a channel's thread, shared with the watchdog under `lock`."""

    channel: str
    lock: threading.Lock = field(default_factory=threading.Lock)
    # Claimed, not started yet.
    waiting: deque[Job] = field(default_factory=deque)
    # Ran and succeeded, not recorded yet.
    succeeded: list[tuple[Job, Any]] = field(default_factory=list)
    current: Execution | None = None
    # The watchdog gave up on the thread (stuck past a time limit): it must stop.
    abandoned: bool = False

    def start_next(self, publish: Publish) -> Execution | None:
        with self.lock:
            if self.abandoned or not self.waiting:
                self.current = None
            else:
                self.current = Execution(self.waiting.popleft(), publish)
            return self.current

    def notice(self, execution: Execution) -> None:
        # Under the lock: once the thread moved on, the job's outcome may be on its way, and a
        # "running" event must not overtake it.
        with self.lock:
            if self.current is execution:
                execution.notice()

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


class JobRunner:
    """Claims and runs a process's jobs, one at a time per channel, until asked to stop."""

    def __init__(self, worker_id: str | None = None) -> None:
        self.worker_id = worker_id or new_worker_id()
        self.stopping = False
        self.batches: dict[str, Batch] = {}
        self.executors: dict[str, ThreadPoolExecutor] = {}
        # A channel's running average of job durations, which sizes its batches.
        self.durations: dict[str, float] = {}
        # When each channel's thread last finished a drain.
        self.idle_since: dict[str, float] = {}
        self.sender: EventSender | None = None
        self.watchdog: asyncio.Task[None] | None = None
        self.tasks: set[asyncio.Future[None]] = set()
        self.busy = asyncio.Event()
        self.batch_window: float = settings.JOBS["BATCH_WINDOW"]
        self.max_batch = int(settings.JOBS["MAX_BATCH"])

    def executor(self, channel: str) -> ThreadPoolExecutor:
        # One long-lived thread per channel keeps its database connection between jobs.
        if channel not in self.executors:
            self.executors[channel] = ThreadPoolExecutor(1, thread_name_prefix=f"job-{channel}")
        return self.executors[channel]

    async def drain(self, channel: str) -> None:
        """Run ready jobs of `channel` until there are none (or the worker is stopping)."""
        try:
            await self.run_drain(channel)
        except DatabaseError:
            # Most likely a connection the database dropped while the thread was idle (a
            # restart): the thread has closed it, and a second drain reconnects.
            logger.warning("channel=%s database error; draining again", channel, exc_info=True)
            await self.run_drain(channel)

    async def run_drain(self, channel: str) -> None:
        if self.sender is None:
            self.sender = EventSender(asyncio.get_running_loop())
        if self.watchdog is None or self.watchdog.done():
            self.watchdog = asyncio.ensure_future(self.watch())
        batch = Batch(channel)
        self.batches[channel] = batch
        self.busy.set()
        thread = asyncio.wrap_future(self.executor(channel).submit(self.run_batches, batch))
        try:
            while not thread.done() and not batch.abandoned:
                await asyncio.wait([thread], timeout=WATCHDOG_TICK * 4)
            if thread.done():
                thread.result()
        finally:
            self.batches.pop(channel, None)

    def batch_size(self, channel: str) -> int:
        duration = self.durations.get(channel)
        if duration is None:
            return 1  # nothing known yet: it may be slow
        return max(1, min(self.max_batch, int(self.batch_window / max(duration, 1e-6))))

    def run_batches(self, batch: Batch) -> None:
        """On the channel's thread: claim a batch, run it, settle it, until none is left."""
        assert self.sender is not None
        publish = self.sender.publish
        channel = batch.channel
        if time.monotonic() - self.idle_since.get(channel, 0) > CONNECTION_CHECK_AFTER:
            # As Django does per request: drop a connection past its age or found broken.
            # Not per drain: under load that is a SELECT 1 for every few jobs.
            close_old_connections()
        try:
            while not self.stopping and not batch.abandoned:
                size = self.batch_size(channel)
                jobs = Job.objects.claim_batch(channel=channel, worker_id=self.worker_id, size=size)
                if not jobs:
                    return
                # A short batch emptied the channel: a job enqueued since brings a wake-up.
                last = len(jobs) < size
                if not last:
                    # More work than one batch: wake another worker to share it.
                    self.wake_another(channel, jobs[-1])
                with batch.lock:
                    batch.waiting.extend(jobs)
                while not self.stopping and (execution := batch.start_next(publish)):
                    job = execution.job
                    succeeded, value = execution.run()
                    duration = time.monotonic() - execution.started
                    average = self.durations.get(channel, duration)
                    self.durations[channel] = average + DURATION_WEIGHT * (duration - average)
                    if succeeded:
                        batch.add_success(job, value)
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
            self.idle_since[channel] = time.monotonic()

    def settle(self, batch: Batch) -> None:
        """Record the batch's successes so far and hand back the jobs it has not started."""
        assert self.sender is not None
        succeeded, waiting = batch.take()
        if succeeded:
            for job in Job.objects.set_succeeded_many(succeeded):
                logger.info(
                    "job=%s task=%s succeeded attempt=%s", job.pk, job.task_path, job.attempts
                )
                self.sender.publish(job, events.JOB_DONE)
        if waiting and Job.objects.release_many(waiting):
            logger.info("channel=%s %d jobs handed back unstarted", batch.channel, len(waiting))
            self.wake_another(batch.channel, waiting[0])

    def wake_another(self, channel: str, job: Job) -> None:
        """From any thread: wake a worker for `channel`, sent from this worker's loop (where an
        in-memory layer lives); a send that fails is left to the recovery sweep."""
        assert self.sender is not None
        loop = self.sender.loop
        wakeup = dict(job_wakeup(job))

        async def send() -> None:
            try:
                await send_wakeup(get_channel_layer(), channel, wakeup)
            except Exception:
                logger.warning("channel=%s wake-up not sent", channel, exc_info=True)

        loop.call_soon_threadsafe(lambda: self.background(send()))

    def background(self, coroutine: Coroutine[Any, Any, None]) -> None:
        # Kept referenced until done (the loop holds tasks only weakly).
        task = asyncio.ensure_future(coroutine)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def watch(self) -> None:
        """Heartbeats, time limits and overlong batches of the running jobs."""
        beats: dict[int, float] = {}
        while True:
            if not self.batches:
                self.busy.clear()
                await self.busy.wait()
            await asyncio.sleep(WATCHDOG_TICK)
            try:
                await self.check(beats)
            except Exception:
                logger.exception("watchdog check failed; trying again")

    async def check(self, beats: dict[int, float]) -> None:
        heartbeat_interval: float = settings.JOBS["HEARTBEAT_INTERVAL"]
        now = time.monotonic()
        for batch in list(self.batches.values()):
            execution = batch.current
            if execution is None or batch.abandoned:
                continue
            job = execution.job
            if now - execution.started >= WATCHDOG_TICK:
                batch.notice(execution)
            if now > execution.deadline:
                await self.stop_overdue(batch, execution)
                continue
            if now - execution.started > self.batch_window and (batch.waiting or batch.succeeded):
                await database_sync_to_async(self.settle)(batch)
            if now - beats.get(job.pk, execution.started) > heartbeat_interval:
                beats[job.pk] = now
                if not await database_sync_to_async(job.heartbeat)():
                    logger.warning("job=%s is no longer ours; stopping it", job.pk)
                    execution.interrupt(JobLost)
        running = {batch.current.job.pk for batch in self.batches.values() if batch.current}
        for pk in beats.keys() - running:
            del beats[pk]

    async def stop_overdue(self, batch: Batch, execution: Execution) -> None:
        job = execution.job
        if execution.interrupted_at is None:
            logger.error("job=%s over its time limit of %g s; interrupting", job.pk, job.time_limit)
            execution.interrupt(TimeLimitExceeded)
            return
        if time.monotonic() - execution.interrupted_at < UNWIND_GRACE:
            return
        # Stuck in C code: record the failure ourselves, settle the batch and give the channel
        # a new thread; whatever the old one records later is refused, since the job is no
        # longer running.
        with batch.lock:
            batch.abandoned = True
        logger.error("job=%s did not stop within %g s; abandoning its thread", job.pk, UNWIND_GRACE)
        await database_sync_to_async(execution.fail)(
            f"took longer than its time limit of {job.time_limit:g} s", retry=False
        )
        await database_sync_to_async(self.settle)(batch)
        self.executors.pop(batch.channel).shutdown(wait=False)

    async def sweep(self) -> None:
        try:
            swept = await database_sync_to_async(jobs_sweep)(holder=self.worker_id)
        except Exception:
            logger.exception("recovery sweep failed; trying again later")
            return
        if any(swept.values()):
            logger.info("recovery sweep %s", " ".join(f"{k}={v}" for k, v in swept.items()))

    async def shutdown(self, grace: float) -> None:
        """Let running jobs finish within `grace` seconds, then hand the rest back."""
        self.stopping = True
        deadline = time.monotonic() + grace
        while self.batches and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        for batch in list(self.batches.values()):
            execution = batch.current
            with batch.lock:
                batch.abandoned = True
            if execution is not None:
                job = execution.job
                execution.interrupt(JobLost)
                if await database_sync_to_async(job.release)():
                    logger.warning("job=%s handed back unfinished at shutdown", job.pk)
                    await database_sync_to_async(job_wake)(job)
            await database_sync_to_async(self.settle)(batch)
        for executor in self.executors.values():
            executor.submit(connection.close)  # each channel's thread closes its own
            executor.shutdown(wait=False)
        if self.watchdog is not None:
            self.watchdog.cancel()
        if self.sender is not None:
            # The last events (a job's done) still go out before the process ends.
            await self.sender.flush(timeout=5)
