"""Enqueueing: a job's row is written in the caller's transaction, its wake-up sent after the
commit. A job therefore exists before anyone is told of it, and a rolled-back enqueue leaves
nothing behind, not even a message."""

from __future__ import annotations

from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING, Any

from django.db import transaction
from django.utils import timezone
from django.utils.json import normalize_json

from workers.models import Job
from workers.wakeups import wake_soon

if TYPE_CHECKING:
    from django.contrib.auth.models import User


def job_create(
    *,
    task_path: str,
    channel: str,
    args: list[Any],
    kwargs: dict[str, Any],
    max_attempts: int,
    time_limit: float,
    priority: int = 0,
    run_after: datetime | None = None,
    owner: User | None = None,
    meta: dict[str, Any] | None = None,
) -> Job:
    """Record a job in the caller's transaction; wake a worker once that commits."""
    now = timezone.now()
    due = (run_after or now) <= now
    job = Job.objects.insert(
        task_path=task_path,
        channel=channel,
        priority=priority,
        args=normalize_json(args),
        kwargs=normalize_json(kwargs),
        owner=owner,
        meta=normalize_json(meta or {}),
        max_attempts=max_attempts,
        time_limit=time_limit,
        run_after=run_after or now,
        enqueued_at=now,
        # Recorded up front (no second write); a wake-up that fails to go out clears it.
        woken_at=now if due else None,
    )
    if due:
        # A deferred job is woken by the recovery sweep once its time comes. The caller does
        # not wait for the layer: a request answers as soon as its transaction commits.
        transaction.on_commit(partial(wake_soon, job), robust=True)
    return job
