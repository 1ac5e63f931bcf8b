"""Enqueueing: a job's row is written in the caller's transaction, its wake-up sent after the
commit. A job therefore exists before anyone is told of it, and a rolled-back enqueue leaves
nothing behind, not even a message.

A unique job whose key an unfinished job has is not written again: the enqueue returns that
job. A job enqueued to run after others (a chain) waits until they all succeeded
(workers/chains.py)."""

from __future__ import annotations

from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING, Any

from django.db import transaction
from django.utils import timezone
from django.utils.json import normalize_json

from workers import chains
from workers.models import Job
from workers.wakeups import wake_soon

if TYPE_CHECKING:
    from django.contrib.auth.models import User


def job_create(**fields: Any) -> Job:
    """job_enqueue(), the job only."""
    job, _ = job_enqueue(**fields)
    return job


def job_enqueue(
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
    task_options: dict[str, Any] | None = None,
    unique_key: str = "",
    after: list[int] | None = None,
    **limits: Any,
) -> tuple[Job, bool]:
    """Record a job in the caller's transaction; wake a worker once that commits. Returns
    the job and whether it is new (False: the unfinished job with its unique key)."""
    now = timezone.now()
    waits = bool(after)
    due = (run_after or now) <= now and not waits
    values: dict[str, Any] = {
        "task_path": task_path,
        "channel": channel,
        "priority": priority,
        "max_attempts": max_attempts,
        "time_limit": time_limit,
        "run_after": run_after or now,
        "enqueued_at": now,
        # Recorded up front (no second write); a wake-up that fails to go out clears it.
        "woken_at": now if due else None,
    }
    # Given only when set: the insert statement is worked out per set of fields given, and
    # the common job's leaves these to their constant defaults (an empty list or dict, no
    # owner), which costs no parameter to send.
    optional = {
        "args": normalize_json(args),
        "kwargs": normalize_json(kwargs),
        "meta": normalize_json(meta or {}),
        "owner": owner,
        "task_options": task_options,
        "unique_key": unique_key,
        "after": after,
        **limits,
    }
    values.update({name: value for name, value in optional.items() if value})
    if waits:
        values["status"] = Job.Status.WAITING
    if unique_key:
        job, created = Job.objects.insert_unique(**values)
    else:
        job, created = Job.objects.insert(**values), True
    if not created:
        return job, False
    if waits:
        chains.chain_link(job)
    elif due:
        # A deferred job is woken by the recovery sweep once its time comes. The caller does
        # not wait for the layer: a request answers as soon as its transaction commits.
        transaction.on_commit(partial(wake_soon, job), robust=True)
    return job, True
