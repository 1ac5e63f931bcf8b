"""Running claimed jobs: one thread per channel, a heartbeat, a time limit, progress events."""

from __future__ import annotations

import asyncio
import ctypes
import logging
import os
import socket
import threading
import time
import traceback
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import DatabaseError, close_old_connections
from django.tasks import task_backends
from django.utils.crypto import get_random_string
from django.utils.json import normalize_json
from django.utils.module_loading import import_string

from workers import events
from workers.backends import ChannelsBackend, JobContext
from workers.exceptions import JobLost, PermanentFailure, TimeLimitExceeded
from workers.models import Job
from workers.services import job_event, job_event_groups, job_wake, jobs_sweep

logger = logging.getLogger(__name__)

# After a time limit, how long the task's thread gets to unwind before it is abandoned.
UNWIND_GRACE = 5.0


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


class Execution:
    """One attempt of one job, run in a worker thread by `run()`."""

    def __init__(self, job: Job, publish: Publish) -> None:
        self.job = job
        self.publish = publish
        self.thread_id: int | None = None
        self.in_task = False
        self.lock = threading.Lock()

    def interrupt(self, exception: type[BaseException]) -> bool:
        """Stop the task's code with `exception`; False if it is not inside the task."""
        with self.lock:
            if not self.in_task or self.thread_id is None:
                return False
            raise_in_thread(self.thread_id, exception)
            return True

    def run(self) -> None:
        self.thread_id = threading.get_ident()
        job = self.job
        try:
            try:
                self.record(self.call())
            except TimeLimitExceeded:
                # Delivered late, while recording: the limit still wins.
                self.fail(f"took longer than its time limit of {job.time_limit:g} s", retry=False)
        finally:
            close_old_connections()

    def call(self) -> BaseException | Any:
        """Run the task; return its JSON-safe value, or the exception it raised."""
        job = self.job
        try:
            task = import_string(job.task_path)
        except ImportError as error:
            return PermanentFailure(f"unknown task {job.task_path!r}: {error}")
        backend = task_backends[task.backend]
        assert isinstance(backend, ChannelsBackend)
        self.publish(job, events.JOB_PROGRESS)
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

    def record(self, outcome: BaseException | Any) -> None:
        job = self.job
        if isinstance(outcome, JobLost):
            logger.warning("job=%s %s", job.pk, outcome)
        elif isinstance(outcome, TimeLimitExceeded):
            self.fail(f"took longer than its time limit of {job.time_limit:g} s", retry=False)
        elif isinstance(outcome, PermanentFailure):
            self.fail(str(outcome), retry=False, error=outcome)
        elif isinstance(outcome, Exception):
            self.fail(f"{type(outcome).__name__}: {outcome}", retry=True, error=outcome)
        elif job.set_succeeded(outcome):
            logger.info("job=%s task=%s succeeded attempt=%s", job.pk, job.task_path, job.attempts)
            self.publish(job, events.JOB_DONE)

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


class JobRunner:
    """Claims and runs a process's jobs, one at a time per channel, until asked to stop."""

    def __init__(self, worker_id: str | None = None) -> None:
        self.worker_id = worker_id or new_worker_id()
        self.stopping = False
        self.executions: dict[str, Execution] = {}
        self.executors: dict[str, ThreadPoolExecutor] = {}
        # Job events wait here for one sender task, so a job's thread never waits for Redis;
        # one queue keeps them in order.
        self.events: asyncio.Queue[tuple[list[str], dict[str, Any]]] | None = None
        self.sender: asyncio.Task[None] | None = None

    def publisher(self) -> Publish:
        """A thread-safe Publish for jobs run from the current event loop."""
        loop = asyncio.get_running_loop()
        if self.events is None:
            self.events = asyncio.Queue()
            self.sender = loop.create_task(self.send_events(self.events))
        queue = self.events

        def publish(job: Job, event_type: str) -> None:
            item = (job_event_groups(job), dict(job_event(job, event_type)))
            loop.call_soon_threadsafe(queue.put_nowait, item)

        return publish

    async def send_events(self, queue: asyncio.Queue[tuple[list[str], dict[str, Any]]]) -> None:
        layer = get_channel_layer()
        while True:
            groups, event = await queue.get()
            try:
                for group in groups:
                    await layer.group_send(group, event)
            except Exception:
                logger.warning(
                    "job=%s event=%s not sent", event["job"], event["type"], exc_info=True
                )
            finally:
                queue.task_done()

    def executor(self, channel: str) -> ThreadPoolExecutor:
        # One long-lived thread per channel keeps its database connection between jobs.
        if channel not in self.executors:
            self.executors[channel] = ThreadPoolExecutor(1, thread_name_prefix=f"job-{channel}")
        return self.executors[channel]

    async def drain(self, channel: str) -> None:
        """Run ready jobs of `channel` until there are none (or the worker is stopping)."""
        while not self.stopping:
            # Claimed on the channel's own thread: the job then runs on the connection that
            # claimed it, with no hop through the shared database thread.
            job = await sync_to_async(
                self.claim, thread_sensitive=False, executor=self.executor(channel)
            )(channel)
            if job is None:
                return
            await self.run(job)

    def claim(self, channel: str) -> Job | None:
        try:
            return Job.objects.claim_next(channel=channel, worker_id=self.worker_id)
        except DatabaseError:
            close_old_connections()  # a broken connection is replaced on the next claim
            raise

    async def run(self, job: Job) -> None:
        logger.info("job=%s task=%s claimed attempt=%s", job.pk, job.task_path, job.attempts)
        execution = Execution(job, self.publisher())
        self.executions[job.channel] = execution
        thread = asyncio.ensure_future(
            sync_to_async(
                execution.run, thread_sensitive=False, executor=self.executor(job.channel)
            )()
        )
        heartbeat = asyncio.ensure_future(self.heartbeat(execution))
        try:
            await asyncio.wait_for(asyncio.shield(thread), timeout=job.time_limit)
        except TimeoutError:
            await self.stop_overdue(execution, thread)
        finally:
            heartbeat.cancel()
            self.executions.pop(job.channel, None)

    async def heartbeat(self, execution: Execution) -> None:
        interval: float = settings.JOBS["HEARTBEAT_INTERVAL"]
        while True:
            await asyncio.sleep(interval)
            if not await database_sync_to_async(execution.job.heartbeat)():
                logger.warning("job=%s is no longer ours; stopping it", execution.job.pk)
                execution.interrupt(JobLost)
                return

    async def stop_overdue(self, execution: Execution, thread: asyncio.Future[None]) -> None:
        job = execution.job
        logger.error("job=%s over its time limit of %g s; interrupting", job.pk, job.time_limit)
        execution.interrupt(TimeLimitExceeded)
        try:
            await asyncio.wait_for(asyncio.shield(thread), timeout=UNWIND_GRACE)
        except TimeoutError:
            # Stuck in C code: record the failure ourselves and give the channel a new thread;
            # whatever the old one records later is refused, since the job is no longer running.
            await database_sync_to_async(execution.fail)(
                f"took longer than its time limit of {job.time_limit:g} s", retry=False
            )
            self.executors.pop(job.channel).shutdown(wait=False)

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
        while self.executions and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        for execution in list(self.executions.values()):
            job = execution.job
            execution.interrupt(JobLost)
            if await database_sync_to_async(job.release)():
                logger.warning("job=%s handed back unfinished at shutdown", job.pk)
                await database_sync_to_async(job_wake)(job)
        for executor in self.executors.values():
            executor.shutdown(wait=False)
        if self.events is not None and self.sender is not None:
            # The last events (a job's done) still go out before the process ends.
            try:
                await asyncio.wait_for(self.events.join(), timeout=5)
            except TimeoutError:
                logger.warning("%d job events not sent at shutdown", self.events.qsize())
            self.sender.cancel()
