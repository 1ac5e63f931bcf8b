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
import hashlib
import json
import logging
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any, overload

from django.conf import settings
from django.tasks import Task, TaskContext, TaskResult, TaskResultStatus, task_backends
from django.tasks.backends.base import BaseTaskBackend
from django.tasks.base import (
    DEFAULT_TASK_BACKEND_ALIAS,
    DEFAULT_TASK_PRIORITY,
    DEFAULT_TASK_QUEUE_NAME,
    TaskError,
)
from django.tasks.exceptions import InvalidTask, TaskResultDoesNotExist
from django.tasks.signals import task_enqueued
from django.utils.json import normalize_json
from django.utils.module_loading import import_string

from workers.results import job_task

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


# The options of a task that `.using()` may change per enqueue: what a job records of the
# task it was enqueued as (Job.task_options), beyond its path.
USING_OPTIONS = (
    "priority",
    "queue_name",
    "run_after",
    "backend",
    "max_attempts",
    "time_limit",
    "after",
)
RATE_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


@dataclass(frozen=True, slots=True, kw_only=True)
class JobTask(Task):  # type: ignore[misc, type-arg]
    """A Task with the runtime's per-task options (None: the JOBS setting's default).

    - `max_attempts`, `time_limit`: attempts a job gets, seconds one attempt may run.
    - `unique`: True (by its arguments) or a function of its arguments giving a key: while a
      job of the task with that key is unfinished, enqueueing another returns that job.
    - `concurrency`, `rate_limit` ("10/m": per s, m, h or d), per `limit_key` (a function
      of the task's arguments giving a key; by default the job's owner): at most that many
      running at once, at most that many started per period.
    - `after` (per enqueue, through `.using(after=[result, ...])`): the job runs once those
      jobs all succeeded, and fails unrun if one of them fails.
    """

    max_attempts: int | None = None
    time_limit: float | None = None
    unique: bool | Callable[..., Any] = False
    concurrency: int | None = None
    rate_limit: str | None = None
    limit_key: Callable[..., Any] | None = None
    after: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.rate_limit is not None:
            rate_of(self.rate_limit)  # a bad one fails where the task is declared
        if self.concurrency is not None and self.concurrency < 1:
            raise InvalidTask(f"concurrency must be at least 1, not {self.concurrency!r}")
        super(JobTask, self).__post_init__()

    @property
    def limited(self) -> bool:
        return bool(self.concurrency or self.rate_limit)

    def using(  # type: ignore[override]
        self,
        *,
        priority: int | None = None,
        queue_name: str | None = None,
        run_after: datetime | None = None,
        backend: str | None = None,
        max_attempts: int | None = None,
        time_limit: float | None = None,
        after: Iterable[TaskResult[Any, Any] | str | int] | None = None,
    ) -> JobTask:
        """Task.using(), and the runtime's own options too."""
        changes: dict[str, Any] = {
            "priority": priority,
            "queue_name": queue_name,
            "run_after": run_after,
            "backend": backend,
            "max_attempts": max_attempts,
            "time_limit": time_limit,
            "after": None if after is None else tuple(result_id(r) for r in after),
        }
        return replace(
            self, **{name: value for name, value in changes.items() if value is not None}
        )


def result_id(result: TaskResult[Any, Any] | str | int) -> str:
    return str(result.id if isinstance(result, TaskResult) else result)


def rate_of(rate_limit: str) -> tuple[int, float]:
    """ "10/m" as (10, 60.0): how many per how many seconds."""
    count, _, unit = rate_limit.partition("/")
    try:
        return int(count), RATE_UNITS[unit.strip()]
    except (KeyError, ValueError):
        raise InvalidTask(
            f"rate_limit {rate_limit!r} is not like '10/m' (a count per s, m, h or d)"
        ) from None


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
    unique: bool | Callable[..., Any] = ...,
    concurrency: int | None = ...,
    rate_limit: str | None = ...,
    limit_key: Callable[..., Any] | None = ...,
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
    unique: bool | Callable[..., Any] = False,
    concurrency: int | None = None,
    rate_limit: str | None = None,
    limit_key: Callable[..., Any] | None = None,
) -> JobTask | Callable[[TaskFunction], JobTask]:
    """django.tasks.task, with the runtime's options (see JobTask)."""

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
            unique=unique,
            concurrency=concurrency,
            rate_limit=rate_limit,
            limit_key=limit_key,
        )
        return made

    return wrapper(function) if function is not None else wrapper


def task_options(task: Task[Any, Any]) -> dict[str, Any]:
    """What `.using()` changed from the task as declared, as JSON (Job.task_options)."""
    try:
        declared = import_string(task.module_path)
    except ImportError:
        declared = None
    if declared is task:
        return {}
    options = {}
    for name in USING_OPTIONS:
        value = getattr(task, name, None)
        if not isinstance(declared, Task) or value != getattr(declared, name, None):
            if isinstance(value, datetime):
                value = value.isoformat()
            elif isinstance(value, tuple):
                value = list(value)
            options[name] = value
    return options


@dataclass(frozen=True, slots=True, kw_only=True)
class JobContext(TaskContext):  # type: ignore[misc, type-arg]
    """What a `takes_context` task receives: the result so far, a progress reporter, and
    whether the job was cancelled."""

    reporter: Any

    def progress(self, percent: int, message: str = "") -> None:
        """Report progress; raises JobCancelled if the job was cancelled, JobLost if it was
        taken from this worker."""
        self.reporter.progress(percent, message)

    @property
    def cancelled(self) -> bool:
        """Whether an operator or the owner cancelled the job: a task that checks stops
        cleanly (return or raise); one that does not is interrupted after
        JOBS_CANCEL_GRACE seconds."""
        return bool(self.reporter.cancelled)


STATUS_TO_RESULT = {
    "waiting": TaskResultStatus.READY,
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
        from workers.enqueue import job_enqueue

        self.validate_task(task)
        context = _enqueue_context.get() or {}
        options = settings.JOBS
        owner = context.get("owner")
        args, kwargs = normalize_json(list(args)), normalize_json(dict(kwargs))
        extra: dict[str, Any] = {}
        if isinstance(task, JobTask):
            extra = job_task_fields(task, owner, args, kwargs)
        job, created = job_enqueue(
            task_path=task.module_path,
            task_options=task_options(task),
            channel=task.queue_name,
            priority=task.priority,
            run_after=task.run_after,
            args=args,
            kwargs=kwargs,
            owner=owner,
            meta=context.get("meta") or {},
            max_attempts=int(
                getattr(task, "max_attempts", None) or options["DEFAULT_MAX_ATTEMPTS"]
            ),
            time_limit=getattr(task, "time_limit", None) or options["DEFAULT_TIME_LIMIT"],
            **extra,
        )
        result = self.to_result(job, task)
        if created:
            task_enqueued.send(type(self), task_result=result)
        return result

    def get_result(self, result_id: str) -> TaskResult[Any, Any]:
        from workers.models import Job

        try:
            job = Job.objects.get(pk=int(result_id))
        except (ValueError, Job.DoesNotExist):
            raise TaskResultDoesNotExist(result_id) from None
        return self.to_result(job, job_task(job))

    def to_result(self, job: Job, task: Task[Any, Any]) -> TaskResult[Any, Any]:
        errors = [
            TaskError(
                exception_class_path=entry.get("exception_class_path", ""),
                traceback=entry.get("traceback", ""),
            )
            for entry in job.errors
        ]
        result: TaskResult[Any, Any] = TaskResult(
            task=task,
            id=str(job.pk),
            status=STATUS_TO_RESULT[job.status],
            enqueued_at=job.enqueued_at,
            started_at=job.started_at,
            finished_at=job.finished_at,
            last_attempted_at=job.last_attempted_at,
            args=job.args,
            kwargs=job.kwargs,
            backend=self.alias,
            errors=errors,
            worker_ids=list(job.worker_ids),
        )
        object.__setattr__(result, "_return_value", job.result)
        return result


def job_task_fields(
    task: JobTask, owner: Any, args: list[Any], kwargs: dict[str, Any]
) -> dict[str, Any]:
    """The columns of a job that its task's own options give: unique key, limits, chain."""
    fields: dict[str, Any] = {}
    if task.unique:
        key = task.unique(*args, **kwargs) if callable(task.unique) else [args, kwargs]
        fields["unique_key"] = bounded_key(f"{task.module_path}:{json.dumps(key)}")
    if task.limited:
        if task.limit_key is not None:
            key = str(task.limit_key(*args, **kwargs))
        else:
            key = f"{task.module_path}:owner:{getattr(owner, 'pk', None) or '-'}"
        fields["limit_key"] = bounded_key(key)
        fields["concurrency"] = task.concurrency or 0
        if task.rate_limit:
            fields["rate_limit"], fields["rate_period"] = rate_of(task.rate_limit)
    if task.after:
        fields["after"] = [int(pk) for pk in task.after]
    return fields


def bounded_key(key: str, limit: int = 255) -> str:
    """A key as it fits its column: a long one by its digest."""
    if len(key) <= limit:
        return key
    return f"{key[: limit - 65]}#{hashlib.sha256(key.encode()).hexdigest()}"
