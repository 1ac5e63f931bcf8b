"""What operators (the admin, `manage.py jobs`, `manage.py clearjobs`) and apps do to jobs:
cancel, run again, and delete old ones."""

from __future__ import annotations

from datetime import timedelta
from functools import partial

from django.db import transaction
from django.utils import timezone

from workers import events
from workers.models import Job
from workers.wakeups import wake


def job_cancel(*, job: Job) -> bool:
    """Cancel a queued or running job; a running task stops at its next progress report."""
    if not job.cancel():
        return False
    events.broadcast(job, events.JOB_FAILED)
    return True


def job_retry(*, job: Job) -> bool:
    """Run a failed or cancelled job again from its first attempt."""
    if not job.requeue():
        return False
    transaction.on_commit(partial(wake, job), robust=True)
    return True


def jobs_prune(*, older_than_days: float, batch: int = 1000) -> int:
    """Delete finished jobs older than `older_than_days` that nothing points to, a batch at a
    time (short transactions, in id order, so each batch starts where the last one ended);
    the number deleted."""
    disposable = Job.objects.disposable(
        finished_before=timezone.now() - timedelta(days=older_than_days)
    )
    deleted, after = 0, 0
    while ids := list(
        disposable.filter(pk__gt=after).order_by("pk").values_list("pk", flat=True)[:batch]
    ):
        # Asked again in the delete: a job retried from the admin meanwhile is queued now.
        deleted += disposable.filter(pk__in=ids).delete()[1].get(Job._meta.label, 0)
        after = ids[-1]
    return deleted
