"""The task a job was enqueued as, and Django's task signals about its result: what the
worker side needs of the backend without importing it (workers/backends.py imports the
enqueue, which imports what settles waiting jobs)."""

from __future__ import annotations

import functools
import json
import logging
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.dispatch import Signal
from django.tasks import Task, task_backends
from django.tasks.exceptions import InvalidTask
from django.utils.module_loading import import_string

if TYPE_CHECKING:
    from workers.models import Job

logger = logging.getLogger(__name__)


def job_task(job: Job) -> Task[Any, Any]:
    """The task the job was enqueued as: the declared one, with what `.using()` changed.
    Raises ImportError, or InvalidTask if its path names something that is not a task."""
    options = json.dumps(job.task_options, sort_keys=True) if job.task_options else ""
    return _task_at(job.task_path, options)


@functools.lru_cache(maxsize=1024)
def _task_at(task_path: str, options: str) -> Task[Any, Any]:
    found = import_string(task_path)
    if not isinstance(found, Task):
        raise InvalidTask(f"{task_path!r} is not a task (a function without @task?)")
    if not options:
        return found
    changes = json.loads(options)
    if changes.get("run_after"):
        changes["run_after"] = datetime.fromisoformat(changes["run_after"])
    if "after" in changes:
        changes["after"] = tuple(changes["after"])
    # replace(), not using(): a plain Task's using() knows none of the runtime's options.
    return replace(found, **changes)


def send_task_signal(signal: Signal, job: Job) -> None:
    """Send one of Django's task signals (`task_started`, `task_finished`) for the job, with
    its result as it stands; a receiver that fails is logged, never raised into the worker.
    A job whose task no longer imports has no result to send."""
    try:
        task = job_task(job)
    except (ImportError, InvalidTask):
        return
    backend = task_backends[task.backend]
    result = backend.to_result(job, task)  # type: ignore[attr-defined]
    for receiver, response in signal.send_robust(type(backend), task_result=result):
        if isinstance(response, Exception):
            logger.error("job=%s signal receiver %r failed", job.pk, receiver, exc_info=response)
