"""workers/selectors.py: what pages, websockets and operators ask about jobs."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.conf import settings
from django.utils import timezone

from tests import tasks
from workers import events
from workers.backends import enqueue_for
from workers.enqueue import job_create
from workers.models import Job
from workers.selectors import jobs_overview, jobs_unfinished_for

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_users_unfinished_jobs_are_theirs_queued_and_running_as_progress_events(
    user: Any, other_user: Any
) -> None:
    with enqueue_for(owner=user, upload=4):
        ids = [int(tasks.trivial.enqueue().id) for _ in range(3)]
    with enqueue_for(owner=other_user):
        tasks.trivial.enqueue()
    running, finished, queued = (Job.objects.get(pk=pk) for pk in ids)
    Job.objects.filter(pk=running.pk).update(status="running", progress=30)
    Job.objects.filter(pk=finished.pk).update(status="succeeded")
    snapshot = jobs_unfinished_for(user_id=user.pk)
    assert [(e["job"], e["status"]) for e in snapshot] == [
        (running.pk, "running"),
        (queued.pk, "queued"),
    ]
    running.refresh_from_db()
    assert snapshot[0] == dict(events.job_event(running, events.JOB_PROGRESS))
    assert {(e["type"], e["upload"]) for e in snapshot} == {(events.JOB_PROGRESS, 4)}


def test_the_overview_counts_jobs_by_channel_and_status_and_ages_the_oldest_ready() -> None:
    now = timezone.now()
    for _ in range(2):
        tasks.trivial.enqueue()
    tasks.trivial.using(run_after=now + timedelta(hours=1)).enqueue()  # deferred: not ready
    # A channel the settings no longer name, with a job left on it.
    job_create(
        task_path="tests.tasks.trivial",
        channel="elsewhere",
        args=[],
        kwargs={},
        max_attempts=1,
        time_limit=1,
    )
    (done,) = Job.objects.claim(channel="compute", worker_id="w", size=1)
    assert done.set_succeeded("ok")
    # The ready one has waited 90 s at `now`.
    Job.objects.filter(channel="compute", status="queued", run_after__lte=timezone.now()).update(
        run_after=now - timedelta(seconds=90)
    )
    overview = jobs_overview(now=now)
    assert set(overview) == {*settings.WORKER_CHANNELS, "elsewhere"}
    compute = overview["compute"]
    assert compute["counts"] == {
        "queued": 2,
        "running": 0,
        "succeeded": 1,
        "failed": 0,
        "cancelled": 0,
        "waiting": 0,
    }
    assert compute["oldest_ready_age"] == 90.0
    assert overview["thumbnails"] == {
        "counts": dict.fromkeys(Job.Status.values, 0),
        "oldest_ready_age": None,
    }
    assert overview["elsewhere"]["counts"]["queued"] == 1
    assert overview["elsewhere"]["oldest_ready_age"] is not None
