"""workers/recover.py: the sweep that requeues a silent worker's jobs and wakes ready jobs
whose wake-up may have been lost."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.tasks import TaskResultStatus
from django.tasks.signals import task_finished
from django.utils import timezone

from tests import tasks
from tests.jobs import receive_all
from workers import events
from workers.backends import enqueue_for
from workers.models import Job, Lease
from workers.recover import jobs_sweep
from workers.wakeups import finish_sends

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


def gone_silent(job: Job) -> None:
    """As if its worker had died: no heartbeat for an hour."""
    Job.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now() - timedelta(hours=1))


def test_while_one_process_holds_the_sweep_lease_another_sweeps_nothing() -> None:
    for _ in range(2):
        tasks.trivial.enqueue()
    first, second = Job.objects.claim(channel="compute", worker_id="dead", size=2)
    gone_silent(first)
    assert jobs_sweep(holder="a")["recovered"] == 1
    gone_silent(second)
    assert jobs_sweep(holder="b") == {"recovered": 0, "given_up": 0, "woken": 0}
    assert Job.objects.get(pk=second.pk).status == "running"
    # The holder sweeps again (its lease renewed).
    assert jobs_sweep(holder="a")["recovered"] == 1


async def test_a_job_the_sweep_gives_up_on_tells_its_owner_and_finishes_its_task(
    user: Any,
) -> None:
    layer = get_channel_layer()
    listener = await layer.new_channel()
    await layer.group_add(events.user_group(user.pk), listener)
    finished: list[Any] = []

    def receiver(sender: Any, task_result: Any, **kwargs: Any) -> None:
        finished.append(task_result)

    def lose_it() -> int:
        with enqueue_for(owner=user):
            tasks.trivial.using(max_attempts=1).enqueue()
        (job,) = Job.objects.claim(channel="compute", worker_id="dead", size=1)
        gone_silent(job)
        return int(job.pk)

    job_id = await database_sync_to_async(lose_it)()
    task_finished.connect(receiver, weak=False)
    try:
        swept = await database_sync_to_async(jobs_sweep)(holder="me")
    finally:
        task_finished.disconnect(receiver)
    assert swept["given_up"] == 1
    job = await database_sync_to_async(Job.objects.get)(pk=job_id)
    assert (job.status, job.error_class) == ("failed", "workers.exceptions.JobLost")
    assert job.error == "worker dead stopped responding; gave up after 1 attempts"
    received = await receive_all(listener, quiet=0.2)
    assert [(e["type"], e["job"], e["status"], e["error"]) for e in received] == [
        ("job.failed", job_id, "failed", job.error)
    ]
    assert [(r.id, r.status) for r in finished] == [(str(job_id), TaskResultStatus.FAILED)]


def test_a_ready_job_whose_wakeup_was_lost_is_woken_again_and_a_recent_one_is_not() -> None:
    lost, recent = (int(tasks.trivial.enqueue().id) for _ in range(2))
    finish_sends()
    asyncio.run(receive_all("compute", quiet=0.2))
    # Its wake-up never went out (or went with a Redis that restarted empty).
    Job.objects.filter(pk=lost).update(woken_at=None)
    assert jobs_sweep(holder="me")["woken"] == 1
    assert Job.objects.get(pk=lost).woken_at is not None
    assert asyncio.run(receive_all("compute", quiet=0.2)) == [
        {"type": events.JOB_WAKEUP, "job": lost}
    ]
    assert Job.objects.get(pk=recent).status == "queued"
