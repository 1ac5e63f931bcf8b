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
