"""A `django.tasks` backend whose queues are named channels, with durable job rows: where a
job enters the runtime.

App code uses Django's Tasks API, with this runtime's `task` decorator for its own options:

    from workers.backends import JobContext, enqueue_for, task

    @task(queue_name="thumbnails", takes_context=True, time_limit=120, max_attempts=5)
    def make_thumbnails(context: JobContext, upload_id: int) -> dict: ...

    with enqueue_for(owner=user, upload=upload.pk):
        make_thumbnails.enqueue(upload.pk)

`enqueue()` writes a `Job` row in the caller's transaction and wakes a worker on the channel
named by `queue_name` once that transaction commits (workers/enqueue.py).
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any, overload

from django.conf import settings
from django.dispatch import Signal
from django.tasks import Task, TaskContext, TaskResult, TaskResultStatus, task_backends
from django.tasks.backends.base import BaseTaskBackend
from django.tasks.base import (
    DEFAULT_TASK_BACKEND_ALIAS,
    DEFAULT_TASK_PRIORITY,
    DEFAULT_TASK_QUEUE_NAME,
    TaskError,
)
from django.tasks.exceptions import TaskResultDoesNotExist
from django.tasks.signals import task_enqueued
from django.utils.module_loading import import_string

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

    from workers.models import Job

logger = logging.getLogger(__name__)

_enqueue_context: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "enqueue_context", default=None
)


@contextmanager
def enqueue_for(
    owner: AbstractBaseUser | AnonymousUser | None = None, **meta: Any
) -> Iterator[None]:
    """Jobs enqueued inside belong to `owner`; `meta` (JSON) rides along on their events."""
    token = _enqueue_context.set({"owner": owner, "meta": meta})
    try:
        yield
    finally:
        _enqueue_context.reset(token)


@dataclass(frozen=True, slots=True, kw_only=True)
class JobTask(Task):  # type: ignore[misc, type-arg]
    """A Task with the runtime's per-task options (None: the JOBS setting's default)."""

    max_attempts: int | None = None
    time_limit: float | None = None

    def using(  # type: ignore[override]
        self,
        *,
        priority: int | None = None,
        queue_name: str | None = None,
        run_after: datetime | None = None,
        backend: str | None = None,
        max_attempts: int | None = None,
        time_limit: float | None = None,
    ) -> JobTask:
        """Task.using(), and the runtime's own options too."""
        changes: dict[str, Any] = {
            "priority": priority,
            "queue_name": queue_name,
            "run_after": run_after,
            "backend": backend,
            "max_attempts": max_attempts,
            "time_limit": time_limit,
        }
        return replace(
            self, **{name: value for name, value in changes.items() if value is not None}
        )


TaskFunction = Callable[..., Any]


@overload
def task(function: TaskFunction, /) -> JobTask: ...
@overload
def task(
    *,
    priority: int = ...,
    queue_name: str = ...,
    backend: str = ...,
    takes_context: bool = ...,
    max_attempts: int | None = ...,
    time_limit: float | None = ...,
) -> Callable[[TaskFunction], JobTask]: ...
def task(
    function: TaskFunction | None = None,
    /,
    *,
    priority: int = DEFAULT_TASK_PRIORITY,
    queue_name: str = DEFAULT_TASK_QUEUE_NAME,
    backend: str = DEFAULT_TASK_BACKEND_ALIAS,
    takes_context: bool = False,
    max_attempts: int | None = None,
    time_limit: float | None = None,
) -> JobTask | Callable[[TaskFunction], JobTask]:
    """django.tasks.task, with the runtime's options: how many attempts a job of this task
    gets (`max_attempts`) and how long one may run (`time_limit`, seconds)."""

    def wrapper(func: TaskFunction) -> JobTask:
        task_class = task_backends[backend].task_class
        assert issubclass(task_class, JobTask), f"backend {backend!r} is not this runtime's"
        made: JobTask = task_class(
            priority=priority,
            func=func,
            queue_name=queue_name,
            backend=backend,
            takes_context=takes_context,
            run_after=None,
            max_attempts=max_attempts,
            time_limit=time_limit,
        )
        return made

    return wrapper(function) if function is not None else wrapper


@dataclass(frozen=True, slots=True, kw_only=True)
class JobContext(TaskContext):  # type: ignore[misc, type-arg]
    """What a `takes_context` task receives: the result so far, and a progress reporter."""

    reporter: Any

    def progress(self, percent: int, message: str = "") -> None:
        """Report progress; raises JobLost if the job was cancelled or taken from us."""
        self.reporter.progress(percent, message)


STATUS_TO_RESULT = {
    "queued": TaskResultStatus.READY,
    "running": TaskResultStatus.RUNNING,
    "succeeded": TaskResultStatus.SUCCESSFUL,
    "failed": TaskResultStatus.FAILED,
    "cancelled": TaskResultStatus.FAILED,
}


class ChannelsBackend(BaseTaskBackend):
    task_class = JobTask
    supports_defer = True
    supports_get_result = True
    supports_priority = True
    # Async tasks are not run: a time limit cannot interrupt a coroutine on the worker's loop.
    supports_async_task = False

    def enqueue(self, task: Task[Any, Any], args: Any, kwargs: Any) -> TaskResult[Any, Any]:
        from workers.enqueue import job_create

        self.validate_task(task)
        context = _enqueue_context.get() or {}
        options = settings.JOBS
        job = job_create(
            task_path=task.module_path,
            channel=task.queue_name,
            priority=task.priority,
            run_after=task.run_after,
            args=list(args),
            kwargs=dict(kwargs),
            owner=context.get("owner"),
            meta=context.get("meta") or {},
            max_attempts=int(
                getattr(task, "max_attempts", None) or options["DEFAULT_MAX_ATTEMPTS"]
            ),
            time_limit=getattr(task, "time_limit", None) or options["DEFAULT_TIME_LIMIT"],
        )
        result = self.to_result(job, task)
        task_enqueued.send(type(self), task_result=result)
        return result

    def get_result(self, result_id: str) -> TaskResult[Any, Any]:
        from workers.models import Job

        try:
            job = Job.objects.get(pk=int(result_id))
        except (ValueError, Job.DoesNotExist):
            raise TaskResultDoesNotExist(result_id) from None
        return self.to_result(job, import_string(job.task_path))

    def to_result(self, job: Job, task: Task[Any, Any]) -> TaskResult[Any, Any]:
        errors = []
        if job.error_class:
            errors.append(TaskError(exception_class_path=job.error_class, traceback=job.traceback))
        result: TaskResult[Any, Any] = TaskResult(
            task=task,
            id=str(job.pk),
            status=STATUS_TO_RESULT[job.status],
            enqueued_at=job.enqueued_at,
            started_at=job.started_at,
            finished_at=job.finished_at,
            last_attempted_at=job.started_at,
            args=job.args,
            kwargs=job.kwargs,
            backend=self.alias,
            errors=errors,
            worker_ids=list(job.worker_ids),
        )
        object.__setattr__(result, "_return_value", job.result)
        return result


def send_task_signal(signal: Signal, job: Job) -> None:
    """Send one of Django's task signals (`task_started`, `task_finished`) for the job, with
    its result as it stands; a receiver that fails is logged, never raised into the worker.
    A job whose task no longer imports has no result to send."""
    try:
        task = import_string(job.task_path)
    except ImportError:
        return
    backend = task_backends[task.backend]
    result = backend.to_result(job, task)  # type: ignore[attr-defined]
    for receiver, response in signal.send_robust(type(backend), task_result=result):
        if isinstance(response, Exception):
            logger.error("job=%s signal receiver %r failed", job.pk, receiver, exc_info=response)
