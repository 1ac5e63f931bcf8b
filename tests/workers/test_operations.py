"""What an operator uses: `manage.py jobs` and the admin's job list with retry and cancel."""

from __future__ import annotations

import json
from datetime import timedelta
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from media_tasks.models import Upload
from tests import tasks
from workers.models import Job
from workers.services import jobs_prune

pytestmark = pytest.mark.django_db(transaction=True)


def test_jobs_command_shows_counts_by_status_and_the_oldest_waiting_job() -> None:
    for _ in range(3):
        tasks.trivial.enqueue()
    Job.objects.update(run_after=timezone.now() - timedelta(seconds=90))
    (done,) = Job.objects.claim(channel="compute", worker_id="w", size=1)
    done.set_succeeded("ok")
    out = StringIO()
    call_command("jobs", "--json", stdout=out)
    overview = json.loads(out.getvalue())
    assert overview["compute"]["counts"]["queued"] == 2
    assert overview["compute"]["counts"]["succeeded"] == 1
    assert 89 <= overview["compute"]["oldest_ready_age"] < 120
    assert overview["thumbnails"]["oldest_ready_age"] is None
    table = StringIO()
    call_command("jobs", stdout=table)
    compute_row = next(line for line in table.getvalue().splitlines() if line.startswith("compute"))
    assert compute_row.split()[1:3] == ["2", "0"]  # queued, running
    assert compute_row.endswith(" s")


@pytest.fixture
def admin_client(django_user_model: Any) -> Client:
    admin = django_user_model.objects.create_superuser("root", "root@example.com", "pw-root-12345")
    client = Client()
    client.force_login(admin)
    return client


def test_admin_lists_jobs_filtered_by_status_and_channel(admin_client: Client, user: Any) -> None:
    tasks.trivial.enqueue()
    (failed,) = Job.objects.claim(channel="compute", worker_id="w", size=1)
    failed.set_failed(error="boom", retry=False)
    tasks.trivial.enqueue()
    response = admin_client.get("/admin/workers/job/?status__exact=failed&channel__exact=compute")
    assert response.status_code == 200
    assert response.context["cl"].result_count == 1


def test_admin_retry_and_cancel_actions(admin_client: Client) -> None:
    tasks.trivial.enqueue()
    (failed,) = Job.objects.claim(channel="compute", worker_id="w", size=1)
    failed.set_failed(error="boom", retry=False)
    queued = Job.objects.get(pk=tasks.trivial.enqueue().id)
    admin_client.post("/admin/workers/job/", {"action": "retry", "_selected_action": [failed.pk]})
    failed.refresh_from_db()
    assert (failed.status, failed.attempts, failed.error) == ("queued", 0, "")
    admin_client.post("/admin/workers/job/", {"action": "cancel", "_selected_action": [queued.pk]})
    queued.refresh_from_db()
    assert queued.status == "cancelled"
    assert queued.finished_at is not None


def test_clearjobs_deletes_old_finished_jobs_that_nothing_points_to(user: Any) -> None:
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
