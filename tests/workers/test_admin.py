"""workers/admin.py: the admin's job list, with its retry and cancel actions."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from tests import tasks
from workers.models import Job

pytestmark = pytest.mark.django_db(transaction=True)


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


def test_a_job_cannot_be_added_or_changed_from_the_admin(admin_client: Client) -> None:
    job = Job.objects.get(pk=tasks.trivial.enqueue().id)
    assert admin_client.get("/admin/workers/job/add/").status_code == 403
    page = admin_client.get(f"/admin/workers/job/{job.pk}/change/")
    assert page.status_code == 200
    assert not page.context["adminform"].form.fields, "every field of a job is read-only"
    admin_client.post(
        f"/admin/workers/job/{job.pk}/change/",
        {"status": "succeeded", "channel": "thumbnails", "attempts": 9},
    )
    stored = Job.objects.get(pk=job.pk)
    assert (stored.status, stored.channel, stored.attempts) == ("queued", "compute", 0)
