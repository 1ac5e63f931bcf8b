"""Recovery: what brings back a job whose worker died or whose wake-up was lost.

Every worker sweeps every JOBS["SWEEP_INTERVAL"] (one process at a time, under a database
lease): running jobs whose heartbeat is older than JOBS["STALE_AFTER"] are queued again (or
failed for good once out of attempts), and ready jobs whose wake-up may have been lost (none
sent, or none for JOBS["REDISPATCH_AFTER"], or a deferred job now due) are woken again. A
channel layer delivers at most once; this is what makes every accepted job end.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.tasks.signals import task_finished
from django.utils import timezone

from workers import chains, events
from workers.models import Job, Lease, PausedChannel, WorkerProcess
from workers.results import send_task_signal
from workers.schedules import schedules_enqueue_due
from workers.wakeups import wake

logger = logging.getLogger(__name__)

SWEEP_LEASE = "workers.sweep"
# A sweep wakes at most this many workers per channel: a woken worker drains the channel, so
# more wake-ups than workers only fill the layer.
SWEEP_WAKEUPS_PER_CHANNEL = 50


def jobs_sweep(*, holder: str) -> dict[str, int]:
    """Requeue running jobs whose worker went silent, and wake workers for ready jobs whose
    wake-up may have been lost; what it did, counted. One process sweeps at a time."""
    options = settings.JOBS
    swept = {"recovered": 0, "given_up": 0, "woken": 0}
    if not Lease.acquire(SWEEP_LEASE, holder=holder, ttl=options["SWEEP_INTERVAL"] * 2):
        return swept
    for job in Job.objects.stale(silent_for=options["STALE_AFTER"]):
        reason = f"worker {job.worker_id} stopped responding"
        if not job.recover(reason):
            continue
        if job.status == Job.Status.FAILED:
            swept["given_up"] += 1
            logger.error("job=%s %s; failed for good", job.pk, reason)
            events.broadcast(job, events.JOB_FAILED)
            send_task_signal(task_finished, job)
            chains.dependents_settle([job])
        else:
            swept["recovered"] += 1
            logger.warning("job=%s %s; queued again", job.pk, reason)
    paused = set(PausedChannel.objects.values_list("name", flat=True))
    for channel in settings.WORKER_CHANNELS:
        if channel in paused:
            continue
        waiting = Job.objects.not_woken(waiting_for=options["REDISPATCH_AFTER"]).filter(
            channel=channel
        )
        for job in waiting[:SWEEP_WAKEUPS_PER_CHANNEL]:
            if wake(job):
                swept["woken"] += 1
    schedules_enqueue_due()
    # Workers that stopped without saying so (killed) leave the operators' page.
    gone = timezone.now() - timedelta(seconds=options["STALE_AFTER"] * 2)
    WorkerProcess.objects.filter(heartbeat_at__lt=gone).delete()
    return swept
