"""Chains and fan-in: a job enqueued with `task.using(after=[result, ...])` waits (status
`waiting`) until every job it names succeeded, then is queued like any job; if one of them
fails or is cancelled, it fails unrun, and so do the jobs that wait for it.

Durable like any job: the waiting job's row names the jobs it waits for (`after`), and each
of those names it (`dependents`), so whichever of them succeeds last releases it. A job
whose success is recorded checks its dependents after that record committed: of two jobs
finishing together, the one that commits last sees the other's success, and the release is
conditional on the job still waiting, so it is queued once.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from functools import partial

from django.db import transaction
from django.db.models import Value
from django.tasks.signals import task_finished

from workers import events
from workers.models import Job
from workers.sql import JSONAppendNumber

logger = logging.getLogger(__name__)


def chain_link(job: Job) -> None:
    """In the enqueue's transaction: tell each job `job` waits for; once that commits,
    settle it at once if they already finished."""
    Job.objects.filter(pk__in=job.after).update(
        dependents=JSONAppendNumber("dependents", Value(job.pk))
    )
    transaction.on_commit(partial(waiting_settle, job_id=job.pk), robust=True)


def waiting_settle(*, job_id: int) -> None:
    """Queue the waiting job if every job it waits for succeeded; fail it if one failed, was
    cancelled or is gone; else leave it waiting."""
    from workers.results import send_task_signal
    from workers.wakeups import wake_soon

    job = Job.objects.filter(pk=job_id, status=Job.Status.WAITING).first()
    if job is None:
        return
    statuses = dict(Job.objects.filter(pk__in=job.after).values_list("pk", "status"))
    broken = sorted(
        {pk for pk in job.after if statuses.get(pk) in (None, *Job.FINISHED - {"succeeded"})}
    )
    if broken:
        if job.fail_waiting(f"job {broken[0]}, which it runs after, did not succeed"):
            logger.warning("job=%s failed unrun: job %s did not succeed", job.pk, broken[0])
            events.broadcast(job, events.JOB_FAILED)
            send_task_signal(task_finished, job)
            dependents_settle([job])
    elif all(statuses.get(pk) == Job.Status.SUCCEEDED for pk in job.after) and job.release():
        logger.info("job=%s queued: the jobs it runs after succeeded", job.pk)
        job.mark_woken()
        wake_soon(job)


def dependents_settle(jobs: Iterable[Job]) -> None:
    """After jobs finished (their outcome committed): settle the jobs waiting for them."""
    for job in jobs:
        for pk in job.dependents:
            waiting_settle(job_id=pk)
