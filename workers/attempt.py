"""Running one attempt of one job, on its channel's thread: call the task, and record a
failure (retried with backoff, or for good) with its reason. A success is recorded with its
batch (workers/claim.py).

Whatever the task raises is the job's failure, SystemExit and KeyboardInterrupt too (they
fail the job at once, as a task's return value that is not JSON does): the worker goes on.
"""

from __future__ import annotations

import ctypes
import json
import logging
import threading
import time
import traceback
from typing import Any

from django.conf import settings
from django.tasks import task_backends
from django.tasks.exceptions import InvalidTask
from django.tasks.signals import task_finished, task_started
from django.utils import timezone
from django.utils.json import normalize_json

from workers import chains, events
from workers.backends import ChannelsBackend, JobContext
from workers.exceptions import JobCancelled, JobLost, PermanentFailure, TimeLimitExceeded
from workers.models import Job
from workers.results import job_task, send_task_signal

# Raised by a task, these fail its job at once: retrying would do the same again.
NOT_RETRIED = (SystemExit, KeyboardInterrupt, PermanentFailure)

logger = logging.getLogger(__name__)


def raise_in_thread(thread_id: int, exception: type[BaseException]) -> None:
    """Raise `exception` in another thread at its next Python instruction (as Dramatiq does
    for time limits; C code such as an image decode finishes its call first)."""
    ctypes.pythonapi.PyThreadState_SetAsyncExc(
        ctypes.c_ulong(thread_id), ctypes.py_object(exception)
    )


def class_path(error_class: type[BaseException]) -> str:
    return f"{error_class.__module__}.{error_class.__qualname__}"


class ProgressReporter:
    """Writes a task's progress to its row and its groups, at most every PROGRESS_MIN_INTERVAL."""

    def __init__(self, job: Job, publish: events.Publish) -> None:
        self.job = job
        self.publish = publish
        self.min_interval: float = settings.JOBS["PROGRESS_MIN_INTERVAL"]
        self.last_sent = 0.0
        # Set by the watchdog when it finds the job cancelled.
        self.cancelled = False

    def progress(self, percent: int, message: str = "") -> None:
        if self.cancelled:
            raise JobCancelled(f"job {self.job.pk} was cancelled")
        now = time.monotonic()
        if percent < 100 and now - self.last_sent < self.min_interval:
            return
        if not self.job.set_progress(percent, message):
            if Job.objects.filter(pk=self.job.pk, status=Job.Status.CANCELLED).exists():
                self.cancelled = True
                raise JobCancelled(f"job {self.job.pk} was cancelled")
            raise JobLost(f"job {self.job.pk} was handed to another worker")
        self.last_sent = now
        self.publish(self.job, events.JOB_PROGRESS)


class NotJSON(Exception):
    """A task's return value that cannot be stored: `cause` is the normaliser's error."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(str(cause))
        self.cause = cause


# What a task's call came to: its JSON-safe value, or the exception it raised.
Outcome = BaseException | Any


class Attempt:
    """One attempt of one job. The watchdog, on the worker's loop, may interrupt it."""

    def __init__(self, job: Job, publish: events.Publish) -> None:
        self.job = job
        self.thread_id = threading.get_ident()
        self.started = time.monotonic()
        self.deadline = self.started + job.time_limit
        self.interrupted_at: float | None = None
        # When the watchdog found the job cancelled (time.monotonic()).
        self.cancelled_at: float | None = None
        self.reporter = ProgressReporter(job, self.publish)
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
        except JobLost as late:
            # A cancel's or a stop's interruption, delivered after the task returned.
            self.record_failure(late)
            return False, None

    def call(self) -> Outcome:
        job = self.job
        try:
            task = job_task(job)
            backend = task_backends[task.backend]
            if not isinstance(backend, ChannelsBackend):
                raise InvalidTask(f"backend {task.backend!r} is not this runtime's")
        except (ImportError, InvalidTask) as error:
            return PermanentFailure(f"unknown task {job.task_path!r}: {error}")
        job.start_attempt()
        send_task_signal(task_started, job)
        # No "running" event yet: the watchdog announces a job that is still running after a
        # tick, so a job that takes less sends only its outcome.
        with self.lock:
            self.in_task = True
        try:
            if task.takes_context:
                context = JobContext(
                    task_result=backend.to_result(job, task), reporter=self.reporter
                )
                value = task.call(context, *job.args, **job.kwargs)
            else:
                value = task.call(*job.args, **job.kwargs)
        except BaseException as error:  # SystemExit too: the job's failure
            return error
        finally:
            with self.lock:
                self.in_task = False
        job.finished_at = timezone.now()
        try:
            value = normalize_json(value)
            # NaN and infinities pass Django's normaliser, not a JSON column.
            json.dumps(value, allow_nan=False)
        except (TypeError, ValueError) as error:
            return NotJSON(error)
        return value

    def record_failure(self, outcome: BaseException) -> None:
        job = self.job
        if isinstance(outcome, JobLost):
            # Cancelled (already recorded) or taken over by another worker.
            logger.warning("job=%s %s", job.pk, outcome)
        elif isinstance(outcome, TimeLimitExceeded):
            self.fail(f"took longer than its time limit of {job.time_limit:g} s", retry=False)
        elif isinstance(outcome, NotJSON):
            cause = outcome.cause
            self.fail(f"returned a value that is not JSON: {cause}", retry=False, error=cause)
        elif isinstance(outcome, PermanentFailure):
            self.fail(str(outcome), retry=False, error=outcome)
        else:
            retry = not isinstance(outcome, NOT_RETRIED)
            self.fail(f"{type(outcome).__name__}: {outcome}", retry=retry, error=outcome)

    def fail(self, message: str, *, retry: bool, error: BaseException | None = None) -> None:
        """Record this attempt's failure: retried later if `retry` and attempts are left."""
        job = self.job
        error_class = class_path(type(error) if error is not None else TimeLimitExceeded)
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
            send_task_signal(task_finished, job)
            chains.dependents_settle([job])
