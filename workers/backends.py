"""A `django.tasks` backend whose queues are named channels, with durable job rows.

App code uses Django's Tasks API:

    @task(queue_name="thumbnails", takes_context=True)
    def make_thumbnails(context, upload_id): ...

    with enqueue_for(owner=user, upload=upload.pk):
        make_thumbnails.enqueue(upload.pk)

`enqueue()` writes a `Job` row in the caller's transaction and wakes a worker on the channel
named by `queue_name` once that transaction commits.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.tasks import Task, TaskContext, TaskResult, TaskResultStatus
from django.tasks.backends.base import BaseTaskBackend
from django.tasks.base import TaskError
from django.tasks.exceptions import TaskResultDoesNotExist
from django.utils.module_loading import import_string

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

    from workers.models import Job

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
    """A Task with the runtime's per-task limits (None: the JOBS setting's default)."""

    max_attempts: int | None = None
    time_limit: float | None = None


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
        from workers.services import job_create

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
        return self.to_result(job, task)

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
