"""What operators (the admin, `manage.py jobs`, the operators' page) and apps do to jobs and
channels: cancel, run again, delete old ones, pause and resume a channel."""

from __future__ import annotations

import logging
from datetime import timedelta
from functools import partial

from django.db import transaction
from django.utils import timezone

from workers import chains, events
from workers.models import Job, PausedChannel
from workers.wakeups import wake, wake_channel_soon

logger = logging.getLogger(__name__)


def job_cancel(*, job: Job) -> bool:
    """Cancel a waiting, queued or running job. A running task sees it (`context.cancelled`,
    `context.progress()` raises) and is interrupted after JOBS_CANCEL_GRACE; the jobs that
    wait for it fail unrun."""
    if not job.cancel():
        return False
    logger.info("job=%s cancelled", job.pk)
    events.broadcast(job, events.JOB_FAILED)
    if job.dependents:
        transaction.on_commit(lambda: chains.dependents_settle([job]), robust=True)
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


def channel_pause(*, channel: str, by: str = "") -> bool:
    """Stop every worker from claiming the channel's jobs (those running finish); False if
    it was paused already."""
    _, created = PausedChannel.objects.get_or_create(name=channel, defaults={"paused_by": by})
    if created:
        logger.warning("channel=%s paused by %s", channel, by or "an operator")
    return created


def channel_resume(*, channel: str) -> bool:
    """Let workers claim the channel's jobs again, and wake one; False if it was not paused."""
    deleted, _ = PausedChannel.objects.filter(name=channel).delete()
    if deleted:
        logger.warning("channel=%s resumed", channel)
        transaction.on_commit(lambda: wake_channel_soon(channel), robust=True)
    return bool(deleted)
