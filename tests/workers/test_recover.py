"""workers/recover.py: the sweep that requeues a silent worker's jobs and wakes ready jobs
whose wake-up may have been lost."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from django.utils import timezone

from tests import tasks
from tests.jobs import receive_all
from workers.models import Job, Lease
from workers.recover import jobs_sweep

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_deferred_job_is_woken_by_the_sweep_once_due() -> None:
    result = tasks.trivial.using(run_after=timezone.now() + timedelta(seconds=1)).enqueue()
    assert jobs_sweep(holder="me")["woken"] == 0
    Job.objects.filter(pk=result.id).update(run_after=timezone.now() - timedelta(seconds=1))
    assert jobs_sweep(holder="me")["woken"] == 1
    assert asyncio.run(receive_all("compute", quiet=0.2)) == [
        {"type": "job.wakeup", "job": int(result.id)}
    ]


def test_the_sweep_requeues_a_silent_workers_job_and_gives_up_after_max_attempts() -> None:
    result = tasks.trivial.enqueue()
    job = Job.objects.get(pk=result.id)
    job.claim("dead-worker")
    Job.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now() - timedelta(hours=1))
    assert jobs_sweep(holder="me")["recovered"] == 1
    job.refresh_from_db()
    assert job.status == "queued"
    assert "dead-worker stopped responding" in job.error
    for attempt in range(2, 4):
        Lease.objects.all().delete()
        (job,) = Job.objects.claim(channel="compute", worker_id=f"dead-{attempt}", size=1)
        Job.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now() - timedelta(hours=1))
        jobs_sweep(holder="me")
    job.refresh_from_db()
    assert job.status == "failed"
    assert job.error.endswith("gave up after 3 attempts")
