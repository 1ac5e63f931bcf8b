"""workers/services.py: operators' actions on jobs (cancel, retry, prune)."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from io import StringIO
from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.core.management import call_command
from django.db import transaction
from django.utils import timezone

from media_tasks.models import Upload
from tests import tasks
from tests.jobs import receive_all
from workers import events
from workers.backends import enqueue_for
from workers.models import Job
from workers.services import job_cancel, job_retry, jobs_prune
from workers.wakeups import finish_sends

pytestmark = pytest.mark.django_db(transaction=True)


def test_jobs_prune_and_clearjobs_delete_old_finished_jobs_that_nothing_points_to(
    user: Any,
) -> None:
    now = timezone.now()
    long_ago = now - timedelta(days=31)

    def job(status: str, finished_at: Any = None) -> Job:
        return Job.objects.create(
            task_path="tests.tasks.trivial",
            channel="compute",
            time_limit=1,
            status=status,
            finished_at=finished_at,
        )

    old = [job(status, long_ago) for status in ("succeeded", "failed", "cancelled")] + [
        job("succeeded", long_ago) for _ in range(4)
    ]
    kept = [
        job("succeeded", now - timedelta(days=29)),  # not old enough
        job("queued"),  # never finished, however old
        job("running"),
    ]
    # An upload's status is its jobs': the jobs it points to stay as long as it does.
    thumbnails, analysis = job("succeeded", long_ago), job("failed", long_ago)
    Upload.objects.create(
        owner=user,
        original="originals/x.png",
        original_name="x.png",
        format="PNG",
        content_type="image/png",
        width=1,
        height=1,
        bytes=1,
        thumbnails_job=thumbnails,
        analysis_job=analysis,
    )
    Job.objects.filter(status__in=["queued", "running"]).update(
        enqueued_at=long_ago, updated_at=long_ago
    )
    # Small batches: every batch starts after the last one.
    assert jobs_prune(older_than_days=30, batch=2) == len(old)
    remaining = set(Job.objects.values_list("pk", flat=True))
    assert remaining == {j.pk for j in [*kept, thumbnails, analysis]}
    out = StringIO()
    call_command("clearjobs", "--days", "28", stdout=out)
    assert out.getvalue().strip() == "deleted 1 finished job older than 28 days"
    assert not Job.objects.filter(pk=kept[0].pk).exists()
    assert Upload.objects.get().thumbnails_job == thumbnails


async def test_job_cancel_tells_the_owner_and_leaves_a_finished_job_as_it_was(user: Any) -> None:
    layer = get_channel_layer()
    listener = await layer.new_channel()
    await layer.group_add(events.user_group(user.pk), listener)

    def enqueue() -> tuple[Job, Job]:
        with enqueue_for(owner=user):
            tasks.trivial.enqueue()
            queued = Job.objects.get(pk=tasks.trivial.enqueue().id)
        (done,) = Job.objects.claim(channel="compute", worker_id="w", size=1)
        assert done.set_succeeded("ok")
        return queued, done

    queued, done = await database_sync_to_async(enqueue)()
    assert await database_sync_to_async(job_cancel)(job=queued)
    cancelled = await database_sync_to_async(Job.objects.get)(pk=queued.pk)
    assert cancelled.status == "cancelled"
    assert cancelled.finished_at is not None
    assert [(e["type"], e["job"], e["status"]) for e in await receive_all(listener, quiet=0.2)] == [
        ("job.failed", queued.pk, "cancelled")
    ]
    # Once finished, a job stays as it is, and nobody is told anything.
    for job in (cancelled, done):
        assert not await database_sync_to_async(job_cancel)(job=job)
    assert (await database_sync_to_async(Job.objects.get)(pk=done.pk)).status == "succeeded"
    assert await receive_all(listener, quiet=0.2) == []


def test_job_retry_runs_a_failed_job_again_and_wakes_a_worker_after_commit() -> None:
    tasks.trivial.enqueue()
    (failed,) = Job.objects.claim(channel="compute", worker_id="w", size=1)
    assert failed.set_failed(error="boom", error_class="builtins.RuntimeError", retry=False)
    finish_sends()
    asyncio.run(receive_all("compute", quiet=0.2))
    with transaction.atomic():
        assert job_retry(job=failed)
        assert asyncio.run(receive_all("compute", quiet=0.2)) == []
    assert asyncio.run(receive_all("compute", quiet=0.2)) == [
        {"type": events.JOB_WAKEUP, "job": failed.pk}
    ]
    job = Job.objects.get(pk=failed.pk)
    assert (job.status, job.attempts, job.error, job.error_class) == ("queued", 0, "", "")
    assert (job.finished_at, job.worker_id) == (None, "")
    assert job.woken_at is not None
    # Only a failed or cancelled job runs again: this one is queued.
    assert not job_retry(job=job)
