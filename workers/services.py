"""The job runtime's rules: creating jobs, waking workers, recovering lost jobs, events."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING, Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from django.utils.json import normalize_json

from workers import events
from workers.layer import layer_send, layer_send_soon
from workers.models import Job, Lease

if TYPE_CHECKING:
    from django.contrib.auth.models import User

logger = logging.getLogger(__name__)

SWEEP_LEASE = "workers.sweep"
# A sweep wakes at most this many workers per channel: a woken worker drains the channel, so
# more wake-ups than workers only fill the layer.
SWEEP_WAKEUPS_PER_CHANNEL = 50


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
        dispatched_at=now if due else None,
    )
    if due:
        # A deferred job is woken by the sweep once its time comes. The caller does not wait
        # for the layer: a request answers as soon as its transaction commits.
        transaction.on_commit(partial(job_dispatch_soon, job), robust=True)
    return job


def job_dispatch(job: Job) -> bool:
    """Send the job's wake-up on its channel. An unreachable layer is only logged: the job
    stays queued and the recovery sweep dispatches it again."""
    try:
        layer_send(job.channel, dict(job_wakeup(job)))
    except Exception as error:
        job_dispatch_failed(job, error)
        return False
    return True


def job_dispatch_soon(job: Job) -> None:
    """job_dispatch() without waiting for the layer."""

    def failed(error: BaseException) -> None:
        try:
            job_dispatch_failed(job, error)
        finally:
            connection.close()  # a thread of the sender's, not a request's

    layer_send_soon(
        job.channel, dict(job_wakeup(job)), failed, spacing=settings.JOBS["WAKEUP_SPACING"]
    )


def job_wakeup(job: Job) -> events.WakeUp:
    return {"type": events.JOB_WAKEUP, "job": job.pk}


def job_dispatch_failed(job: Job, error: BaseException) -> None:
    logger.warning(
        "job=%s channel=%s wake-up not sent; recovery will retry",
        job.pk,
        job.channel,
        exc_info=error,
    )
    Job.objects.filter(pk=job.pk).update(dispatched_at=None)


def job_wake(job: Job) -> bool:
    """Record a new wake-up for the job and send it (the sweep, a retry, a hand-back)."""
    job.mark_dispatched()
    return job_dispatch(job)


def job_event(job: Job, event_type: str) -> events.JobEvent:
    event: events.JobEvent = {
        "type": event_type,
        "job": job.pk,
        "task": job.task_path.rsplit(".", 1)[-1],
        "channel": job.channel,
        "status": job.status,
        "progress": job.progress,
        "message": job.progress_message,
    }
    if job.status == Job.Status.FAILED:
        event["error"] = job.error
    if "upload" in job.meta:
        event["upload"] = job.meta["upload"]
    return event


def job_event_groups(job: Job) -> list[str]:
    groups = [events.job_group(job.pk)]
    if job.owner_id is not None:
        groups.append(events.user_group(job.owner_id))
    return groups


def job_broadcast(job: Job, event_type: str) -> None:
    """Send a job event to its owner's group and its own group; never fails the caller."""
    event = job_event(job, event_type)
    groups = job_event_groups(job)
    layer = get_channel_layer()
    try:
        for group in groups:
            async_to_sync(layer.group_send)(group, dict(event))
    except Exception:
        logger.warning("job=%s event=%s not sent", job.pk, event_type, exc_info=True)


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


def jobs_sweep(*, holder: str) -> dict[str, int]:
    """Recover lost jobs: requeue running jobs whose worker went silent, and wake workers for
    ready jobs whose wake-up may have been lost. One process sweeps at a time."""
    options = settings.JOBS
    swept = {"recovered": 0, "given_up": 0, "dispatched": 0}
    if not Lease.acquire(SWEEP_LEASE, holder=holder, ttl=options["SWEEP_INTERVAL"] * 2):
        return swept
    for job in Job.objects.stale(silent_for=options["STALE_AFTER"]):
        reason = f"worker {job.worker_id} stopped responding"
        if job.recover(reason):
            if job.status == Job.Status.FAILED:
                swept["given_up"] += 1
                logger.error("job=%s %s; failed for good", job.pk, reason)
                job_broadcast(job, events.JOB_FAILED)
            else:
                swept["recovered"] += 1
                logger.warning("job=%s %s; queued again", job.pk, reason)
    for channel in settings.WORKER_CHANNELS:
        waiting = Job.objects.undispatched(waiting_for=options["REDISPATCH_AFTER"]).filter(
            channel=channel
        )
        for job in waiting[:SWEEP_WAKEUPS_PER_CHANNEL]:
            if job_wake(job):
                swept["dispatched"] += 1
    return swept


def job_cancel(*, job: Job) -> bool:
    """Cancel a queued or running job; a running task stops at its next progress report."""
    if not job.cancel():
        return False
    job_broadcast(job, events.JOB_FAILED)
    return True


def job_retry(*, job: Job) -> bool:
    """Run a failed or cancelled job again from its first attempt."""
    if not job.requeue():
        return False
    transaction.on_commit(partial(job_wake, job), robust=True)
    return True
