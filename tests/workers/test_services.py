"""workers/services.py: operators' actions on jobs (cancel, retry, prune)."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.utils import timezone

from media_tasks.models import Upload
from workers.models import Job
from workers.services import jobs_prune

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
